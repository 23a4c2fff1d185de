//! Making a backup: a consistent snapshot of the state folder (SQLite databases through
//! SQLite's online backup API, never a copy of a live database file), hashed, then written
//! as `manifest.json` + `README.txt` + `data/…` into a gzip'd tar under a temporary name,
//! fsynced, and renamed into place with its checksum file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::manifest::{self, DATA_DIR, DirEntry, FORMAT, FileEntry, MANIFEST_NAME, README_NAME};
use super::{
    ARCHIVE_SUFFIX, BackupError, BackupId, Checks, Kind, Lock, Manifest, Paths, Progress,
    TMP_PREFIX, sync_dir,
};
use crate::crashpoint;
use crate::digest::Hashing;

/// Marks a restore in progress; never part of the data (no `.d3kos-` name is, see
/// [`manifest::reserved`]).
pub(crate) const RESTORE_MARKER: &str = ".d3kos-restore.json";
pub(crate) const PACKED_MARKER: &str = ".d3kos-packed";

/// gzip level 6, the level `gzip` and `tar czf` use.
const LEVEL: u32 = 6;
const CHUNK: usize = 1 << 20;

/// A finished backup.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: BackupId,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub manifest: Manifest,
}

/// Makes a backup of the state folder.
pub fn create(
    paths: &Paths,
    kind: Kind,
    now: i64,
    progress: &Progress,
) -> Result<Created, BackupError> {
    let _lock = Lock::take(paths)?;
    write(
        paths,
        &paths.state_dir,
        kind,
        now,
        &free_id(paths, now),
        progress,
    )
}

/// One file or folder to back up.
enum Item {
    Dir {
        rel: String,
        mode: u32,
    },
    File {
        rel: String,
        /// The live file.
        path: PathBuf,
        /// Where its bytes are read from: the live file, or a database snapshot.
        from: PathBuf,
        mode: u32,
        mtime: i64,
        /// The live file's size when walked, for the space check.
        len: u64,
        database: bool,
    },
}

/// Writes a backup of `source` (the state folder, or the data a restore replaced). The
/// caller holds the lock.
pub(crate) fn write(
    paths: &Paths,
    source: &Path,
    kind: Kind,
    now: i64,
    id: &BackupId,
    progress: &Progress,
) -> Result<Created, BackupError> {
    let dir = &paths.backup_dir;
    super::make_dir(dir)?;
    let id = id.clone();
    let work = dir.join(format!("{TMP_PREFIX}{id}"));
    let tmp_archive = dir.join(format!("{TMP_PREFIX}{id}{ARCHIVE_SUFFIX}"));
    let tmp_sidecar = dir.join(format!("{TMP_PREFIX}{id}{}", super::SIDECAR_SUFFIX));
    let result = (|| {
        let mut items = Vec::new();
        walk(source, source, &mut items)?;
        // Everything read plus database snapshots, as an upper bound of the archive: gzip
        // never grows data by more than a fraction of a percent.
        let needed: u64 = items
            .iter()
            .map(|i| match i {
                Item::File { len, database, .. } => {
                    if *database {
                        2 * len
                    } else {
                        *len
                    }
                }
                Item::Dir { .. } => 512,
            })
            .sum::<u64>()
            + (1 << 20);
        super::space::ensure(dir, needed)?;
        super::make_dir(&work)?;
        snapshot_databases(&mut items, &work)?;
        let manifest = describe(&id, source, kind, now, &items)?;
        crashpoint::reached("create: manifest made");
        progress.start(manifest.total_bytes);
        let (size, sha256) = write_archive(&tmp_archive, &manifest, &items, progress)?;
        super::write_sidecar(&tmp_sidecar, &id, &sha256)?;
        crashpoint::reached("create: archive and checksum written");
        // The checksum file goes first: an archive in the list always has one.
        let sidecar = paths.sidecar(&id);
        std::fs::rename(&tmp_sidecar, &sidecar).map_err(BackupError::io(&sidecar))?;
        crashpoint::reached("create: checksum in place");
        let path = paths.archive(&id);
        std::fs::rename(&tmp_archive, &path).map_err(BackupError::io(&path))?;
        sync_dir(dir)?;
        crashpoint::reached("create: archive in place");
        Ok(Created {
            id: id.clone(),
            path,
            size,
            sha256,
            manifest,
        })
    })();
    let _ = std::fs::remove_dir_all(&work);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_archive);
        let _ = std::fs::remove_file(&tmp_sidecar);
    } else {
        // Written and hashed in one pass from data hashed before: it verifies.
        Checks::record(dir, &id, true, None);
    }
    result
}

/// The id for a backup made at `now` that no archive has yet.
pub(crate) fn free_id(paths: &Paths, now: i64) -> BackupId {
    (1..)
        .map(|n| BackupId::at(now, n))
        .find(|id| !paths.archive(id).exists() && !paths.sidecar(id).exists())
        .expect("some id is free")
}

