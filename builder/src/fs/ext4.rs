//! ext4 partitions: `mke2fs -d -` fed the deterministic tar stream, written straight into the
//! image at the partition's offset and sized to the content plus headroom.

use std::fs::File;
use std::path::{Path, PathBuf};

use appliance::layout::{Headroom, align_up};

use crate::digest::Sum;
use crate::rootfs::{TarStream, Tree};
use crate::tool::{Invocation, ToolError};

const BLOCK: u64 = 4096;
const INODE_SIZE: u64 = 256;
const MIB: u64 = 1 << 20;
const INSTALL_HINT: &str = "install e2fsprogs 1.47.1 or newer (Debian 12: `apt-get install -t bookworm-backports e2fsprogs`; \
                            `ci/setup-host` does this)";

/// The defaults mke2fs would otherwise take from the host's /etc/mke2fs.conf: pinned here so
/// an image does not depend on which machine built it.
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 0
[fs_types]
\tsmall = {
\t\tinode_ratio = 16384
\t}
\tfloppy = {
\t\tinode_ratio = 16384
\t}
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error(
        "mke2fs {found} is too old: 1.47.1 or newer is needed for reproducible ext4 images \
         (older versions leak the build time into `mke2fs -d` output). Debian 12: \
         `apt-get install -t bookworm-backports e2fsprogs`"
    )]
    TooOld { found: String },
    #[error(
        "mke2fs was built without tarball support (`-d -` needs libarchive): {stderr}. Install libarchive13."
    )]
    NoTarSupport { stderr: String },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no ext4 superblock at byte {offset} of {}", path.display())]
    NotExt4 { path: PathBuf, offset: u64 },
    #[error("{label}: content needs {needed} bytes, more than the fixed size of {size} bytes")]
    TooSmall {
        label: String,
        needed: u64,
        size: u64,
    },
}

/// The mke2fs on PATH, checked to be new enough.
pub fn check_mke2fs() -> Result<String, Ext4Error> {
    let out = Invocation::new("mke2fs", INSTALL_HINT).arg("-V").output()?;
    let text = format!("{}{}", out.stdout_text(), out.stderr);
    let version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_owned();
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    if parts.len() < 2 || (parts[0], parts[1], *parts.get(2).unwrap_or(&0)) < (1, 47, 1) {
        return Err(Ext4Error::TooOld { found: version });
    }
    Ok(version)
}

/// What to put in the file system.
pub struct Ext4Params<'a> {
    pub label: &'a str,
    pub uuid: uuid::Uuid,
    pub hash_seed: uuid::Uuid,
    pub source_date_epoch: i64,
}

/// How big: a fixed size, or the content plus headroom (with a lower bound).
#[derive(Debug, Clone, Copy)]
pub enum Sizing {
    Fixed(u64),
    Content { headroom: Headroom, min: u64 },
}

#[derive(Debug, Clone)]
pub struct Built {
    pub size: u64,
    pub free: u64,
    pub stream: Sum,
    pub attempts: u32,
}

