//! The MBR partition table, with an extended partition and its chain of extended boot records
//! (EBRs) for partitions 5 and up. Written by hand: it is 16-byte records in 512-byte sectors,
//! and every byte must come from the layout.
//!
//! Each logical partition has its EBR one alignment unit in front of it (where
//! [`crate::layout::Placer`] leaves room); EBR entries are relative to the EBR, links to the
//! next EBR relative to the extended partition (the chain as Linux's block/partitions/msdos.c
//! follows it).

use std::fs::File;
use std::path::Path;

use crate::layout::{ALIGN, Extent, MBR_EXTENDED_LBA, SECTOR, TableKind};

use super::{
    Change, Part, PartType, Region, Table, TableEntry, TableError, check_overlap, invalid,
};

/// The "next EBR" link inside an EBR chain (and the CHS-addressed extended type).
const EBR_LINK: u8 = 0x05;
/// Extended partition as Linux names it.
const EXTENDED_LINUX: u8 = 0x85;
/// The type of the one partition of a protective MBR in front of a GPT.
pub const PROTECTIVE: u8 = 0xee;
/// How many EBRs a chain may have before it is taken for a loop.
const MAX_LOGICALS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Record {
    bootable: bool,
    type_byte: u8,
    start: u64,
    sectors: u64,
}

