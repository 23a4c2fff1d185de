//! What goes on the FAT partitions: the boot files a slot needs, the device-tree overlays of
//! the fitted HATs, and the rendered config.txt, cmdline.txt and autoboot.txt.

use std::path::PathBuf;

use crate::config::board::{Board, BootKind};
use crate::config::{Hat, HatOverlay, Recipe};
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
    #[error(
        "the recipe fits the {} HAT but the board file {} has no device-tree overlay for it: add \
         `hat_overlays = {{ {} = \"FILE.dtbo\" }}` to its [boot], or write `[hardware] {} = false` in the recipe",
        hat.title(), board.display(), hat.name(), hat.key()
    )]
    NoHatOverlay { hat: Hat, board: PathBuf },
}

pub use appliance::layout::autoboot::AUTOBOOT_MAX;

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

/// The overlays of the HATs the recipe fits, for boards whose firmware loads overlays
/// (Raspberry Pi); none for other boards, which have no header to fit a HAT on.
pub fn dtoverlays<'a>(recipe: &Recipe, board: &'a Board) -> Result<Vec<&'a HatOverlay>, BootError> {
    if board.boot.kind != BootKind::RaspberryPi {
        return Ok(Vec::new());
    }
    recipe
        .hats
        .iter()
        .map(|&hat| {
            board
                .boot
                .hat_overlays
                .iter()
                .find(|o| o.hat == hat)
                .ok_or_else(|| BootError::NoHatOverlay {
                    hat,
                    board: board.path.clone(),
                })
        })
        .collect()
}

pub fn config_txt(
    recipe: &Recipe,
    board: &Board,
    slot: Slot,
    k: &KernelFiles,
    overlays: &[&HatOverlay],
) -> String {
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
    // The firmware reads overlays/NAME.dtbo from the boot partition and applies it to the
    // board's DTB before starting the kernel (Raspberry Pi config.txt docs, "dtoverlay").
    for o in overlays {
        s.push_str(&format!("dtoverlay={}\n", o.name));
    }
    s
}

/// autoboot.txt for the A/B tryboot scheme: boot from `a` normally, from `b` when the
/// updater asked for a one-time try.
pub fn autoboot_txt(a: u32, b: Option<u32>) -> Result<String, BootError> {
    let s = appliance::layout::autoboot::Autoboot {
        default: a,
        tryboot: b,
    }
    .render();
    if s.len() >= AUTOBOOT_MAX {
        return Err(BootError::AutobootTooLong(s.len()));
    }
    Ok(s)
}

/// The content of a slot's boot partition.
///
/// Raspberry Pi: the firmware the root file system carries in `boot/firmware` (which is then
/// its mount point), the kernel and initramfs, the fitted HATs' overlays, config.txt and
/// cmdline.txt. Direct-kernel boards: `vmlinuz`, `initrd.img` and `cmdline.txt` for the
/// loader outside the image.
pub fn boot_tree(
    recipe: &Recipe,
    board: &Board,
    slot: Slot,
    firmware: &Tree,
    k: &KernelFiles,
    root_partuuid: &str,
) -> Result<Tree, BootError> {
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
            let overlays = dtoverlays(recipe, board)?;
            for o in &overlays {
                t.insert(
                    format!("overlays/{}.dtbo", o.name).as_bytes(),
                    file(&o.bytes),
                );
            }
            t.insert(
                b"config.txt",
                file(config_txt(recipe, board, slot, k, &overlays).as_bytes()),
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
    Ok(t)
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

    fn load(board: &str) -> (Recipe, Board) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        (
            Recipe::load(&root.join("recipes/d3kos.toml")).unwrap(),
            Board::load(&root.join(format!("boards/{board}.toml"))).unwrap(),
        )
    }

    fn kernel() -> KernelFiles {
        KernelFiles {
            version: "6.12.0-arm64".into(),
            kernel: vec![1],
            initramfs: None,
        }
    }

    #[test]
    fn a_fitted_pican_m_loads_its_overlay_on_the_pi() {
        let (recipe, board) = load("rpi4");
        assert_eq!(recipe.hats, [Hat::PicanM], "the product ships with the HAT");
        let overlays = dtoverlays(&recipe, &board).unwrap();
        let text = config_txt(&recipe, &board, Slot::A, &kernel(), &overlays);
        assert!(text.ends_with("\ndtoverlay=pican-m\n"), "{text}");
        let t = boot_tree(&recipe, &board, Slot::A, &Tree::new(), &kernel(), "x").unwrap();
        let dtbo = t.read(b"overlays/pican-m.dtbo").unwrap().unwrap();
        assert!(dtbo.starts_with(&crate::config::hat::FDT_MAGIC));
        assert!(matches!(t.get(b"overlays").unwrap().kind, Kind::Dir));
    }

    #[test]
    fn no_pican_m_no_overlay() {
        let (mut recipe, board) = load("rpi4");
        recipe.hats.clear();
        let t = boot_tree(&recipe, &board, Slot::A, &Tree::new(), &kernel(), "x").unwrap();
        let text = String::from_utf8(t.read(b"config.txt").unwrap().unwrap()).unwrap();
        assert!(!text.contains("dtoverlay"), "{text}");
        assert!(t.get(b"overlays/pican-m.dtbo").is_none());
    }

    #[test]
    fn boards_without_a_header_ignore_the_hat() {
        let (recipe, board) = load("qemu-arm64");
        assert_eq!(recipe.hats, [Hat::PicanM]);
        assert!(dtoverlays(&recipe, &board).unwrap().is_empty());
    }

    #[test]
    fn a_pi_board_without_the_fitted_hats_overlay_is_refused() {
        let (recipe, mut board) = load("rpi4");
        board.boot.hat_overlays.clear();
        let err = dtoverlays(&recipe, &board).unwrap_err().to_string();
        assert!(
            err.contains("PiCAN-M") && err.contains("rpi4.toml") && err.contains("pican_m = false"),
            "{err}"
        );
    }

    #[test]
    fn autoboot_names_both_slots_and_stays_small() {
        let s = autoboot_txt(2, Some(3)).unwrap();
        assert_eq!(
            s,
            appliance::layout::autoboot::Autoboot {
                default: 2,
                tryboot: Some(3)
            }
            .render()
        );
        assert!(s.len() < AUTOBOOT_MAX);
    }
}
