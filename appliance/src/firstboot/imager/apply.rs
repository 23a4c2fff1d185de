//! Applying a customisation to a system root: every step writes its whole result or finds
//! it there already, so a boot cut off half way, or the other system slot booting the same
//! record, applies it again without doing anything twice.

use std::path::{Path, PathBuf};

use super::read::{Customisation, Keyboard, Network, Secret, User, Wifi};
use crate::firstboot::{FirstbootError, chain, io, programs};

/// Where the customisation lands: `/` on the device, a scratch tree in tests.
pub struct Target {
    pub root: PathBuf,
    /// Whether to change the running kernel's host name too (only for `/`).
    pub live: bool,
}

impl Target {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }
}

/// Applies `c`; returns what could not be applied, one message each.
pub fn apply(c: &Customisation, t: &Target) -> Vec<String> {
    let mut problems = Vec::new();
    let mut step = |what: &str, done: Result<(), FirstbootError>| {
        if let Err(e) = done {
            problems.push(format!("{what}: {}", chain(&e)));
        }
    };
    if let Some(h) = &c.hostname {
        step("host name", hostname(h, t));
    }
    if let Some(u) = &c.user {
        step("user", user(u, t));
    }
    if let Some(p) = c.ssh_pwauth {
        step("ssh_pwauth", ssh_pwauth(p, t));
    }
    if let Some(w) = &c.wifi {
        step("Wi-Fi", wifi(w, t));
    }
    if let Some(k) = &c.keyboard {
        step("keyboard", keyboard(k, t));
    }
    problems
}

/// Writes `text` to `path` whole with `mode` ([`crate::state::write_atomic_mode`]).
pub fn write_file(path: &Path, text: &[u8], mode: u32) -> Result<(), FirstbootError> {
    Ok(crate::state::write_atomic_mode(path, text, Some(mode))?)
}

fn hostname(name: &str, t: &Target) -> Result<(), FirstbootError> {
    write_file(
        &t.path("/etc/hostname"),
        format!("{name}\n").as_bytes(),
        0o644,
    )?;
    // manage_etc_hosts: the name resolves to this machine without DNS.
    let hosts = t.path("/etc/hosts");
    let old = std::fs::read_to_string(&hosts).unwrap_or_default();
    let mut new: Vec<String> = old
        .lines()
        .filter(|l| !l.starts_with("127.0.1.1"))
        .map(str::to_owned)
        .collect();
    new.push(format!("127.0.1.1\t{name}"));
    write_file(&hosts, (new.join("\n") + "\n").as_bytes(), 0o644)?;
    if t.live {
        rustix::system::sethostname(name.as_bytes()).map_err(|e| FirstbootError::Io {
            path: "the kernel's host name".into(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// The user's line in the root's /etc/passwd: (uid, gid, home).
fn passwd_entry(root: &Path, name: &str) -> Option<(u32, u32, PathBuf)> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| {
            (
                f[2].parse().unwrap_or(0),
                f[3].parse().unwrap_or(0),
                PathBuf::from(f[5]),
            )
        })
    })
}

fn user(u: &User, t: &Target) -> Result<(), FirstbootError> {
    let (uid, gid, home) = match passwd_entry(&t.root, &u.name) {
        Some((uid, ..)) if uid < 1000 => {
            return Err(FirstbootError::Failed {
                command: format!("making the user {}", u.name),
                status: "refused".into(),
                stderr: format!("{} is a system account (uid {uid})", u.name),
            });
        }
        Some(found) => found,
        None => {
            programs::useradd(&t.root, &u.name, &u.shell)?;
            passwd_entry(&t.root, &u.name).ok_or_else(|| FirstbootError::Failed {
                command: format!("useradd {}", u.name),
                status: "exit status 0".into(),
                stderr: "but the user is not in /etc/passwd".into(),
            })?
        }
    };
    // The hash, or locked: a user kept from an earlier customisation loses an old password.
    programs::usermod_password(&t.root, &u.name, u.password_hash.as_deref())?;
    let home = t.path(&home.to_string_lossy());
    let ssh = home.join(".ssh");
    let keys: String = u.ssh_keys.iter().map(|k| format!("{k}\n")).collect();
    std::fs::create_dir_all(&ssh).map_err(io(&ssh))?;
    write_file(&ssh.join("authorized_keys"), keys.as_bytes(), 0o600)?;
    for p in [&home, &ssh, &ssh.join("authorized_keys")] {
        rustix::fs::chown(
            p,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| io(p)(e.into()))?;
    }
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io(&ssh))?;
    let sudoers = t.path(&format!("/etc/sudoers.d/010_{}-nopasswd", u.name));
    if u.passwordless_sudo {
        write_file(
            &sudoers,
            format!("{} ALL=(ALL) NOPASSWD:ALL\n", u.name).as_bytes(),
            0o440,
        )?;
    } else if sudoers.exists() {
        std::fs::remove_file(&sudoers).map_err(io(&sudoers))?;
    }
    Ok(())
}

