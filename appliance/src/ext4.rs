//! The ext4 superblock as the builder and the device read it: size, free space, UUID, label.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The fields of an ext4 superblock that the builder and the device use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub block_size: u64,
    pub blocks: u64,
    pub free_blocks: u64,
    pub inodes: u32,
    pub free_inodes: u32,
    pub uuid: uuid::Uuid,
    pub label: String,
}

impl Superblock {
    /// The bytes the file system spans.
    pub fn bytes(&self) -> u64 {
        self.blocks * self.block_size
    }

    /// Parses the 1024 bytes of a superblock; `None` when they are not one. Field offsets
    /// are the kernel's `struct ext4_super_block`: s_blocks_count_lo at 0x04, s_log_block_size
    /// at 0x18, s_magic 0xEF53 at 0x38, s_feature_incompat at 0x60 (0x80: 64bit, with the
    /// counts' high halves at 0x150 and 0x158), s_uuid at 0x68, s_volume_name at 0x78.
    pub fn parse(sb: &[u8; 1024]) -> Option<Superblock> {
        let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().expect("4 bytes"));
        if u16_at(0x38) != 0xef53 {
            return None;
        }
        // ext4 blocks are 1 KiB to 64 KiB.
        let log = u32_at(0x18);
        if log > 6 {
            return None;
        }
        let is_64bit = u32_at(0x60) & 0x80 != 0;
        let hi = |o: usize| {
            if is_64bit {
                u64::from(u32_at(o)) << 32
            } else {
                0
            }
        };
        let label_raw = &sb[0x78..0x88];
        let label_end = label_raw.iter().position(|&b| b == 0).unwrap_or(16);
        Some(Superblock {
            block_size: 1024 << log,
            blocks: u64::from(u32_at(0x04)) | hi(0x150),
            free_blocks: u64::from(u32_at(0x0c)) | hi(0x158),
            inodes: u32_at(0x00),
            free_inodes: u32_at(0x10),
            uuid: uuid::Uuid::from_slice(&sb[0x68..0x78]).ok()?,
            label: String::from_utf8_lossy(&label_raw[..label_end]).into_owned(),
        })
    }

    /// Reads the superblock of the file system starting at byte `offset` of `path`: `None`
    /// when there is none there, or the file ends before it.
    pub fn read(path: &Path, offset: u64) -> std::io::Result<Option<Superblock>> {
        let mut sb = [0u8; 1024];
        match File::open(path)?.read_exact_at(&mut sb, offset + 1024) {
            Ok(()) => Ok(Superblock::parse(&sb)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_superblock() {
        assert_eq!(Superblock::parse(&[0u8; 1024]), None);
        let mut huge_blocks = [0u8; 1024];
        huge_blocks[0x38..0x3a].copy_from_slice(&[0x53, 0xef]);
        huge_blocks[0x18] = 7;
        assert_eq!(Superblock::parse(&huge_blocks), None);
    }

    #[test]
    fn reads_what_mke2fs_made() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        // After 3 MiB of something else, as a partition sits in a disk.
        let offset = 3 << 20;
        let status = std::process::Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", "boatlog"])
            .args(["-U", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"])
            .arg("-E")
            .arg(format!("offset={offset}"))
            .arg(&img)
            .arg("8M")
            .status()
            .unwrap();
        assert!(status.success());
        let sb = Superblock::read(&img, offset).unwrap().unwrap();
        assert_eq!(sb.bytes(), 8 << 20);
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.label, "boatlog");
        assert_eq!(sb.uuid.to_string(), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        assert!(sb.free_blocks > 0 && sb.free_blocks < sb.blocks);
        assert_eq!(Superblock::read(&img, 0).unwrap(), None);
        assert_eq!(Superblock::read(&img, offset + (64 << 20)).unwrap(), None);
    }
}
