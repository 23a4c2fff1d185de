//! Partition restore: back to the release the other slot holds ("previous version"), or the
//! running release copied into the other slot (a factory restore of a slot an update
//! damaged). Either is tried once and committed only when healthy, like an install; the
//! data partition, and with it the installation id and the owner account, is not touched.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::crashpoint::reached;
use crate::ext4::Superblock;
use crate::layout::Slot;

use super::device::Device;
use super::install::{begin_writing, finish_writing, size_of, writable_slot};
use super::record::{self, Attempt, Outcome, SlotState};
use super::{UpdateError, bootctl, io, other};

/// Arranges a try of the other slot's release, which must have booted healthy before;
/// returns the slot and its version.
pub fn switch(d: &Device) -> Result<(Slot, String), UpdateError> {
    let booted = d.booted()?;
    let target = other(booted);
    let mut rec = record::load(&d.state)?;
    let Some(r) = rec
        .slot(target)
        .cloned()
        .filter(|r| r.state == SlotState::Good)
    else {
        return Err(UpdateError::NoPrevious { slot: target });
    };
    bootctl::can_try(d)?;
    rec.attempt = Some(Attempt {
        slot: target,
        version: r.version.clone(),
        from_version: d.version.clone(),
        started_at: crate::time::unix_now().max(0) as u64,
        outcome: Outcome::Pending,
        reason: None,
        finished_at: None,
        noted: false,
    });
    record::save(&d.state, &rec)?;
    bootctl::arrange_try(d, target)?;
    if let Some(a) = &rec.attempt {
        super::notes::switching(d, a);
    }
    Ok((target, r.version))
}

/// Bytes copied at a time.
const CHUNK: usize = 4 << 20;

/// Copies the running release into the other slot and arranges its one-time try; the
/// caller reboots. The boot partition is copied with its `root=PARTUUID=` turned to the
/// other slot's system partition; the system partition's file system is copied whole while
/// it is frozen (FIFREEZE), so the copy is one consistent moment of it. Each copy is read
/// back and compared before the try is arranged. `progress` hears bytes done and the total.
pub fn factory(d: &Device, mut progress: impl FnMut(u64, u64)) -> Result<Slot, UpdateError> {
    let target = writable_slot(d)?;
    let (from, to) = (d.slot(other(target)), d.slot(target));
    let boot_len = size_of(&from.boot)?;
    let system_len = ext4_bytes(&from.system)?;
    for (path, need) in [(&to.boot, boot_len), (&to.system, system_len)] {
        let room = size_of(path)?;
        if need > room {
            return Err(UpdateError::NoRoom {
                image: "running system".into(),
                size: need,
                slot: target,
                path: path.clone(),
                room,
            });
        }
    }
    let root = |partuuid: &str| format!("root=PARTUUID={partuuid}").into_bytes();
    let swap = (root(&from.system_partuuid), root(&to.system_partuuid));
    if swap.0.len() != swap.1.len() {
        return Err(UpdateError::Device(format!(
            "the slots' PARTUUIDs differ in length ({} and {}): the boot partition cannot be \
             copied in place",
            from.system_partuuid, to.system_partuuid
        )));
    }
    let named = count(&from.boot, boot_len, &swap.0)?;
    if named == 0 {
        return Err(UpdateError::Device(format!(
            "slot {:?}'s boot partition does not name its system partition ({}): it cannot \
             be copied into slot {target:?}; nothing was written",
            other(target),
            String::from_utf8_lossy(&swap.0)
        )));
    }
    bootctl::can_try(d)?;

    begin_writing(d, target, &d.version)?;
    let total = boot_len + system_len;
    let open_rw = |p: &Path| {
        File::options()
            .read(true)
            .write(true)
            .open(p)
            .map_err(io(p))
    };
    let open = |p: &Path| File::open(p).map_err(io(p));
    let boot = Copy {
        from: open(&from.boot)?,
        to: open_rw(&to.boot)?,
        to_path: &to.boot,
        len: boot_len,
    };
    let (sum, found) = boot.run(Some((&swap.0, &swap.1)), 0, total, &mut progress)?;
    if found != named {
        return Err(UpdateError::Device(format!(
            "slot {:?}'s boot partition changed while it was copied",
            other(target)
        )));
    }
    boot.check(&sum)?;
    let system = Copy {
        from: open(&from.system)?,
        to: open_rw(&to.system)?,
        to_path: &to.system,
        len: system_len,
    };
    let sum = {
        let _frozen = d.root.as_deref().map(Frozen::freeze).transpose()?;
        reached("restore: running system frozen");
        system.run(None, boot_len, total, &mut progress)?.0
    };
    system.check(&sum)?;
    reached("restore: slot copied");
    finish_writing(d, target, &d.version)?;
    super::notes::copied(d, other(target), target);
    Ok(target)
}

