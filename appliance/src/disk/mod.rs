//! Partition tables on an image file or a block device: the builder writes a whole MBR or GPT,
//! both sides read it back, and first boot adds the partitions the image leaves to the device.

pub mod gpt;
pub mod mbr;

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::layout::{Arch, Extent, FsKind, Role, SECTOR, TableKind};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{}: partition {number} is already taken by {found}, not the partition to be added there; \
         nothing was changed",
        path.display()
    )]
    Occupied {
        path: PathBuf,
        number: u32,
        found: String,
    },
    #[error(
        "{}: partition {number} (bytes {start}..{end}) would overlap partition {other}; nothing was \
         changed",
        path.display()
    )]
    Overlap {
        path: PathBuf,
        number: u32,
        start: u64,
        end: u64,
        other: u32,
    },
    #[error(
        "{}: partition {number} would end at byte {end}, beyond the {limit} bytes the table can \
         address on this disk",
        path.display()
    )]
    Beyond {
        path: PathBuf,
        number: u32,
        end: u64,
        limit: u64,
    },
}

/// A partition as a table records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableEntry {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// MBR type byte (`0x0c`) or GPT type GUID, as [`PartType`] prints it.
    pub type_id: String,
    /// What `root=PARTUUID=` names: `SIGNATURE-NN` on MBR, the partition GUID on GPT.
    pub partuuid: String,
    /// The GPT partition name; MBR has none.
    pub name: Option<String>,
}

impl TableEntry {
    pub fn extent(&self) -> Extent {
        Extent {
            start: self.start,
            size: self.size,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub kind: TableKind,
    /// MBR disk signature (8 hex digits) or GPT disk GUID.
    pub disk_id: String,
    pub entries: Vec<TableEntry>,
}

impl Table {
    pub fn entry(&self, number: u32) -> Option<&TableEntry> {
        self.entries.iter().find(|e| e.number == number)
    }
}

/// The type a partition carries in its table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartType {
    Mbr(u8),
    Gpt(uuid::Uuid),
}

/// MBR type bytes.
pub const MBR_FAT32_LBA: u8 = 0x0c;
pub const MBR_LINUX: u8 = 0x83;

impl PartType {
    /// The one choice of type the builder writes and first boot adds. FAT is FAT32-LBA on MBR
    /// and Microsoft basic data on GPT (what the Raspberry Pi firmware and UEFI read); a system
    /// partition on GPT is the Discoverable Partitions Specification's root type for the
    /// architecture, so tools know what it holds; everything else is Linux data.
    pub fn of(table: TableKind, role: Role, fs: FsKind, arch: Arch) -> PartType {
        use ::gpt::partition_types as t;
        match table {
            TableKind::Mbr => PartType::Mbr(if fs == FsKind::Vfat {
                MBR_FAT32_LBA
            } else {
                MBR_LINUX
            }),
            TableKind::Gpt => PartType::Gpt(match (role, fs, arch) {
                (_, FsKind::Vfat, _) => t::BASIC.guid,
                (Role::System, _, Arch::Arm64) => t::LINUX_ROOT_ARM_64.guid,
                (Role::System, _, Arch::Amd64) => t::LINUX_ROOT_X64.guid,
                _ => t::LINUX_FS.guid,
            }),
        }
    }

    /// Reads back what [`fmt::Display`] printed: `0x83`, or a GUID.
    pub fn parse(table: TableKind, text: &str) -> Option<PartType> {
        match table {
            TableKind::Mbr => {
                let hex = text.strip_prefix("0x")?;
                u8::from_str_radix(hex, 16).ok().map(PartType::Mbr)
            }
            TableKind::Gpt => text.parse().ok().map(PartType::Gpt),
        }
    }
}

impl fmt::Display for PartType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartType::Mbr(b) => write!(f, "0x{b:02x}"),
            PartType::Gpt(g) => write!(f, "{}", g.hyphenated()),
        }
    }
}

/// A partition to write into a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub part_type: PartType,
    /// The GPT partition GUID; on MBR it must be the `SIGNATURE-NN` the table implies.
    pub partuuid: String,
    /// The GPT partition name; MBR has none.
    pub name: String,
    pub extent: Extent,
}

