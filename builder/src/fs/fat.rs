//! FAT32 volumes for the config and boot partitions, written with `fatfs` into memory with a
//! fixed volume id and every timestamp at SOURCE_DATE_EPOCH; and read back for inspection.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;

use appliance::layout::{Headroom, align_up};

use crate::rootfs::{Kind, Tree};

const MIB: u64 = 1 << 20;
/// FAT32 needs at least 65525 clusters (Microsoft FAT specification, "FAT type
/// determination"); with 512-byte clusters that is about 33 MiB with its tables. Volumes are
/// never smaller than this.
pub const MIN_VOLUME_BYTES: u64 = 36 * MIB;
const MIN_CLUSTERS: u64 = 65_525 + 16;

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("{label}: `{path}` is a {kind}; a FAT file system holds only files and directories")]
    Unsupported {
        label: String,
        path: String,
        kind: &'static str,
    },
    #[error("{label}: `{path}` is not valid UTF-8, which FAT long names need")]
    BadName { label: String, path: String },
    #[error("{label}: the content ({needed} bytes) does not fit the fixed size of {size} bytes")]
    TooSmall {
        label: String,
        needed: u64,
        size: u64,
    },
    #[error("{label}: writing `{path}`")]
    Write {
        label: String,
        path: String,
        source: io::Error,
    },
    #[error("not a FAT file system: {0}")]
    NotFat(String),
}

/// A FAT volume id as Linux shows it (`blkid`, `/dev/disk/by-uuid`): `ABCD-1234`.
pub fn volume_id_text(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xffff)
}

pub struct FatParams<'a> {
    pub label: &'a str,
    pub volume_id: u32,
    pub source_date_epoch: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum Sizing {
    Fixed(u64),
    Content { headroom: Headroom, min: u64 },
}

/// A finished volume: its bytes and the byte ranges that must reach the medium (the
/// reserved area, both FATs and every allocated cluster). The rest is free space whose
/// content does not matter, left as holes in the image and unmapped in the bmap.
pub struct Volume {
    pub bytes: Vec<u8>,
    pub used: Vec<Range<u64>>,
    pub free: u64,
}

#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

fn fat_time(epoch: i64) -> fatfs::DateTime {
    // FAT dates start in 1980 and count seconds in steps of two.
    let c = crate::time::civil(epoch.max(315_532_800));
    fatfs::DateTime {
        date: fatfs::Date {
            year: c.year.min(2107) as u16,
            month: c.month as u16,
            day: c.day as u16,
        },
        time: fatfs::Time {
            hour: c.hour as u16,
            min: c.minute as u16,
            sec: (c.second & !1) as u16,
            millis: 0,
        },
    }
}

/// The largest cluster size (512 B to 4 KiB) that still gives FAT32 enough clusters.
fn cluster_bytes(size: u64) -> u32 {
    [4096u32, 2048, 1024, 512]
        .into_iter()
        .find(|&c| size / u64::from(c) >= MIN_CLUSTERS + size / u64::from(c) / 128)
        .unwrap_or(512)
}

fn content_bytes(tree: &Tree, cluster: u64) -> u64 {
    tree.entries()
        .map(|(path, e)| {
            let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
            // One short entry plus one long-name entry per 13 characters, 32 bytes each.
            let dirent = 32 * (1 + name.len().div_ceil(13) as u64);
            dirent
                + match &e.kind {
                    Kind::File { size, .. } => align_up(*size, cluster),
                    Kind::Dir => cluster,
                    _ => 0,
                }
        })
        .sum::<u64>()
        + cluster
}

/// Builds a FAT32 volume holding `tree`.
pub fn build(tree: &Tree, params: &FatParams, sizing: Sizing) -> Result<Volume, FatError> {
    let needed = content_bytes(tree, 4096);
    let (mut size, want_free) = match sizing {
        Sizing::Fixed(s) => (s, 0),
        Sizing::Content { headroom, min } => {
            let want = headroom.bytes_for(needed);
            (
                align_up((needed + want) * 102 / 100 + 2 * MIB, MIB)
                    .max(min)
                    .max(MIN_VOLUME_BYTES),
                want,
            )
        }
    };
    // `fatfs` wants a &'static time provider; one small leak per volume built.
    let clock: &'static FixedTime =
        Box::leak(Box::new(FixedTime(fat_time(params.source_date_epoch))));
    for _ in 0..8 {
        match try_build(tree, params, size, clock)? {
            Some(v) if v.free >= want_free => return Ok(v),
            _ if matches!(sizing, Sizing::Fixed(_)) => {
                return Err(FatError::TooSmall {
                    label: params.label.into(),
                    needed,
                    size,
                });
            }
            _ => size = align_up(size + size / 4, MIB),
        }
    }
    Err(FatError::TooSmall {
        label: params.label.into(),
        needed,
        size,
    })
}

