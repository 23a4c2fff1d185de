//! What goes on the FAT partitions: the boot files a slot needs, and the rendered
//! config.txt, cmdline.txt and autoboot.txt.

use crate::config::Recipe;
use crate::config::board::{Board, BootKind};
use crate::rootfs::{Entry, Kind, Tree};
use appliance::layout::Slot;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(
        "no kernel in the root file system: expected /boot/vmlinuz-VERSION (Debian's linux-image packages put it there)"
    )]
    NoKernel,
    #[error("autoboot.txt would be {0} bytes; the firmware reads at most 512")]
    AutobootTooLong(usize),
    #[error("reading {path} from the root file system")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// autoboot.txt is read only from the first FAT partition and may not exceed 512 bytes
/// (Raspberry Pi documentation, "autoboot.txt").
pub const AUTOBOOT_MAX: usize = 512;

/// The kernel and initramfs a slot boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFiles {
    pub version: String,
    pub kernel: Vec<u8>,
    pub initramfs: Option<Vec<u8>>,
}

/// Compares versions the way `sort -V` does: digit runs as numbers.
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let ord = match (x.0, y.0) {
            (true, true) => {
                let (xs, ys) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                xs.len().cmp(&ys.len()).then(xs.cmp(ys))
            }
            _ => x.1.cmp(y.1),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

/// The newest kernel in `boot/` and its initramfs.
pub fn find_kernel(rootfs: &Tree) -> Result<KernelFiles, BootError> {
    let version = rootfs
        .entries()
        .filter_map(|(p, e)| {
            let name = p.strip_prefix(b"boot/vmlinuz-")?;
            let is_file = matches!(e.kind, Kind::File { .. } | Kind::HardLink(_));
            (is_file && !name.contains(&b'/')).then(|| String::from_utf8_lossy(name).into_owned())
        })
        .max_by(|a, b| version_cmp(a, b))
        .ok_or(BootError::NoKernel)?;
    let read = |path: String| {
        rootfs
            .read(path.as_bytes())
            .map(|r| {
                r.map_err(|source| BootError::Read {
                    path: path.clone(),
                    source,
                })
            })
            .transpose()
    };
    Ok(KernelFiles {
        kernel: read(format!("boot/vmlinuz-{version}"))?.expect("listed above"),
        initramfs: read(format!("boot/initrd.img-{version}"))?,
        version,
    })
}

pub fn cmdline(board: &Board, partuuid: &str) -> String {
    let mut line = format!("root=PARTUUID={partuuid} rootfstype=ext4");
    if !board.boot.cmdline.trim().is_empty() {
        line.push(' ');
        line.push_str(board.boot.cmdline.trim());
    }
    line.push('\n');
    line
}

pub fn config_txt(recipe: &Recipe, board: &Board, slot: Slot, k: &KernelFiles) -> String {
    let mut s = format!(
        "# {} {} for {}, boot slot {}. Written by d3kos-build; updates rewrite it.\n[all]\narm_64bit=1\nenable_uart=1\nkernel=vmlinuz-{}\n",
        recipe.name,
        recipe.version,
        board.name,
        slot.letter(),
        k.version
    );
    if k.initramfs.is_some() {
        s.push_str(&format!(
            "initramfs initrd.img-{} followkernel\n",
            k.version
        ));
    }
    for line in &board.boot.config_txt {
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// autoboot.txt for the A/B tryboot scheme: boot from `a` normally, from `b` when the
/// updater asked for a one-time try (`reboot '0 tryboot'`).
pub fn autoboot_txt(a: u32, b: Option<u32>) -> Result<String, BootError> {
    let mut s = format!("[all]\ntryboot_a_b=1\nboot_partition={a}\n");
    if let Some(b) = b {
        s.push_str(&format!("[tryboot]\nboot_partition={b}\n"));
    }
    if s.len() >= AUTOBOOT_MAX {
        return Err(BootError::AutobootTooLong(s.len()));
    }
    Ok(s)
}

/// The content of a slot's boot partition.
///
/// Raspberry Pi: the firmware the root file system carries in `boot/firmware` (which is then
/// its mount point), the kernel and initramfs, config.txt and cmdline.txt. Direct-kernel
/// boards: `vmlinuz`, `initrd.img` and `cmdline.txt` for the loader outside the image.
pub fn boot_tree(
    recipe: &Recipe,
    board: &Board,
    slot: Slot,
    firmware: &Tree,
    k: &KernelFiles,
    root_partuuid: &str,
) -> Tree {
    let epoch = recipe.source_date_epoch;
    let mut t = Tree::new();
    let file = |bytes: &[u8]| Entry::file(bytes.to_vec(), 0o644, epoch);
    match board.boot.kind {
        BootKind::RaspberryPi => {
            for (path, e) in firmware.entries() {
                let bytes = match &e.kind {
                    Kind::Dir => {
                        t.insert(path, Entry::dir(0o755));
                        continue;
                    }
                    _ => firmware.read(path),
                };
                if let Some(Ok(bytes)) = bytes {
                    t.insert(path, file(&bytes));
                } else {
                    // Symlinks and device nodes have no place on FAT; the FAT writer names them.
                    t.insert(path, e.clone());
                }
            }
            t.insert(format!("vmlinuz-{}", k.version).as_bytes(), file(&k.kernel));
            if let Some(initrd) = &k.initramfs {
                t.insert(format!("initrd.img-{}", k.version).as_bytes(), file(initrd));
            }
            t.insert(
                b"config.txt",
                file(config_txt(recipe, board, slot, k).as_bytes()),
            );
        }
        BootKind::DirectKernel => {
            t.insert(b"vmlinuz", file(&k.kernel));
            if let Some(initrd) = &k.initramfs {
                t.insert(b"initrd.img", file(initrd));
            }
        }
    }
    t.insert(
        b"cmdline.txt",
        file(cmdline(board, root_partuuid).as_bytes()),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let mut v = vec!["6.12.9-arm64", "6.12.10-arm64", "6.1.0-arm64"];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(v, ["6.1.0-arm64", "6.12.9-arm64", "6.12.10-arm64"]);
    }

    #[test]
    fn autoboot_names_both_slots_and_stays_small() {
        let s = autoboot_txt(2, Some(3)).unwrap();
        assert_eq!(
            s,
            "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
        );
        assert!(s.len() < AUTOBOOT_MAX);
    }
}
