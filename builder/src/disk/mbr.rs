//! The MBR partition table, with an extended partition and its chain of extended boot
//! records (EBRs) for partitions 5 and up. Written by hand: it is 16-byte records in 512-byte
//! sectors, and every byte must come from the layout.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use appliance::layout::{ALIGN, Extent, MBR_EXTENDED_LBA, SECTOR};

use super::{Table, TableEntry, TableError};

/// MBR type bytes.
pub const FAT32_LBA: u8 = 0x0c;
pub const LINUX: u8 = 0x83;
/// The "next EBR" link inside an EBR chain.
const EBR_LINK: u8 = 0x05;

/// A partition for [`write`]: its number (1–4 primary, 5+ logical), type byte and extent.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    pub number: u32,
    pub type_byte: u8,
    pub extent: Extent,
    pub bootable: bool,
}

fn record(type_byte: u8, start_lba: u64, sectors: u64, bootable: bool) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[0] = if bootable { 0x80 } else { 0 };
    // CHS is meaningless on cards this size; FE FF FF is the conventional "use LBA" value.
    r[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    r[4] = type_byte;
    r[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    r[8..12].copy_from_slice(&(start_lba as u32).to_le_bytes());
    r[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    r
}

fn sector(records: &[[u8; 16]], signature: Option<u32>) -> [u8; 512] {
    let mut s = [0u8; 512];
    if let Some(sig) = signature {
        s[440..444].copy_from_slice(&sig.to_le_bytes());
    }
    for (i, r) in records.iter().enumerate() {
        s[446 + 16 * i..462 + 16 * i].copy_from_slice(r);
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// The sectors to write: (byte offset, sector). Partitions must be in number order, and each
/// logical partition must have one alignment unit free in front of it for its EBR (as
/// [`appliance::layout::Placer`] leaves).
pub fn sectors(signature: u32, parts: &[Part]) -> Vec<(u64, [u8; 512])> {
    let lba = |bytes: u64| bytes / SECTOR;
    let primaries: Vec<&Part> = parts.iter().filter(|p| p.number <= 4).collect();
    let logicals: Vec<&Part> = parts.iter().filter(|p| p.number >= 5).collect();
    let mut records: Vec<[u8; 16]> = primaries
        .iter()
        .map(|p| {
            record(
                p.type_byte,
                lba(p.extent.start),
                lba(p.extent.size),
                p.bootable,
            )
        })
        .collect();
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (logicals.first(), logicals.last()) {
        let ext_start = first.extent.start - ALIGN;
        let ext_end = last.extent.end();
        records.push(record(
            MBR_EXTENDED_LBA,
            lba(ext_start),
            lba(ext_end - ext_start),
            false,
        ));
        for (i, p) in logicals.iter().enumerate() {
            let ebr = p.extent.start - ALIGN;
            let mut chain = vec![record(
                p.type_byte,
                lba(p.extent.start - ebr),
                lba(p.extent.size),
                false,
            )];
            if let Some(next) = logicals.get(i + 1) {
                let next_ebr = next.extent.start - ALIGN;
                chain.push(record(
                    EBR_LINK,
                    lba(next_ebr - ext_start),
                    lba(next.extent.end() - next_ebr),
                    false,
                ));
            }
            out.push((ebr, sector(&chain, None)));
        }
    }
    out.insert(0, (0, sector(&records, Some(signature))));
    out
}

/// Writes the MBR and EBRs into `image`.
pub fn write(image: &mut File, signature: u32, parts: &[Part]) -> std::io::Result<()> {
    for (offset, s) in sectors(signature, parts) {
        image.seek(SeekFrom::Start(offset))?;
        image.write_all(&s)?;
    }
    Ok(())
}

struct Record {
    type_byte: u8,
    start: u64,
    sectors: u64,
}

fn parse(s: &[u8; 512]) -> Option<Vec<Record>> {
    if s[510..512] != [0x55, 0xaa] {
        return None;
    }
    Some(
        (0..4)
            .map(|i| {
                let r = &s[446 + 16 * i..462 + 16 * i];
                Record {
                    type_byte: r[4],
                    start: u64::from(u32::from_le_bytes(r[8..12].try_into().expect("4"))),
                    sectors: u64::from(u32::from_le_bytes(r[12..16].try_into().expect("4"))),
                }
            })
            .collect(),
    )
}

pub fn read(image: &Path, f: &mut File) -> Result<Table, TableError> {
    let invalid = |reason: String| TableError::Invalid {
        path: image.to_owned(),
        reason,
    };
    let io = |source| TableError::Io {
        path: image.to_owned(),
        source,
    };
    let mut read_sector = |at: u64| -> Result<[u8; 512], TableError> {
        let mut s = [0u8; 512];
        f.seek(SeekFrom::Start(at)).map_err(io)?;
        f.read_exact(&mut s).map_err(io)?;
        Ok(s)
    };
    let mbr = read_sector(0)?;
    let records = parse(&mbr)
        .ok_or_else(|| invalid("no partition table (no 55 AA signature in sector 0)".into()))?;
    let signature = u32::from_le_bytes(mbr[440..444].try_into().expect("4"));
    let partuuid = |n: u32| format!("{signature:08x}-{n:02x}");
    let mut entries = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.type_byte == 0 {
            continue;
        }
        if r.type_byte == MBR_EXTENDED_LBA || r.type_byte == EBR_LINK {
            let ext_start = r.start;
            let mut ebr = ext_start;
            let mut number = 5;
            loop {
                let s = read_sector(ebr * SECTOR)?;
                let chain =
                    parse(&s).ok_or_else(|| invalid(format!("broken EBR at sector {ebr}")))?;
                if chain[0].type_byte != 0 {
                    entries.push(TableEntry {
                        number,
                        start: (ebr + chain[0].start) * SECTOR,
                        size: chain[0].sectors * SECTOR,
                        type_id: format!("0x{:02x}", chain[0].type_byte),
                        partuuid: partuuid(number),
                        name: None,
                    });
                    number += 1;
                }
                if chain[1].type_byte == 0 || number > 64 {
                    break;
                }
                ebr = ext_start + chain[1].start;
            }
            continue;
        }
        let number = i as u32 + 1;
        entries.push(TableEntry {
            number,
            start: r.start * SECTOR,
            size: r.sectors * SECTOR,
            type_id: format!("0x{:02x}", r.type_byte),
            partuuid: partuuid(number),
            name: None,
        });
    }
    Ok(Table {
        kind: appliance::layout::TableKind::Mbr,
        disk_id: format!("{signature:08x}"),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_partitions_chain_through_ebrs() {
        let m = 1 << 20;
        let parts = [
            Part {
                number: 1,
                type_byte: FAT32_LBA,
                extent: Extent {
                    start: 4 * m,
                    size: 64 * m,
                },
                bootable: false,
            },
            Part {
                number: 5,
                type_byte: LINUX,
                extent: Extent {
                    start: 72 * m,
                    size: 100 * m,
                },
                bootable: false,
            },
            Part {
                number: 6,
                type_byte: LINUX,
                extent: Extent {
                    start: 176 * m,
                    size: 8 * m,
                },
                bootable: false,
            },
        ];
        let out = sectors(0xdead_beef, &parts);
        assert_eq!(
            out.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![0, 68 * m, 172 * m]
        );
        let mbr = parse(&out[0].1).unwrap();
        assert_eq!(
            (mbr[1].type_byte, mbr[1].start * 512, mbr[1].sectors * 512),
            (0x0f, 68 * m, 116 * m)
        );
        let ebr1 = parse(&out[1].1).unwrap();
        assert_eq!(ebr1[0].start * 512, 4 * m, "relative to its own EBR");
        assert_eq!(
            ebr1[1].start * 512,
            104 * m,
            "relative to the extended partition"
        );
        let ebr2 = parse(&out[2].1).unwrap();
        assert_eq!(ebr2[1].type_byte, 0, "the chain ends");
    }
}