/// One attempt at `size` bytes; `None` when the content does not fit.
fn try_build(
    tree: &Tree,
    params: &FatParams,
    size: u64,
    clock: &'static FixedTime,
) -> Result<Option<Volume>, FatError> {
    let label = params.label;
    let err = |path: &[u8], source: io::Error| FatError::Write {
        label: label.into(),
        path: String::from_utf8_lossy(path).into_owned(),
        source,
    };
    let mut volume_label = [b' '; 11];
    for (d, s) in volume_label
        .iter_mut()
        .zip(label.to_ascii_uppercase().bytes())
    {
        *d = s;
    }
    let mut disk = Cursor::new(vec![0u8; size as usize]);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_cluster(cluster_bytes(size))
            .volume_id(params.volume_id)
            .volume_label(volume_label),
    )
    .map_err(|e| err(b"(format)", e))?;
    disk.set_position(0);
    let free;
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new().time_provider(clock))
            .map_err(|e| err(b"(mount)", e))?;
        let root = fs.root_dir();
        for (path, e) in tree.entries() {
            let name = std::str::from_utf8(path).map_err(|_| FatError::BadName {
                label: label.into(),
                path: String::from_utf8_lossy(path).into_owned(),
            })?;
            let unsupported = |kind| FatError::Unsupported {
                label: label.into(),
                path: name.into(),
                kind,
            };
            match &e.kind {
                Kind::Dir => {
                    root.create_dir(name).map_err(|e| err(path, e))?;
                }
                Kind::File { .. } | Kind::HardLink(_) => {
                    let data = tree.read(path).expect("a file").map_err(|e| err(path, e))?;
                    let mut f = root.create_file(name).map_err(|e| err(path, e))?;
                    match f.write_all(&data) {
                        Ok(()) => {}
                        Err(e) if is_full(&e) => return Ok(None),
                        Err(e) => return Err(err(path, e)),
                    }
                }
                Kind::Symlink(_) => return Err(unsupported("symbolic link")),
                Kind::Char { .. } | Kind::Block { .. } => return Err(unsupported("device node")),
                Kind::Fifo => return Err(unsupported("named pipe")),
            }
        }
        drop(root);
        let stats = fs.stats().map_err(|e| err(b"(stats)", e))?;
        free = u64::from(stats.free_clusters()) * u64::from(stats.cluster_size());
        fs.unmount().map_err(|e| err(b"(unmount)", e))?;
    }
    let mut bytes = disk.into_inner();
    fix_dot_entries(&mut bytes).map_err(FatError::NotFat)?;
    let used = used_ranges(&bytes).map_err(FatError::NotFat)?;
    Ok(Some(Volume { bytes, used, free }))
}

fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string().contains("No space")
        || e.kind() == io::ErrorKind::WriteZero
        || e.raw_os_error() == Some(28)
}

/// FAT32 geometry from the BIOS parameter block.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub bytes_per_sector: u64,
    pub cluster_bytes: u64,
    pub reserved_sectors: u64,
    pub fats: u64,
    pub sectors_per_fat: u64,
    pub total_sectors: u64,
}

impl Geometry {
    pub fn parse(boot: &[u8]) -> Result<Self, String> {
        if boot.len() < 512 || boot[510..512] != [0x55, 0xaa] {
            return Err("no boot sector signature".into());
        }
        let u16_at = |o: usize| u64::from(u16::from_le_bytes([boot[o], boot[o + 1]]));
        let u32_at = |o: usize| {
            u64::from(u32::from_le_bytes(
                boot[o..o + 4].try_into().expect("4 bytes"),
            ))
        };
        let g = Geometry {
            bytes_per_sector: u16_at(11),
            cluster_bytes: u16_at(11) * u64::from(boot[13]),
            reserved_sectors: u16_at(14),
            fats: u64::from(boot[16]),
            sectors_per_fat: u32_at(36),
            total_sectors: u32_at(32),
        };
        if g.bytes_per_sector == 0
            || g.cluster_bytes == 0
            || g.sectors_per_fat == 0
            || u16_at(22) != 0
        {
            return Err("the boot sector does not describe a FAT32 volume".into());
        }
        Ok(g)
    }

    pub fn data_start(&self) -> u64 {
        (self.reserved_sectors + self.fats * self.sectors_per_fat) * self.bytes_per_sector
    }
}

/// The clusters of the chain starting at `first`, from the first FAT.
fn chain(volume: &[u8], g: &Geometry, first: u32) -> Vec<u32> {
    let fat = (g.reserved_sectors * g.bytes_per_sector) as usize;
    let mut out = Vec::new();
    let mut c = first;
    while (2..0x0fff_fff7).contains(&c) && out.len() < 1 << 20 {
        out.push(c);
        let at = fat + 4 * c as usize;
        c = volume.get(at..at + 4).map_or(0, |e| {
            u32::from_le_bytes(e.try_into().expect("4 bytes")) & 0x0fff_ffff
        });
    }
    out
}