/// Bytes the table can address on a disk of `disk_bytes`: an MBR counts sectors in 32 bits.
pub fn addressable(kind: TableKind, disk_bytes: u64) -> u64 {
    match kind {
        TableKind::Gpt => disk_bytes,
        TableKind::Mbr => disk_bytes.min(u64::from(u32::MAX) * SECTOR),
    }
}

/// The size of an image file or a block device (seeking to the end works for both).
pub fn size_of(file: &mut File, path: &Path) -> Result<u64, TableError> {
    file.seek(SeekFrom::End(0)).map_err(io(path))
}

/// Reads whichever table `image` has: a GPT behind a protective MBR, or an MBR.
pub fn read(image: &Path) -> Result<Table, TableError> {
    let mut f = File::open(image).map_err(io(image))?;
    let size = size_of(&mut f, image)?;
    read_from(&mut f, image, size)
}

/// Reads the table of `file` (an image or a device of `disk_bytes`).
pub fn read_from(file: &mut File, path: &Path, disk_bytes: u64) -> Result<Table, TableError> {
    match kind_of(file, path)? {
        TableKind::Gpt => gpt::read(file, path, disk_bytes),
        TableKind::Mbr => mbr::read(file, path),
    }
}

/// Writes a whole new table for a disk of `disk_bytes` (the builder's image, sized already).
/// `disk_id` is the MBR signature as 8 hex digits or the GPT disk GUID.
pub fn write(
    file: &mut File,
    path: &Path,
    kind: TableKind,
    disk_id: &str,
    parts: &[Part],
    disk_bytes: u64,
) -> Result<(), TableError> {
    let change = match kind {
        TableKind::Mbr => {
            let signature = u32::from_str_radix(disk_id, 16)
                .map_err(|_| invalid(path, format!("`{disk_id}` is not an MBR signature")))?;
            mbr::fresh(path, signature, parts, disk_bytes)?
        }
        TableKind::Gpt => {
            let guid = disk_id
                .parse()
                .map_err(|_| invalid(path, format!("`{disk_id}` is not a disk GUID")))?;
            gpt::fresh(path, guid, parts, disk_bytes)?
        }
    };
    for r in &change.target {
        write_at(file, path, r.offset, &r.bytes)?;
    }
    Ok(())
}

/// The change that adds `parts` to the table on `file` (a disk of `disk_bytes`) and makes the
/// table span the whole disk: on GPT the backup moves to the disk's end, on MBR the extended
/// partition reaches it. Entries already there exactly as given are kept; one there with the
/// same start and identity but an earlier end is extended in place (a slot grown to its
/// twin's size); anything else at a number to be used, or in the way, is an error. Nothing
/// is written until [`Change::apply`].
pub fn add(
    file: &mut File,
    path: &Path,
    disk_bytes: u64,
    parts: &[Part],
) -> Result<Change, TableError> {
    match kind_of(file, path)? {
        TableKind::Gpt => gpt::add(file, path, disk_bytes, parts),
        TableKind::Mbr => mbr::add(file, path, disk_bytes, parts),
    }
}

/// Bytes to put at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// How much of a new partition is cleared before the table names it: every file system
/// signature blkid looks for lies in the first 64 KiB.
const WIPE_BYTES: usize = 64 * 1024;

/// A table change: the sectors it ends with, and the writes that get there.
#[derive(Debug, Clone)]
pub struct Change {
    /// What the table's sectors hold once the change is done.
    pub(crate) target: Vec<Region>,
    /// The writes, in an order where a power cut after any one of them leaves a table that
    /// Linux and the firmware still read (the old one or the new one), and from which the same
    /// change finishes the job.
    pub(crate) steps: Vec<Region>,
    /// The partitions this change adds (those not already in the table).
    pub added: Vec<u32>,
    /// The partitions it extends in place: same start, same identity, a later end. Their
    /// content is kept.
    pub grown: Vec<u32>,
}

impl Change {
    /// Puts zeros over the start of each added partition before the table names it. A card
    /// that held this release before may still have a file system with the very UUID first
    /// boot plans there, which it would otherwise keep as its own.
    pub(crate) fn wipe_first(&mut self, parts: &[Part]) {
        let wipes = parts
            .iter()
            .filter(|p| self.added.contains(&p.number))
            .map(|p| Region {
                offset: p.extent.start,
                bytes: vec![0; WIPE_BYTES.min(p.extent.size as usize)],
            });
        self.steps.splice(0..0, wipes);
    }

