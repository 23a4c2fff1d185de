//! The deterministic tar stream mke2fs builds ext4 from: sorted entries, numeric owners,
//! clamped times, xattrs as PAX `SCHILY.xattr.*` records (which libarchive, and so
//! `mke2fs -d`, restores).

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use super::{Kind, Tree};
use crate::digest::{self, Hashing, Sum};

pub struct TarStream<'t> {
    tree: &'t Tree,
    /// No timestamp in the stream is later than this (SOURCE_DATE_EPOCH).
    clamp: i64,
}

impl<'t> TarStream<'t> {
    pub fn new(tree: &'t Tree, clamp: i64) -> Self {
        TarStream { tree, clamp }
    }

    /// Writes the stream and returns its size and sha256, the input hash for the build
    /// manifest.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<Sum> {
        let tap = Hashing::new(out);
        let mut ar = tar::Builder::new(tap);
        for (path, e) in self.tree.entries() {
            let os_path = std::ffi::OsStr::from_bytes(path);
            if !e.xattrs.is_empty() {
                append_pax(&mut ar, &e.xattrs)?;
            }
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.mode);
            h.set_uid(u64::from(e.uid));
            h.set_gid(u64::from(e.gid));
            h.set_mtime(e.mtime.clamp(0, self.clamp) as u64);
            h.set_size(0);
            match &e.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    ar.append_data(&mut h, os_path, io::empty())?;
                }
                Kind::File { size, data } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(*size);
                    let reader = self.tree.open(data, *size)?;
                    ar.append_data(
                        &mut h,
                        os_path,
                        Exact {
                            inner: reader,
                            left: *size,
                            path,
                        },
                    )?;
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    ar.append_link(&mut h, os_path, std::ffi::OsStr::from_bytes(target))?;
                }
                Kind::HardLink(target) => {
                    h.set_entry_type(tar::EntryType::Link);
                    ar.append_link(&mut h, os_path, std::ffi::OsStr::from_bytes(target))?;
                }
                Kind::Char { major, minor } | Kind::Block { major, minor } => {
                    h.set_entry_type(if matches!(e.kind, Kind::Char { .. }) {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    });
                    h.set_device_major(*major)?;
                    h.set_device_minor(*minor)?;
                    ar.append_data(&mut h, os_path, io::empty())?;
                }
                Kind::Fifo => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    ar.append_data(&mut h, os_path, io::empty())?;
                }
            }
        }
        Ok(digest::finish(ar.into_inner()?)?.1)
    }
}

/// A file's bytes, refusing to be shorter than its recorded size: a file that shrank while
/// we built would otherwise shift every entry after it.
struct Exact<'p, R> {
    inner: R,
    left: u64,
    path: &'p [u8],
}

impl<R: io::Read> io::Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter than when it was listed",
                    String::from_utf8_lossy(self.path)
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A PAX extended header (POSIX.1-2001 `x` entry) carrying xattrs as SCHILY.xattr records.
fn append_pax<W: Write>(ar: &mut tar::Builder<W>, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    let mut records = Vec::new();
    for (name, value) in xattrs {
        let body_len = 1 + "SCHILY.xattr.".len() + name.len() + 1 + value.len() + 1;
        // The length field counts its own digits.
        let mut len = body_len + 1;
        while len != body_len + len.to_string().len() {
            len = body_len + len.to_string().len();
        }
        records.extend_from_slice(format!("{len} SCHILY.xattr.{name}=").as_bytes());
        records.extend_from_slice(value);
        records.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("././@PaxHeader")?;
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(records.len() as u64);
    h.set_cksum();
    ar.append(&h, records.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::Entry;

    fn sample() -> Tree {
        let mut t = Tree::new();
        let mut ping = Entry::file(&b"ELF"[..], 0o4755, 2_000_000_000);
        ping.xattrs.push((
            "security.capability".into(),
            vec![1, 0, 0, 2, 0, 0x20, 0, 0],
        ));
        t.insert(b"usr/bin/ping", ping);
        t.insert(
            b"dev/null",
            Entry {
                kind: Kind::Char { major: 1, minor: 3 },
                ..Entry::dir(0o666)
            },
        );
        t
    }

    #[test]
    fn stream_is_stable_and_clamps_time() {
        let t = sample();
        let mut a = Vec::new();
        let da = TarStream::new(&t, 1_000).write_to(&mut a).unwrap();
        let mut b = Vec::new();
        let db = TarStream::new(&t, 1_000).write_to(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(da, db);
        assert_eq!(da.size, a.len() as u64);

        let mut ar = tar::Archive::new(a.as_slice());
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            assert!(e.header().mtime().unwrap() <= 1_000);
            let caps: Vec<(String, Vec<u8>)> = match e.pax_extensions().unwrap() {
                Some(exts) => exts
                    .map(|x| x.unwrap())
                    .map(|x| (x.key().unwrap().to_owned(), x.value_bytes().to_vec()))
                    .collect(),
                None => Vec::new(),
            };
            seen.push((e.path().unwrap().display().to_string(), caps));
        }
        let ping = seen.iter().find(|(p, _)| p == "usr/bin/ping").unwrap();
        assert_eq!(
            ping.1,
            vec![(
                "SCHILY.xattr.security.capability".to_owned(),
                vec![1, 0, 0, 2, 0, 0x20, 0, 0]
            )]
        );
        let order: Vec<&str> = seen.iter().map(|(p, _)| p.trim_end_matches('/')).collect();
        assert_eq!(
            order,
            vec!["dev", "dev/null", "usr", "usr/bin", "usr/bin/ping"]
        );
    }
}
