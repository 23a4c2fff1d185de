//! The root file system as the builder sees it: a sorted tree of entries with their owners,
//! modes, times, links and xattrs, loaded from a directory or a tarball and written out again
//! as a deterministic tar stream.

mod load;
pub mod packages;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

pub use stream::TarStream;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{}: entry `{entry}`: {reason}", archive.display())]
    BadEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("hard link `{link}` points at `{target}`, which is {problem}")]
    BadHardLink {
        link: String,
        target: String,
        problem: &'static str,
    },
}

/// Where a regular file's bytes are.
#[derive(Debug, Clone)]
pub enum Data {
    Disk(PathBuf),
    /// At this byte offset of the tree's uncompressed archive.
    Archive(u64),
    Bytes(Arc<[u8]>),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Dir,
    File {
        size: u64,
        data: Data,
    },
    Symlink(Vec<u8>),
    /// Another name for the regular file at this path, which sorts before this one.
    HardLink(Vec<u8>),
    Char {
        major: u32,
        minor: u32,
    },
    Block {
        major: u32,
        minor: u32,
    },
    Fifo,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn dir(mode: u32) -> Self {
        Entry {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
        }
    }

    pub fn file(bytes: impl Into<Arc<[u8]>>, mode: u32, mtime: i64) -> Self {
        let bytes: Arc<[u8]> = bytes.into();
        Entry {
            kind: Kind::File {
                size: bytes.len() as u64,
                data: Data::Bytes(bytes),
            },
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: Vec::new(),
        }
    }
}

