//! `d3kosd firstboot grow`: creates the partitions the image leaves to the device, where the
//! plan the image carries puts them on this card, and makes their file systems.
//!
//! Every boot runs it; each step first looks whether it is done, so a power cut anywhere is
//! finished by the next boot, and a booted device pays for a few reads. It never touches a
//! partition the image shipped, and refuses a disk whose table it does not recognise.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::disk::{self, Part, PartType, TableEntry};
use crate::ext4::Superblock;
use crate::layout::{Create, Extent, FsKind, Plan, Role};

use super::programs::{self, Volume};
use super::{FirstbootError, io, say};

/// The plan's place in the running system ([`crate::layout::PLAN_PATH`] from the root).
pub const DEFAULT_PLAN: &str = "/usr/lib/d3kos/partitions.json";

/// How long a new partition's device node may take to appear.
const NODE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The partition plan the image carries.
    #[arg(long, default_value = DEFAULT_PLAN)]
    pub plan: PathBuf,
    /// The disk to grow (a block device, or an image file); by default the disk holding the
    /// partition the kernel command line's root=PARTUUID= names.
    #[arg(long, value_name = "DEV")]
    pub disk: Option<PathBuf>,
}

/// Where the running kernel shows its disks.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub cmdline: PathBuf,
    pub dev: PathBuf,
    pub sys_block: PathBuf,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel {
            cmdline: "/proc/cmdline".into(),
            dev: "/dev".into(),
            sys_block: "/sys/class/block".into(),
        }
    }
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let text = std::fs::read_to_string(&a.plan).map_err(io(&a.plan))?;
    let plan = Plan::from_json(&text).map_err(|source| FirstbootError::Plan {
        path: a.plan.clone(),
        source,
    })?;
    let kernel = Kernel::default();
    let disk = match &a.disk {
        Some(d) => d.clone(),
        None => root_disk(&kernel)?,
    };
    grow(&plan, &disk, &kernel, out)
}

/// The disk holding the root partition: root=PARTUUID= → /dev/disk/by-partuuid → the
/// partition's parent in sysfs.
pub fn root_disk(kernel: &Kernel) -> Result<PathBuf, FirstbootError> {
    let (node, sys) = root_node(kernel)?;
    let disk = sys
        .parent()
        .and_then(Path::file_name)
        .ok_or_else(|| FirstbootError::NotPartition { path: node.clone() })?;
    Ok(kernel.dev.join(disk))
}

/// The root partition's device node and its size in bytes, as the kernel sees them now.
pub fn root_partition(kernel: &Kernel) -> Result<(PathBuf, u64), FirstbootError> {
    let (node, sys) = root_node(kernel)?;
    Ok((node, sectors(&sys)? * 512))
}

/// The device node of the partition root=PARTUUID= names, and its sysfs folder.
fn root_node(kernel: &Kernel) -> Result<(PathBuf, PathBuf), FirstbootError> {
    let cmdline = std::fs::read_to_string(&kernel.cmdline).map_err(io(&kernel.cmdline))?;
    // The last root= wins, as the kernel reads it.
    let partuuid = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("root="))
        .next_back()
        .and_then(|r| r.strip_prefix("PARTUUID="))
        .ok_or_else(|| FirstbootError::NoRoot {
            cmdline: cmdline.trim().to_owned(),
        })?;
    // udev names the links in lower case; the kernel matches PARTUUID= in any case.
    let link = kernel
        .dev
        .join("disk/by-partuuid")
        .join(partuuid.to_ascii_lowercase());
    wait_for(&link, NODE_WAIT)?;
    let node = std::fs::canonicalize(&link).map_err(io(&link))?;
    let name = node
        .file_name()
        .ok_or_else(|| FirstbootError::NotPartition { path: node.clone() })?;
    let sys = kernel.sys_block.join(name);
    let sys = std::fs::canonicalize(&sys).map_err(io(&sys))?;
    // A partition's sysfs folder sits inside its disk's and has a `partition` file.
    if !sys.join("partition").exists() {
        return Err(FirstbootError::NotPartition { path: node });
    }
    Ok((node, sys))
}

/// A block device's size from its sysfs folder, in 512-byte units whatever the device's
/// sector size (Linux Documentation/ABI/stable/sysfs-block).
fn sectors(sys: &Path) -> Result<u64, FirstbootError> {
    let size_file = sys.join("size");
    std::fs::read_to_string(&size_file)
        .map_err(io(&size_file))?
        .trim()
        .parse()
        .map_err(|_| FirstbootError::Io {
            path: size_file.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a number"),
        })
}

