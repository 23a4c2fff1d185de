//! Board files (`boards/*.toml`): the machine an image is for and its partition layout.

use std::collections::BTreeSet;
use std::path::Path;

use appliance::layout::{
    Arch, Create, FsKind, Layout, PartitionSpec, Role, SizeSpec, Slot, TableKind,
};
use serde::Deserialize;
use toml::Spanned;

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
            if let Some(start) = starts[i] {
                if start < earliest {
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
        Ok(Board {
            name: raw.board.name.get_ref().clone(),
            description: raw.board.description,
            arch: raw.board.arch,
            imager_devices: raw.board.imager_devices,
            boot: BootSettings {
                kind: raw.boot.kind,
                cmdline: raw.boot.cmdline,
                config_txt: raw.boot.config_txt,
                firmware_files: raw.boot.firmware_files,
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