/// How often `pattern` occurs in the first `len` bytes of `path`.
fn count(path: &Path, len: u64, pattern: &[u8]) -> Result<usize, UpdateError> {
    let f = File::open(path).map_err(io(path))?;
    let look = pattern.len() - 1;
    let mut buf = vec![0u8; CHUNK + look];
    let (mut found, mut at) = (0, 0u64);
    while at < len {
        let n = CHUNK.min((len - at) as usize);
        let m = (n + look).min((len - at) as usize);
        f.read_exact_at(&mut buf[..m], at).map_err(io(path))?;
        // A match is counted in the chunk it starts in.
        found += buf[..m]
            .windows(pattern.len())
            .take(n)
            .filter(|w| *w == pattern)
            .count();
        at += n as u64;
    }
    Ok(found)
}

/// One partition's copy.
struct Copy<'a> {
    from: File,
    to: File,
    to_path: &'a Path,
    len: u64,
}

impl Copy<'_> {
    /// Copies `len` bytes, `swap.0` turned into `swap.1` wherever it is (also across two
    /// chunks); returns the hash of what was written and how many times it swapped.
    fn run(
        &self,
        swap: Option<(&[u8], &[u8])>,
        done: u64,
        total: u64,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<([u8; 32], usize), UpdateError> {
        // Pages of the source device cached before (a probe at boot) may be older than what
        // the file system wrote since through its own files.
        let _ = rustix::fs::fadvise(self.from.as_fd(), 0, None, rustix::fs::Advice::DontNeed);
        let look = swap.map_or(0, |(s, _)| s.len() - 1);
        let mut buf = vec![0u8; CHUNK + look];
        let mut hash = Sha256::new();
        // Bytes of a swap that fall into the next chunk: (offset, byte).
        let mut carried: Vec<(u64, u8)> = Vec::new();
        let mut found = 0;
        let mut at = 0u64;
        while at < self.len {
            let n = CHUNK.min((self.len - at) as usize);
            let m = (n + look).min((self.len - at) as usize);
            self.from
                .read_exact_at(&mut buf[..m], at)
                .map_err(io(self.to_path))?;
            for (off, b) in carried.drain(..) {
                buf[(off - at) as usize] = b;
            }
            if let Some((old, new)) = swap {
                let mut i = 0;
                while i < n && i + old.len() <= m {
                    if &buf[i..i + old.len()] == old {
                        for (j, &b) in new.iter().enumerate() {
                            if i + j < n {
                                buf[i + j] = b;
                            } else {
                                carried.push((at + (i + j) as u64, b));
                            }
                        }
                        found += 1;
                        i += old.len();
                    } else {
                        i += 1;
                    }
                }
            }
            self.to
                .write_all_at(&buf[..n], at)
                .map_err(io(self.to_path))?;
            hash.update(&buf[..n]);
            at += n as u64;
            progress(done + at, total);
            reached("restore: chunk written");
        }
        self.to.sync_all().map_err(io(self.to_path))?;
        Ok((hash.finalize().into(), found))
    }

    /// Reads what landed back from the medium (not the page cache) and compares.
    fn check(&self, written: &[u8; 32]) -> Result<(), UpdateError> {
        let _ = rustix::fs::fadvise(self.to.as_fd(), 0, None, rustix::fs::Advice::DontNeed);
        let mut buf = vec![0u8; CHUNK];
        let mut hash = Sha256::new();
        let mut at = 0u64;
        while at < self.len {
            let n = CHUNK.min((self.len - at) as usize);
            self.to
                .read_exact_at(&mut buf[..n], at)
                .map_err(io(self.to_path))?;
            hash.update(&buf[..n]);
            at += n as u64;
        }
        if hash.finalize().as_slice() != written {
            return Err(UpdateError::Device(format!(
                "{} does not read back what was written to it: the card may be failing",
                self.to_path.display()
            )));
        }
        Ok(())
    }
}