/// A disk opened for first boot.
struct Disk {
    path: PathBuf,
    file: File,
    bytes: u64,
    /// The kernel's name for it (`mmcblk0`); `None` for an image file.
    kernel_name: Option<String>,
}

impl Disk {
    fn open(path: &Path, kernel: &Kernel) -> Result<Disk, FirstbootError> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let meta = file.metadata().map_err(io(path))?;
        if !meta.file_type().is_block_device() {
            return Ok(Disk {
                path: path.to_owned(),
                file,
                bytes: meta.len(),
                kernel_name: None,
            });
        }
        let node = std::fs::canonicalize(path).map_err(io(path))?;
        let name = node
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sectors = sectors(&kernel.sys_block.join(&name))?;
        Ok(Disk {
            path: path.to_owned(),
            file,
            bytes: sectors * 512,
            kernel_name: Some(name),
        })
    }
}

/// Grows `disk_path` as `plan` says.
pub fn grow(
    plan: &Plan,
    disk_path: &Path,
    kernel: &Kernel,
    out: &mut dyn Write,
) -> Result<(), FirstbootError> {
    let mut disk = Disk::open(disk_path, kernel)?;
    let mut acted = false;
    let parts = grow_table(plan, &mut disk, out, &mut acted)?;
    let volumes = announce(&disk, &parts, kernel, out, &mut acted)?;
    for ((p, part), volume) in plan
        .partitions
        .iter()
        .filter(|p| p.spec.create == Create::FirstBoot)
        .zip(&parts)
        .zip(&volumes)
    {
        // Only ext4 is made here, and never on a system slot: a slot left to the device gets
        // its whole volume from the updater that fills it, and once filled holds a release's
        // own file system, which a later boot (of either release) must not take for an
        // unfinished one and make again.
        let (FsKind::Ext4, Some(uuid), false) =
            (p.spec.fs, &p.fs_uuid, p.spec.role == Role::System)
        else {
            continue;
        };
        if has_ext4(volume, uuid)? {
            continue;
        }
        programs::mke2fs(volume, uuid, &p.spec.label)?;
        say(
            out,
            format_args!(
                "made the ext4 file system of partition {} `{}` (UUID {uuid})",
                part.number, p.spec.name
            ),
        )?;
        acted = true;
    }
    if !acted {
        say(
            out,
            format_args!(
                "{}: partitions and file systems are as planned",
                disk.path.display()
            ),
        )?;
    }
    Ok(())
}

