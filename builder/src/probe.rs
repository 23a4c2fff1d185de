//! Reading a finished image back without mounting it: its table, and what each partition
//! holds.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::fs::{ext4, fat};
use appliance::disk::{self, Table, TableEntry};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "fs", rename_all = "lowercase")]
pub enum Contents {
    Vfat {
        label: String,
        volume_id: String,
        files: Vec<FatFile>,
    },
    Ext4 {
        label: String,
        uuid: String,
        size: u64,
        free: u64,
        inodes: u32,
    },
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct FatFile {
    pub path: String,
    pub size: u64,
    pub dir: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    #[serde(flatten)]
    pub entry: TableEntry,
    pub contents: Contents,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probed {
    pub size: u64,
    pub table: Table,
    pub partitions: Vec<Partition>,
}

pub fn probe(image: &Path) -> anyhow::Result<Probed> {
    let table = disk::read(image)?;
    let size = std::fs::metadata(image)?.len();
    let mut partitions = Vec::new();
    for entry in &table.entries {
        let contents = contents(image, entry).unwrap_or(Contents::Unknown);
        partitions.push(Partition {
            entry: entry.clone(),
            contents,
        });
    }
    Ok(Probed {
        size,
        table,
        partitions,
    })
}

fn contents(image: &Path, e: &TableEntry) -> std::io::Result<Contents> {
    let mut f = std::fs::File::open(image)?;
    let mut head = vec![0u8; 2048];
    f.seek(SeekFrom::Start(e.start))?;
    f.read_exact(&mut head)?;
    if let Some(sb) = ext4::Superblock::parse(head[1024..2048].try_into().expect("1024 bytes")) {
        return Ok(Contents::Ext4 {
            label: sb.label,
            uuid: sb.uuid.to_string(),
            size: sb.blocks * sb.block_size,
            free: sb.free_blocks * sb.block_size,
            inodes: sb.inodes,
        });
    }
    if fat::Geometry::parse(&head[..512]).is_ok() {
        let (label, id, files) = fat::list(image, e.start, e.size)?;
        return Ok(Contents::Vfat {
            label,
            volume_id: fat::volume_id_text(id),
            files: files
                .into_iter()
                .map(|l| FatFile {
                    path: l.path,
                    size: l.size,
                    dir: l.is_dir,
                })
                .collect(),
        });
    }
    Ok(Contents::Unknown)
}

/// Reads `path` from the FAT partition `number`.
pub fn read_fat_file(
    image: &Path,
    table: &Table,
    number: u32,
    path: &str,
) -> anyhow::Result<Vec<u8>> {
    let e = table
        .entry(number)
        .ok_or_else(|| anyhow::anyhow!("the image has no partition {number}"))?;
    fat::read_file(image, e.start, e.size, path)
        .map_err(|err| anyhow::anyhow!("partition {number} has no readable `{path}`: {err}"))
}
