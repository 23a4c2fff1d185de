//! Loading a root file system from a directory or a tarball (plain, gzip or xz).

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Data, Entry, Kind, RootfsError, Tree};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads `path`: a directory, or a tarball. A compressed tarball is decompressed into
/// `scratch` first, so entries can be read by offset later.
pub fn load(path: &Path, scratch: &Path) -> Result<Tree, RootfsError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mut tree = if meta.is_dir() {
        let mut tree = Tree::new();
        let mut inodes = std::collections::HashMap::new();
        walk(path, Vec::new(), &mut tree, &mut inodes, true)?;
        tree
    } else {
        load_tar(path, scratch)?
    };
    tree.normalize_hard_links()?;
    Ok(tree)
}

/// An overlay comes from a git checkout, which records only "executable or not"; the rest of
/// the mode is the checkout's umask, which must not reach the image.
pub fn overlay_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

/// Lays a directory over the tree: its files replace the tree's, owned by root.
pub fn overlay(tree: &mut Tree, dir: &Path) -> Result<(), RootfsError> {
    let mut inodes = std::collections::HashMap::new();
    walk(dir, Vec::new(), tree, &mut inodes, false)?;
    tree.normalize_hard_links()
}

fn walk(
    dir: &Path,
    rel: Vec<u8>,
    tree: &mut Tree,
    inodes: &mut std::collections::HashMap<(u64, u64), Vec<u8>>,
    keep_owner: bool,
) -> Result<(), RootfsError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel_path = if rel.is_empty() {
            name.as_bytes().to_vec()
        } else {
            [rel.as_slice(), b"/", name.as_bytes()].concat()
        };
        let m = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            let key = (m.dev(), m.ino());
            match inodes.get(&key) {
                Some(first) if m.nlink() > 1 => Kind::HardLink(first.clone()),
                _ => {
                    if m.nlink() > 1 {
                        inodes.insert(key, rel_path.clone());
                    }
                    Kind::File {
                        size: m.len(),
                        data: Data::Disk(path.clone()),
                    }
                }
            }
        } else if ft.is_symlink() {
            Kind::Symlink(
                std::fs::read_link(&path)
                    .map_err(io(&path))?
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            let (major, minor) = split_rdev(m.rdev());
            if ft.is_char_device() {
                Kind::Char { major, minor }
            } else {
                Kind::Block { major, minor }
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            // Sockets are runtime objects; a root file system has no business shipping one.
            log::warn!("skipping socket {}", path.display());
            continue;
        };
        let xattrs = if ft.is_symlink() {
            Vec::new()
        } else {
            read_xattrs(&path)?
        };
        let (uid, gid) = if keep_owner {
            (m.uid(), m.gid())
        } else {
            (0, 0)
        };
        let is_dir = matches!(kind, Kind::Dir);
        let mode = if keep_owner {
            m.mode() & 0o7777
        } else {
            overlay_mode(m.mode())
        };
        tree.insert(
            &rel_path,
            Entry {
                kind,
                mode,
                uid,
                gid,
                mtime: m.mtime(),
                xattrs,
            },
        );
        if is_dir {
            walk(&path, rel_path, tree, inodes, keep_owner)?;
        }
    }
    Ok(())
}

/// The xattrs an image keeps: file capabilities and the other security.*, trusted.* and
/// user.* names. POSIX ACLs (system.*) are not carried.
fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>, RootfsError> {
    let mut out = Vec::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(95) => return Ok(out), // EOPNOTSUPP
        Err(e) => return Err(io(path)(e)),
    };
    for name in names {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if !(name.starts_with("security.")
            || name.starts_with("trusted.")
            || name.starts_with("user."))
        {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).map_err(io(path))? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

/// Linux's `dev_t` encoding (glibc's gnu_dev_major / gnu_dev_minor).
fn split_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The archive as a plain, seekable tar: a compressed one is decompressed into `scratch`.
fn plain_tar(
    path: &Path,
    scratch: &Path,
) -> Result<(PathBuf, Option<tempfile::TempPath>), RootfsError> {
    let mut magic = [0u8; 6];
    let mut f = File::open(path).map_err(io(path))?;
    let n = f.read(&mut magic).map_err(io(path))?;
    let magic = &magic[..n];
    let decoder: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
            File::open(path).map_err(io(path))?,
        )))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(BufReader::new(
            File::open(path).map_err(io(path))?,
        )))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(RootfsError::Unsupported {
            path: path.to_owned(),
            reason: "zstd-compressed tarballs are not read: decompress it first (`zstd -d`)".into(),
        });
    } else {
        return Ok((path.to_owned(), None));
    };
    let tmp = tempfile::NamedTempFile::new_in(scratch).map_err(io(scratch))?;
    let (mut file, tmp_path) = tmp.into_parts();
    let mut decoder = decoder;
    std::io::copy(&mut decoder, &mut file).map_err(|e| RootfsError::Unsupported {
        path: path.to_owned(),
        reason: format!("cannot decompress: {e}"),
    })?;
    Ok((tmp_path.to_path_buf(), Some(tmp_path)))
}

