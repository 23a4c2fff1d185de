//! The boot loader's two switches, behind one interface: which slot boots by default (the
//! committed one), and a one-time try of the other.
//!
//! Both back ends keep the default in autoboot.txt on the config partition. It is rewritten
//! in place: the same length (`AUTOBOOT_LEN`, padded with comments), the bytes overwritten at
//! offset 0, then fsync. The file is shorter than one sector, so the change is one sector
//! write of its data (and one of its directory entry's time): a cut leaves the old text or
//! the new. Replacing it by rename is not safe on vfat, which has no journal: a cut inside
//! the rename can leave the old name and the temporary one pointing at the same cluster, and
//! fsck.fat (run before the partition is mounted) then truncates one of them, which the
//! power-cut campaign saw leave an empty autoboot.txt: a Pi that boots nothing. Only a file
//! of another length (from an older image) is replaced whole, once.
//!
//! The one-time flag differs: the Pi firmware's is set through the firmware mailbox (the
//! d3kos-tryboot module), the harness's is a file whose presence is the flag.

use std::path::Path;

use crate::crashpoint::reached;
use crate::layout::Slot;
use crate::layout::autoboot::Autoboot;

use super::device::{BootControl, Device, HARNESS_FLAG, HARNESS_TRYING};
use super::{UpdateError, io, other};

/// tryboot_a_b needs a bootloader from 2022-11-25 or newer (Raspberry Pi bootloader release
/// notes; the default since 2022-12-01).
pub const TRYBOOT_AB_SINCE: u32 = 1_669_334_400;

fn be_u32(path: &Path) -> Option<u32> {
    let b = std::fs::read(path).ok()?;
    (b.len() >= 4).then(|| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether this boot is the one-time try.
pub fn trying(d: &Device) -> Result<bool, UpdateError> {
    match d.boot_control {
        // The firmware inserts chosen/bootloader/tryboot (32-bit big endian, 1 for a try).
        BootControl::RpiTryboot => Ok(be_u32(&d.bootloader.join("tryboot")) == Some(1)),
        BootControl::Harness => {
            let cmdline = std::fs::read_to_string(&d.cmdline).map_err(io(&d.cmdline))?;
            Ok(cmdline.split_whitespace().any(|w| w == HARNESS_TRYING))
        }
    }
}

/// Refuses, saying why, when a try boot cannot be arranged here: checked before a bundle is
/// written.
pub fn can_try(d: &Device) -> Result<(), UpdateError> {
    match d.boot_control {
        BootControl::RpiTryboot => {
            let stamp = be_u32(&d.bootloader.join("build-timestamp")).ok_or_else(|| {
                UpdateError::Boot(format!(
                    "{} has no build-timestamp: the Raspberry Pi firmware did not start this system, \
                     or is too old to say; an update needs a bootloader from 2022-11-25 or newer",
                    d.bootloader.display()
                ))
            })?;
            if stamp < TRYBOOT_AB_SINCE {
                return Err(UpdateError::Boot(format!(
                    "the bootloader is from {}; tryboot_a_b needs 2022-11-25 or newer: update the \
                     EEPROM (rpi-eeprom-update, or Raspberry Pi Imager's bootloader image)",
                    crate::time::date(i64::from(stamp))
                )));
            }
            if !d.tryboot_flag.exists() {
                return Err(UpdateError::Boot(format!(
                    "the one-time try flag cannot be set: {} is missing (the d3kos-tryboot module \
                     is not loaded; Debian's kernel has no other way to reach the firmware's flag)",
                    d.tryboot_flag.display()
                )));
            }
            Ok(())
        }
        BootControl::Harness => Ok(()),
    }
}

fn write_autoboot(d: &Device, a: Autoboot, step: &str) -> Result<(), UpdateError> {
    let text = a.render();
    let path = d.autoboot_path();
    if !overwrite_in_place(&path, text.as_bytes()).map_err(io(&path))? {
        crate::state::write_atomic(&path, text.as_bytes())?;
    }
    reached(step);
    Ok(())
}

/// Puts `bytes` over the file's own bytes and syncs them, when the file is already exactly
/// that long; `false` (nothing written) when it is missing or of another length.
fn overwrite_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut now = vec![0; bytes.len()];
    file.read_exact_at(&mut now, 0)?;
    if now != bytes {
        file.write_all_at(bytes, 0)?;
        file.sync_all()?;
    }
    Ok(true)
}

/// Arranges the next boot, once, into `slot`; the default stays.
pub fn arrange_try(d: &Device, slot: Slot) -> Result<(), UpdateError> {
    let current = d.autoboot()?;
    let want = d.slot(slot).boot_number;
    if current.tryboot != Some(want) {
        write_autoboot(
            d,
            Autoboot {
                default: current.default,
                tryboot: Some(want),
            },
            "update: autoboot names the try",
        )?;
    }
    match d.boot_control {
        BootControl::RpiTryboot => {
            std::fs::write(&d.tryboot_flag, "1\n").map_err(io(&d.tryboot_flag))?;
        }
        BootControl::Harness => {
            let flag = d.config.join(HARNESS_FLAG);
            crate::state::write_atomic(&flag, format!("{want}\n").as_bytes())?;
        }
    }
    reached("update: try flag set");
    Ok(())
}

/// Takes back a one-time try not yet booted: the harness's flag file goes, the firmware's
/// flag is cleared (it would otherwise stay set until the next reboot).
pub fn cancel_try(d: &Device) -> Result<(), UpdateError> {
    match d.boot_control {
        BootControl::Harness => {
            let flag = d.config.join(HARNESS_FLAG);
            match std::fs::remove_file(&flag) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&flag)(e)),
            }
        }
        BootControl::RpiTryboot => {
            if d.tryboot_flag.exists() {
                std::fs::write(&d.tryboot_flag, "0\n").map_err(io(&d.tryboot_flag))?;
            }
        }
    }
    Ok(())
}