impl Record {
    fn to_bytes(self) -> [u8; 16] {
        let mut r = [0u8; 16];
        if self.type_byte == 0 {
            return r;
        }
        r[0] = if self.bootable { 0x80 } else { 0 };
        // CHS is meaningless on cards this size; FE FF FF is the conventional "use LBA" value.
        r[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
        r[4] = self.type_byte;
        r[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
        r[8..12].copy_from_slice(&(self.start as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(self.sectors as u32).to_le_bytes());
        r
    }

    fn parse(r: &[u8]) -> Record {
        Record {
            bootable: r[0] == 0x80,
            type_byte: r[4],
            start: u64::from(u32::from_le_bytes(r[8..12].try_into().expect("4"))),
            sectors: u64::from(u32::from_le_bytes(r[12..16].try_into().expect("4"))),
        }
    }

    fn is_extended(self) -> bool {
        matches!(self.type_byte, EBR_LINK | MBR_EXTENDED_LBA | EXTENDED_LINUX)
    }
}

fn records(s: &[u8; 512]) -> [Record; 4] {
    std::array::from_fn(|i| Record::parse(&s[446 + 16 * i..462 + 16 * i]))
}

fn set_record(s: &mut [u8; 512], i: usize, r: Record) {
    s[446 + 16 * i..462 + 16 * i].copy_from_slice(&r.to_bytes());
}

fn has_signature(s: &[u8; 512]) -> bool {
    s[510..512] == [0x55, 0xaa]
}

fn empty_sector() -> [u8; 512] {
    let mut s = [0u8; 512];
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// One EBR of the chain: where it is and what it holds.
#[derive(Debug, Clone)]
struct Ebr {
    lba: u64,
    sector: [u8; 512],
}

impl Ebr {
    /// The logical partition it describes, in absolute sectors.
    fn logical(&self) -> Option<Record> {
        let r = records(&self.sector)[0];
        (r.type_byte != 0 && r.sectors != 0).then_some(Record {
            start: self.lba + r.start,
            ..r
        })
    }
}

/// The MBR with its EBR chain, as found on a disk.
#[derive(Debug, Clone)]
struct Mbr {
    sector0: [u8; 512],
    ebrs: Vec<Ebr>,
}

impl Mbr {
    fn signature(&self) -> u32 {
        u32::from_le_bytes(self.sector0[440..444].try_into().expect("4"))
    }

    fn extended(&self) -> Option<(usize, Record)> {
        records(&self.sector0)
            .into_iter()
            .enumerate()
            .find(|(_, r)| r.is_extended())
    }

    /// Every partition with its number: primaries by slot, logicals from 5 in chain order.
    fn partitions(&self) -> Vec<(u32, Record)> {
        let primaries = records(&self.sector0)
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.type_byte != 0 && !r.is_extended())
            .map(|(i, r)| (i as u32 + 1, r));
        let logicals = self
            .ebrs
            .iter()
            .filter_map(Ebr::logical)
            .zip(5..)
            .map(|(r, n)| (n, r));
        primaries.chain(logicals).collect()
    }

    fn read(file: &mut File, path: &Path) -> Result<Mbr, TableError> {
        let read_sector = |file: &mut File, lba: u64| -> Result<[u8; 512], TableError> {
            let bytes = super::read_at(file, path, lba * SECTOR, SECTOR as usize)?
                .ok_or_else(|| invalid(path, format!("sector {lba} is beyond the end")))?;
            Ok(bytes.try_into().expect("one sector"))
        };
        let sector0 = read_sector(file, 0)?;
        if !has_signature(&sector0) {
            return Err(invalid(
                path,
                "no partition table (no 55 AA signature in sector 0)".into(),
            ));
        }
        let mut mbr = Mbr {
            sector0,
            ebrs: Vec::new(),
        };
        if let Some((_, ext)) = mbr.extended() {
            let mut lba = ext.start;
            loop {
                let sector = read_sector(file, lba)?;
                if !has_signature(&sector) {
                    return Err(invalid(path, format!("broken EBR at sector {lba}")));
                }
                let link = records(&sector)[1];
                mbr.ebrs.push(Ebr { lba, sector });
                if link.type_byte == 0 {
                    break;
                }
                let next = ext.start + link.start;
                // Links only go forward; anything else is a loop, not a chain.
                if next <= lba || mbr.ebrs.len() >= MAX_LOGICALS {
                    return Err(invalid(
                        path,
                        format!("the EBR chain loops or runs on at sector {lba}"),
                    ));
                }
                lba = next;
            }
        }
        Ok(mbr)
    }
}

pub fn read(file: &mut File, path: &Path) -> Result<Table, TableError> {
    let mbr = Mbr::read(file, path)?;
    Ok(table(&mbr))
}

fn partuuid(signature: u32, number: u32) -> String {
    format!("{signature:08x}-{number:02x}")
}

fn table(mbr: &Mbr) -> Table {
    let signature = mbr.signature();
    Table {
        kind: TableKind::Mbr,
        disk_id: format!("{signature:08x}"),
        entries: mbr
            .partitions()
            .into_iter()
            .map(|(number, r)| TableEntry {
                number,
                start: r.start * SECTOR,
                size: r.sectors * SECTOR,
                type_id: PartType::Mbr(r.type_byte).to_string(),
                partuuid: partuuid(signature, number),
                name: None,
            })
            .collect(),
    }
}

/// A whole new table with `signature` for a disk of `disk_bytes`.
pub(super) fn fresh(
    path: &Path,
    signature: u32,
    parts: &[Part],
    disk_bytes: u64,
) -> Result<Change, TableError> {
    let mut sector0 = empty_sector();
    sector0[440..444].copy_from_slice(&signature.to_le_bytes());
    let empty = Mbr {
        sector0,
        ebrs: Vec::new(),
    };
    change(path, &empty, parts, disk_bytes)
}

pub(super) fn add(
    file: &mut File,
    path: &Path,
    disk_bytes: u64,
    parts: &[Part],
) -> Result<Change, TableError> {
    let mbr = Mbr::read(file, path)?;
    let mut change = change(path, &mbr, parts, disk_bytes)?;
    change.wipe_first(parts);
    Ok(change)
}

fn record_of(path: &Path, signature: u32, p: &Part) -> Result<Record, TableError> {
    let PartType::Mbr(type_byte) = p.part_type else {
        return Err(invalid(
            path,
            format!("partition {} has a GPT type in an MBR", p.number),
        ));
    };
    if !p
        .partuuid
        .eq_ignore_ascii_case(&partuuid(signature, p.number))
    {
        return Err(invalid(
            path,
            format!(
                "partition {} is to have PARTUUID {}, but on this MBR it is {}",
                p.number,
                p.partuuid,
                partuuid(signature, p.number)
            ),
        ));
    }
    Ok(Record {
        bootable: false,
        type_byte,
        start: p.extent.start / SECTOR,
        sectors: p.extent.size / SECTOR,
    })
}

/// Adds `parts` to `mbr` and lets the extended partition reach the end of the disk.
///
/// Written in this order: the new EBRs (nothing points at them yet), then sector 0 (new
/// primaries, the extended partition grown), then the link from the last existing EBR to the
/// first new one. Each is one sector, so after any of them the chain is whole.
fn change(path: &Path, mbr: &Mbr, parts: &[Part], disk_bytes: u64) -> Result<Change, TableError> {
    let signature = mbr.signature();
    let disk_sectors = super::addressable(TableKind::Mbr, disk_bytes) / SECTOR;
    let existing = mbr.partitions();
    let mut taken: Vec<(u32, Extent)> = existing
        .iter()
        .map(|&(n, r)| {
            (
                n,
                Extent {
                    start: r.start * SECTOR,
                    size: r.sectors * SECTOR,
                },
            )
        })
        .collect();
    let mut sector0 = mbr.sector0;
    let (mut added, mut grown) = (Vec::new(), Vec::new());
    let mut new_ebrs: Vec<Ebr> = Vec::new();
    // The existing EBRs as they end: a logical partition extended in place, the last one's
    // link to the first new EBR.
    let mut ebrs = mbr.ebrs.clone();
    let mut next_logical = 5 + mbr.ebrs.iter().filter_map(Ebr::logical).count() as u32;
    let ebr_gap = ALIGN / SECTOR;

    let mut sorted: Vec<&Part> = parts.iter().collect();
    sorted.sort_by_key(|p| p.number);
    for p in sorted {
        if p.extent.start % SECTOR != 0 || p.extent.size % SECTOR != 0 {
            return Err(invalid(
                path,
                format!("partition {} is not in whole sectors", p.number),
            ));
        }
        let rec = record_of(path, signature, p)?;
        if let Some(&(_, found)) = existing.iter().find(|(n, _)| *n == p.number) {
            if (found.type_byte, found.start, found.sectors)
                == (rec.type_byte, rec.start, rec.sectors)
            {
                continue;
            }
            if (found.type_byte, found.start) == (rec.type_byte, rec.start)
                && found.sectors < rec.sectors
            {
                check_overlap(path, p, &taken)?;
                if rec.start + rec.sectors > disk_sectors {
                    return Err(TableError::Beyond {
                        path: path.to_owned(),
                        number: p.number,
                        end: p.extent.end(),
                        limit: disk_sectors * SECTOR,
                    });
                }
                extend(path, &mut sector0, &mut ebrs, p.number, rec)?;
                taken.retain(|(n, _)| *n != p.number);
                taken.push((p.number, p.extent));
                grown.push(p.number);
                continue;
            }
            return Err(TableError::Occupied {
                path: path.to_owned(),
                number: p.number,
                found: format!(
                    "a partition of type 0x{:02x} at sector {} ({} sectors)",
                    found.type_byte, found.start, found.sectors
                ),
            });
        }
        check_overlap(path, p, &taken)?;
        if rec.start + rec.sectors > disk_sectors {
            return Err(TableError::Beyond {
                path: path.to_owned(),
                number: p.number,
                end: p.extent.end(),
                limit: disk_sectors * SECTOR,
            });
        }
        match p.number {
            0 => return Err(invalid(path, "there is no partition 0".into())),
            1..=4 => {
                let slot = p.number as usize - 1;
                if records(&sector0)[slot].type_byte != 0 {
                    return Err(TableError::Occupied {
                        path: path.to_owned(),
                        number: p.number,
                        found: "the extended partition".into(),
                    });
                }
                // The extended partition runs to the end of the disk: a primary goes before it.
                if let Some((i, _)) = mbr
                    .extended()
                    .filter(|(_, ext)| rec.start + rec.sectors > ext.start)
                {
                    return Err(TableError::Overlap {
                        path: path.to_owned(),
                        number: p.number,
                        start: p.extent.start,
                        end: p.extent.end(),
                        other: i as u32 + 1,
                    });
                }
                set_record(&mut sector0, slot, rec);
            }
            n if n != next_logical => {
                return Err(invalid(
                    path,
                    format!(
                        "partition {n} cannot be added: the next logical partition is number \
                         {next_logical} (logical partitions are numbered in chain order)"
                    ),
                ));
            }
            _ => {
                let ebr_lba = rec.start.checked_sub(ebr_gap).ok_or_else(|| {
                    invalid(
                        path,
                        format!("no room for the EBR of partition {}", p.number),
                    )
                })?;
                let ext_start = match records(&sector0).into_iter().find(|r| r.is_extended()) {
                    Some(ext) => ext.start,
                    None => {
                        // The fourth entry holds the extended partition (Layout::numbers).
                        if records(&sector0)[3].type_byte != 0 {
                            return Err(invalid(
                                path,
                                "entry 4 is taken: no room for the extended partition".into(),
                            ));
                        }
                        set_record(
                            &mut sector0,
                            3,
                            Record {
                                bootable: false,
                                type_byte: MBR_EXTENDED_LBA,
                                start: ebr_lba,
                                sectors: 0,
                            },
                        );
                        ebr_lba
                    }
                };
                let after_last = new_ebrs.last().or(ebrs.last()).map_or(ext_start, |e| {
                    e.logical().map_or(e.lba + 1, |l| l.start + l.sectors)
                });
                if ebr_lba < after_last {
                    return Err(invalid(
                        path,
                        format!(
                            "the EBR of partition {} would sit at sector {ebr_lba}, inside the \
                             extended chain before it",
                            p.number
                        ),
                    ));
                }
                let mut sector = empty_sector();
                set_record(
                    &mut sector,
                    0,
                    Record {
                        start: ebr_gap,
                        ..rec
                    },
                );
                let link = Record {
                    bootable: false,
                    type_byte: EBR_LINK,
                    start: ebr_lba - ext_start,
                    sectors: rec.start + rec.sectors - ebr_lba,
                };
                if let Some(prev) = new_ebrs.last_mut().or(ebrs.last_mut()) {
                    set_record(&mut prev.sector, 1, link);
                }
                new_ebrs.push(Ebr {
                    lba: ebr_lba,
                    sector,
                });
                next_logical += 1;
            }
        }
        taken.push((p.number, p.extent));
        added.push(p.number);
    }

    // The extended partition reaches the end of the disk, where the partition that grows ends.
    if let Some((i, ext)) = records(&sector0)
        .into_iter()
        .enumerate()
        .find(|(_, r)| r.is_extended())
    {
        let sectors = disk_sectors.checked_sub(ext.start).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "the extended partition starts at sector {}, beyond the disk",
                    ext.start
                ),
            )
        })?;
        set_record(&mut sector0, i, Record { sectors, ..ext });
    }

    let region = |lba: u64, s: &[u8; 512]| Region {
        offset: lba * SECTOR,
        bytes: s.to_vec(),
    };
    let mut steps: Vec<Region> = new_ebrs.iter().map(|e| region(e.lba, &e.sector)).collect();
    steps.push(region(0, &sector0));
    // A logical partition extended in place and the link to the new chain are in the last
    // existing EBR when that partition is the last one (a system slot followed by partitions
    // made on first boot): one sector, so the old table or the new one, never a mix.
    steps.extend(
        ebrs.iter()
            .zip(&mbr.ebrs)
            .filter(|(now, was)| now.sector != was.sector)
            .map(|(e, _)| region(e.lba, &e.sector)),
    );
    Ok(Change {
        target: steps.clone(),
        steps,
        added,
        grown,
    })
}

