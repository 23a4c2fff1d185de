//! `d3kosd firstboot identity`: the machine id and the SSH host keys live on the data
//! partition, so a device keeps its identity when it boots the other system slot.
//!
//! The initramfs binds `/data/etc/machine-id` over `/etc/machine-id` before systemd starts
//! (the root file system ships it empty, so the very first boot is systemd's first boot), and
//! sshd reads its host keys from `/data/etc/ssh` (`etc/ssh/sshd_config.d/d3kos.conf`).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::programs;
use super::{FirstbootError, io, say};

/// The SSH host key types `ssh-keygen -A` makes, and sshd_config.d/d3kos.conf names.
const KEY_TYPES: [&str; 3] = ["ecdsa", "ed25519", "rsa"];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the data partition is mounted.
    #[arg(long, value_name = "DIR", default_value = "/data")]
    pub data: PathBuf,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<(), FirstbootError> {
    identity(&a.data, Path::new("/etc/machine-id"), out)
}

/// Keeps the running machine id (`running`) and host keys under `data`, and prints them.
pub fn identity(data: &Path, running: &Path, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let id = machine_id(data, running, out)?;
    let keys = host_keys(data, out)?;
    say(out, format_args!("machine-id {id}"))?;
    for key in keys {
        say(
            out,
            format_args!("{}", programs::ssh_keygen_fingerprint(&key)?),
        )?;
    }
    Ok(())
}

/// 32 lower-case hex digits (machine-id(5)).
fn is_machine_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn machine_id(data: &Path, running: &Path, out: &mut dyn Write) -> Result<String, FirstbootError> {
    let kept = data.join("etc/machine-id");
    match std::fs::read_to_string(&kept) {
        Ok(text) if is_machine_id(text.trim()) => {
            world_readable(&kept)?;
            return Ok(text.trim().to_owned());
        }
        // Empty or damaged: the running id replaces it, as if it were missing.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&kept)(e)),
    }
    let text = std::fs::read_to_string(running).map_err(io(running))?;
    let id = text.trim();
    if !is_machine_id(id) {
        return Err(FirstbootError::NoMachineId {
            path: running.to_owned(),
            found: id.to_owned(),
        });
    }
    crate::state::write_atomic(&kept, format!("{id}\n").as_bytes())?;
    world_readable(&kept)?;
    say(
        out,
        format_args!("kept machine id {id} in {}", kept.display()),
    )?;
    Ok(id.to_owned())
}

/// machine-id(5) is mode 0444: services running as their own users read it (systemd-networkd
/// derives its DHCP client id from it, and cannot start DHCP without it). Set on every boot,
/// so a copy kept with a narrower mode is mended.
fn world_readable(path: &Path) -> Result<(), FirstbootError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).map_err(io(path))
}

/// Makes the host keys that are missing; returns the private key files.
fn host_keys(data: &Path, out: &mut dyn Write) -> Result<Vec<PathBuf>, FirstbootError> {
    let dir = data.join("etc/ssh");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let keys: Vec<PathBuf> = KEY_TYPES
        .iter()
        .map(|t| dir.join(format!("ssh_host_{t}_key")))
        .collect();
    // ssh-keygen -A remakes a key whose file is empty, as a power cut can leave it.
    let missing = keys
        .iter()
        .any(|k| std::fs::metadata(k).map_or(true, |m| m.len() == 0));
    if missing {
        programs::ssh_keygen_host_keys(data)?;
        // ssh-keygen renames its files into place without syncing them; a power cut soon
        // after must not leave empty keys behind.
        for file in keys
            .iter()
            .flat_map(|k| [k.clone(), k.with_extension("pub")])
            .chain([dir.clone()])
        {
            std::fs::File::open(&file)
                .and_then(|f| f.sync_all())
                .map_err(io(&file))?;
        }
        say(
            out,
            format_args!("made the SSH host keys in {}", dir.display()),
        )?;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_identity(data: &Path, running: &Path) -> Result<String, FirstbootError> {
        let mut out = Vec::new();
        identity(data, running, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let running = dir.path().join("machine-id");
        std::fs::write(&running, "0123456789abcdef0123456789abcdef\n").unwrap();

        let first = run_identity(&data, &running).unwrap();
        assert!(
            first.contains("kept machine id 0123456789abcdef0123456789abcdef"),
            "{first}"
        );
        assert!(first.contains("made the SSH host keys"), "{first}");
        assert!(
            first.contains("\nmachine-id 0123456789abcdef0123456789abcdef\n"),
            "{first}"
        );
        let fingerprints: Vec<&str> = first.lines().filter(|l| l.contains("SHA256:")).collect();
        assert_eq!(fingerprints.len(), 3, "{first}");
        for t in ["(ECDSA)", "(ED25519)", "(RSA)"] {
            assert!(fingerprints.iter().any(|l| l.ends_with(t)), "{t}: {first}");
        }
        assert_eq!(
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(data.join("etc/machine-id"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(
                    mode & 0o777,
                    0o444,
                    "machine-id must be readable by every service"
                );
                std::fs::read_to_string(data.join("etc/machine-id")).unwrap()
            },
            "0123456789abcdef0123456789abcdef\n"
        );

        // The next boot (of either slot) prints the same identity and makes nothing.
        std::fs::write(&running, "fedcba9876543210fedcba9876543210\n").unwrap();
        let second = run_identity(&data, &running).unwrap();
        let printed = |s: &str| {
            s.lines()
                .filter(|l| l.starts_with("machine-id ") || l.contains("SHA256:"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(printed(&second), printed(&first));
        assert_eq!(second.lines().count(), 4, "{second}");
    }

    #[test]
    fn an_empty_key_is_made_again_and_a_missing_id_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let running = dir.path().join("machine-id");
        std::fs::write(&running, "").unwrap();
        let e = run_identity(&data, &running).unwrap_err();
        assert!(matches!(e, FirstbootError::NoMachineId { .. }), "{e}");

        std::fs::write(&running, "0123456789abcdef0123456789abcdef\n").unwrap();
        run_identity(&data, &running).unwrap();
        let key = data.join("etc/ssh/ssh_host_ed25519_key");
        std::fs::write(&key, b"").unwrap();
        let out = run_identity(&data, &running).unwrap();
        assert!(out.contains("made the SSH host keys"), "{out}");
        assert!(std::fs::metadata(&key).unwrap().len() > 0);
    }
}
