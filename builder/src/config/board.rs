//! Board files (`boards/*.toml`): the machine an image is for and its partition layout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use appliance::layout::{
    Arch, Create, FsKind, Layout, PartitionSpec, Role, SizeSpec, Slot, TableKind,
};
use serde::Deserialize;
use toml::Spanned;

use super::hat::{self, Hat, HatOverlay};
use super::size::{parse_bytes, parse_size};
use super::{ConfigError, Source};
use crate::fs::fat;

/// How the machine finds its kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootKind {
    /// The Raspberry Pi firmware: start4.elf reads autoboot.txt, config.txt and cmdline.txt
    /// from FAT partitions.
    RaspberryPi,
    /// A loader outside the image (QEMU's -kernel, or a test harness) takes the kernel,
    /// initramfs and command line from the boot partition.
    DirectKernel,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub arch: Arch,
    pub imager_devices: Vec<String>,
    /// The board drives a screen (HDMI, DSI, a virtual GPU): it gets the recipe's helm
    /// screen (`[helm]`).
    pub display: bool,
    pub boot: BootSettings,
    /// Archive components and packages this board adds to the recipe's base.
    pub base_components: Vec<String>,
    pub base_packages: Vec<String>,
    pub layout: Layout,
    /// Explicit start offsets (bytes) where the board pins them, by partition index.
    pub starts: Vec<Option<u64>>,
    /// sha256 of the board file, recorded in the build manifest.
    pub sha256: String,
    /// Where each partition was declared, to point errors found at build time at a line.
    pub lines: Vec<usize>,
    pub path: std::path::PathBuf,
}

#[derive(Debug, Clone)]
pub struct BootSettings {
    pub kind: BootKind,
    /// Kernel command line without `root=`, which the builder adds for each slot.
    pub cmdline: String,
    /// Extra lines for config.txt (Raspberry Pi only).
    pub config_txt: Vec<String>,
    /// Files the firmware needs on the boot partition; `verify` checks they are there.
    pub firmware_files: Vec<String>,
    /// The device-tree overlay for each HAT this board can carry (Raspberry Pi only), in
    /// [`Hat::ALL`]'s order; shipped and loaded only when the recipe fits the HAT.
    pub hat_overlays: Vec<HatOverlay>,
    /// Single-file kernel modules (NAME.c), built against the image's kernel and loaded at
    /// boot by d3kos-modules.service.
    pub kernel_modules: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    board: RawInfo,
    boot: RawBoot,
    #[serde(default)]
    base: RawBoardBase,
    partition: Vec<Spanned<RawPartition>>,
}

/// What this board adds to the recipe's Debian base: its kernel, its firmware.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoardBase {
    #[serde(default = "super::recipe::no_words")]
    components: Spanned<Vec<String>>,
    #[serde(default = "super::recipe::no_words")]
    packages: Spanned<Vec<String>>,
}