/// A root file system: paths are relative (`etc/hostname`), byte strings, `/`-separated.
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<Vec<u8>, Entry>,
    archive: Option<PathBuf>,
    /// Keeps a decompressed copy of a compressed input alive as long as the tree.
    _scratch: Option<Arc<tempfile::TempPath>>,
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces an entry, creating missing parent directories (root-owned, 0755).
    pub fn insert(&mut self, path: &[u8], entry: Entry) {
        let mut end = 0;
        while let Some(pos) = path[end..].iter().position(|&b| b == b'/') {
            let parent = &path[..end + pos];
            self.entries
                .entry(parent.to_vec())
                .or_insert_with(|| Entry::dir(0o755));
            end += pos + 1;
        }
        match (self.entries.get_mut(path), &entry.kind) {
            // A directory laid over a directory keeps the base's owner and mode.
            (Some(existing), Kind::Dir) if matches!(existing.kind, Kind::Dir) => {}
            (Some(existing), _) if matches!(existing.kind, Kind::Dir) => {
                self.remove_subtree(path);
                self.entries.insert(path.to_vec(), entry);
            }
            _ => {
                self.entries.insert(path.to_vec(), entry);
            }
        }
    }

    /// Removes an entry and everything below it. A hard-link group whose data-holding name
    /// goes keeps its data at the next name.
    pub fn remove(&mut self, path: &[u8]) -> bool {
        let Some(entry) = self.entries.remove(path) else {
            return false;
        };
        if matches!(entry.kind, Kind::Dir) {
            self.remove_subtree(path);
        }
        let links: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(&e.kind, Kind::HardLink(t) if t == path))
            .map(|(k, _)| k.clone())
            .collect();
        if let Some((heir, rest)) = links.split_first() {
            self.entries.get_mut(heir).expect("listed").kind = entry.kind.clone();
            for k in rest {
                self.entries.get_mut(k).expect("listed").kind = Kind::HardLink(heir.clone());
            }
        }
        true
    }

    /// Paths below `dir` (not `dir` itself), in order.
    pub fn below(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        let prefix = [dir, b"/"].concat();
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn remove_subtree(&mut self, dir: &[u8]) {
        let prefix = [dir, b"/"].concat();
        let doomed: Vec<Vec<u8>> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    /// Moves everything below `dir` into a tree of its own (rooted at `dir`), leaving `dir`
    /// itself as an empty directory: a mount point such as `boot/firmware`.
    pub fn split_off(&mut self, dir: &[u8]) -> Tree {
        let prefix = [dir, b"/"].concat();
        let moved: Vec<Vec<u8>> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Tree {
            entries: BTreeMap::new(),
            archive: self.archive.clone(),
            _scratch: self._scratch.clone(),
        };
        for k in moved {
            let mut e = self.entries.remove(&k).expect("listed");
            if let Kind::HardLink(target) = &e.kind {
                match target.strip_prefix(prefix.as_slice()) {
                    Some(rel) => e.kind = Kind::HardLink(rel.to_vec()),
                    // The link's data stays behind: give this side its own copy.
                    None => e.kind = self.entries[target].kind.clone(),
                }
            }
            out.entries.insert(k[prefix.len()..].to_vec(), e);
        }
        if let Some(d) = self.entries.get_mut(dir) {
            d.kind = Kind::Dir;
        }
        // Hard links left behind whose data moved out now own a copy of it.
        let fix: Vec<(Vec<u8>, Kind)> = self
            .entries
            .iter()
            .filter_map(|(k, e)| match &e.kind {
                Kind::HardLink(t) if t.starts_with(&prefix) => {
                    Some((k.clone(), out.entries[&t[prefix.len()..]].kind.clone()))
                }
                _ => None,
            })
            .collect();
        for (k, kind) in fix {
            self.entries.get_mut(&k).expect("listed").kind = kind;
        }
        out.normalize_hard_links()
            .expect("a split keeps links valid");
        self.normalize_hard_links()
            .expect("a split keeps links valid");
        out
    }

    /// Opens a regular file's bytes.
    pub fn open(&self, data: &Data, size: u64) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        use std::io::{Read, Seek, SeekFrom};
        Ok(match data {
            Data::Disk(p) => Box::new(std::fs::File::open(p)?.take(size)),
            Data::Archive(offset) => {
                let path = self
                    .archive
                    .as_ref()
                    .expect("archive data needs the archive");
                let mut f = std::fs::File::open(path)?;
                f.seek(SeekFrom::Start(*offset))?;
                Box::new(f.take(size))
            }
            Data::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
        })
    }

    /// Reads a whole regular file, following hard links.
    pub fn read(&self, path: &[u8]) -> Option<std::io::Result<Vec<u8>>> {
        use std::io::Read;
        let entry = self.entries.get(path)?;
        let (size, data) = match &entry.kind {
            Kind::File { size, data } => (*size, data),
            Kind::HardLink(t) => return self.read(t),
            _ => return None,
        };
        Some(self.open(data, size).and_then(|mut r| {
            let mut buf = Vec::with_capacity(size as usize);
            r.read_to_end(&mut buf).map(|_| buf)
        }))
    }

    /// Makes every group of hard links point at the name that sorts first, which holds the
    /// data, with all names sharing its owner, mode, time and xattrs. mke2fs creates a hard
    /// link only to a name it has already seen, and applies the link's own header to the
    /// inode, so the group must agree.
    pub fn normalize_hard_links(&mut self) -> Result<(), RootfsError> {
        let mut groups: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for (path, e) in &self.entries {
            if let Kind::HardLink(target) = &e.kind {
                let mut root = target.clone();
                let mut hops = 0;
                loop {
                    match self.entries.get(&root).map(|e| &e.kind) {
                        Some(Kind::HardLink(next)) if hops < 64 => {
                            root = next.clone();
                            hops += 1;
                        }
                        Some(Kind::File { .. }) => break,
                        Some(_) => {
                            return Err(RootfsError::BadHardLink {
                                link: String::from_utf8_lossy(path).into(),
                                target: String::from_utf8_lossy(target).into(),
                                problem: "not a regular file",
                            });
                        }
                        None => {
                            return Err(RootfsError::BadHardLink {
                                link: String::from_utf8_lossy(path).into(),
                                target: String::from_utf8_lossy(target).into(),
                                problem: "missing from the root file system",
                            });
                        }
                    }
                }
                groups.entry(root).or_default().push(path.clone());
            }
        }
        for (root, mut links) in groups {
            links.push(root.clone());
            links.sort();
            let first = links[0].clone();
            let data = self.entries.remove(&root).expect("root exists");
            for name in &links {
                let mut e = data.clone();
                if *name != first {
                    e.kind = Kind::HardLink(first.clone());
                }
                self.entries.insert(name.clone(), e);
            }
        }
        Ok(())
    }

    /// What the content occupies: (bytes of regular-file data, number of inodes, directory
    /// entry bytes, symlink targets too long to live inside an inode).
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for (path, e) in &self.entries {
            let name_len = path.rsplit(|&b| b == b'/').next().map_or(0, |n| n.len()) as u64;
            // An ext4 directory entry: 8 bytes of header plus the name, padded to 4.
            u.dirent_bytes += 8 + name_len.div_ceil(4) * 4;
            match &e.kind {
                Kind::HardLink(_) => continue,
                Kind::File { size, .. } => {
                    u.files += 1;
                    u.file_bytes += size;
                    u.file_blocks_4k += size.div_ceil(4096);
                }
                Kind::Dir => u.dirs += 1,
                Kind::Symlink(t) if t.len() >= 60 => u.long_symlinks += 1,
                _ => {}
            }
            u.inodes += 1;
            if e.xattrs
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>()
                > 96
            {
                u.xattr_blocks += 1;
            }
        }
        u
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub inodes: u64,
    pub files: u64,
    pub dirs: u64,
    pub file_bytes: u64,
    pub file_blocks_4k: u64,
    pub dirent_bytes: u64,
    pub long_symlinks: u64,
    pub xattr_blocks: u64,
}