/// Checks the table against the plan and adds the first-boot partitions; returns them.
fn grow_table(
    plan: &Plan,
    disk: &mut Disk,
    out: &mut dyn Write,
    acted: &mut bool,
) -> Result<Vec<Part>, FirstbootError> {
    let path = disk.path.clone();
    let table = disk::read_from(&mut disk.file, &path, disk.bytes)?;
    if table.kind != plan.table {
        return Err(FirstbootError::WrongTable {
            path,
            found: table.kind,
            expected: plan.table,
        });
    }
    if !table.disk_id.eq_ignore_ascii_case(&plan.disk_id) {
        return Err(FirstbootError::ForeignDisk {
            path,
            found: table.disk_id,
            expected: plan.disk_id.clone(),
        });
    }

    // What the image shipped must be there, as shipped; it is never moved.
    let mut shipped = vec![None; plan.partitions.len()];
    for (i, p) in plan.partitions.iter().enumerate() {
        if p.spec.create != Create::Build {
            continue;
        }
        let e = table
            .entry(p.number)
            .ok_or_else(|| FirstbootError::MissingShipped {
                path: path.clone(),
                number: p.number,
                name: p.spec.name.clone(),
            })?;
        if !e.partuuid.eq_ignore_ascii_case(&p.partuuid) {
            return Err(FirstbootError::ForeignPartition {
                path,
                number: p.number,
                name: p.spec.name.clone(),
                found: e.partuuid.clone(),
                expected: p.partuuid.clone(),
            });
        }
        shipped[i] = Some(e.extent());
    }

    let extents = plan
        .layout()
        .grown(&shipped, disk::addressable(plan.table, disk.bytes))?;
    let mut parts = Vec::new();
    for (p, extent) in plan.partitions.iter().zip(&extents) {
        if p.spec.create != Create::FirstBoot {
            continue;
        }
        let part = Part {
            number: p.number,
            part_type: PartType::parse(plan.table, &p.type_id).ok_or_else(|| {
                FirstbootError::BadType {
                    name: p.spec.name.clone(),
                    type_id: p.type_id.clone(),
                    table: plan.table,
                }
            })?,
            partuuid: p.partuuid.clone(),
            name: p.spec.label.clone(),
            extent: *extent,
        };
        // A number the plan creates is free, or holds exactly what the plan puts there.
        if let Some(e) = table.entry(p.number)
            && !is(e, &part)
        {
            return Err(FirstbootError::Occupied {
                path,
                number: p.number,
                name: p.spec.name.clone(),
                found: describe(e.extent(), &e.partuuid, &e.type_id),
                expected: describe(part.extent, &part.partuuid, &p.type_id),
            });
        }
        parts.push(part);
    }
    // A shipped slot with `grow_to` is extended in place to its twin's size, in the same
    // table change that adds the partitions after it.
    let mut grown = Vec::new();
    for ((p, extent), was) in plan.partitions.iter().zip(&extents).zip(&shipped) {
        if p.spec.create == Create::Build && p.spec.grow_to.is_some() && Some(*extent) != *was {
            let e = table.entry(p.number).expect("checked above");
            grown.push(Part {
                number: p.number,
                part_type: PartType::parse(plan.table, &e.type_id).ok_or_else(|| {
                    FirstbootError::BadType {
                        name: p.spec.name.clone(),
                        type_id: e.type_id.clone(),
                        table: plan.table,
                    }
                })?,
                partuuid: e.partuuid.clone(),
                name: e.name.clone().unwrap_or_default(),
                extent: *extent,
            });
        }
    }

    let all: Vec<Part> = grown.iter().chain(&parts).cloned().collect();
    let change = disk::add(&mut disk.file, &path, disk.bytes, &all)?;
    if change.apply(&mut disk.file, &path)? {
        *acted = true;
        for p in grown.iter().filter(|p| change.grown.contains(&p.number)) {
            let name = plan.partitions.iter().find(|x| x.number == p.number);
            say(
                out,
                format_args!(
                    "grew partition {} `{}` on {} in place to {} MiB, as large as its twin",
                    p.number,
                    name.map_or("", |x| x.spec.name.as_str()),
                    path.display(),
                    p.extent.size >> 20
                ),
            )?;
            if disk.kernel_name.is_some() {
                programs::partx_update(&path, p.number)?;
            }
        }
        for p in parts.iter().filter(|p| change.added.contains(&p.number)) {
            say(
                out,
                format_args!(
                    "created partition {} `{}` on {}: {} MiB from {} MiB",
                    p.number,
                    p.name,
                    path.display(),
                    p.extent.size >> 20,
                    p.extent.start >> 20
                ),
            )?;
        }
        if change.added.is_empty() && change.grown.is_empty() {
            say(
                out,
                format_args!(
                    "finished the partition table change an earlier boot began on {}",
                    path.display()
                ),
            )?;
        }
    }
    Ok(parts)
}

fn is(e: &TableEntry, p: &Part) -> bool {
    e.extent() == p.extent
        && e.partuuid.eq_ignore_ascii_case(&p.partuuid)
        && e.type_id.eq_ignore_ascii_case(&p.part_type.to_string())
}

fn describe(e: Extent, partuuid: &str, type_id: &str) -> String {
    format!(
        "PARTUUID {partuuid}, type {type_id}, bytes {}..{}",
        e.start,
        e.end()
    )
}