/// Puts every subdirectory's `.` and `..` entries where the FAT specification wants them.
///
/// `fatfs` 0.3 writes a long-name entry in front of each, so `.` sits in slot 1 and `..` in
/// slot 3, and points `..` of a directory under the root at the root's cluster; fsck.fat and
/// other readers reject both. The specification says `.` is slot 0, `..` slot 1, and `..`
/// of a child of the root holds cluster 0. The long-name slots become deleted entries.
fn fix_dot_entries(volume: &mut [u8]) -> Result<(), String> {
    let g = Geometry::parse(volume)?;
    let root = u32::from_le_bytes(volume[44..48].try_into().expect("4 bytes"));
    let cluster_at = |c: u32| (g.data_start() + u64::from(c - 2) * g.cluster_bytes) as usize;
    let mut dirs = vec![(root, true)];
    while let Some((first, is_root)) = dirs.pop() {
        let clusters = chain(volume, &g, first);
        if !is_root {
            let at = cluster_at(first);
            let slot = |i: usize| at + 32 * i;
            let lfn = |v: &[u8], i: usize| v[slot(i) + 11] == 0x0f;
            if lfn(volume, 0)
                && &volume[slot(1)..slot(1) + 11] == b".          "
                && lfn(volume, 2)
                && &volume[slot(3)..slot(3) + 11] == b"..         "
            {
                let dot: Vec<u8> = volume[slot(1)..slot(1) + 32].to_vec();
                let mut dotdot: Vec<u8> = volume[slot(3)..slot(3) + 32].to_vec();
                let parent = (u32::from(u16::from_le_bytes([dotdot[20], dotdot[21]])) << 16)
                    | u32::from(u16::from_le_bytes([dotdot[26], dotdot[27]]));
                if parent == root {
                    for b in [20, 21, 26, 27] {
                        dotdot[b] = 0;
                    }
                }
                volume[slot(0)..slot(0) + 32].copy_from_slice(&dot);
                volume[slot(1)..slot(1) + 32].copy_from_slice(&dotdot);
                for i in [2, 3] {
                    volume[slot(i)..slot(i) + 32].fill(0);
                    volume[slot(i)] = 0xe5;
                }
            }
        }
        for c in clusters {
            let at = cluster_at(c);
            for e in volume[at..at + g.cluster_bytes as usize].chunks(32) {
                if e[0] == 0 {
                    break;
                }
                let is_dot = e[0] == b'.';
                if e[0] == 0xe5 || e[11] == 0x0f || e[11] & 0x10 == 0 || is_dot {
                    continue;
                }
                let child = (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
                    | u32::from(u16::from_le_bytes([e[26], e[27]]));
                dirs.push((child, false));
            }
        }
    }
    Ok(())
}

/// The byte ranges of a FAT32 volume that carry meaning: everything up to the data area, and
/// the clusters the FAT marks as allocated.
pub fn used_ranges(volume: &[u8]) -> Result<Vec<Range<u64>>, String> {
    let g = Geometry::parse(volume)?;
    let data_start = g.data_start();
    let fat_start = (g.reserved_sectors * g.bytes_per_sector) as usize;
    let clusters =
        (g.total_sectors * g.bytes_per_sector).saturating_sub(data_start) / g.cluster_bytes;
    let mut ranges: Vec<Range<u64>> = Vec::new();
    ranges.push(0..data_start);
    for n in 2..clusters + 2 {
        let at = fat_start + 4 * n as usize;
        let Some(entry) = volume.get(at..at + 4) else {
            break;
        };
        if u32::from_le_bytes(entry.try_into().expect("4 bytes")) & 0x0fff_ffff == 0 {
            continue;
        }
        let start = data_start + (n - 2) * g.cluster_bytes;
        let end = start + g.cluster_bytes;
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => ranges.push(start..end),
        }
    }
    Ok(ranges)
}

/// A window onto a partition inside an image file, read-only: `fatfs` wants Write, but
/// inspection never writes.
pub struct ReadOnlySlice<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> ReadOnlySlice<R> {
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        ReadOnlySlice {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for ReadOnlySlice<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Write for ReadOnlySlice<R> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is opened read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<R> Seek for ReadOnlySlice<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let next = match pos {
            SeekFrom::Start(p) => p as i64,
            SeekFrom::End(d) => self.len as i64 + d,
            SeekFrom::Current(d) => self.pos as i64 + d,
        };
        if next < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the partition",
            ));
        }
        self.pos = next as u64;
        Ok(self.pos)
    }
}

/// A file or directory found on a FAT volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
}