    /// Whether `file` already holds the changed table.
    pub fn is_done(&self, file: &mut File, path: &Path) -> Result<bool, TableError> {
        for r in &self.target {
            if !holds(file, path, r)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes what differs, one step at a time, each flushed to the medium before the next.
    /// Returns whether anything was written.
    pub fn apply(&self, file: &mut File, path: &Path) -> Result<bool, TableError> {
        self.apply_steps(file, path, self.steps.len())
    }

    pub(crate) fn apply_steps(
        &self,
        file: &mut File,
        path: &Path,
        count: usize,
    ) -> Result<bool, TableError> {
        if self.is_done(file, path)? {
            return Ok(false);
        }
        for r in self.steps.iter().take(count) {
            if !holds(file, path, r)? {
                write_at(file, path, r.offset, &r.bytes)?;
                file.sync_data().map_err(io(path))?;
            }
        }
        Ok(true)
    }
}

fn holds(file: &mut File, path: &Path, r: &Region) -> Result<bool, TableError> {
    Ok(read_at(file, path, r.offset, r.bytes.len())?.as_deref() == Some(&r.bytes[..]))
}

/// GPT when sector 0 is a protective MBR or sector 1 a GPT header, MBR otherwise.
fn kind_of(file: &mut File, path: &Path) -> Result<TableKind, TableError> {
    let head = read_at(file, path, 0, 2 * SECTOR as usize)?
        .ok_or_else(|| invalid(path, "shorter than two sectors: no partition table".into()))?;
    let protective = (0..4).any(|i| head[446 + 16 * i + 4] == mbr::PROTECTIVE);
    if protective || &head[512..520] == b"EFI PART" {
        Ok(TableKind::Gpt)
    } else {
        Ok(TableKind::Mbr)
    }
}

/// `len` bytes at `offset`, or `None` when the file ends first.
pub(crate) fn read_at(
    file: &mut File,
    path: &Path,
    offset: u64,
    len: usize,
) -> Result<Option<Vec<u8>>, TableError> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    match file.read_exact(&mut buf) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn write_at(file: &mut File, path: &Path, offset: u64, bytes: &[u8]) -> Result<(), TableError> {
    file.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn invalid(path: &Path, reason: String) -> TableError {
    TableError::Invalid {
        path: path.to_owned(),
        reason,
    }
}

/// Refuses `p` when it overlaps one of `others` (by number and extent).
pub(crate) fn check_overlap(
    path: &Path,
    p: &Part,
    others: &[(u32, Extent)],
) -> Result<(), TableError> {
    for &(other, e) in others {
        if other != p.number && p.extent.start < e.end() && e.start < p.extent.end() {
            return Err(TableError::Overlap {
                path: path.to_owned(),
                number: p.number,
                start: p.extent.start,
                end: p.extent.end(),
                other,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_and_parse_back() {
        let fat = PartType::of(TableKind::Mbr, Role::Boot, FsKind::Vfat, Arch::Arm64);
        assert_eq!(fat.to_string(), "0x0c");
        assert_eq!(PartType::parse(TableKind::Mbr, "0x0c"), Some(fat));
        let root = PartType::of(TableKind::Gpt, Role::System, FsKind::Ext4, Arch::Arm64);
        assert_eq!(root.to_string(), "b921b045-1df0-41c3-af44-4c6f280d3fae");
        assert_eq!(
            PartType::parse(TableKind::Gpt, &root.to_string()),
            Some(root)
        );
        let data = PartType::of(TableKind::Gpt, Role::Data, FsKind::Ext4, Arch::Amd64);
        assert_eq!(data.to_string(), "0fc63daf-8483-4772-8e79-3d69d8477de4");
        assert_eq!(PartType::parse(TableKind::Mbr, "83"), None);
    }

    #[test]
    fn mbr_addresses_two_tebibytes_at_most() {
        assert_eq!(
            addressable(TableKind::Mbr, 1 << 50),
            u64::from(u32::MAX) * 512
        );
        assert_eq!(addressable(TableKind::Gpt, 1 << 50), 1 << 50);
    }
}