/// Writes an ext4 file system with `tree`'s content into `image` at byte `offset`.
///
/// Everything in `image` from `offset` on is discarded: the partition being built is the
/// last one written so far.
pub fn build(
    image: &Path,
    offset: u64,
    tree: &Tree,
    params: &Ext4Params,
    sizing: Sizing,
    scratch: &Path,
) -> Result<Built, Ext4Error> {
    let conf = scratch.join("mke2fs.conf");
    std::fs::write(&conf, MKE2FS_CONF).map_err(|source| Ext4Error::Io {
        path: conf.clone(),
        source,
    })?;
    let usage = tree.usage();
    // Bytes the content occupies in 4 KiB blocks: file data, directory blocks, long symlinks
    // and xattrs that do not fit in the inode.
    let content_blocks = usage.file_blocks_4k
        + usage.dirs
        + usage.dirent_bytes.div_ceil(BLOCK)
        + usage.long_symlinks
        + usage.xattr_blocks
        + usage.files / 64;
    let content = content_blocks * BLOCK;

    let (mut size, mut inodes) = match sizing {
        Sizing::Fixed(size) => (size, (size / 16384).max(usage.inodes + 64)),
        Sizing::Content { headroom, min } => {
            let inodes = ((usage.inodes + 16) as f64 * (1.0 + headroom_fraction(headroom, content)))
                as u64
                + 256;
            (
                estimate(content + headroom.bytes_for(content), inodes).max(min),
                inodes,
            )
        }
    };

    let file = File::options()
        .read(true)
        .write(true)
        .open(image)
        .map_err(|source| Ext4Error::Io {
            path: image.to_owned(),
            source,
        })?;
    // The largest size known to be too small: the search never goes back to it.
    let mut too_small = 0;
    for attempt in 1..=8 {
        size = align_up(size.max(too_small + MIB), MIB);
        // Start from zeros: what an earlier attempt left must not leak into this one.
        file.set_len(offset)
            .and_then(|()| file.set_len(offset + size))
            .map_err(|source| Ext4Error::Io {
                path: image.to_owned(),
                source,
            })?;
        let blocks = size / BLOCK;
        let run = Invocation::new("mke2fs", INSTALL_HINT)
            .args(["-t", "ext4", "-F", "-q", "-b", "4096", "-I", "256", "-m", "0"])
            .arg("-N")
            .arg(inodes.to_string())
            .arg("-J")
            .arg(format!("size={}", journal_mib(size)))
            .arg("-L")
            .arg(params.label)
            .arg("-U")
            .arg(params.uuid.to_string())
            .arg("-E")
            .arg(format!(
                "offset={offset},hash_seed={},root_owner=0:0,lazy_itable_init=1,lazy_journal_init=0,nodiscard",
                params.hash_seed
            ))
            .arg("-d")
            .arg("-")
            .arg(image)
            .arg(blocks.to_string())
            .env("MKE2FS_CONFIG", &conf)
            .env("SOURCE_DATE_EPOCH", params.source_date_epoch.to_string())
            .env("E2FSPROGS_FAKE_TIME", params.source_date_epoch.to_string());
        let mut digest = None;
        let result = run.feed(|stdin| {
            digest = Some(TarStream::new(tree, params.source_date_epoch).write_to(stdin)?);
            Ok(())
        });
        match result {
            Ok(_) => {}
            Err(ToolError::Failed { stderr, .. })
                if stderr.contains("libarchive") || stderr.contains("tarball") =>
            {
                return Err(Ext4Error::NoTarSupport { stderr });
            }
            Err(ToolError::Failed { stderr, .. }) if out_of_space(&stderr) => {
                if let Sizing::Fixed(size) = sizing {
                    return Err(Ext4Error::TooSmall {
                        label: params.label.into(),
                        needed: content,
                        size,
                    });
                }
                log::debug!(
                    "{}: {size} bytes were not enough ({stderr}); growing",
                    params.label
                );
                if stderr.contains("inode") {
                    inodes += inodes / 4 + 64;
                }
                too_small = too_small.max(size);
                size += size / 4 + 8 * MIB;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let sb = read_superblock(image, offset)?;
        let free = sb.free_blocks * sb.block_size;
        let stream = digest.expect("the stream was written");
        let Sizing::Content { headroom, min } = sizing else {
            return Ok(Built {
                size,
                free,
                stream,
                attempts: attempt,
            });
        };
        // Headroom is measured against what the content really took (holes in sparse files
        // and the file system's own structures included), not against the estimate.
        // The journal's size is pinned by the file system's size, so it is counted apart.
        let journal = journal_mib(size) * MIB;
        let used = size - free - journal;
        let want = headroom.bytes_for(used);
        let slack = (size / 100).max(4 * MIB);
        if free < want {
            too_small = too_small.max(size);
        }
        let floor_reached = size <= min || size <= too_small + MIB;
        if free >= want && (free <= want + slack || floor_reached || attempt == 8) {
            log::debug!(
                "{}: {size} bytes, {free} free, attempt {attempt}",
                params.label
            );
            return Ok(Built {
                size,
                free,
                stream,
                attempts: attempt,
            });
        }
        // Metadata scales a little with size, so aim a little above the target.
        let mut next = used + want + want / 50 + MIB;
        next += journal_mib(next + 4 * MIB) * MIB;
        size = next.max(min).max(8 * MIB);
    }
    unreachable!("the last attempt either fits or grows")
}

fn headroom_fraction(h: Headroom, content: u64) -> f64 {
    match h {
        Headroom::Percent(p) => f64::from(p) / 100.0,
        Headroom::Bytes(b) if content > 0 => b as f64 / content as f64,
        Headroom::Bytes(_) => 1.0,
    }
}

/// Journal size for a file system of `size` bytes, pinned rather than left to mke2fs so the
/// estimate below can count it: 4 MiB under 128 MiB, 16 MiB under 1 GiB, 64 MiB above.
fn journal_mib(size: u64) -> u64 {
    match size {
        s if s < 128 * MIB => 4,
        s if s < 1024 * MIB => 16,
        _ => 64,
    }
}

/// A first guess at the size holding `bytes` of blocks and `inodes` inodes: inode tables,
/// journal, bitmaps, group descriptors and reserved GDT blocks on top.
fn estimate(bytes: u64, inodes: u64) -> u64 {
    let itable = inodes * INODE_SIZE;
    let base = bytes + itable;
    let journal = journal_mib(base + 64 * MIB) * MIB;
    let groups = (base + journal).div_ceil(128 * MIB).max(1);
    // Two bitmaps per group, and backups of the superblock and descriptors (reserved for
    // growth) in the sparse_super groups.
    let meta = groups * 2 * BLOCK + 12 * 130 * BLOCK;
    base + journal + meta + MIB
}

fn out_of_space(stderr: &str) -> bool {
    [
        "Could not allocate",
        "No space left",
        "too small",
        "journal size too big",
        "ENOSPC",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

pub use appliance::ext4::Superblock;

/// Reads the superblock of the ext4 file system at byte `offset` of `path`.
pub fn read_superblock(path: &Path, offset: u64) -> Result<Superblock, Ext4Error> {
    Superblock::read(path, offset)
        .map_err(|source| Ext4Error::Io {
            path: path.to_owned(),
            source,
        })?
        .ok_or(Ext4Error::NotExt4 {
            path: path.to_owned(),
            offset,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_covers_content_and_grows_with_it() {
        let small = estimate(10 * MIB, 1000);
        let big = estimate(1000 * MIB, 20_000);
        assert!(small > 10 * MIB && small < 40 * MIB, "{small}");
        assert!(big > 1000 * MIB && big < 1200 * MIB, "{big}");
    }
}