/// The files and folders under `dir`, sorted, without what never goes into a backup.
fn walk(root: &Path, dir: &Path, out: &mut Vec<Item>) -> Result<(), BackupError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(BackupError::io(dir))?
        .collect::<Result<_, _>>()
        .map_err(BackupError::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    let names: std::collections::BTreeSet<_> = entries.iter().map(|e| e.file_name()).collect();
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            log::warn!(
                "backup: {} has a name that is not UTF-8; left out",
                path.display()
            );
            continue;
        };
        let rel = path
            .strip_prefix(root)
            .expect("walked under the root")
            .to_str()
            .expect("UTF-8 checked")
            .to_owned();
        // Owner accounts stay with the device (a backup may leave the boat on a USB stick
        // or a laptop, and a restore must not change who can sign in); the device's own
        // bookkeeping and work in progress are not data.
        if manifest::reserved(&rel).is_some() {
            continue;
        }
        // A database's journal and WAL are read through SQLite into its snapshot.
        if ["-wal", "-shm", "-journal"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| names.contains(std::ffi::OsStr::new(base)))
        }) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(BackupError::io(&path))?;
        let meta = heal(&path, meta)?;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            out.push(Item::Dir { rel, mode });
            walk(root, &path, out)?;
        } else if meta.is_file() {
            out.push(Item::File {
                rel,
                from: path.clone(),
                database: is_sqlite(&path),
                path,
                mode,
                mtime: meta.mtime(),
                len: meta.len(),
            });
        } else {
            log::warn!(
                "backup: {} is not a file or folder; left out",
                path.display()
            );
        }
    }
    Ok(())
}

/// A folder the daemon cannot enter or a file it cannot read would make every backup (and
/// the pre-restore backup of every restore) fail. Such modes came from archives restored
/// by older versions, which took them as given; the daemon owns these files, so it gives
/// itself its access back before reading them.
fn heal(path: &Path, meta: std::fs::Metadata) -> Result<std::fs::Metadata, BackupError> {
    let mode = meta.permissions().mode() & 0o777;
    let need = if meta.is_dir() {
        0o700
    } else if meta.is_file() {
        0o600
    } else {
        return Ok(meta);
    };
    let me = rustix::process::geteuid();
    if mode & need == need || (meta.uid() != me.as_raw() && !me.is_root()) {
        return Ok(meta);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | need))
        .map_err(BackupError::io(path))?;
    log::warn!(
        "backup: {} had mode {mode:03o}, which kept the device from reading it; it is {:03o} now",
        path.display(),
        mode | need
    );
    std::fs::symlink_metadata(path).map_err(BackupError::io(path))
}

fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

/// Copies every database through SQLite's online backup API into `work`, so the archive
/// holds each one as a single consistent state even while it is being written to.
fn snapshot_databases(items: &mut [Item], work: &Path) -> Result<(), BackupError> {
    for (n, item) in items.iter_mut().enumerate() {
        let Item::File {
            path,
            from,
            database: true,
            ..
        } = item
        else {
            continue;
        };
        let snapshot = work.join(format!("db-{n}.sqlite"));
        let db_err = |path: &Path| {
            let path = path.to_owned();
            move |source| BackupError::Database { path, source }
        };
        let src = rusqlite::Connection::open_with_flags(
            &*path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err(path))?;
        let mut dst = rusqlite::Connection::open(&snapshot).map_err(db_err(&snapshot))?;
        rusqlite::backup::Backup::new(&src, &mut dst)
            .and_then(|b| b.run_to_completion(256, std::time::Duration::ZERO, None))
            .map_err(db_err(path))?;
        dst.close().map_err(|(_, e)| db_err(&snapshot)(e))?;
        *from = snapshot;
        crashpoint::reached("create: database snapshot");
    }
    Ok(())
}

fn describe(
    id: &BackupId,
    source: &Path,
    kind: Kind,
    now: i64,
    items: &[Item],
) -> Result<Manifest, BackupError> {
    let licence: Option<crate::licence::Licence> =
        crate::state::load(&crate::licence::Licence::path(source), 0)
            .ok()
            .flatten();
    let mut counts = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for item in items {
        match item {
            Item::Dir { rel, mode } => dirs.push(DirEntry {
                path: rel.clone(),
                mode: *mode,
            }),
            Item::File {
                rel,
                from,
                mode,
                mtime,
                database,
                ..
            } => {
                let mut f = Hashing::new(File::open(from).map_err(BackupError::io(from))?);
                std::io::copy(&mut f, &mut std::io::sink()).map_err(BackupError::io(from))?;
                *counts
                    .entry(manifest::item_kind(rel, *database).to_owned())
                    .or_insert(0) += 1;
                files.push(FileEntry {
                    path: rel.clone(),
                    size: f.passed(),
                    sha256: f.hex(),
                    mode: *mode,
                    mtime: *mtime,
                });
            }
        }
    }
    Ok(Manifest {
        format: FORMAT,
        name: id.to_string(),
        created: crate::time::rfc3339(now),
        created_unix: now,
        kind,
        d3kos_version: crate::release::version().to_owned(),
        installation_id: licence
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |l| l.installation_id.clone()),
        tier: licence.map_or(0, |l| l.tier),
        items: counts,
        total_bytes: files.iter().map(|f| f.size).sum(),
        dirs,
        files,
    })
}

