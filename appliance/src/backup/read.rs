//! Reading a backup archive: every rule a restore relies on is checked here, while the
//! archive streams by, before a byte reaches the live data.
//!
//! The rules: manifest.json first and of a format this software reads; then an optional
//! README.txt; then only folders and regular files under data/, each listed in the
//! manifest with its size (checked from the tar header, before the body is read, so a
//! member claiming gigabytes is refused at once) and sha256; no links, devices, FIFOs,
//! setuid, setgid or sticky bits, absolute paths, `..` or names the device keeps for
//! itself; nothing listed may be missing; after the tar end only zeros, and at most
//! [`MAX_TAIL`] of them; the gzip stream must be whole and nothing may follow it; and the
//! file must match its checksum file. Modes are never taken as the archive gives them:
//! the sink gets them normalised ([`manifest::file_mode`], [`manifest::dir_mode`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

use super::manifest::{self, DATA_DIR, MANIFEST_NAME, MAX_MANIFEST_BYTES, README_NAME};
use super::{BackupError, BackupId, Corruption, Limits, Manifest};
use crate::digest::Hashing;

/// Zero bytes allowed after the tar end marker: the second end block and the padding of
/// the last record (GNU tar pads to 10 KiB records; 1 MiB covers any blocking factor in
/// use). More is not a backup but a decompression bomb.
pub const MAX_TAIL: u64 = 1 << 20;

/// Where the members of a checked archive go.
pub trait Sink {
    /// Called once the manifest is read and checked, before any data.
    fn begin(&mut self, manifest: &Manifest) -> Result<(), BackupError>;
    fn dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError>;
    /// Must read `data` to its end; the reader checks the size and hash after.
    fn file(
        &mut self,
        path: &str,
        mode: u32,
        mtime: i64,
        data: &mut dyn Read,
    ) -> Result<(), BackupError>;
}

/// Reads and checks everything, keeps nothing; counts what it read for a progress bar.
pub struct Discard<'a>(pub Option<&'a super::Progress>);

impl Sink for Discard<'_> {
    fn begin(&mut self, m: &Manifest) -> Result<(), BackupError> {
        if let Some(p) = self.0 {
            p.start(m.total_bytes);
        }
        Ok(())
    }
    fn dir(&mut self, _: &str, _: u32) -> Result<(), BackupError> {
        Ok(())
    }
    fn file(&mut self, _: &str, _: u32, _: i64, data: &mut dyn Read) -> Result<(), BackupError> {
        copy_member(data, &mut std::io::sink(), Path::new("/dev/null"), self.0)
    }
}

/// Copies a member's body to `out`: a failure to read is the archive's fault, a failure to
/// write is `out_path`'s.
pub fn copy_member(
    data: &mut dyn Read,
    out: &mut dyn std::io::Write,
    out_path: &Path,
    progress: Option<&super::Progress>,
) -> Result<(), BackupError> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(BackupError::Corrupt {
                    id: String::new(),
                    reason: stream_error(&e),
                });
            }
        };
        out.write_all(&buf[..n])
            .map_err(BackupError::io(out_path))?;
        if let Some(p) = progress {
            p.add(n as u64);
        }
    }
}

/// The expected sha256 from `ID.tar.gz.sha256`.
pub fn sidecar(path: &Path, id: &BackupId) -> Result<String, Corruption> {
    let name = id.to_string();
    let text =
        std::fs::read_to_string(path).map_err(|_| Corruption::NoSidecar { name: name.clone() })?;
    let archive = format!("{name}{}", super::ARCHIVE_SUFFIX);
    text.lines()
        .filter_map(|l| l.split_once("  ").or_else(|| l.split_once(" *")))
        .find(|(_, file)| file.trim() == archive)
        .map(|(hash, _)| hash.trim().to_ascii_lowercase())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(Corruption::BadSidecar { name })
}

/// The manifest alone, for the list: only the first member is decompressed.
pub fn manifest_of(path: &Path) -> Result<Manifest, Corruption> {
    let f = File::open(path).map_err(|e| Corruption::Tar(e.to_string()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(f)));
    let mut entries = archive.entries().map_err(|e| tar_error(&e))?;
    let first = entries
        .next()
        .ok_or_else(|| Corruption::Tar("the archive is empty".into()))?
        .map_err(|e| tar_error(&e))?;
    read_manifest(first)
}

