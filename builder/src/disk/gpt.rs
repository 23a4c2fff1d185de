//! The GUID partition table (UEFI 2.10 chapter 5), written and read with the `gpt` crate.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use appliance::layout::{Extent, SECTOR};
use gpt::disk::LogicalBlockSize;
use gpt::partition_types::Type;

use super::{Table, TableEntry, TableError};

pub struct Part {
    pub number: u32,
    pub type_guid: Type,
    pub guid: uuid::Uuid,
    pub name: String,
    pub extent: Extent,
}

/// Writes a protective MBR and both GPT headers into `image`, whose length must already be
/// its final size (the backup header goes in its last sector).
pub fn write(image: &Path, disk_guid: uuid::Uuid, parts: &[Part]) -> Result<(), TableError> {
    let invalid = |e: gpt::GptError| TableError::Invalid {
        path: image.to_owned(),
        reason: e.to_string(),
    };
    let io = |source| TableError::Io {
        path: image.to_owned(),
        source,
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mbr = gpt::mbr::ProtectiveMBR::with_lb_size(
        u32::try_from(len / SECTOR - 1).unwrap_or(0xffff_ffff),
    );
    mbr.overwrite_lba0(&mut file)
        .map_err(|e| TableError::Invalid {
            path: image.to_owned(),
            reason: e.to_string(),
        })?;
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(file, Some(disk_guid))
        .map_err(invalid)?;
    let table: BTreeMap<u32, gpt::partition::Partition> = parts
        .iter()
        .map(|p| {
            (
                p.number,
                gpt::partition::Partition {
                    part_type_guid: p.type_guid.clone(),
                    part_guid: p.guid,
                    first_lba: p.extent.start / SECTOR,
                    last_lba: p.extent.end() / SECTOR - 1,
                    flags: 0,
                    name: p.name.clone(),
                },
            )
        })
        .collect();
    disk.update_partitions(table).map_err(invalid)?;
    let file = disk.write().map_err(invalid)?;
    file.sync_all().map_err(io)
}

pub fn read(image: &Path) -> Result<Table, TableError> {
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(LogicalBlockSize::Lb512)
        .open(image)
        .map_err(|e| TableError::Invalid {
            path: image.to_owned(),
            reason: format!("unreadable GPT: {e}"),
        })?;
    let entries = disk
        .partitions()
        .iter()
        .map(|(&number, p)| TableEntry {
            number,
            start: p.first_lba * SECTOR,
            size: (p.last_lba + 1 - p.first_lba) * SECTOR,
            type_id: p.part_type_guid.guid.to_string(),
            partuuid: p.part_guid.to_string(),
            name: Some(p.name.clone()),
        })
        .collect();
    Ok(Table {
        kind: appliance::layout::TableKind::Gpt,
        disk_id: disk.guid().to_string(),
        entries,
    })
}
