//! Partition tables: writing the MBR or GPT of an image, and reading either back.

pub mod gpt;
pub mod mbr;

use std::path::{Path, PathBuf};

use appliance::layout::{Extent, TableKind};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// A partition as a table records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableEntry {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// MBR type byte (`0x0c`) or GPT type GUID.
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

/// Reads whichever table `image` has: a GPT behind a protective MBR, or an MBR.
pub fn read(image: &Path) -> Result<Table, TableError> {
    use std::io::Read;
    let io = |source| TableError::Io {
        path: image.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(image).map_err(io)?;
    let mut head = [0u8; 1024];
    f.read_exact(&mut head).map_err(io)?;
    if &head[512..520] == b"EFI PART" {
        gpt::read(image)
    } else {
        mbr::read(image, &mut f)
    }
}