/// Makes sure the kernel knows each new partition; returns where each one's bytes are.
fn announce(
    disk: &Disk,
    parts: &[Part],
    kernel: &Kernel,
    out: &mut dyn Write,
    acted: &mut bool,
) -> Result<Vec<Volume>, FirstbootError> {
    let Some(name) = &disk.kernel_name else {
        return Ok(parts
            .iter()
            .map(|p| Volume::InImage {
                image: disk.path.clone(),
                offset: p.extent.start,
                size: p.extent.size,
            })
            .collect());
    };
    let mut told = false;
    for p in parts {
        if kernel_partition(kernel, name, p.number).is_none() {
            programs::partx_add(&disk.path, p.number)?;
            say(
                out,
                format_args!(
                    "told the kernel about partition {} of {}",
                    p.number,
                    disk.path.display()
                ),
            )?;
            told = true;
            *acted = true;
        }
    }
    if told {
        programs::udevadm_settle()?;
    }
    parts
        .iter()
        .map(|p| {
            let deadline = Instant::now() + NODE_WAIT;
            loop {
                if let Some(part) = kernel_partition(kernel, name, p.number) {
                    let node = kernel.dev.join(part);
                    wait_for(&node, deadline.saturating_duration_since(Instant::now()))?;
                    return Ok(Volume::Device(node));
                }
                if Instant::now() >= deadline {
                    return Err(FirstbootError::NoDevice {
                        path: kernel.sys_block.join(format!("{name}{}", p.number)),
                        seconds: NODE_WAIT.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect()
}

/// The kernel's name for partition `number` of `disk`, if the kernel has it: `sda7`, or
/// `mmcblk0p7` where the disk's name ends in a digit.
fn kernel_partition(kernel: &Kernel, disk: &str, number: u32) -> Option<String> {
    [format!("{disk}p{number}"), format!("{disk}{number}")]
        .into_iter()
        .find(|n| kernel.sys_block.join(n).exists())
}

fn wait_for(path: &Path, within: Duration) -> Result<(), FirstbootError> {
    let deadline = Instant::now() + within;
    while !path.exists() {
        if Instant::now() >= deadline {
            return Err(FirstbootError::NoDevice {
                path: path.to_owned(),
                seconds: within.as_secs().max(1),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether `volume` holds the ext4 file system with `uuid`. mke2fs clears the old superblock
/// before it starts (misc/mke2fs.c, zap_sector) and writes the primary superblock last,
/// after everything else is flushed (lib/ext2fs/closefs.c, ext2fs_flush2), so a primary
/// superblock with the planned UUID means a finished mke2fs.
fn has_ext4(volume: &Volume, uuid: &str) -> Result<bool, FirstbootError> {
    let (path, offset) = match volume {
        Volume::Device(node) => (node, 0),
        Volume::InImage { image, offset, .. } => (image, *offset),
    };
    let sb = Superblock::read(path, offset).map_err(io(path))?;
    Ok(sb.is_some_and(|sb| Some(sb.uuid) == uuid.parse().ok()))
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher;
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    use super::*;
    use crate::layout::{
        ALIGN, Layout, PartitionSpec, Placer, PlannedPartition, Role, SizeSpec, Slot, TableKind,
    };

    const M: u64 = 1 << 20;

    /// The rpi4 board's shape (config, two boot slots, system-a shipped; system-b and a
    /// growing data partition left to the device), in small sizes.
    fn plan(table: TableKind) -> Plan {
        type Row = (&'static str, Role, FsKind, Option<Slot>, u64, Create);
        let rows: [Row; 6] = [
            (
                "config",
                Role::Config,
                FsKind::Vfat,
                None,
                4 * M,
                Create::Build,
            ),
            (
                "boot-a",
                Role::Boot,
                FsKind::Vfat,
                Some(Slot::A),
                8 * M,
                Create::Build,
            ),
            (
                "boot-b",
                Role::Boot,
                FsKind::Vfat,
                Some(Slot::B),
                8 * M,
                Create::Build,
            ),
            (
                "system-a",
                Role::System,
                FsKind::Ext4,
                Some(Slot::A),
                8 * M,
                Create::Build,
            ),
            (
                "system-b",
                Role::System,
                FsKind::Ext4,
                Some(Slot::B),
                12 * M,
                Create::FirstBoot,
            ),
            (
                "data",
                Role::Data,
                FsKind::Ext4,
                None,
                8 * M,
                Create::FirstBoot,
            ),
        ];
        let specs: Vec<PartitionSpec> = rows
            .iter()
            .map(|&(name, role, fs, slot, size, create)| PartitionSpec {
                name: name.into(),
                role,
                fs,
                slot,
                size: SizeSpec::Fixed(size),
                min_size: None,
                label: name.into(),
                create,
                grow: name == "data",
                // Shipped at its content's size, grown to system-b's on the card.
                grow_to: (name == "system-a").then_some(12 * M),
            })
            .collect();
        let layout = Layout {
            table,
            partitions: specs.clone(),
        };
        let partitions = specs
            .into_iter()
            .zip(layout.numbers())
            .enumerate()
            .map(|(i, (spec, number))| PlannedPartition {
                partuuid: match table {
                    TableKind::Mbr => format!("d3c0ffee-{number:02x}"),
                    TableKind::Gpt => uuid::Uuid::from_u128(0x5eed_0000 + i as u128).to_string(),
                },
                type_id: PartType::of(table, spec.role, spec.fs, crate::layout::Arch::Arm64)
                    .to_string(),
                fs_uuid: (spec.fs == FsKind::Ext4)
                    .then(|| uuid::Uuid::from_u128(0xf5_0000 + i as u128).to_string()),
                spec,
                number,
            })
            .collect();
        Plan {
            table,
            disk_id: match table {
                TableKind::Mbr => "d3c0ffee".into(),
                TableKind::Gpt => uuid::Uuid::from_u128(0xd15c).to_string(),
            },
            partitions,
        }
    }

    /// Where the builder puts the shipped partitions.
    fn shipped(plan: &Plan) -> Vec<Option<Extent>> {
        let layout = plan.layout();
        let mut placer = Placer::default();
        plan.partitions
            .iter()
            .enumerate()
            .map(|(i, p)| match (p.spec.create, p.spec.size) {
                (Create::Build, SizeSpec::Fixed(size)) => Some(placer.place(&layout, i, size)),
                _ => None,
            })
            .collect()
    }

    /// An image as the builder writes it, then written to a card of `card` bytes.
    fn card(plan: &Plan, card: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        let extents = shipped(plan);
        let end = extents.iter().flatten().map(Extent::end).max().unwrap();
        let image = match plan.table {
            TableKind::Gpt => end + crate::layout::GPT_BACKUP_SECTORS * 512,
            TableKind::Mbr => end,
        };
        let parts: Vec<Part> = plan
            .partitions
            .iter()
            .zip(&extents)
            .filter_map(|(p, e)| {
                Some(Part {
                    number: p.number,
                    part_type: PartType::parse(plan.table, &p.type_id).unwrap(),
                    partuuid: p.partuuid.clone(),
                    name: p.spec.label.clone(),
                    extent: (*e)?,
                })
            })
            .collect();
        let mut f = File::create(&path).unwrap();
        f.set_len(image).unwrap();
        disk::write(&mut f, &path, plan.table, &plan.disk_id, &parts, image).unwrap();
        f.set_len(card).unwrap();
        (dir, path)
    }

    fn run_grow(plan: &Plan, path: &Path) -> Result<String, FirstbootError> {
        let mut out = Vec::new();
        grow(plan, path, &Kernel::default(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn tool(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The whole file, hashed.
    fn digest(path: &Path) -> u64 {
        let mut f = File::open(path).unwrap();
        let mut h = std::hash::DefaultHasher::new();
        let mut buf = vec![0u8; M as usize];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                return h.finish();
            }
            h.write(&buf[..n]);
        }
    }

    /// The sectors that hold the table: the start and end of the card, and each EBR.
    fn table_bytes(plan: &Plan, path: &Path, extents: &[Extent]) -> Vec<u8> {
        let mut f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len();
        let mut at = vec![(0, 64 * 1024), (len - 64 * 1024, 64 * 1024)];
        let layout = plan.layout();
        for (i, e) in extents.iter().enumerate() {
            if layout.is_logical(i) {
                at.push((e.start - ALIGN, 512));
            }
        }
        let mut bytes = Vec::new();
        for (offset, n) in at {
            let mut buf = vec![0u8; n];
            f.seek(SeekFrom::Start(offset)).unwrap();
            f.read_exact(&mut buf).unwrap();
            bytes.extend(buf);
        }
        bytes
    }

    /// (number, start, size, uuid) of each partition as `sfdisk --json` reads it, and the
    /// table's own fields.
    fn sfdisk(path: &Path) -> (serde_json::Value, Vec<(u32, u64, u64, String)>) {
        let v: serde_json::Value =
            serde_json::from_str(&tool(Command::new("sfdisk").arg("--json").arg(path))).unwrap();
        let t = v["partitiontable"].clone();
        let id = t["id"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x")
            .to_lowercase();
        let parts = t["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let node = p["node"].as_str().unwrap();
                let n: u32 = node
                    .rsplit(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let uuid = p["uuid"]
                    .as_str()
                    .map_or_else(|| format!("{id}-{n:02x}"), str::to_lowercase);
                (
                    n,
                    p["start"].as_u64().unwrap() * 512,
                    p["size"].as_u64().unwrap() * 512,
                    uuid,
                )
            })
            .collect();
        (t, parts)
    }

    /// Copies one partition out (holes stay holes) for e2fsck and dumpe2fs.
    fn extract(path: &Path, e: Extent, dest: &Path) {
        let mut src = File::open(path).unwrap();
        let mut out = File::create(dest).unwrap();
        out.set_len(e.size).unwrap();
        let mut buf = vec![0u8; M as usize];
        let mut pos = 0;
        while pos < e.size {
            src.seek(SeekFrom::Start(e.start + pos)).unwrap();
            src.read_exact(&mut buf).unwrap();
            if buf.iter().any(|&b| b != 0) {
                out.seek(SeekFrom::Start(pos)).unwrap();
                out.write_all(&buf).unwrap();
            }
            pos += M;
        }
    }

    fn grows_onto_a_larger_card(table: TableKind) {
        let plan = plan(table);
        let size = 128 * M;
        let (dir, path) = card(&plan, size);
        // The running system's bytes in system-a, which growing its entry must keep.
        let system_a = shipped(&plan)[3].unwrap();
        let marker: Vec<u8> = (0..system_a.size).map(|i| (i % 251) as u8).collect();
        let f = File::options().write(true).open(&path).unwrap();
        f.write_all_at(&marker, system_a.start).unwrap();
        drop(f);
        let out = run_grow(&plan, &path).unwrap();
        let (a, b, data) = (
            plan.partitions[3].number,
            plan.partitions[4].number,
            plan.partitions[5].number,
        );
        assert!(
            out.contains(&format!(
                "grew partition {a} `system-a` on {} in place to 12 MiB",
                path.display()
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!("created partition {b} `system-b`")),
            "{out}"
        );
        assert!(
            out.contains(&format!("created partition {data} `data`")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "made the ext4 file system of partition {data} `data`"
            )),
            "{out}"
        );

        // The field's tools read the table as the layout plans it.
        let want = plan.layout().grown(&shipped(&plan), size).unwrap();
        let (t, parts) = sfdisk(&path);
        for (p, e) in plan.partitions.iter().zip(&want) {
            let found = parts.iter().find(|x| x.0 == p.number);
            assert_eq!(
                found,
                Some(&(p.number, e.start, e.size, p.partuuid.clone())),
                "partition {} `{}`",
                p.number,
                p.spec.name
            );
        }
        let data = want[5];
        match table {
            TableKind::Gpt => {
                assert_eq!(
                    t["lastlba"],
                    size / 512 - 34,
                    "the backup GPT is at the card's end"
                );
                assert!(size - 33 * 512 - data.end() < ALIGN, "data reaches the end");
                let v = tool(Command::new("sgdisk").arg("-v").arg(&path));
                assert!(v.contains("No problems found"), "{v}");
                assert_eq!(parts.len(), 6);
            }
            TableKind::Mbr => {
                assert!(size - data.end() < ALIGN, "data reaches the end");
                let ext = parts
                    .iter()
                    .find(|x| x.0 == 4)
                    .expect("the extended partition");
                assert_eq!(
                    ext.1 + ext.2,
                    size,
                    "the extended partition reaches the end"
                );
                assert_eq!(parts.len(), 7);
            }
        }

        assert_eq!(want[3].size, want[4].size, "the two system slots are equal");
        let mut kept = vec![0u8; system_a.size as usize];
        File::open(&path)
            .unwrap()
            .read_exact_at(&mut kept, system_a.start)
            .unwrap();
        assert!(kept == marker, "system-a's content moved or changed");

        // The data file system is whole, with the planned ids; the system slot is left to the
        // updater.
        let p = &plan.partitions[5];
        let copy = dir.path().join(&p.spec.name);
        extract(&path, want[5], &copy);
        tool(Command::new("e2fsck").arg("-fn").arg(&copy));
        let h = tool(Command::new("dumpe2fs").arg("-h").arg(&copy));
        assert!(h.contains(p.fs_uuid.as_deref().unwrap()), "{h}");
        assert!(
            h.contains(&format!("Filesystem volume name:   {}", p.spec.label)),
            "{h}"
        );

        // Every later boot finds it done and writes nothing.
        let before = digest(&path);
        let again = run_grow(&plan, &path).unwrap();
        assert!(
            again.contains("partitions and file systems are as planned"),
            "{again}"
        );
        assert_eq!(again.lines().count(), 1, "{again}");
        assert_eq!(digest(&path), before, "nothing changed on the second run");

        // A release installed into system-b (its own file system, not the plan's) is left
        // alone by every later boot.
        let slot = want[4];
        let release = dir.path().join("release.ext4");
        tool(
            Command::new("mke2fs")
                .args([
                    "-q",
                    "-F",
                    "-t",
                    "ext4",
                    "-U",
                    "0f0e0d0c-0b0a-4908-8706-050403020100",
                ])
                .arg(&release)
                .arg(format!("{}k", slot.size / 1024)),
        );
        let bytes = std::fs::read(&release).unwrap();
        let mut f = File::options().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(slot.start)).unwrap();
        f.write_all(&bytes).unwrap();
        drop(f);
        let before = digest(&path);
        let again = run_grow(&plan, &path).unwrap();
        assert!(again.contains("as planned"), "{again}");
        assert_eq!(
            digest(&path),
            before,
            "an installed system slot was made again"
        );
    }

    #[test]
    fn mbr_grows_onto_a_larger_card() {
        grows_onto_a_larger_card(TableKind::Mbr);
    }

    #[test]
    fn gpt_grows_onto_a_larger_card() {
        grows_onto_a_larger_card(TableKind::Gpt);
    }

    #[test]
    fn a_disk_of_another_image_is_left_alone() {
        for table in [TableKind::Mbr, TableKind::Gpt] {
            let plan = plan(table);
            let (_dir, path) = card(&plan, 128 * M);
            let before = digest(&path);
            let mut other = plan.clone();
            other.partitions[3].partuuid = match table {
                TableKind::Mbr => "d3c0ffee-06".into(),
                TableKind::Gpt => uuid::Uuid::from_u128(7).to_string(),
            };
            let e = run_grow(&other, &path).unwrap_err();
            assert!(
                matches!(e, FirstbootError::ForeignPartition { number, .. } if number == plan.partitions[3].number),
                "{e}"
            );
            assert!(e.to_string().contains("leaving it alone"), "{e}");
            let mut other = plan.clone();
            other.disk_id = match table {
                TableKind::Mbr => "0badf00d".into(),
                TableKind::Gpt => uuid::Uuid::from_u128(8).to_string(),
            };
            let e = run_grow(&other, &path).unwrap_err();
            assert!(matches!(e, FirstbootError::ForeignDisk { .. }), "{e}");
            assert_eq!(digest(&path), before, "{table:?}: nothing written");
        }
    }

    #[test]
    fn a_card_too_small_is_refused_unchanged() {
        for table in [TableKind::Mbr, TableKind::Gpt] {
            let plan = plan(table);
            let end = shipped(&plan)
                .iter()
                .flatten()
                .map(Extent::end)
                .max()
                .unwrap();
            let (dir, path) = card(&plan, end + 8 * M);
            let before = digest(&path);
            let e = run_grow(&plan, &path).unwrap_err();
            assert!(e.to_string().contains("use a card of"), "{e}");
            assert_eq!(digest(&path), before, "{table:?}: nothing written");
            // Run as the boot runs it: the failure page gets the report, with the advice.
            let plan_file = dir.path().join("plan.json");
            std::fs::write(&plan_file, plan.to_json()).unwrap();
            let report = dir.path().join("run/firstboot-failed.json");
            let cli = super::super::Cli {
                report: report.clone(),
                command: super::super::Command::Grow(Args {
                    plan: plan_file,
                    disk: Some(path.clone()),
                }),
            };
            assert!(super::super::run(&cli).is_err());
            let r = super::super::failed::Report::load(&report).unwrap();
            assert_eq!(r.step, "grow");
            assert!(r.error.contains("use a card of"), "{r:?}");
            assert!(
                r.advice
                    .unwrap()
                    .contains("Nothing on this card was changed")
            );
            assert_eq!(digest(&path), before, "{table:?}: nothing written");
        }
    }

    #[test]
    fn a_taken_number_is_refused_unchanged() {
        for table in [TableKind::Mbr, TableKind::Gpt] {
            let plan = plan(table);
            let (_dir, path) = card(&plan, 128 * M);
            run_grow(&plan, &path).unwrap();
            let before = digest(&path);
            // Another release that plans a bigger B system finds this card's partition 6.
            let mut bigger = plan.clone();
            bigger.partitions[4].spec.size = SizeSpec::Fixed(16 * M);
            let e = run_grow(&bigger, &path).unwrap_err();
            assert!(
                matches!(e, FirstbootError::Occupied { number, .. } if number == plan.partitions[4].number),
                "{table:?}: {e}"
            );
            assert!(e.advice().unwrap().contains("Write the card again"), "{e}");
            assert_eq!(digest(&path), before, "{table:?}: nothing written");
        }
    }

    /// A power cut after any write of the table change: the next boot ends with the same
    /// table as an uninterrupted first boot.
    fn resumes_after_a_power_cut(table: TableKind) {
        let plan = plan(table);
        let size = 128 * M;
        let want = plan.layout().grown(&shipped(&plan), size).unwrap();
        let (_dir, whole) = card(&plan, size);
        run_grow(&plan, &whole).unwrap();
        let expected = table_bytes(&plan, &whole, &want);
        let expected_sfdisk = sfdisk(&whole).1;

        let (_dir, probe) = card(&plan, size);
        let steps = {
            let parts = grow_parts(&plan, &want);
            let mut f = File::options().read(true).write(true).open(&probe).unwrap();
            disk::add(&mut f, &probe, size, &parts).unwrap().steps.len()
        };
        for cut in 0..steps {
            let (_dir, path) = card(&plan, size);
            let parts = grow_parts(&plan, &want);
            let mut f = File::options().read(true).write(true).open(&path).unwrap();
            let change = disk::add(&mut f, &path, size, &parts).unwrap();
            change.apply_steps(&mut f, &path, cut).unwrap();
            drop(f);
            // What the kernel would find at the next boot.
            let (_, now) = sfdisk(&path);
            assert!(
                now.iter().any(|x| x.0 == plan.partitions[3].number),
                "{table:?}, cut after {cut} of {steps} writes: the system partition is still readable"
            );
            run_grow(&plan, &path).unwrap();
            assert_eq!(
                table_bytes(&plan, &path, &want),
                expected,
                "{table:?}, cut after {cut} of {steps} writes"
            );
            assert_eq!(sfdisk(&path).1, expected_sfdisk);
        }
    }

    /// What first boot puts in the table: system-a grown, the first-boot partitions added.
    fn grow_parts(plan: &Plan, extents: &[Extent]) -> Vec<Part> {
        plan.partitions
            .iter()
            .zip(extents)
            .filter(|(p, _)| p.spec.create == Create::FirstBoot || p.spec.grow_to.is_some())
            .map(|(p, e)| Part {
                number: p.number,
                part_type: PartType::parse(plan.table, &p.type_id).unwrap(),
                partuuid: p.partuuid.clone(),
                name: p.spec.label.clone(),
                extent: *e,
            })
            .collect()
    }

    #[test]
    fn mbr_resumes_after_a_power_cut() {
        resumes_after_a_power_cut(TableKind::Mbr);
    }

    #[test]
    fn gpt_resumes_after_a_power_cut() {
        resumes_after_a_power_cut(TableKind::Gpt);
    }

    #[test]
    fn an_unfinished_file_system_is_made_again() {
        let plan = plan(TableKind::Mbr);
        let (_dir, path) = card(&plan, 128 * M);
        run_grow(&plan, &path).unwrap();
        // mke2fs cut off before it wrote the primary superblock.
        let data = plan.layout().grown(&shipped(&plan), 128 * M).unwrap()[5];
        let mut f = File::options().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(data.start + 1024)).unwrap();
        f.write_all(&[0u8; 1024]).unwrap();
        drop(f);
        let out = run_grow(&plan, &path).unwrap();
        assert_eq!(
            out.trim(),
            "made the ext4 file system of partition 7 `data` (UUID 00000000-0000-0000-0000-000000f50005)"
        );
    }

    #[test]
    fn the_root_disk_is_the_parent_of_the_root_partition() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mk = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
        mk("dev/disk/by-partuuid");
        mk("sys/devices/platform/mmc/mmcblk0/mmcblk0p5");
        mk("sys/class/block");
        std::fs::write(root.join("dev/mmcblk0p5"), b"").unwrap();
        std::fs::write(
            root.join("sys/devices/platform/mmc/mmcblk0/mmcblk0p5/partition"),
            b"5\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../mmcblk0p5",
            root.join("dev/disk/by-partuuid/d3c0ffee-05"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../devices/platform/mmc/mmcblk0/mmcblk0p5",
            root.join("sys/class/block/mmcblk0p5"),
        )
        .unwrap();
        std::fs::write(
            root.join("cmdline"),
            "console=tty1 root=PARTUUID=D3C0FFEE-05 rootfstype=ext4 rw rootwait\n",
        )
        .unwrap();
        let kernel = Kernel {
            cmdline: root.join("cmdline"),
            dev: root.join("dev"),
            sys_block: root.join("sys/class/block"),
        };
        assert_eq!(root_disk(&kernel).unwrap(), root.join("dev/mmcblk0"));
        assert_eq!(
            kernel_partition(&kernel, "mmcblk0", 5).as_deref(),
            Some("mmcblk0p5")
        );
        assert_eq!(kernel_partition(&kernel, "mmcblk0", 6), None);

        std::fs::write(root.join("cmdline"), "root=/dev/sda2 rw\n").unwrap();
        let e = root_disk(&kernel).unwrap_err();
        assert!(e.to_string().contains("pass --disk"), "{e}");
    }

    #[test]
    fn the_default_plan_is_where_the_image_puts_it() {
        assert_eq!(DEFAULT_PLAN, format!("/{}", crate::layout::PLAN_PATH));
    }
}
