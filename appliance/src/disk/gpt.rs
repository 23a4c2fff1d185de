//! The GUID partition table (UEFI 2.10 chapter 5): a protective MBR, the primary header and
//! entry array at the start of the disk, their backup at its end.
//!
//! Written by hand rather than with the `gpt` crate, whose writer puts the backup where the
//! file ends, rewrites entries before their header and does not check the entry array's CRC
//! when it reads. Linux reads a disk's GPT only while the primary header and its entries are
//! valid (block/partitions/efi.c, find_valid_gpt: the backup is used alone only with `gpt` on
//! the command line), so first boot must never leave them torn: see [`add`].

use std::fs::File;
use std::path::Path;

use uuid::Uuid;

use crate::layout::{Extent, GPT_BACKUP_SECTORS, SECTOR, TableKind};

use super::{
    Change, Part, PartType, Region, Table, TableEntry, TableError, check_overlap, invalid,
};

const ENTRY_COUNT: usize = 128;
const ENTRY_SIZE: usize = 128;
const ARRAY_BYTES: usize = ENTRY_COUNT * ENTRY_SIZE;
const ARRAY_SECTORS: u64 = ARRAY_BYTES as u64 / SECTOR;
/// Protective MBR, primary header, primary entries.
const FIRST_USABLE: u64 = 2 + ARRAY_SECTORS;
/// Where first boot stages a new entry array: right after the primary one, in the gap the
/// layout leaves before the first partition (which starts at [`crate::layout::ALIGN`]).
const STAGING_LBA: u64 = FIRST_USABLE;
const HEADER_SIZE: usize = 92;
const REVISION_1_0: u32 = 0x0001_0000;

/// CRC-32 as GPT uses it (ISO-HDLC: reflected polynomial 0xEDB88320, UEFI 2.10 5.3.2).
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// A GPT header (UEFI 2.10 table 5-5).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    current_lba: u64,
    backup_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: Uuid,
    entries_lba: u64,
    entry_count: u32,
    entries_crc: u32,
}