fn read_manifest<R: Read>(mut entry: tar::Entry<'_, R>) -> Result<Manifest, Corruption> {
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    if name != MANIFEST_NAME || entry.header().entry_type() != tar::EntryType::Regular {
        return Err(Corruption::NoManifest { found: name });
    }
    let size = entry.header().size().map_err(|e| tar_error(&e))?;
    if size > MAX_MANIFEST_BYTES {
        return Err(Corruption::BadManifest(format!(
            "it is {size} bytes, more than {MAX_MANIFEST_BYTES}"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| stream_error(&e))?;
    Manifest::parse(&bytes)
}

/// Reads the whole archive at `path` through `sink`, checking every rule; with
/// `expected_sha256`, the whole file must hash to it. Returns the manifest and the file's
/// sha256.
pub fn read(
    path: &Path,
    id: &BackupId,
    expected_sha256: Option<&str>,
    limits: &Limits,
    sink: &mut dyn Sink,
) -> Result<(Manifest, String), BackupError> {
    let f = File::open(path).map_err(BackupError::io(path))?;
    read_from(f, path, id, expected_sha256, limits, sink)
}

/// [`read`] of an archive that `file` streams; `path` names it in errors.
pub fn read_from(
    file: impl Read,
    path: &Path,
    id: &BackupId,
    expected_sha256: Option<&str>,
    limits: &Limits,
    sink: &mut dyn Sink,
) -> Result<(Manifest, String), BackupError> {
    let corrupt = |reason| BackupError::Corrupt {
        id: id.to_string(),
        reason,
    };
    let mut raw = BufReader::with_capacity(1 << 20, Hashing::new(file));
    let manifest = match read_members(&mut raw, limits, sink) {
        Ok(m) => m,
        Err(Failure::Other(e)) => return Err(e),
        Err(Failure::Bad(reason)) => {
            // A file that does not match its checksum was damaged or changed as a whole;
            // that is the cause to report, not the first symptom the reader tripped on.
            if let Some(expected) = expected_sha256
                && std::io::copy(&mut raw, &mut std::io::sink()).is_ok()
                && raw.get_ref().hex() != expected
            {
                return Err(corrupt(Corruption::Checksum {
                    expected: expected.to_owned(),
                    found: raw.get_ref().hex(),
                }));
            }
            return Err(corrupt(reason));
        }
    };
    // The gzip stream has ended: nothing may follow it (a second gzip member, appended
    // bytes), and the whole file has been hashed.
    let left = raw.fill_buf().map_err(BackupError::io(path))?.len();
    if left > 0 {
        let _ = std::io::copy(&mut raw, &mut std::io::sink());
        let found = raw.get_ref().hex();
        if let Some(expected) = expected_sha256.filter(|e| *e != found) {
            return Err(corrupt(Corruption::Checksum {
                expected: expected.to_owned(),
                found,
            }));
        }
        return Err(corrupt(Corruption::Gzip(
            "bytes follow the end of its gzip stream".into(),
        )));
    }
    let found = raw.get_ref().hex();
    if let Some(expected) = expected_sha256
        && found != expected
    {
        return Err(corrupt(Corruption::Checksum {
            expected: expected.to_owned(),
            found,
        }));
    }
    Ok((manifest, found))
}

enum Failure {
    Bad(Corruption),
    Other(BackupError),
}

impl From<Corruption> for Failure {
    fn from(c: Corruption) -> Self {
        Failure::Bad(c)
    }
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Corrupt { reason, .. } => Failure::Bad(reason),
            e => Failure::Other(e),
        }
    }
}

fn read_members<R: BufRead>(
    raw: &mut R,
    limits: &Limits,
    sink: &mut dyn Sink,
) -> Result<Manifest, Failure> {
    let mut gz = GzDecoder::new(raw);
    let manifest = {
        let mut archive = tar::Archive::new(&mut gz);
        let mut entries = archive.entries().map_err(|e| tar_error(&e))?;
        let first = entries
            .next()
            .ok_or_else(|| Corruption::Tar("the archive is empty".into()))?
            .map_err(|e| tar_error(&e))?;
        let manifest = read_manifest(first)?;
        if manifest.total_bytes > limits.max_total_bytes {
            return Err(Corruption::TooLarge {
                total: manifest.total_bytes,
                limit: limits.max_total_bytes,
            }
            .into());
        }
        sink.begin(&manifest)?;
        let files: BTreeMap<&str, &manifest::FileEntry> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f))
            .collect();
        let dirs: BTreeMap<&str, u32> = manifest
            .dirs
            .iter()
            .map(|d| (d.path.as_str(), d.mode))
            .collect();
        let mut seen = BTreeSet::new();
        let mut readme_allowed = true;
        for entry in entries {
            let mut entry = entry.map_err(|e| tar_error(&e))?;
            let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
                Corruption::UnsafePath {
                    path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    why: "it is not UTF-8",
                }
            })?;
            if readme_allowed && name == README_NAME {
                readme_allowed = false;
                if entry.header().size().map_err(|e| tar_error(&e))? > 1 << 20 {
                    return Err(Corruption::Unexpected { member: name }.into());
                }
                std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| stream_error(&e))?;
                continue;
            }
            readme_allowed = false;
            let trimmed = name.trim_end_matches('/');
            let Some(rel) = trimmed
                .strip_prefix(DATA_DIR)
                .and_then(|r| r.strip_prefix('/'))
            else {
                manifest::check_path(trimmed)?;
                return Err(Corruption::Unexpected { member: name }.into());
            };
            manifest::check_path(rel)?;
            manifest::check_reserved(rel)?;
            let header = entry.header();
            let what = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => None,
                tar::EntryType::Directory => None,
                tar::EntryType::Symlink => Some("a symbolic link"),
                tar::EntryType::Link => Some("a hard link"),
                tar::EntryType::Char => Some("a character device"),
                tar::EntryType::Block => Some("a block device"),
                tar::EntryType::Fifo => Some("a FIFO"),
                _ => Some("an entry of an unknown type"),
            };
            if let Some(what) = what {
                return Err(Corruption::Entry {
                    path: rel.to_owned(),
                    what,
                }
                .into());
            }
            let mode = header.mode().map_err(|e| tar_error(&e))?;
            if mode & !0o777 != 0 {
                return Err(Corruption::Mode {
                    path: rel.to_owned(),
                    mode,
                }
                .into());
            }
            if !seen.insert(rel.to_owned()) {
                return Err(Corruption::Duplicate {
                    path: rel.to_owned(),
                }
                .into());
            }
            if header.entry_type() == tar::EntryType::Directory {
                let Some(listed) = dirs.get(rel) else {
                    return Err(Corruption::Unlisted {
                        path: rel.to_owned(),
                    }
                    .into());
                };
                sink.dir(rel, manifest::dir_mode(*listed))?;
                continue;
            }
            let Some(listed) = files.get(rel) else {
                return Err(Corruption::Unlisted {
                    path: rel.to_owned(),
                }
                .into());
            };
            let size = header.size().map_err(|e| tar_error(&e))?;
            if size != listed.size {
                return Err(Corruption::Size {
                    path: rel.to_owned(),
                    expected: listed.size,
                    found: size,
                }
                .into());
            }
            let mut body = Hashing::new(&mut entry);
            sink.file(
                rel,
                manifest::file_mode(listed.mode),
                listed.mtime,
                &mut body,
            )?;
            if body.passed() != size {
                return Err(Corruption::Size {
                    path: rel.to_owned(),
                    expected: size,
                    found: body.passed(),
                }
                .into());
            }
            let found = body.hex();
            if found != listed.sha256 {
                return Err(Corruption::Hash {
                    path: rel.to_owned(),
                    expected: listed.sha256.clone(),
                    found,
                }
                .into());
            }
        }
        if let Some(missing) = manifest
            .files
            .iter()
            .map(|f| &f.path)
            .chain(manifest.dirs.iter().map(|d| &d.path))
            .find(|p| !seen.contains(p.as_str()))
        {
            return Err(Corruption::Missing {
                path: missing.clone(),
            }
            .into());
        }
        manifest
    };
    // The tar end blocks leave the gzip stream unfinished; reading it to its end checks
    // the gzip trailer (CRC and length), and nothing but a little tar padding may be left.
    let mut tail = [0u8; 64 << 10];
    let mut zeros = 0u64;
    loop {
        let n = gz.read(&mut tail).map_err(|e| stream_error(&e))?;
        if n == 0 {
            break;
        }
        if tail[..n].iter().any(|&b| b != 0) {
            return Err(Corruption::Tar("data follows the end of the archive".into()).into());
        }
        zeros += n as u64;
        if zeros > MAX_TAIL {
            return Err(Corruption::Tar(format!(
                "more than {MAX_TAIL} bytes of padding follow the end of the archive"
            ))
            .into());
        }
    }
    Ok(manifest)
}

fn stream_error(e: &std::io::Error) -> Corruption {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Corruption::Gzip("it ends too early".into()),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            Corruption::Gzip(e.to_string())
        }
        _ => Corruption::Tar(e.to_string()),
    }
}

fn tar_error(e: &std::io::Error) -> Corruption {
    match stream_error(e) {
        Corruption::Gzip(g) => Corruption::Gzip(g),
        _ => Corruption::Tar(e.to_string()),
    }
}