/// Extends partition `number` in place to `rec`'s size: a primary in sector 0, a logical in
/// its EBR, where the link to it in the EBR before (if any) covers it too.
fn extend(
    path: &Path,
    sector0: &mut [u8; 512],
    ebrs: &mut [Ebr],
    number: u32,
    rec: Record,
) -> Result<(), TableError> {
    if (1..=4).contains(&number) {
        // The extended partition runs to the end of the disk: a primary stays before it.
        if let Some((i, _)) = records(sector0)
            .into_iter()
            .enumerate()
            .find(|(_, r)| r.is_extended() && rec.start + rec.sectors > r.start)
        {
            return Err(TableError::Overlap {
                path: path.to_owned(),
                number,
                start: rec.start * SECTOR,
                end: (rec.start + rec.sectors) * SECTOR,
                other: i as u32 + 1,
            });
        }
        set_record(sector0, number as usize - 1, rec);
        return Ok(());
    }
    let k = ebrs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.logical().is_some())
        .map(|(k, _)| k)
        .nth(number as usize - 5)
        .ok_or_else(|| invalid(path, format!("no EBR holds partition {number}")))?;
    let own = records(&ebrs[k].sector)[0];
    set_record(
        &mut ebrs[k].sector,
        0,
        Record {
            sectors: rec.sectors,
            ..own
        },
    );
    if k > 0 {
        let lba = ebrs[k].lba;
        let link = records(&ebrs[k - 1].sector)[1];
        set_record(
            &mut ebrs[k - 1].sector,
            1,
            Record {
                sectors: rec.start + rec.sectors - lba,
                ..link
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    fn part(number: u32, type_byte: u8, start: u64, size: u64) -> Part {
        Part {
            number,
            part_type: PartType::Mbr(type_byte),
            partuuid: partuuid(0xdead_beef, number),
            name: String::new(),
            extent: Extent { start, size },
        }
    }

    #[test]
    fn logical_partitions_chain_through_ebrs() {
        let parts = [
            part(1, super::super::MBR_FAT32_LBA, 4 * M, 64 * M),
            part(5, super::super::MBR_LINUX, 72 * M, 100 * M),
            part(6, super::super::MBR_LINUX, 176 * M, 8 * M),
        ];
        let change = fresh(Path::new("t"), 0xdead_beef, &parts, 184 * M).unwrap();
        let out = &change.target;
        assert_eq!(
            out.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![68 * M, 172 * M, 0]
        );
        let sector = |r: &Region| -> [u8; 512] { r.bytes.clone().try_into().unwrap() };
        let mbr = records(&sector(&out[2]));
        assert_eq!(
            (mbr[3].type_byte, mbr[3].start * 512, mbr[3].sectors * 512),
            (0x0f, 68 * M, 116 * M),
            "the fourth entry is the extended partition, to the end of the disk"
        );
        assert_eq!(mbr[1].type_byte, 0, "no partition 2");
        let ebr1 = records(&sector(&out[0]));
        assert_eq!(ebr1[0].start * 512, 4 * M, "relative to its own EBR");
        assert_eq!(
            ebr1[1].start * 512,
            104 * M,
            "relative to the extended partition"
        );
        let ebr2 = records(&sector(&out[1]));
        assert_eq!(ebr2[1].type_byte, 0, "the chain ends");
        assert_eq!(change.added, vec![1, 5, 6]);
    }

    #[test]
    fn a_partuuid_the_signature_does_not_give_is_refused() {
        let mut p = part(1, 0x83, 4 * M, 4 * M);
        p.partuuid = "00000000-01".into();
        let e = fresh(Path::new("t"), 0xdead_beef, &[p], 8 * M).unwrap_err();
        assert!(e.to_string().contains("deadbeef-01"), "{e}");
    }

    #[test]
    fn the_chain_stays_whole_through_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let shipped = [
            part(1, super::super::MBR_FAT32_LBA, 4 * M, 4 * M),
            part(5, super::super::MBR_LINUX, 12 * M, 8 * M),
        ];
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(20 * M).unwrap();
        super::super::write(&mut f, &path, TableKind::Mbr, "deadbeef", &shipped, 20 * M).unwrap();
        f.set_len(64 * M).unwrap();
        let new = [
            part(6, super::super::MBR_LINUX, 24 * M, 8 * M),
            part(7, super::super::MBR_LINUX, 36 * M, 28 * M),
        ];
        let change = add(&mut f, &path, 64 * M, &new).unwrap();
        let pristine = std::fs::read(&path).unwrap();
        for cut in 0..=change.steps.len() {
            std::fs::write(&path, &pristine).unwrap();
            let mut f = File::options().read(true).write(true).open(&path).unwrap();
            change.apply_steps(&mut f, &path, cut).unwrap();
            let t = read(&mut f, &path).unwrap_or_else(|e| panic!("cut after {cut}: {e}"));
            assert_eq!(
                t.entry(5).map(TableEntry::extent),
                Some(shipped[1].extent),
                "cut after {cut}"
            );
        }
        let mut f = File::open(&path).unwrap();
        let t = read(&mut f, &path).unwrap();
        assert_eq!(
            t.entries
                .iter()
                .map(|e| (e.number, e.extent()))
                .collect::<Vec<_>>(),
            [&shipped[..], &new[..]]
                .concat()
                .iter()
                .map(|p| (p.number, p.extent))
                .collect::<Vec<_>>()
        );
        // A number taken by something else is refused.
        let mut f = File::options().read(true).write(true).open(&path).unwrap();
        let e = add(
            &mut f,
            &path,
            64 * M,
            &[part(6, super::super::MBR_LINUX, 24 * M, 4 * M)],
        )
        .unwrap_err();
        assert!(matches!(e, TableError::Occupied { number: 6, .. }), "{e}");
    }

    #[test]
    fn a_logical_slot_grown_in_place_changes_in_one_sector_with_the_link_to_the_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let shipped = [
            part(1, super::super::MBR_FAT32_LBA, 4 * M, 4 * M),
            part(5, super::super::MBR_LINUX, 12 * M, 8 * M),
        ];
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(20 * M).unwrap();
        super::super::write(&mut f, &path, TableKind::Mbr, "deadbeef", &shipped, 20 * M).unwrap();
        f.set_len(96 * M).unwrap();
        let grown = part(5, super::super::MBR_LINUX, 12 * M, 24 * M);
        let new = [
            grown.clone(),
            part(6, super::super::MBR_LINUX, 40 * M, 24 * M),
            part(7, super::super::MBR_LINUX, 68 * M, 28 * M),
        ];
        let change = add(&mut f, &path, 96 * M, &new).unwrap();
        assert_eq!(
            (change.added.clone(), change.grown.clone()),
            (vec![6, 7], vec![5])
        );
        let ebr5 = 8 * M;
        assert_eq!(
            change.steps.iter().filter(|r| r.offset == ebr5).count(),
            1,
            "partition 5's size and its link to partition 6 are one write"
        );
        let pristine = std::fs::read(&path).unwrap();
        for cut in 0..=change.steps.len() {
            std::fs::write(&path, &pristine).unwrap();
            let mut f = File::options().read(true).write(true).open(&path).unwrap();
            change.apply_steps(&mut f, &path, cut).unwrap();
            let t = read(&mut f, &path).unwrap_or_else(|e| panic!("cut after {cut}: {e}"));
            let five = t.entry(5).map(TableEntry::extent);
            let six = t.entry(6).map(TableEntry::extent);
            assert!(
                (five, six) == (Some(shipped[1].extent), None)
                    || (five, six) == (Some(grown.extent), Some(new[1].extent)),
                "cut after {cut}: partition 5 {five:?}, 6 {six:?}: the old table or the new one"
            );
        }
        let out = std::process::Command::new("sfdisk")
            .args(["--dump"])
            .arg(&path)
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            dump.contains(&format!(
                "start=       {}, size=       {}",
                12 * M / 512,
                24 * M / 512
            )),
            "sfdisk reads partition 5 grown:\n{dump}"
        );
    }
}