impl Header {
    fn to_sector(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0..8].copy_from_slice(b"EFI PART");
        s[8..12].copy_from_slice(&REVISION_1_0.to_le_bytes());
        s[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        s[24..32].copy_from_slice(&self.current_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.backup_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable.to_le_bytes());
        s[56..72].copy_from_slice(&self.disk_guid.to_bytes_le());
        s[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        s[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32(&s[..HEADER_SIZE]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }

    /// A header with a good signature and CRC, and entries this code can read.
    fn parse(s: &[u8]) -> Option<Header> {
        let u32_at = |o: usize| u32::from_le_bytes(s[o..o + 4].try_into().expect("4"));
        let u64_at = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().expect("8"));
        if &s[0..8] != b"EFI PART" {
            return None;
        }
        let size = u32_at(12) as usize;
        if !(HEADER_SIZE..=s.len()).contains(&size) {
            return None;
        }
        let mut copy = s[..size].to_vec();
        copy[16..20].fill(0);
        if crc32(&copy) != u32_at(16) || u32_at(84) as usize != ENTRY_SIZE {
            return None;
        }
        let entry_count = u32_at(80);
        if entry_count == 0 || entry_count > 1024 {
            return None;
        }
        Some(Header {
            current_lba: u64_at(24),
            backup_lba: u64_at(32),
            first_usable: u64_at(40),
            last_usable: u64_at(48),
            disk_guid: Uuid::from_bytes_le(s[56..72].try_into().expect("16")),
            entries_lba: u64_at(72),
            entry_count,
            entries_crc: u32_at(88),
        })
    }
}

/// A partition entry (UEFI 2.10 table 5-6).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    type_guid: Uuid,
    guid: Uuid,
    first_lba: u64,
    last_lba: u64,
    attributes: u64,
    name: String,
}

impl Entry {
    fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..16].copy_from_slice(&self.type_guid.to_bytes_le());
        b[16..32].copy_from_slice(&self.guid.to_bytes_le());
        b[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        // UTF-16LE, 36 code units at most, zero-padded.
        for (i, unit) in self.name.encode_utf16().take(36).enumerate() {
            b[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        b
    }

    /// `None` for an unused entry (type GUID zero).
    fn parse(b: &[u8]) -> Option<Entry> {
        let type_guid = Uuid::from_bytes_le(b[0..16].try_into().expect("16"));
        if type_guid.is_nil() {
            return None;
        }
        let units: Vec<u16> = b[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Some(Entry {
            type_guid,
            guid: Uuid::from_bytes_le(b[16..32].try_into().expect("16")),
            first_lba: u64::from_le_bytes(b[32..40].try_into().expect("8")),
            last_lba: u64::from_le_bytes(b[40..48].try_into().expect("8")),
            attributes: u64::from_le_bytes(b[48..56].try_into().expect("8")),
            name: String::from_utf16_lossy(&units),
        })
    }

    fn extent(&self) -> Extent {
        Extent {
            start: self.first_lba * SECTOR,
            size: (self.last_lba + 1).saturating_sub(self.first_lba) * SECTOR,
        }
    }
}

/// The used entries of an array with their partition numbers (slot + 1).
fn entries(array: &[u8]) -> Vec<(u32, Entry)> {
    array
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .filter_map(|(i, b)| Entry::parse(b).map(|e| (i as u32 + 1, e)))
        .collect()
}

/// A valid header with the entry array it describes.
struct OnDisk {
    header: Header,
    array: Vec<u8>,
}

/// The header at `lba` and its entries, when both are intact.
fn read_at(file: &mut File, path: &Path, lba: u64) -> Result<Option<OnDisk>, TableError> {
    let Some(sector) = super::read_at(file, path, lba * SECTOR, SECTOR as usize)? else {
        return Ok(None);
    };
    let Some(header) = Header::parse(&sector).filter(|h| h.current_lba == lba) else {
        return Ok(None);
    };
    let len = header.entry_count as usize * ENTRY_SIZE;
    let Some(array) = super::read_at(file, path, header.entries_lba * SECTOR, len)? else {
        return Ok(None);
    };
    Ok((crc32(&array) == header.entries_crc).then_some(OnDisk { header, array }))
}

/// The primary table when it is intact; else the backup at the disk's end, or where the
/// primary header says it is (the end of the image, before first boot moved it).
fn find(file: &mut File, path: &Path, disk_bytes: u64) -> Result<OnDisk, TableError> {
    if let Some(t) = read_at(file, path, 1)? {
        return Ok(t);
    }
    let last = (disk_bytes / SECTOR).saturating_sub(1);
    if let Some(t) = read_at(file, path, last)? {
        return Ok(t);
    }
    let claimed = super::read_at(file, path, SECTOR, SECTOR as usize)?
        .and_then(|s| Header::parse(&s))
        .map(|h| h.backup_lba);
    if let Some(lba) = claimed.filter(|&l| l != last && l > 1)
        && let Some(t) = read_at(file, path, lba)?
    {
        return Ok(t);
    }
    Err(invalid(
        path,
        "no intact GPT: neither the primary header and entries nor a backup pass their CRC checks"
            .into(),
    ))
}

pub(super) fn read(file: &mut File, path: &Path, disk_bytes: u64) -> Result<Table, TableError> {
    let t = find(file, path, disk_bytes)?;
    Ok(Table {
        kind: TableKind::Gpt,
        disk_id: t.header.disk_guid.to_string(),
        entries: entries(&t.array)
            .into_iter()
            .map(|(number, e)| TableEntry {
                number,
                start: e.extent().start,
                size: e.extent().size,
                type_id: PartType::Gpt(e.type_guid).to_string(),
                partuuid: e.guid.to_string(),
                name: Some(e.name.clone()),
            })
            .collect(),
    })
}

/// Sector 0 of a GPT disk: one partition of type EE over the whole disk (UEFI 2.10 5.2.3).
fn protective_mbr(disk_sectors: u64) -> [u8; 512] {
    let size = u32::try_from(disk_sectors - 1).unwrap_or(u32::MAX);
    ::gpt::mbr::ProtectiveMBR::with_lb_size(size).to_bytes()
}

/// `sector0` with its protective partition covering a disk of `disk_sectors`.
fn protective_for(
    path: &Path,
    mut sector0: [u8; 512],
    disk_sectors: u64,
) -> Result<[u8; 512], TableError> {
    let size = u32::try_from(disk_sectors - 1).unwrap_or(u32::MAX);
    let i = (0..4)
        .find(|i| sector0[446 + 16 * i + 4] == super::mbr::PROTECTIVE)
        .ok_or_else(|| {
            invalid(
                path,
                "sector 0 is not a protective MBR (no type EE entry)".into(),
            )
        })?;
    sector0[446 + 16 * i + 12..446 + 16 * i + 16].copy_from_slice(&size.to_le_bytes());
    Ok(sector0)
}

/// Every sector of a table whose backup sits at the end of a disk of `disk_sectors`.
struct Sectors {
    pmbr: Region,
    primary_header: Region,
    primary_array: Region,
    backup_array: Region,
    backup_header: Region,
    /// The primary header pointing at a copy of the array at [`STAGING_LBA`].
    staged_header: Region,
}

fn sectors(
    pmbr: [u8; 512],
    disk_guid: Uuid,
    first_usable: u64,
    array: &[u8],
    disk_sectors: u64,
) -> Sectors {
    let backup_lba = disk_sectors - 1;
    let backup_array_lba = backup_lba - ARRAY_SECTORS;
    let header = |current_lba: u64, entries_lba: u64| Header {
        current_lba,
        backup_lba: if current_lba == 1 { backup_lba } else { 1 },
        first_usable,
        last_usable: backup_array_lba - 1,
        disk_guid,
        entries_lba,
        entry_count: ENTRY_COUNT as u32,
        entries_crc: crc32(array),
    };
    let region = |lba: u64, bytes: &[u8]| Region {
        offset: lba * SECTOR,
        bytes: bytes.to_vec(),
    };
    Sectors {
        pmbr: region(0, &pmbr),
        primary_header: region(1, &header(1, 2).to_sector()),
        primary_array: region(2, array),
        backup_array: region(backup_array_lba, array),
        backup_header: region(
            backup_lba,
            &header(backup_lba, backup_array_lba).to_sector(),
        ),
        staged_header: region(1, &header(1, STAGING_LBA).to_sector()),
    }
}

fn entry_of(path: &Path, p: &Part) -> Result<Entry, TableError> {
    let PartType::Gpt(type_guid) = p.part_type else {
        return Err(invalid(
            path,
            format!("partition {} has an MBR type in a GPT", p.number),
        ));
    };
    let guid = p.partuuid.parse().map_err(|_| {
        invalid(
            path,
            format!("partition {}: `{}` is not a GUID", p.number, p.partuuid),
        )
    })?;
    if !p.extent.start.is_multiple_of(SECTOR)
        || !p.extent.size.is_multiple_of(SECTOR)
        || p.extent.size == 0
    {
        return Err(invalid(
            path,
            format!("partition {} is not in whole sectors", p.number),
        ));
    }
    Ok(Entry {
        type_guid,
        guid,
        first_lba: p.extent.start / SECTOR,
        last_lba: p.extent.end() / SECTOR - 1,
        attributes: 0,
        name: p.name.clone(),
    })
}

/// Puts `parts` into `array`; returns the numbers that were not there already, and those
/// that were there shorter, with the same start and identity, and are extended in place.
fn insert(
    path: &Path,
    array: &mut [u8],
    parts: &[Part],
    first_usable: u64,
    last_usable: u64,
) -> Result<(Vec<u32>, Vec<u32>), TableError> {
    let existing = entries(array);
    let mut taken: Vec<(u32, Extent)> = existing.iter().map(|(n, e)| (*n, e.extent())).collect();
    let (mut added, mut grown) = (Vec::new(), Vec::new());
    for p in parts {
        let e = entry_of(path, p)?;
        let slot = (p.number as usize)
            .checked_sub(1)
            .filter(|&s| s < ENTRY_COUNT)
            .ok_or_else(|| invalid(path, format!("there is no partition {} in a GPT", p.number)))?;
        if let Some((_, found)) = existing.iter().find(|(n, _)| *n == p.number) {
            if *found == e {
                continue;
            }
            let longer = Entry {
                last_lba: e.last_lba,
                ..found.clone()
            };
            if longer == e && found.last_lba < e.last_lba {
                check_overlap(path, p, &taken)?;
                if e.last_lba > last_usable {
                    return Err(TableError::Beyond {
                        path: path.to_owned(),
                        number: p.number,
                        end: p.extent.end(),
                        limit: (last_usable + 1) * SECTOR,
                    });
                }
                array[slot * ENTRY_SIZE..(slot + 1) * ENTRY_SIZE].copy_from_slice(&e.to_bytes());
                taken.retain(|(n, _)| *n != p.number);
                taken.push((p.number, p.extent));
                grown.push(p.number);
                continue;
            }
            return Err(TableError::Occupied {
                path: path.to_owned(),
                number: p.number,
                found: format!(
                    "`{}` ({}, sectors {}..={})",
                    found.name, found.guid, found.first_lba, found.last_lba
                ),
            });
        }
        check_overlap(path, p, &taken)?;
        if e.first_lba < first_usable || e.last_lba > last_usable {
            return Err(TableError::Beyond {
                path: path.to_owned(),
                number: p.number,
                end: p.extent.end(),
                limit: (last_usable + 1) * SECTOR,
            });
        }
        array[slot * ENTRY_SIZE..(slot + 1) * ENTRY_SIZE].copy_from_slice(&e.to_bytes());
        taken.push((p.number, p.extent));
        added.push(p.number);
    }
    Ok((added, grown))
}

/// A whole new table with `disk_guid` for a disk of `disk_bytes`.
pub(super) fn fresh(
    path: &Path,
    disk_guid: Uuid,
    parts: &[Part],
    disk_bytes: u64,
) -> Result<Change, TableError> {
    let disk_sectors = disk_bytes / SECTOR;
    let last_usable = last_usable(path, disk_sectors)?;
    let mut array = vec![0u8; ARRAY_BYTES];
    let (added, grown) = insert(path, &mut array, parts, FIRST_USABLE, last_usable)?;
    let l = sectors(
        protective_mbr(disk_sectors),
        disk_guid,
        FIRST_USABLE,
        &array,
        disk_sectors,
    );
    let target = vec![
        l.pmbr,
        l.primary_header,
        l.primary_array,
        l.backup_array,
        l.backup_header,
    ];
    Ok(Change {
        steps: target.clone(),
        target,
        added,
        grown,
    })
}

fn last_usable(path: &Path, disk_sectors: u64) -> Result<u64, TableError> {
    disk_sectors
        .checked_sub(GPT_BACKUP_SECTORS + 1)
        .filter(|&l| l >= FIRST_USABLE + ARRAY_SECTORS)
        .ok_or_else(|| {
            invalid(
                path,
                format!("{disk_sectors} sectors are too few for a GPT"),
            )
        })
}

/// Adds `parts` to the table on `file` and moves its backup to the end of the disk.
///
/// The order keeps a valid primary table at every moment: first the backup entries and header
/// at the disk's end (free space until now), then the new entries at a staging place and the
/// primary header pointing there (one sector: the switch), then the entries in their usual
/// place and the primary header pointing back (the second switch). Only then is the staging
/// copy cleared and the protective MBR widened. A power cut after the second switch but before
/// the clearing leaves an unused copy in free space, which nothing reads.
pub(super) fn add(
    file: &mut File,
    path: &Path,
    disk_bytes: u64,
    parts: &[Part],
) -> Result<Change, TableError> {
    let disk_sectors = disk_bytes / SECTOR;
    let last_usable = last_usable(path, disk_sectors)?;
    let current = find(file, path, disk_bytes)?;
    if current.header.entry_count as usize != ENTRY_COUNT {
        return Err(invalid(
            path,
            format!(
                "the GPT has {} entries; first boot handles tables of {ENTRY_COUNT}",
                current.header.entry_count
            ),
        ));
    }
    let first_usable = current.header.first_usable;
    let mut array = current.array.clone();
    let (added, grown) = insert(path, &mut array, parts, first_usable, last_usable)?;
    let staging = Extent {
        start: STAGING_LBA * SECTOR,
        size: ARRAY_BYTES as u64,
    };
    if let Some((n, _)) = entries(&array)
        .iter()
        .find(|(_, e)| e.extent().start < staging.end() && staging.start < e.extent().end())
    {
        return Err(invalid(
            path,
            format!(
                "partition {n} lies where the new entries are staged (sectors {STAGING_LBA}..{})",
                STAGING_LBA + ARRAY_SECTORS
            ),
        ));
    }
    let sector0: [u8; 512] = super::read_at(file, path, 0, SECTOR as usize)?
        .ok_or_else(|| invalid(path, "no sector 0".into()))?
        .try_into()
        .expect("one sector");
    let pmbr = protective_for(path, sector0, disk_sectors)?;
    let l = sectors(
        pmbr,
        current.header.disk_guid,
        first_usable,
        &array,
        disk_sectors,
    );
    let staged_array = Region {
        offset: staging.start,
        bytes: array.clone(),
    };
    let cleared = Region {
        offset: staging.start,
        bytes: vec![0; ARRAY_BYTES],
    };
    let steps = vec![
        l.backup_array.clone(),
        l.backup_header.clone(),
        staged_array,
        l.staged_header,
        l.primary_array.clone(),
        l.primary_header.clone(),
        cleared,
        l.pmbr.clone(),
    ];
    let mut change = Change {
        target: vec![
            l.pmbr,
            l.primary_header,
            l.primary_array,
            l.backup_array,
            l.backup_header,
        ],
        steps,
        added,
        grown,
    };
    change.wipe_first(parts);
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn header_and_entry_round_trip() {
        let h = Header {
            current_lba: 1,
            backup_lba: 999,
            first_usable: 34,
            last_usable: 965,
            disk_guid: Uuid::from_u128(0x1234),
            entries_lba: 2,
            entry_count: 128,
            entries_crc: 7,
        };
        assert_eq!(Header::parse(&h.to_sector()), Some(h.clone()));
        let mut bad = h.to_sector();
        bad[40] ^= 1;
        assert_eq!(Header::parse(&bad), None, "a changed byte fails the CRC");
        let e = Entry {
            type_guid: Uuid::from_u128(1),
            guid: Uuid::from_u128(2),
            first_lba: 8192,
            last_lba: 16383,
            attributes: 0,
            name: "system-a".into(),
        };
        assert_eq!(Entry::parse(&e.to_bytes()), Some(e));
        assert_eq!(Entry::parse(&[0u8; 128]), None);
    }

    const M: u64 = 1 << 20;

    fn part(number: u32, start: u64, size: u64) -> Part {
        Part {
            number,
            part_type: PartType::Gpt(::gpt::partition_types::LINUX_FS.guid),
            partuuid: Uuid::from_u128(u128::from(number)).to_string(),
            name: format!("p{number}"),
            extent: Extent { start, size },
        }
    }

    #[test]
    fn the_primary_table_stays_valid_through_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let image = 12 * M + 33 * 512;
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(image).unwrap();
        let shipped = part(1, 4 * M, 8 * M);
        super::super::write(
            &mut f,
            &path,
            TableKind::Gpt,
            &Uuid::from_u128(9).to_string(),
            std::slice::from_ref(&shipped),
            image,
        )
        .unwrap();
        let out = std::process::Command::new("sgdisk")
            .arg("-v")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("No problems found"),
            "{out:?}"
        );
        f.set_len(64 * M).unwrap();
        let change = add(
            &mut f,
            &path,
            64 * M,
            &[part(2, 12 * M, 8 * M), part(3, 20 * M, 40 * M)],
        )
        .unwrap();
        assert_eq!(change.added, vec![2, 3]);
        let pristine = std::fs::read(&path).unwrap();
        for cut in 0..=change.steps.len() {
            std::fs::write(&path, &pristine).unwrap();
            let mut f = File::options().read(true).write(true).open(&path).unwrap();
            change.apply_steps(&mut f, &path, cut).unwrap();
            let primary = read_at(&mut f, &path, 1)
                .unwrap()
                .unwrap_or_else(|| panic!("cut after {cut}: no valid primary GPT"));
            assert!(
                entries(&primary.array)
                    .iter()
                    .any(|(n, e)| *n == 1 && e.extent() == shipped.extent),
                "cut after {cut}: partition 1 is in the primary table"
            );
        }
        let mut f = File::options().read(true).write(true).open(&path).unwrap();
        assert!(change.is_done(&mut f, &path).unwrap());
        assert!(
            !change.apply(&mut f, &path).unwrap(),
            "done: nothing more to write"
        );
    }

    #[test]
    fn a_slot_grown_in_place_keeps_its_start_and_is_never_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let image = 12 * M + 33 * 512;
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(image).unwrap();
        let shipped = part(1, 4 * M, 8 * M);
        let disk_guid = Uuid::from_u128(9).to_string();
        let parts = std::slice::from_ref(&shipped);
        super::super::write(&mut f, &path, TableKind::Gpt, &disk_guid, parts, image).unwrap();
        f.set_len(64 * M).unwrap();
        let grown = part(1, 4 * M, 16 * M);
        let change = add(
            &mut f,
            &path,
            64 * M,
            &[grown.clone(), part(2, 20 * M, 40 * M)],
        )
        .unwrap();
        assert_eq!(
            (change.added.clone(), change.grown.clone()),
            (vec![2], vec![1])
        );
        assert!(
            change
                .steps
                .iter()
                .all(|r| r.offset >= 12 * M || r.offset < 4 * M),
            "nothing is written inside the grown partition (its content stays)"
        );
        let pristine = std::fs::read(&path).unwrap();
        for cut in 0..=change.steps.len() {
            std::fs::write(&path, &pristine).unwrap();
            let mut f = File::options().read(true).write(true).open(&path).unwrap();
            change.apply_steps(&mut f, &path, cut).unwrap();
            let primary = read_at(&mut f, &path, 1)
                .unwrap()
                .unwrap_or_else(|| panic!("cut after {cut}: no valid primary GPT"));
            let one = entries(&primary.array)
                .into_iter()
                .find(|(n, _)| *n == 1)
                .map(|(_, e)| e.extent());
            assert!(
                one == Some(shipped.extent) || one == Some(grown.extent),
                "cut after {cut}: partition 1 is {one:?}"
            );
        }
        let out = std::process::Command::new("sgdisk")
            .arg("-v")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("No problems found"),
            "{out:?}"
        );
        // Shorter, or moved, is not growing: refused.
        let mut f = File::options().read(true).write(true).open(&path).unwrap();
        for wrong in [part(1, 4 * M, 12 * M), part(1, 8 * M, 12 * M)] {
            let e = add(&mut f, &path, 64 * M, &[wrong]).unwrap_err();
            assert!(matches!(e, TableError::Occupied { number: 1, .. }), "{e}");
        }
    }
}
