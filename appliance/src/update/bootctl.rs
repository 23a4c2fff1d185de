//! The boot loader's two switches, behind one interface: which slot boots by default (the
//! committed one), and a one-time try of the other.
//!
//! Both back ends keep the default in autoboot.txt on the config partition, rewritten whole
//! (temporary file, fsync, rename, fsync of the folder): vfat's rename over an existing name
//! rewrites that name's one directory entry to point at the new data, so a cut leaves the
//! entry pointing at the old text or the new, and at worst an orphaned temporary file that
//! fsck.fat (run before every mount) clears. The one-time flag differs: the Pi firmware's is
//! set through the firmware mailbox (the d3kos-tryboot module), the harness's is a file.

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
    crate::state::write_atomic(&d.autoboot_path(), text.as_bytes())?;
    reached(step);
    Ok(())
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

/// Takes back a one-time try not yet booted (the harness's flag; the firmware clears its
/// own on the next boot).
pub fn cancel_try(d: &Device) -> Result<(), UpdateError> {
    if d.boot_control == BootControl::Harness {
        let flag = d.config.join(HARNESS_FLAG);
        match std::fs::remove_file(&flag) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&flag)(e)),
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