/// Makes `slot` the default, with the other slot as the try.
pub fn commit(d: &Device, slot: Slot) -> Result<(), UpdateError> {
    write_autoboot(
        d,
        Autoboot {
            default: d.slot(slot).boot_number,
            tryboot: Some(d.slot(other(slot)).boot_number),
        },
        "update: autoboot commits",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::device::{Health, SlotParts};

    /// A Pi as the firmware leaves it: chosen/bootloader with the given build timestamp and
    /// try state, autoboot.txt on slot a's boot partition (2), the module's flag if loaded.
    fn pi(dir: &Path, stamp: Option<u32>, trying: u32, module: bool) -> Device {
        let bootloader = dir.join("bootloader");
        std::fs::create_dir_all(&bootloader).unwrap();
        if let Some(s) = stamp {
            std::fs::write(bootloader.join("build-timestamp"), s.to_be_bytes()).unwrap();
        }
        std::fs::write(bootloader.join("tryboot"), trying.to_be_bytes()).unwrap();
        let config = dir.join("config");
        std::fs::create_dir_all(&config).unwrap();
        let a = Autoboot {
            default: 2,
            tryboot: Some(3),
        };
        std::fs::write(config.join("autoboot.txt"), a.render()).unwrap();
        let flag = dir.join("flag");
        if module {
            std::fs::write(&flag, "0\n").unwrap();
        }
        let slot = |n: u32| SlotParts {
            boot: dir.join(format!("boot{n}")),
            boot_number: n,
            system: dir.join(format!("system{n}")),
            system_partuuid: format!("0000-0{n}"),
        };
        Device {
            compatible: "d3kOS/rpi4".into(),
            version: "0.1.0".into(),
            keys: dir.join("keys"),
            config,
            state: dir.join("state"),
            boot_control: BootControl::RpiTryboot,
            a: slot(2),
            b: slot(3),
            cmdline: dir.join("cmdline"),
            bootloader,
            tryboot_flag: flag,
            health: Health {
                units: vec![],
                url: None,
                mounts: vec![],
                databases: vec![],
                limit_secs: 1,
            },
            boatlog: None,
            reboot: vec![],
            root: None,
        }
    }

    #[test]
    fn a_pi_with_an_old_bootloader_or_no_module_is_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let old = pi(
            &dir.path().join("old"),
            Some(TRYBOOT_AB_SINCE - 86_400),
            0,
            true,
        );
        let e = can_try(&old).unwrap_err().to_string();
        assert!(
            e.contains("2022-11-24") && e.contains("2022-11-25 or newer") && e.contains("EEPROM"),
            "{e}"
        );
        let unknown = pi(&dir.path().join("unknown"), None, 0, true);
        let e = can_try(&unknown).unwrap_err().to_string();
        assert!(e.contains("no build-timestamp"), "{e}");
        let bare = pi(&dir.path().join("bare"), Some(TRYBOOT_AB_SINCE), 0, false);
        let e = can_try(&bare).unwrap_err().to_string();
        assert!(e.contains("d3kos-tryboot module"), "{e}");
        can_try(&pi(
            &dir.path().join("good"),
            Some(TRYBOOT_AB_SINCE),
            0,
            true,
        ))
        .unwrap();
    }

    #[test]
    fn on_a_pi_the_try_is_the_firmware_flag_and_autoboot_keeps_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let d = pi(dir.path(), Some(TRYBOOT_AB_SINCE), 0, true);
        assert!(!trying(&d).unwrap());
        arrange_try(&d, Slot::B).unwrap();
        assert_eq!(std::fs::read_to_string(&d.tryboot_flag).unwrap(), "1\n");
        assert_eq!(
            d.autoboot().unwrap(),
            Autoboot {
                default: 2,
                tryboot: Some(3)
            }
        );
        cancel_try(&d).unwrap();
        assert_eq!(std::fs::read_to_string(&d.tryboot_flag).unwrap(), "0\n");
        // The firmware says so when it boots the try.
        std::fs::write(d.bootloader.join("tryboot"), 1u32.to_be_bytes()).unwrap();
        assert!(trying(&d).unwrap());
        commit(&d, Slot::B).unwrap();
        assert_eq!(
            d.autoboot().unwrap(),
            Autoboot {
                default: 3,
                tryboot: Some(2)
            }
        );
    }

    /// Regression: the commit replaced autoboot.txt by rename, which a power cut on vfat can
    /// turn into an empty file after fsck.fat. It is now the same file, overwritten in place.
    #[test]
    fn a_commit_rewrites_autoboot_in_place_and_an_older_file_only_once() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let d = pi(dir.path(), Some(TRYBOOT_AB_SINCE), 1, true);
        let path = d.autoboot_path();
        let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let first = inode(&path);
        commit(&d, Slot::B).unwrap();
        commit(&d, Slot::A).unwrap();
        arrange_try(&d, Slot::B).unwrap();
        commit(&d, Slot::B).unwrap();
        assert_eq!(
            inode(&path),
            first,
            "autoboot.txt was replaced, not overwritten"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), crate::layout::autoboot::AUTOBOOT_LEN);
        assert_eq!(
            Autoboot::parse(&text),
            Some(Autoboot {
                default: 3,
                tryboot: Some(2)
            })
        );
        assert_eq!(
            std::fs::read_dir(&d.config).unwrap().count(),
            1,
            "a temporary file was left beside autoboot.txt"
        );

        // An image built before the fixed length: replaced whole once, in place after that.
        std::fs::write(&path, "[all]\ntryboot_a_b=1\nboot_partition=3\n").unwrap();
        commit(&d, Slot::A).unwrap();
        let replaced = inode(&path);
        assert_eq!(d.autoboot().unwrap().default, 2);
        commit(&d, Slot::B).unwrap();
        assert_eq!(inode(&path), replaced);
        assert_eq!(d.autoboot().unwrap().default, 3);
    }
}