fn load_tar(path: &Path, scratch: &Path) -> Result<Tree, RootfsError> {
    let (plain, keep) = plain_tar(path, scratch)?;
    let file = File::open(&plain).map_err(io(&plain))?;
    let mut archive = tar::Archive::new(file);
    let mut tree = Tree::new();
    let bad = |entry: &[u8], reason: String| RootfsError::BadEntry {
        archive: path.to_owned(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        reason,
    };
    let entries = archive
        .entries_with_seek()
        .map_err(|e| bad(b"", e.to_string()))?;
    let mut seen_any = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            bad(
                b"(after the last good entry)",
                format!("the tarball is damaged: {e}"),
            )
        })?;
        seen_any = true;
        let raw_path = entry.path_bytes().into_owned();
        let Some(rel) = normalize_path(&raw_path) else {
            return Err(bad(&raw_path, "the path leaves the root (`..`)".into()));
        };
        let h = entry.header();
        let mode = h.mode().map_err(|e| bad(&raw_path, e.to_string()))? & 0o7777;
        let uid = h.uid().map_err(|e| bad(&raw_path, e.to_string()))? as u32;
        let gid = h.gid().map_err(|e| bad(&raw_path, e.to_string()))? as u32;
        let mtime = h.mtime().map_err(|e| bad(&raw_path, e.to_string()))? as i64;
        let etype = h.entry_type();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let kind = match etype {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File {
                size: entry.size(),
                data: Data::Archive(entry.raw_file_position()),
            },
            tar::EntryType::Symlink => Kind::Symlink(
                link.ok_or_else(|| bad(&raw_path, "symlink without a target".into()))?,
            ),
            tar::EntryType::Link => {
                let target =
                    link.ok_or_else(|| bad(&raw_path, "hard link without a target".into()))?;
                let target = normalize_path(&target)
                    .ok_or_else(|| bad(&raw_path, "hard link target leaves the root".into()))?;
                Kind::HardLink(target)
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                if etype == tar::EntryType::Char {
                    Kind::Char { major, minor }
                } else {
                    Kind::Block { major, minor }
                }
            }
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(bad(
                    &raw_path,
                    format!("unsupported tar entry type {other:?} (sparse or vendor-specific)"),
                ));
            }
        };
        let mut xattrs = Vec::new();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| bad(&raw_path, e.to_string()))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| bad(&raw_path, e.to_string()))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }
        xattrs.sort();
        if rel.is_empty() {
            continue; // the root directory itself: mke2fs owns it
        }
        tree.insert(
            &rel,
            Entry {
                kind,
                mode,
                uid,
                gid,
                mtime,
                xattrs,
            },
        );
    }
    if !seen_any {
        return Err(RootfsError::Unsupported {
            path: path.to_owned(),
            reason: "not a tarball, or an empty one".into(),
        });
    }
    tree.archive = Some(plain);
    tree._scratch = keep.map(Arc::new);
    Ok(tree)
}

/// `./usr//bin/` → `usr/bin`; `None` when a `..` component would leave the root.
fn normalize_path(raw: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_escapes_refused() {
        assert_eq!(normalize_path(b"./usr//bin/"), Some(b"usr/bin".to_vec()));
        assert_eq!(normalize_path(b"/etc/passwd"), Some(b"etc/passwd".to_vec()));
        assert_eq!(normalize_path(b"./"), Some(Vec::new()));
        assert_eq!(normalize_path(b"a/../../etc"), None);
    }

    #[test]
    fn rdev_splits_like_glibc() {
        // makedev(1, 3) and makedev(259, 70000)
        assert_eq!(split_rdev(0x103), (1, 3));
        let (ma, mi) = (259u64, 70_000u64);
        let rdev = ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12);
        assert_eq!(split_rdev(rdev), (259, 70_000));
    }
}