/// Writes the archive; returns its size and sha256. Tar framing and reading run on this
/// thread, gzip on another, as `tar czf` runs tar and gzip as two processes.
fn write_archive(
    path: &Path,
    manifest: &Manifest,
    items: &[Item],
    progress: &Progress,
) -> Result<(u64, String), BackupError> {
    let file = File::create(path).map_err(BackupError::io(path))?;
    super::set_mode(path, super::FILE_MODE)?;
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
    let out_path = path.to_owned();
    let gzip = std::thread::spawn(move || -> Result<(u64, String), BackupError> {
        let io = BackupError::io(&out_path);
        let mut gz = GzEncoder::new(
            Hashing::new(BufWriter::with_capacity(CHUNK, file)),
            Compression::new(LEVEL),
        );
        let mut failed = None;
        for chunk in rx {
            if failed.is_none()
                && let Err(e) = gz.write_all(&chunk)
            {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            return Err(io(e));
        }
        let out = gz.finish().map_err(BackupError::io(&out_path))?;
        let (file, count, sha256) = out.finish().map_err(BackupError::io(&out_path))?;
        file.get_ref()
            .sync_all()
            .map_err(BackupError::io(&out_path))?;
        Ok((count, sha256))
    });
    let framed = frame(
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        manifest,
        items,
        progress,
    );
    let compressed = gzip.join().expect("the gzip thread does not panic");
    framed?;
    compressed
}

fn frame(
    out: ChannelWriter,
    manifest: &Manifest,
    items: &[Item],
    progress: &Progress,
) -> Result<(), BackupError> {
    let pipe = Path::new("(gzip)");
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let add_bytes = |tar: &mut tar::Builder<ChannelWriter>, name: &str, bytes: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644, manifest.created_unix);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes)
            .map_err(BackupError::io(pipe))
    };
    add_bytes(&mut tar, MANIFEST_NAME, &manifest.to_json())?;
    add_bytes(&mut tar, README_NAME, manifest::readme(manifest).as_bytes())?;
    let mut files = manifest.files.iter();
    for item in items {
        match item {
            Item::Dir { rel, mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, manifest.created_unix);
                h.set_size(0);
                tar.append_data(&mut h, format!("{DATA_DIR}/{rel}/"), std::io::empty())
                    .map_err(BackupError::io(pipe))?;
            }
            Item::File {
                rel, path, from, ..
            } => {
                let listed = files.next().expect("one manifest entry per file");
                let mut h = header(tar::EntryType::Regular, listed.mode, listed.mtime);
                h.set_size(listed.size);
                let f = File::open(from).map_err(BackupError::io(from))?;
                let mut body = Exactly {
                    inner: Hashing::new(f),
                    left: listed.size,
                    progress,
                };
                tar.append_data(&mut h, format!("{DATA_DIR}/{rel}"), &mut body)
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::Other && body.left != 0 {
                            BackupError::Changed { path: path.clone() }
                        } else {
                            BackupError::io(pipe)(e)
                        }
                    })?;
                // Bytes that differ from those hashed for the manifest would make a backup
                // that never verifies.
                let mut more = [0u8; 1];
                let grew = body.inner.read(&mut more).map_err(BackupError::io(from))? != 0;
                if grew || body.inner.hex() != listed.sha256 {
                    return Err(BackupError::Changed { path: path.clone() });
                }
                crashpoint::reached("create: file archived");
            }
        }
    }
    let mut out = tar.into_inner().map_err(BackupError::io(pipe))?;
    out.flush().map_err(BackupError::io(pipe))
}

fn header(kind: tar::EntryType, mode: u32, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(mtime.max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Reads exactly `left` bytes, and fails if the file ends sooner (it shrank).
struct Exactly<'a, R> {
    inner: R,
    left: u64,
    progress: &'a Progress,
}

impl<R: Read> Read for Exactly<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::other("the file shrank while being read"));
        }
        self.left -= n as u64;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Hands what is written to the gzip thread in 1 MiB chunks.
struct ChannelWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(chunk)
            .map_err(|_| std::io::Error::other("the gzip writer stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}
