//! The running system's file system fills its slot. The image ships system-a's ext4 only as
//! large as its content needs and first boot extends the partition to its twin's size; an
//! update writes a release's file system as large as its content too. So on each boot the
//! booted slot's ext4 is grown, mounted, to its partition's end: the journal, logs and
//! caches on `/` get the room the slot was given.

use std::io::Write;
use std::path::Path;

use crate::ext4::Superblock;

use super::grow::{Kernel, root_partition};
use super::{FirstbootError, chain, io, programs, say};

/// A file system within this much of its partition's end is left as it is: resize2fs cannot
/// use a tail smaller than a few blocks, and a boot should not run it for nothing.
const SLACK: u64 = 1 << 20;

/// Grows the root file system to its partition. A failure is reported and the boot goes on:
/// the system runs as well at the size it was shipped with.
pub fn root(kernel: &Kernel, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let grown = root_partition(kernel).and_then(|(node, bytes)| fill(&node, bytes, out));
    if let Err(e) = grown {
        say(
            out,
            format_args!("the system file system was left at its size: {}", chain(&e)),
        )?;
    }
    Ok(())
}

/// Grows the ext4 file system on `volume` (a partition's device node, or an image file) to
/// `bytes`, when it ends short of that; mounted or not, as resize2fs does it.
pub fn fill(volume: &Path, bytes: u64, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let Some(before) = Superblock::read(volume, 0).map_err(io(volume))? else {
        return Err(FirstbootError::NotExt4 {
            path: volume.to_owned(),
        });
    };
    if before.bytes() + SLACK > bytes {
        return Ok(());
    }
    programs::resize2fs(volume)?;
    let after = Superblock::read(volume, 0)
        .map_err(io(volume))?
        .map_or(0, |sb| sb.bytes());
    say(
        out,
        format_args!(
            "grew the file system on {} from {} MiB to {} MiB, its partition's size",
            volume.display(),
            before.bytes() >> 20,
            after >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    const M: u64 = 1 << 20;

    fn mke2fs(path: &Path, size: &str) {
        let status = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
            .arg(path)
            .arg(size)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_file_system_short_of_its_partition_grows_to_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let slot = dir.path().join("slot");
        mke2fs(&slot, "24M");
        // What the file system holds stays.
        let status = Command::new("debugfs")
            .args(["-w", "-R", "mkdir logbook"])
            .arg(&slot)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::File::options()
            .write(true)
            .open(&slot)
            .unwrap()
            .set_len(64 * M)
            .unwrap();

        let mut said = Vec::new();
        fill(&slot, 64 * M, &mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        assert!(said.contains("from 24 MiB to 64 MiB"), "{said}");
        let sb = Superblock::read(&slot, 0).unwrap().unwrap();
        assert_eq!(sb.bytes(), 64 * M);
        let fsck = Command::new("e2fsck")
            .arg("-fn")
            .arg(&slot)
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
        let ls = Command::new("debugfs")
            .args(["-R", "ls -l /"])
            .arg(&slot)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&ls.stdout).contains("logbook"));

        // The next boot finds nothing to do and says nothing.
        let mut again = Vec::new();
        fill(&slot, 64 * M, &mut again).unwrap();
        assert!(again.is_empty(), "{}", String::from_utf8_lossy(&again));
    }

    #[test]
    fn what_is_not_ext4_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let slot = dir.path().join("slot");
        std::fs::write(&slot, vec![0x5a; 4 * M as usize]).unwrap();
        let e = fill(&slot, 8 * M, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("no ext4 file system"), "{e}");
        assert_eq!(std::fs::read(&slot).unwrap(), vec![0x5a; 4 * M as usize]);
    }

    #[test]
    fn a_failure_leaves_the_boot_going() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel {
            cmdline: dir.path().join("cmdline"),
            dev: dir.path().join("dev"),
            sys_block: dir.path().join("sys"),
        };
        std::fs::write(&kernel.cmdline, "console=ttyS0 rw").unwrap();
        let mut said = Vec::new();
        root(&kernel, &mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        assert!(said.contains("left at its size"), "{said}");
    }
}