impl Default for RawBoardBase {
    fn default() -> Self {
        RawBoardBase {
            components: super::recipe::no_words(),
            packages: super::recipe::no_words(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    name: Spanned<String>,
    description: String,
    arch: Arch,
    table: TableKind,
    #[serde(default)]
    imager_devices: Vec<String>,
    #[serde(default)]
    display: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    kind: BootKind,
    #[serde(default)]
    cmdline: String,
    #[serde(default)]
    config_txt: Vec<String>,
    #[serde(default)]
    firmware_files: Vec<String>,
    /// HAT name = compiled overlay, relative to the board file.
    #[serde(default)]
    hat_overlays: BTreeMap<String, Spanned<String>>,
    /// Module sources, relative to the board file.
    #[serde(default = "super::recipe::no_words")]
    kernel_modules: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    name: Spanned<String>,
    role: Role,
    fs: FsKind,
    slot: Option<Spanned<Slot>>,
    size: Spanned<String>,
    min_size: Option<Spanned<String>>,
    start: Option<Spanned<String>>,
    label: Spanned<String>,
    #[serde(default)]
    create: Create,
    grow: Option<Spanned<bool>>,
    grow_to: Option<Spanned<String>>,
}

impl Board {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src = Source::read(path)?;
        let raw: RawBoard = src.parse()?;
        let table = raw.board.table;
        if raw.partition.is_empty() {
            return Err(src.error(
                0..0,
                "partition",
                "a board needs at least one [[partition]]",
            ));
        }

        let mut specs = Vec::new();
        let mut starts = Vec::new();
        let mut lines = Vec::new();
        let mut names = BTreeSet::new();
        let mut labels = BTreeSet::new();
        let count = raw.partition.len();
        for (i, spanned) in raw.partition.iter().enumerate() {
            let p = spanned.get_ref();
            let key = |field: &str| format!("partition[{i}].{field}");
            let name = p.name.get_ref().clone();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(src.error(
                    p.name.span(),
                    key("name"),
                    format!("`{name}`: use letters, digits and '-'"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(src.error(
                    p.name.span(),
                    key("name"),
                    format!("`{name}` is declared twice"),
                ));
            }
            let size = parse_size(p.size.get_ref())
                .map_err(|m| src.error(p.size.span(), key("size"), m))?;
            let min_size = p
                .min_size
                .as_ref()
                .map(|m| {
                    parse_bytes(m.get_ref()).map_err(|e| src.error(m.span(), key("min_size"), e))
                })
                .transpose()?;
            let start = p
                .start
                .as_ref()
                .map(|s| {
                    let bytes = parse_bytes(s.get_ref()).map_err(|e| src.error(s.span(), key("start"), e))?;
                    if bytes % appliance::layout::SECTOR != 0 || bytes < (1 << 20) {
                        return Err(src.error(
                            s.span(),
                            key("start"),
                            "a partition must start on a 512-byte sector at or after 1M (the table lives before it)",
                        ));
                    }
                    Ok(bytes)
                })
                .transpose()?;

            let label = p.label.get_ref().clone();
            check_label(p.fs, &label).map_err(|m| src.error(p.label.span(), key("label"), m))?;
            if !labels.insert(label.to_ascii_uppercase()) {
                return Err(src.error(
                    p.label.span(),
                    key("label"),
                    format!("label `{label}` is used twice"),
                ));
            }

            let at = spanned.span();
            let slot = p.slot.as_ref().map(|s| *s.get_ref());
            let slot_at = p.slot.as_ref().map_or(at.clone(), |s| s.span());
            match (p.role, slot) {
                (Role::Boot | Role::System, None) => {
                    return Err(src.error(
                        at,
                        key("slot"),
                        "boot and system partitions need `slot = \"a\"` or `\"b\"`",
                    ));
                }
                (Role::Config | Role::Data, Some(_)) => {
                    return Err(src.error(
                        slot_at,
                        key("slot"),
                        "only boot and system partitions have slots",
                    ));
                }
                _ => {}
            }
            if p.role == Role::Config && (i != 0 || p.fs != FsKind::Vfat) {
                return Err(src.error(
                    at,
                    key("role"),
                    "the config partition must be the first partition and FAT: the Raspberry Pi firmware reads \
                     autoboot.txt only from the first FAT partition",
                ));
            }
            if p.role == Role::Boot && p.fs != FsKind::Vfat {
                return Err(src.error(
                    at,
                    key("fs"),
                    "boot partitions are FAT (`fs = \"vfat\"`): the firmware reads them",
                ));
            }
            match size {
                SizeSpec::Content(_) if p.create == Create::FirstBoot => {
                    return Err(src.error(
                        p.size.span(),
                        key("size"),
                        "a first-boot partition has no content to size it by: give a fixed size",
                    ));
                }
                SizeSpec::Content(_) if p.fs == FsKind::None => {
                    return Err(src.error(
                        p.size.span(),
                        key("size"),
                        "a partition without a file system has no content",
                    ));
                }
                SizeSpec::Fixed(bytes) if p.fs == FsKind::Vfat && bytes < fat::MIN_VOLUME_BYTES => {
                    return Err(src.error(
                        p.size.span(),
                        key("size"),
                        format!(
                            "{} is too small for FAT32, which needs at least {} MiB",
                            p.size.get_ref(),
                            fat::MIN_VOLUME_BYTES.div_ceil(1 << 20)
                        ),
                    ));
                }
                SizeSpec::Fixed(bytes) if p.fs == FsKind::Ext4 && bytes < (8 << 20) => {
                    return Err(src.error(
                        p.size.span(),
                        key("size"),
                        "an ext4 partition needs at least 8M",
                    ));
                }
                _ => {}
            }
            if let (Some(_), SizeSpec::Fixed(_)) = (min_size, size) {
                return Err(src.error(
                    p.min_size.as_ref().map(|m| m.span()).unwrap_or(at),
                    key("min_size"),
                    "min_size applies only to content-sized partitions",
                ));
            }
            let grow = p.grow.as_ref().is_some_and(|g| *g.get_ref());
            if grow && i + 1 != count {
                return Err(src.error(
                    p.grow.as_ref().map_or(at.clone(), |g| g.span()),
                    key("grow"),
                    "only the last partition can grow to the end of the medium",
                ));
            }
            let grow_to = match &p.grow_to {
                None => None,
                Some(g) => {
                    let bytes = parse_bytes(g.get_ref())
                        .map_err(|e| src.error(g.span(), key("grow_to"), e))?;
                    if !matches!(size, SizeSpec::Content(_)) || p.create != Create::Build {
                        return Err(src.error(
                            g.span(),
                            key("grow_to"),
                            "grow_to extends a content-sized partition shipped in the image: a fixed size is already its size",
                        ));
                    }
                    if !raw.partition[i + 1..]
                        .iter()
                        .all(|q| q.get_ref().create == Create::FirstBoot)
                    {
                        return Err(src.error(
                            g.span(),
                            key("grow_to"),
                            "only the last partition the image ships can grow in place: a shipped partition after it is in the way",
                        ));
                    }
                    if bytes % appliance::layout::ALIGN != 0 {
                        return Err(src.error(
                            g.span(),
                            key("grow_to"),
                            "give a whole number of 4M units (partitions are aligned to SD cards' 4 MiB erase blocks)",
                        ));
                    }
                    Some(bytes)
                }
            };
            if i > 0
                && p.create == Create::Build
                && specs
                    .iter()
                    .any(|s: &PartitionSpec| s.create == Create::FirstBoot)
            {
                return Err(src.error(
                    at,
                    key("create"),
                    "a partition shipped in the image cannot follow one created on first boot: the image ends at the \
                     last shipped partition",
                ));
            }
            if table == TableKind::Mbr && count > 4 && i == 3 && start.is_some() {
                return Err(src.error(
                    at,
                    key("start"),
                    "the first logical partition's start follows its extended boot record",
                ));
            }

            lines.push(src.line_of(at.start));
            starts.push(start);
            specs.push(PartitionSpec {
                name,
                role: p.role,
                fs: p.fs,
                slot,
                size,
                min_size,
                label,
                create: p.create,
                grow,
                grow_to,
            });
        }

        // Every slot needs both halves: a boot partition whose system partition is missing
        // would boot a kernel with nothing to mount.
        let slot_span = |i: usize| {
            let p = &raw.partition[i];
            p.get_ref().slot.as_ref().map_or(p.span(), |s| s.span())
        };
        for (i, s) in specs.iter().enumerate() {
            let Some(slot) = s.slot else { continue };
            let other = if s.role == Role::Boot {
                Role::System
            } else {
                Role::Boot
            };
            if !specs
                .iter()
                .any(|o| o.role == other && o.slot == Some(slot))
            {
                return Err(src.error(
                    slot_span(i),
                    format!("partition[{i}].slot"),
                    format!(
                        "{} `{}` is slot {} but no {} has slot {}",
                        role_name(s.role),
                        s.name,
                        slot.letter(),
                        role_name(other),
                        slot.letter()
                    ),
                ));
            }
            if specs
                .iter()
                .filter(|o| o.role == s.role && o.slot == Some(slot))
                .count()
                > 1
            {
                return Err(src.error(
                    slot_span(i),
                    format!("partition[{i}].slot"),
                    "two partitions have the same role and slot",
                ));
            }
        }
        // The updater writes any release into either slot: both halves of a slot pair are the
        // same size on the device.
        for role in [Role::Boot, Role::System] {
            let on_device = |slot| {
                let i = specs
                    .iter()
                    .position(|s| s.role == role && s.slot == Some(slot))?;
                Some((
                    i,
                    match specs[i].size {
                        SizeSpec::Fixed(b) => Some(b),
                        SizeSpec::Content(_) => specs[i].grow_to,
                    },
                ))
            };
            let (Some((a, size_a)), Some((b, size_b))) = (on_device(Slot::A), on_device(Slot::B))
            else {
                continue;
            };
            if size_a.is_none() || size_b.is_none() || size_a != size_b {
                let (i, twin) = if size_a.is_none() { (a, b) } else { (b, a) };
                return Err(src.error(
                    raw.partition[i].get_ref().size.span(),
                    format!("partition[{i}].size"),
                    format!(
                        "`{}` and `{}` must be the same size on the device, so that either slot holds any release: \
                         give both the same fixed size, or let a content-sized one grow in place with `grow_to` \
                         set to its twin's size",
                        specs[i].name, specs[twin].name
                    ),
                ));
            }
        }
        let first = &specs[0];
        if first.create == Create::FirstBoot {
            return Err(src.error(
                raw.partition[0].span(),
                "partition[0].create",
                "the first partition must ship in the image",
            ));
        }

        // Pinned starts must not overlap what fixed sizes before them already claim.
        let layout = Layout {
            table,
            partitions: specs,
        };
        let mut placer = appliance::layout::Placer::default();
        for (i, spec) in layout.partitions.iter().enumerate() {
            let earliest = placer.start_for(&layout, i);
            if let Some(start) = starts[i]
                && start < earliest
            {
                let span = raw.partition[i]
                    .get_ref()
                    .start
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or(0..0);
                return Err(src.error(
                        span,
                        format!("partition[{i}].start"),
                        format!("starts at {start} bytes, inside the partition before it (which ends at {earliest})"),
                    ));
            }
            let size = match spec.size {
                SizeSpec::Fixed(b) => b,
                SizeSpec::Content(_) => spec.min_size.unwrap_or(appliance::layout::ALIGN),
            };
            placer.place_at(starts[i].unwrap_or(earliest), size);
        }

        let bb = &raw.base;
        if let Some(c) = bb
            .components
            .get_ref()
            .iter()
            .find(|c| !super::recipe::is_archive_word(c))
        {
            return Err(src.error(
                bb.components.span(),
                "base.components",
                format!("`{c}` is not an archive component"),
            ));
        }
        if let Some(p) = bb
            .packages
            .get_ref()
            .iter()
            .find(|p| !super::recipe::is_package_name(p))
        {
            return Err(src.error(
                bb.packages.span(),
                "base.packages",
                format!("`{p}` is not a Debian package name"),
            ));
        }
        let hat_overlays = load_hat_overlays(&src, &raw.boot)?;
        let kernel_modules = kernel_modules(&src, &raw.boot, raw.board.arch)?;
        Ok(Board {
            name: raw.board.name.get_ref().clone(),
            description: raw.board.description,
            arch: raw.board.arch,
            imager_devices: raw.board.imager_devices,
            display: raw.board.display,
            boot: BootSettings {
                kind: raw.boot.kind,
                cmdline: raw.boot.cmdline,
                config_txt: raw.boot.config_txt,
                firmware_files: raw.boot.firmware_files,
                hat_overlays,
                kernel_modules,
            },
            base_components: raw.base.components.get_ref().clone(),
            base_packages: raw.base.packages.get_ref().clone(),
            layout,
            starts,
            sha256: crate::digest::sha256_hex(src.text.as_bytes()),
            lines,
            path: path.to_owned(),
        })
    }

    /// An error about partition `index` found while building, pointing at its declaration.
    pub fn partition_error(
        &self,
        index: usize,
        field: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.lines[index],
            key: format!("partition[{index}].{field}"),
            message: message.into(),
        }
    }
}

/// The module sources `[boot] kernel_modules` names, checked to be there and named as the
/// kernel wants, so a wrong one is found before a base is bootstrapped.
fn kernel_modules(src: &Source, boot: &RawBoot, arch: Arch) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let span = boot.kernel_modules.span();
    let err = |message: String| src.error(span.clone(), "boot.kernel_modules", message);
    if !boot.kernel_modules.get_ref().is_empty() && arch != Arch::Arm64 {
        return Err(err(
            "kernel modules are cross-built for arm64 boards only".into()
        ));
    }
    let mut out = Vec::new();
    for file in boot.kernel_modules.get_ref() {
        let path = dir.join(file);
        crate::compile::module::module_name(&path).map_err(|e| err(e.to_string()))?;
        if !path.is_file() {
            return Err(err(format!("cannot read {}", path.display())));
        }
        out.push(path);
    }
    Ok(out)
}

/// Reads the compiled overlays `[boot] hat_overlays` names, so a missing or wrong file is
/// found before a base is bootstrapped.
fn load_hat_overlays(src: &Source, boot: &RawBoot) -> Result<Vec<HatOverlay>, ConfigError> {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (name, file) in &boot.hat_overlays {
        let key = format!("boot.hat_overlays.{name}");
        let err = |message: String| src.error(file.span(), key.clone(), message);
        let hat = Hat::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Hat::ALL.iter().map(|h| h.name()).collect();
            err(format!(
                "`{name}` is not a HAT d3kos-build knows: choose from {}",
                known.join(", ")
            ))
        })?;
        if boot.kind != BootKind::RaspberryPi {
            return Err(err(
                "only Raspberry Pi boards (`kind = \"raspberry-pi\"`) load device-tree overlays"
                    .into(),
            ));
        }
        let path = dir.join(file.get_ref());
        let stem = Path::new(file.get_ref())
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".dtbo"))
            .filter(|s| hat::is_overlay_name(s))
            .ok_or_else(|| {
                err(format!(
                    "`{}`: name the compiled overlay NAME.dtbo, NAME of ASCII letters, digits, '-' and '_' \
                     (config.txt loads it as `dtoverlay=NAME`)",
                    file.get_ref()
                ))
            })?;
        let bytes = std::fs::read(&path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        if !bytes.starts_with(&hat::FDT_MAGIC) {
            return Err(err(format!(
                "{} is not a compiled device tree: compile its source with `dtc -@ -I dts -O dtb -o FILE.dtbo FILE.dts`",
                path.display()
            )));
        }
        out.push(HatOverlay {
            hat,
            name: stem.to_owned(),
            path,
            bytes,
        });
    }
    out.sort_by_key(|o| o.hat);
    Ok(out)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Config => "config partition",
        Role::Boot => "boot partition",
        Role::System => "system partition",
        Role::Data => "data partition",
    }
}