fn ssh_pwauth(on: bool, t: &Target) -> Result<(), FirstbootError> {
    // sshd takes the first value it reads, and reads sshd_config.d in name order first.
    let yes_no = if on { "yes" } else { "no" };
    write_file(
        &t.path("/etc/ssh/sshd_config.d/10-imager.conf"),
        format!(
            "# Raspberry Pi Imager's \"ssh_pwauth\", applied by d3kOS's first boot.\n\
             PasswordAuthentication {yes_no}\n"
        )
        .as_bytes(),
        0o644,
    )
}

/// wpa_supplicant's configuration for wlan0 (wpa_supplicant.conf(5)); the SSID in hex, so
/// any bytes are kept.
pub fn wpa_supplicant_conf(w: &Wifi) -> String {
    let mut s = String::from(
        "# Written by d3kOS's first boot from Raspberry Pi Imager's settings.\n\
         ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\nupdate_config=0\n",
    );
    if let Some(cc) = &w.country {
        s.push_str(&format!("country={cc}\n"));
    }
    for Network {
        ssid,
        secret,
        hidden,
    } in &w.networks
    {
        s.push_str(&format!("\nnetwork={{\n\tssid={}\n", hex(ssid)));
        match secret {
            Secret::Open => s.push_str("\tkey_mgmt=NONE\n"),
            Secret::Passphrase(p) => s.push_str(&format!("\tpsk=\"{p}\"\n")),
            Secret::Psk(k) => s.push_str(&format!("\tpsk={k}\n")),
        }
        if !matches!(secret, Secret::Open) {
            // WPA2 and WPA3 (SAE) where the access point offers it; PMF where it can.
            s.push_str("\tkey_mgmt=WPA-PSK WPA-PSK-SHA256 SAE\n\tieee80211w=1\n");
        }
        if *hidden {
            s.push_str("\tscan_ssid=1\n");
        }
        s.push_str("}\n");
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wifi(w: &Wifi, t: &Target) -> Result<(), FirstbootError> {
    write_file(
        &t.path("/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"),
        wpa_supplicant_conf(w).as_bytes(),
        0o600,
    )
}

fn keyboard(k: &Keyboard, t: &Target) -> Result<(), FirstbootError> {
    write_file(
        &t.path("/etc/default/keyboard"),
        format!(
            "# keyboard(5), from Raspberry Pi Imager's settings.\nXKBMODEL=\"{}\"\n\
             XKBLAYOUT=\"{}\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\nBACKSPACE=\"guess\"\n",
            k.model, k.layout
        )
        .as_bytes(),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wpa_supplicant_conf_carries_country_hex_ssids_and_each_kind_of_secret() {
        let w = Wifi {
            country: Some("DE".into()),
            networks: vec![
                Network {
                    ssid: b"Marina Guest".to_vec(),
                    secret: Secret::Psk("ab".repeat(32)),
                    hidden: false,
                },
                Network {
                    ssid: b"Open".to_vec(),
                    secret: Secret::Open,
                    hidden: true,
                },
            ],
        };
        let conf = wpa_supplicant_conf(&w);
        assert!(conf.contains("country=DE\n"));
        assert!(conf.contains("\tssid=4d6172696e61204775657374\n"), "{conf}");
        assert!(conf.contains(&format!("\tpsk={}\n", "ab".repeat(32))));
        assert!(conf.contains("\tkey_mgmt=NONE\n\tscan_ssid=1\n"), "{conf}");
    }

    #[test]
    fn host_name_keyboard_and_ssh_settings_land_in_the_root_and_again_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/hosts"),
            "127.0.0.1\tlocalhost\n127.0.1.1\td3kos\n",
        )
        .unwrap();
        let c = Customisation {
            hostname: Some("sailfish".into()),
            keyboard: Some(Keyboard {
                model: "pc105".into(),
                layout: "de".into(),
            }),
            ssh_pwauth: Some(false),
            ..Customisation::default()
        };
        let t = Target {
            root: root.to_owned(),
            live: false,
        };
        for _ in 0..2 {
            assert_eq!(apply(&c, &t), Vec::<String>::new());
            let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
            assert_eq!(hosts, "127.0.0.1\tlocalhost\n127.0.1.1\tsailfish\n");
        }
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "sailfish\n"
        );
        let kb = std::fs::read_to_string(root.join("etc/default/keyboard")).unwrap();
        assert!(kb.contains("XKBLAYOUT=\"de\""));
        let sshd =
            std::fs::read_to_string(root.join("etc/ssh/sshd_config.d/10-imager.conf")).unwrap();
        assert!(sshd.contains("PasswordAuthentication no\n"));
    }
}