/// Lists every file and directory of the FAT volume at `start..start+len` of `image`.
pub fn list(
    image: &std::path::Path,
    start: u64,
    len: u64,
) -> io::Result<(String, u32, Vec<Listed>)> {
    let slice = ReadOnlySlice::new(std::fs::File::open(image)?, start, len);
    let fs = fatfs::FileSystem::new(slice, fatfs::FsOptions::new())?;
    let label = fs.volume_label().trim_end().to_owned();
    let id = fs.volume_id();
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), fs.root_dir())];
    while let Some((prefix, dir)) = stack.pop() {
        for e in dir.iter() {
            let e = e?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = format!("{prefix}{name}");
            if e.is_dir() {
                out.push(Listed {
                    path: path.clone(),
                    size: 0,
                    is_dir: true,
                });
                stack.push((format!("{path}/"), e.to_dir()));
            } else {
                out.push(Listed {
                    path,
                    size: e.len(),
                    is_dir: false,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((label, id, out))
}

/// Reads one file of the FAT volume at `start..start+len` of `image`.
pub fn read_file(image: &std::path::Path, start: u64, len: u64, path: &str) -> io::Result<Vec<u8>> {
    let slice = ReadOnlySlice::new(std::fs::File::open(image)?, start, len);
    let fs = fatfs::FileSystem::new(slice, fatfs::FsOptions::new())?;
    let mut f = fs.root_dir().open_file(path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::Entry;

    fn params() -> FatParams<'static> {
        FatParams {
            label: "BOOT-A",
            volume_id: 0x1234_5678,
            source_date_epoch: 1_700_000_000,
        }
    }

    #[test]
    fn same_content_gives_same_bytes() {
        let mut t = Tree::new();
        t.insert(b"overlays/a.dtbo", Entry::file(vec![7u8; 5000], 0o644, 0));
        t.insert(
            b"overlays/deeper/b.dtbo",
            Entry::file(vec![8u8; 50], 0o644, 0),
        );
        t.insert(b"config.txt", Entry::file(&b"arm_64bit=1\n"[..], 0o644, 0));
        let sizing = Sizing::Content {
            headroom: Headroom::Percent(10),
            min: 0,
        };
        let a = build(&t, &params(), sizing).unwrap();
        let b = build(&t, &params(), sizing).unwrap();
        assert!(a.bytes == b.bytes, "two builds differ");
        assert_eq!(a.bytes.len() as u64, MIN_VOLUME_BYTES);
        let g = Geometry::parse(&a.bytes).unwrap();
        // Reserved area and FATs, then one cluster each for the root, overlays/, deeper/,
        // b.dtbo and config.txt, and ten for a.dtbo's 5000 bytes.
        assert_eq!(g.cluster_bytes, 512);
        assert_eq!(a.used[0].start, 0);
        let used: u64 = a.used.iter().map(|r| r.end - r.start).sum();
        assert_eq!(used, g.data_start() + 15 * g.cluster_bytes);

        // `.` and `..` open every subdirectory, `..` of a child of the root says cluster 0.
        let cluster = |c: u64| (g.data_start() + (c - 2) * g.cluster_bytes) as usize;
        let dir_cluster = |entry: &[u8]| {
            (u64::from(u16::from_le_bytes([entry[20], entry[21]])) << 16)
                | u64::from(u16::from_le_bytes([entry[26], entry[27]]))
        };
        let root = &a.bytes[cluster(2)..cluster(2) + g.cluster_bytes as usize];
        let overlays = root
            .chunks(32)
            .find(|e| &e[..11] == b"OVERLAYS   ")
            .expect("overlays entry");
        let sub = cluster(dir_cluster(overlays));
        assert_eq!(&a.bytes[sub..sub + 11], b".          ");
        assert_eq!(&a.bytes[sub + 32..sub + 43], b"..         ");
        assert_eq!(dir_cluster(&a.bytes[sub + 32..sub + 64]), 0);
    }

    #[test]
    fn fixed_size_too_small_is_refused() {
        let mut t = Tree::new();
        t.insert(b"big", Entry::file(vec![1u8; 40 << 20], 0o644, 0));
        let e = build(&t, &params(), Sizing::Fixed(MIN_VOLUME_BYTES))
            .err()
            .unwrap();
        assert!(matches!(e, FatError::TooSmall { .. }), "{e}");
    }

    #[test]
    fn symlinks_are_refused_by_name() {
        let mut t = Tree::new();
        t.insert(
            b"link",
            Entry {
                kind: Kind::Symlink(b"x".to_vec()),
                ..Entry::dir(0o777)
            },
        );
        let e = build(&t, &params(), Sizing::Fixed(MIN_VOLUME_BYTES))
            .err()
            .unwrap();
        assert!(e.to_string().contains("`link` is a symbolic link"), "{e}");
    }
}