fn check_label(fs: FsKind, label: &str) -> Result<(), String> {
    let limit = match fs {
        // FAT volume labels are 11 bytes of upper-case OEM characters.
        FsKind::Vfat => 11,
        // ext4 keeps 16 bytes for s_volume_name.
        FsKind::Ext4 => 16,
        // GPT names hold 36 UTF-16 units.
        FsKind::None => 36,
    };
    if label.is_empty() || label.len() > limit {
        return Err(format!(
            "label `{label}` must be 1 to {limit} characters for this file system"
        ));
    }
    if !label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "label `{label}`: use ASCII letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's rpi4 board with `from` replaced by `to`, loaded from a folder that
    /// holds `files`.
    fn load_rpi4(from: &str, to: &str, files: &[(&str, &[u8])]) -> Result<Board, ConfigError> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("boards/rpi4.toml")).unwrap();
        assert!(text.contains(from), "rpi4.toml has no `{from}`");
        let dir = tempfile::tempdir().unwrap();
        // The files the board names beside it, as in the repository.
        std::fs::create_dir(dir.path().join("rpi4")).unwrap();
        for e in std::fs::read_dir(root.join("boards/rpi4")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join("rpi4").join(e.file_name())).unwrap();
        }
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let path = dir.path().join("rpi4.toml");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        Board::load(&path)
    }

    const LINE: &str = r#"hat_overlays = { pican-m = "rpi4/pican-m.dtbo" }"#;

    #[test]
    fn a_board_has_a_display_only_when_it_says_so() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for name in ["rpi4", "qemu-amd64", "qemu-arm64"] {
            let board = Board::load(&root.join(format!("boards/{name}.toml"))).unwrap();
            assert!(board.display, "{name}");
        }
        let text = std::fs::read_to_string(root.join("boards/qemu-amd64.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headless.toml");
        std::fs::write(&path, text.replacen("display = true\n", "", 1)).unwrap();
        assert!(!Board::load(&path).unwrap().display);
    }

    #[test]
    fn the_rpi4_ships_the_pican_m_overlay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let board = Board::load(&root.join("boards/rpi4.toml")).unwrap();
        let o = &board.boot.hat_overlays;
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].hat, o[0].name.as_str()), (Hat::PicanM, "pican-m"));
        assert!(o[0].bytes.starts_with(&hat::FDT_MAGIC));
    }

    #[test]
    fn a_hat_overlay_that_cannot_be_used_is_named_with_its_key() {
        let err =
            |to: &str, files: &[(&str, &[u8])]| load_rpi4(LINE, to, files).unwrap_err().to_string();
        let missing = err(r#"hat_overlays = { pican-m = "gone.dtbo" }"#, &[]);
        assert!(
            missing.contains("boot.hat_overlays.pican-m: cannot read")
                && missing.contains("gone.dtbo"),
            "{missing}"
        );
        let source = err(
            r#"hat_overlays = { pican-m = "x.dtbo" }"#,
            &[("x.dtbo", b"/dts-v1/;\n")],
        );
        assert!(source.contains("is not a compiled device tree"), "{source}");
        let unnamed = err(r#"hat_overlays = { pican-m = "x.dts" }"#, &[]);
        assert!(unnamed.contains("NAME.dtbo"), "{unnamed}");
        let unknown = err(r#"hat_overlays = { sense-hat = "x.dtbo" }"#, &[]);
        assert!(
            unknown.contains("`sense-hat` is not a HAT") && unknown.contains("pican-m"),
            "{unknown}"
        );
    }

    #[test]
    fn the_rpi4_builds_the_tryboot_module_and_a_wrong_module_is_named() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let board = Board::load(&root.join("boards/rpi4.toml")).unwrap();
        assert_eq!(board.boot.kernel_modules.len(), 1);
        assert!(board.boot.kernel_modules[0].ends_with("rpi4/d3kos_tryboot.c"));
        let line = r#"kernel_modules = ["rpi4/d3kos_tryboot.c"]"#;
        let err =
            |to: &str, files: &[(&str, &[u8])]| load_rpi4(line, to, files).unwrap_err().to_string();
        let missing = err(r#"kernel_modules = ["gone.c"]"#, &[]);
        assert!(
            missing.contains("boot.kernel_modules: cannot read") && missing.contains("gone.c"),
            "{missing}"
        );
        let named = err(r#"kernel_modules = ["try-boot.c"]"#, &[("try-boot.c", b"")]);
        assert!(named.contains("NAME.c"), "{named}");
    }

    #[test]
    fn only_raspberry_pi_boards_take_overlays() {
        let err = load_rpi4("kind = \"raspberry-pi\"", "kind = \"direct-kernel\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("boot.hat_overlays.pican-m: only Raspberry Pi boards"),
            "{err}"
        );
    }

    #[test]
    fn both_slots_are_the_same_size_on_the_device() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for name in ["rpi4", "qemu-amd64", "qemu-arm64"] {
            let board = Board::load(&root.join(format!("boards/{name}.toml"))).unwrap();
            let p = &board.layout.partitions;
            let a = p.iter().find(|s| s.name == "system-a").unwrap();
            let b = p.iter().find(|s| s.name == "system-b").unwrap();
            assert_eq!(
                (a.grow_to, b.size),
                (Some(4 << 30), SizeSpec::Fixed(4 << 30)),
                "{name}"
            );
        }
        let err = |from: &str, to: &str| load_rpi4(from, to, &[]).unwrap_err().to_string();
        let unequal = err("grow_to = \"4G\"", "grow_to = \"2G\"");
        assert!(
            unequal.contains("partition[4].size")
                && unequal.contains("`system-b` and `system-a` must be the same size"),
            "{unequal}"
        );
        let boot = err("size = \"256M\"", "size = \"128M\"");
        assert!(
            boot.contains("`boot-b` and `boot-a` must be the same size"),
            "{boot}"
        );
        let never = err("grow_to = \"4G\"\n", "");
        assert!(
            never.contains("partition[3].size") && never.contains("`grow_to`"),
            "{never}"
        );
        let fixed = err("size = \"4G\"", "size = \"4G\"\ngrow_to = \"8G\"");
        assert!(
            fixed.contains("partition[4].grow_to") && fixed.contains("a fixed size is already"),
            "{fixed}"
        );
        let odd = err("grow_to = \"4G\"", "grow_to = \"4097M\"");
        assert!(odd.contains("4M units"), "{odd}");
    }
}