/// The bytes the ext4 file system on `path` spans, from its superblock.
pub fn ext4_bytes(path: &Path) -> Result<u64, UpdateError> {
    match Superblock::read(path, 0).map_err(io(path))? {
        Some(sb) => Ok(sb.bytes()),
        None => Err(UpdateError::Device(format!(
            "{} holds no ext4 file system: there is no running system to copy",
            path.display()
        ))),
    }
}

/// A mounted file system frozen (no writes reach its medium) until dropped.
struct Frozen(std::path::PathBuf);

/// `fsfreeze --freeze|--unfreeze MOUNT` (util-linux). Reads go on while it is frozen; a
/// writer waits for the thaw.
fn fsfreeze(how: &str, mount: &Path) -> Result<(), UpdateError> {
    let command = format!("fsfreeze {how} {}", mount.display());
    log::debug!("running {command}");
    let out = std::process::Command::new("fsfreeze")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(how)
        .arg(mount)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| UpdateError::Device(format!("{command} could not run: {e}")))?;
    if !out.status.success() {
        return Err(UpdateError::Device(format!(
            "{command} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Frozen {
    fn freeze(mount: &Path) -> Result<Frozen, UpdateError> {
        fsfreeze("--freeze", mount)?;
        Ok(Frozen(mount.to_owned()))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = fsfreeze("--unfreeze", &self.0) {
            log::error!("restore: the running system could not be thawed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_swap_across_two_chunks_is_made_whole_and_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("a"), dir.path().join("b"));
        let len = CHUNK + (1 << 20);
        let mut bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let (old, new) = (b"root=PARTUUID=0000000a-05", b"root=PARTUUID=0000000b-06");
        for at in [100, CHUNK - 7, CHUNK + 4000] {
            bytes[at..at + old.len()].copy_from_slice(old);
        }
        std::fs::write(&src, &bytes).unwrap();
        std::fs::write(&dst, vec![0u8; len]).unwrap();
        assert_eq!(count(&src, len as u64, old).unwrap(), 3);
        let copy = Copy {
            from: File::open(&src).unwrap(),
            to: File::options().read(true).write(true).open(&dst).unwrap(),
            to_path: &dst,
            len: len as u64,
        };
        let mut heard = Vec::new();
        let (sum, found) = copy
            .run(Some((old, new)), 0, len as u64, &mut |w, t| {
                heard.push((w, t))
            })
            .unwrap();
        assert_eq!(found, 3);
        copy.check(&sum).unwrap();
        let mut want = bytes.clone();
        for at in [100, CHUNK - 7, CHUNK + 4000] {
            want[at..at + new.len()].copy_from_slice(new);
        }
        assert!(std::fs::read(&dst).unwrap() == want, "the copy differs");
        assert_eq!(heard.last(), Some(&(len as u64, len as u64)));
        // What did not land as written is caught.
        assert!(copy.check(&[0u8; 32]).is_err());
    }

    #[test]
    fn an_ext4_file_system_is_measured_by_its_superblock() {
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("fs");
        std::fs::write(&fs, vec![0u8; 3 << 20]).unwrap();
        let out = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "1024"])
            .arg(&fs)
            .arg("2048")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(ext4_bytes(&fs).unwrap(), 2 << 20);
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        let e = ext4_bytes(&junk).unwrap_err().to_string();
        assert!(e.contains("holds no ext4 file system"), "{e}");
    }
}
