//! `d3kosd firstboot imager`: Raspberry Pi Imager's customisation (host name, user, SSH,
//! Wi-Fi, time zone, keyboard), read natively from the config partition, where Imager
//! writes its cloud-init files, and applied without cloud-init.
//!
//! A new `instance-id` in `meta-data` is a new customisation. It is read once into a record
//! on the data partition; every boot applies the record to the running system slot (so the
//! other slot, after an update, gets it too), and the secrets then leave the FAT partition.
//! A cut at any point is finished by the next boot, and nothing is done twice.

pub mod apply;
pub mod read;
pub mod wipe;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FirstbootError, io, say};
use read::{Customisation, Files, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the config partition is mounted (Imager's `user-data`, `network-config`,
    /// `meta-data`).
    #[arg(long, value_name = "DIR", default_value = "/boot/config")]
    pub config: PathBuf,
    /// Where the data partition is mounted (the record is kept there).
    #[arg(long, value_name = "DIR", default_value = "/data")]
    pub data: PathBuf,
    /// The system to apply it to.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// The public summary on the data partition, which the appliance reads (no secrets in it).
pub const SUMMARY: &str = "d3kos/imager/settings.json";
/// The whole customisation, secrets included: root's alone.
const RECORD: &str = "d3kos/imager/record.json";

/// What was asked for and what was left out, as read from the partition.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    customisation: Customisation,
    report: Report,
}

/// What the appliance and the owner see of the customisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub instance_id: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub ssh_keys: usize,
    pub password_login: bool,
    pub ssh_pwauth: Option<bool>,
    pub timezone: Option<String>,
    pub keyboard: Option<String>,
    pub wifi_country: Option<String>,
    /// The Wi-Fi networks' names (lossy where an SSID is not UTF-8).
    pub wifi_networks: Vec<String>,
    /// Keys read but not applied, and why.
    pub ignored: Vec<String>,
    /// Values refused, and steps that failed.
    pub problems: Vec<String>,
}

impl Summary {
    fn of(r: &Record, failed: Vec<String>) -> Summary {
        let c = &r.customisation;
        let wifi = c.wifi.as_ref();
        Summary {
            instance_id: c.instance_id.clone(),
            hostname: c.hostname.clone(),
            user: c.user.as_ref().map(|u| u.name.clone()),
            ssh_keys: c.user.as_ref().map_or(0, |u| u.ssh_keys.len()),
            password_login: c.user.as_ref().is_some_and(|u| u.password_hash.is_some()),
            ssh_pwauth: c.ssh_pwauth,
            timezone: c.timezone.clone(),
            keyboard: c.keyboard.as_ref().map(|k| k.layout.clone()),
            wifi_country: wifi.and_then(|w| w.country.clone()),
            wifi_networks: wifi.map_or_else(Vec::new, |w| {
                w.networks
                    .iter()
                    .map(|n| String::from_utf8_lossy(&n.ssid).into_owned())
                    .collect()
            }),
            ignored: r.report.ignored.clone(),
            problems: r.report.problems.iter().cloned().chain(failed).collect(),
        }
    }

    /// The summary under the data partition `data`, if a customisation was ever applied.
    pub fn load(data: &Path) -> Option<Summary> {
        let text = std::fs::read_to_string(data.join(SUMMARY)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let target = apply::Target {
        root: a.root.clone(),
        live: a.root == Path::new("/"),
    };
    imager(&a.config, &a.data, &target, out)
}

/// Reads a new customisation from `config` into the record under `data`, applies the
/// record to `target`, and takes the secrets off `config`.
pub fn imager(
    config: &Path,
    data: &Path,
    target: &apply::Target,
    out: &mut dyn Write,
) -> Result<(), FirstbootError> {
    let record_path = data.join(RECORD);
    let mut record = match std::fs::read(&record_path) {
        Ok(bytes) => match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                say(
                    out,
                    format_args!(
                        "imager: {} is damaged ({e}); it is read again from the config partition",
                        record_path.display()
                    ),
                )?;
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&record_path)(e)),
    };
    let files = files(config)?;
    if let Some(files) = &files {
        let (c, report) = read::read(files);
        let known = record
            .as_ref()
            .is_some_and(|r| r.customisation.instance_id == c.instance_id);
        if !known && (c != Customisation::default() || report != Report::default()) {
            let r = Record {
                customisation: c,
                report,
            };
            let json = serde_json::to_vec_pretty(&r).expect("a record serialises");
            apply::write_file(&record_path, &json, 0o600)?;
            record = Some(r);
        }
    }
    let Some(record) = record else {
        return Ok(());
    };
    let failed = apply::apply(&record.customisation, target);
    let summary = Summary::of(&record, failed);
    let json = serde_json::to_vec_pretty(&summary).expect("a summary serialises");
    apply::write_file(&data.join(SUMMARY), &json, 0o644)?;
    tell(&summary, out)?;
    if files.is_some() {
        for name in ["user-data", "network-config"] {
            wipe_file(&config.join(name))?;
        }
    }
    Ok(())
}

/// Imager's files under `config`; `None` where it wrote none.
fn files(config: &Path) -> Result<Option<Files>, FirstbootError> {
    let read = |name: &str| {
        let p = config.join(name);
        match std::fs::read(&p) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        }
    };
    let f = Files {
        user_data: read("user-data")?,
        network_config: read("network-config")?,
        meta_data: read("meta-data")?,
    };
    Ok((f.user_data.is_some() || f.network_config.is_some() || f.meta_data.is_some()).then_some(f))
}

/// Takes the secrets out of `path`, when it has any. The lines that hold them are
/// overwritten where they lie ([`wipe::blanked`]): the file keeps its size and clusters, so
/// no copy of a secret stays behind in freed clusters of the FAT, and no allocation or
/// directory entry changes that a power cut could leave half written (FAT has no journal).
/// Only a shape that line blanking cannot handle is rewritten whole
/// ([`crate::state::write_atomic`]).
fn wipe_file(path: &Path) -> Result<(), FirstbootError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if let Some(blank) = wipe::blanked(&text) {
        return overwrite(path, blank.as_bytes());
    }
    let Some(clean) = wipe::without_secrets(&text) else {
        return Ok(());
    };
    Ok(crate::state::write_atomic(path, clean.as_bytes())?)
}

/// Writes `bytes` over the start of `path` (as long as it, so the size stays) and waits
/// until they are on the card.
fn overwrite(path: &Path, bytes: &[u8]) -> Result<(), FirstbootError> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}

/// What was applied, for the console of the boot.
fn tell(s: &Summary, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let mut done = Vec::new();
    if let Some(h) = &s.hostname {
        done.push(format!("host name {h}"));
    }
    if let Some(u) = &s.user {
        done.push(format!(
            "user {u} ({} SSH key(s), password login {})",
            s.ssh_keys,
            if s.password_login { "on" } else { "off" }
        ));
    }
    if !s.wifi_networks.is_empty() {
        done.push(format!("Wi-Fi {}", s.wifi_networks.join(", ")));
    }
    if let Some(z) = &s.timezone {
        done.push(format!("time zone {z}"));
    }
    if let Some(k) = &s.keyboard {
        done.push(format!("keyboard {k}"));
    }
    say(out, format_args!("imager: applied {}", done.join("; ")))?;
    for i in &s.ignored {
        say(out, format_args!("imager: not applied: {i}"))?;
    }
    for p in &s.problems {
        say(out, format_args!("imager: PROBLEM: {p}"))?;
    }
    Ok(())
}