pub use load::{load, overlay, overlay_mode};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_creates_parents() {
        let mut t = Tree::new();
        t.insert(b"etc/d3kos/version.txt", Entry::file(&b"1"[..], 0o644, 0));
        let paths: Vec<&[u8]> = t.entries().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            vec![&b"etc"[..], b"etc/d3kos", b"etc/d3kos/version.txt"]
        );
    }

    #[test]
    fn hard_link_groups_hold_data_at_the_first_name() {
        let mut t = Tree::new();
        let mut f = Entry::file(&b"x"[..], 0o4755, 5);
        f.xattrs.push(("security.capability".into(), vec![1, 2]));
        t.insert(b"z/file", f);
        let mut l = Entry::file(&b""[..], 0o644, 0);
        l.kind = Kind::HardLink(b"z/file".to_vec());
        t.insert(b"a/link", l);
        t.normalize_hard_links().unwrap();
        assert!(matches!(
            t.get(b"a/link").unwrap().kind,
            Kind::File { size: 1, .. }
        ));
        let z = t.get(b"z/file").unwrap();
        assert!(matches!(&z.kind, Kind::HardLink(p) if p == b"a/link"));
        assert_eq!(z.mode, 0o4755);
        assert_eq!(z.xattrs.len(), 1);
    }

    #[test]
    fn dangling_hard_link_is_refused() {
        let mut t = Tree::new();
        let mut l = Entry::dir(0o644);
        l.kind = Kind::HardLink(b"nowhere".to_vec());
        t.insert(b"link", l);
        assert!(matches!(
            t.normalize_hard_links(),
            Err(RootfsError::BadHardLink { .. })
        ));
    }

    #[test]
    fn split_off_moves_a_mount_point_subtree() {
        let mut t = Tree::new();
        t.insert(
            b"boot/firmware/start4.elf",
            Entry::file(&b"fw"[..], 0o644, 0),
        );
        t.insert(b"boot/vmlinuz", Entry::file(&b"k"[..], 0o644, 0));
        let fw = t.split_off(b"boot/firmware");
        assert!(fw.get(b"start4.elf").is_some());
        assert!(t.get(b"boot/firmware/start4.elf").is_none());
        assert!(matches!(t.get(b"boot/firmware").unwrap().kind, Kind::Dir));
    }
}
