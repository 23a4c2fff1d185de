//! Backups of the boat's data: made from the state folder with consistent database
//! snapshots, verified file by file, restored by one atomic swap, kept and scheduled.
//!
//! A backup is `ID.tar.gz` in the backup folder with its `ID.tar.gz.sha256` beside it; the
//! id is `d3kos_backup_YYYYMMDD_HHMMSS` and is the only way to name one. Everything else in
//! the folder starts with a dot and is the backups' own bookkeeping.

pub mod cli;
pub mod create;
pub mod jobs;
pub mod manifest;
pub mod media;
pub mod read;
pub mod restore;
pub mod schedule;
mod space;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use manifest::{Kind, Manifest};

const PREFIX: &str = "d3kos_backup_";
const ARCHIVE_SUFFIX: &str = ".tar.gz";
const SIDECAR_SUFFIX: &str = ".tar.gz.sha256";
/// Names that start with this are work in progress and removed on the next start.
const TMP_PREFIX: &str = ".tmp-";
const LOCK_NAME: &str = ".lock";
const CHECKS_NAME: &str = ".checks.json";
const LAST_NAME: &str = ".last.json";

/// Where backups are read from and written to.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The live data: licence, databases, configuration, manuals, boat log, onboarding.
    pub state_dir: PathBuf,
    /// The backups. On the data partition by default, so a restore can swap on one file
    /// system.
    pub backup_dir: PathBuf,
}

impl Paths {
    /// The device's own backup folder and state folder, from the configuration.
    pub fn of(config: &crate::config::Config) -> Paths {
        Paths {
            state_dir: config.state_dir.clone(),
            backup_dir: config.backup_dir.clone(),
        }
    }

    /// The same state folder, with backups on a USB drive.
    pub fn on(&self, medium: &media::Medium) -> Paths {
        Paths {
            state_dir: self.state_dir.clone(),
            backup_dir: medium.backup_dir(),
        }
    }

    pub fn archive(&self, id: &BackupId) -> PathBuf {
        self.backup_dir.join(format!("{}{ARCHIVE_SUFFIX}", id.0))
    }
    pub fn sidecar(&self, id: &BackupId) -> PathBuf {
        self.backup_dir.join(format!("{}{SIDECAR_SUFFIX}", id.0))
    }
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut p = self.state_dir.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    }
    /// Where a restore unpacks, beside the state folder (one file system, so the swap is
    /// one rename). Holds a restore marker until the swap.
    pub fn staging(&self) -> PathBuf {
        self.sibling(".restore")
    }
    /// The staging folder while it is being set up, before it holds its marker.
    pub fn staging_tmp(&self) -> PathBuf {
        self.sibling(".restore.tmp")
    }
    /// The data a restore replaced, until it is packed into a pre-restore backup.
    pub fn previous(&self) -> PathBuf {
        self.sibling(".previous")
    }
}

/// What the owner can set about backups (`backup-settings.json` in the state folder, so it
/// travels with the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub auto: schedule::Auto,
    /// How many backups to keep; the oldest beyond this are deleted after each new one.
    pub keep: u32,
    /// The hour (0-23, device time zone) automatic backups run at.
    pub hour: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto: schedule::Auto::Daily,
            keep: 10,
            hour: 3,
        }
    }
}

impl Settings {
    pub const FILE: &str = "backup-settings.json";

    /// The owner's settings; defaults when unset or unreadable.
    pub fn load(paths: &Paths) -> Settings {
        crate::state::load(&paths.state_dir.join(Self::FILE), 0)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn save(&self, paths: &Paths) -> Result<(), crate::state::StateError> {
        crate::state::save(&paths.state_dir.join(Self::FILE), self)
    }

    /// What is wrong with settings an owner sent, if anything.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.keep) {
            return Err(format!("Keep {} backups? Choose 1 to 100.", self.keep));
        }
        if self.hour > 23 {
            return Err(format!(
                "Hour {} does not exist: choose 0 to 23.",
                self.hour
            ));
        }
        Ok(())
    }
}

/// A backup's name, checked: the only way a request can point at a backup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct BackupId(String);

impl TryFrom<String> for BackupId {
    type Error = BackupError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BackupId::parse(&s)
    }
}

impl BackupId {
    /// Checks a name: `d3kos_backup_YYYYMMDD_HHMMSS` of a real calendar time, optionally
    /// `_N` (N of 1 to 3 digits). Works on bytes and never slices the text, so any input
    /// gets an answer, never a panic.
    pub fn parse(given: &str) -> Result<BackupId, BackupError> {
        let bad = || BackupError::BadId {
            given: given.chars().take(200).collect(),
        };
        let b = given.strip_prefix(PREFIX).ok_or_else(bad)?.as_bytes();
        let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
        if b.len() < 15 || !digits(&b[..8]) || b[8] != b'_' || !digits(&b[9..15]) {
            return Err(bad());
        }
        match &b[15..] {
            [] => {}
            [b'_', n @ ..] if (1..=3).contains(&n.len()) && digits(n) => {}
            _ => return Err(bad()),
        }
        stamp_time(b).ok_or_else(bad)?;
        Ok(BackupId(given.to_owned()))
    }

    /// The UTC time the id names.
    pub fn unix(&self) -> i64 {
        stamp_time(&self.0.as_bytes()[PREFIX.len()..]).expect("a parsed id names a real time")
    }

    /// The id for a backup made at `unix` UTC, with `_2`, `_3`, … when that second is taken.
    fn at(unix: i64, n: u32) -> BackupId {
        let c = crate::time::civil(unix);
        let mut id = format!(
            "{PREFIX}{:04}{:02}{:02}_{:02}{:02}{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        if n > 1 {
            id.push_str(&format!("_{n}"));
        }
        BackupId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The time of `YYYYMMDD_HHMMSS` at the start of `b` (ASCII digits, checked by the caller).
fn stamp_time(b: &[u8]) -> Option<i64> {
    let num = |d: &[u8]| d.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
    crate::time::from_civil(&crate::time::Civil {
        year: i64::from(num(&b[0..4])),
        month: num(&b[4..6]),
        day: num(&b[6..8]),
        hour: num(&b[9..11]),
        minute: num(&b[11..13]),
        second: num(&b[13..15]),
    })
}

impl std::fmt::Display for BackupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with an archive.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    #[error("it has no checksum file ({name}{SIDECAR_SUFFIX})")]
    NoSidecar { name: String },
    #[error("its checksum file does not hold a sha256 line for {name}{ARCHIVE_SUFFIX}")]
    BadSidecar { name: String },
    #[error(
        "its sha256 is {found} but its checksum file says {expected}: the file was changed or damaged"
    )]
    Checksum { expected: String, found: String },
    #[error("it is not a complete gzip file ({0}): it may have been cut short while copying")]
    Gzip(String),
    #[error("it is not a valid tar archive ({0})")]
    Tar(String),
    #[error("its first member is `{found}`, not manifest.json: this is not a d3kOS backup")]
    NoManifest { found: String },
    #[error("its manifest is not valid: {0}")]
    BadManifest(String),
    #[error(
        "it was made by a newer d3kOS (backup format {found}; this software reads up to \
         {supported}): update this device first"
    )]
    NewerFormat { found: u32, supported: u32 },
    #[error("it holds `{path}`, which a restore may not write: {why}")]
    UnsafePath { path: String, why: &'static str },
    #[error("it holds `{path}`, a name the device keeps for itself: {why}")]
    Reserved { path: String, why: &'static str },
    #[error(
        "it is dated {dated}, more than a day after this device's clock ({now}): check the \
         date and time in Settings, then upload it again"
    )]
    Future { dated: String, now: String },
    #[error("it holds {what} at `{path}`: backups hold only files and folders")]
    Entry { path: String, what: &'static str },
    #[error("`{path}` has mode {mode:o}: setuid, setgid and sticky bits are refused")]
    Mode { path: String, mode: u32 },
    #[error("it holds `{path}` twice")]
    Duplicate { path: String },
    #[error("it holds `{path}`, which its manifest does not list")]
    Unlisted { path: String },
    #[error("`{path}` is {found} bytes in the archive but {expected} in the manifest")]
    Size {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("`{path}` has sha256 {found} but the manifest says {expected}")]
    Hash {
        path: String,
        expected: String,
        found: String,
    },
    #[error("its manifest lists `{path}`, which the archive does not hold")]
    Missing { path: String },
    #[error("it unpacks to {total} bytes, more than the {limit} bytes this device accepts")]
    TooLarge { total: u64, limit: u64 },
    #[error("it holds `{member}` where only data/ may follow the manifest and README")]
    Unexpected { member: String },
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "`{given}` is not a backup id: backups are named by id, like \
         d3kos_backup_20261129_083000, never by a path"
    )]
    BadId { given: String },
    #[error("there is no backup {id}")]
    NotFound { id: BackupId },
    #[error("{id} cannot be used: {reason}")]
    Corrupt { id: String, reason: Corruption },
    #[error("another backup or restore is running; try again when it has finished")]
    Busy,
    #[error("a backup named {id} is already here; delete it first to replace it")]
    Exists { id: BackupId },
    #[error(
        "{} has {available} bytes free but {needed} are needed: nothing was changed; delete old \
         backups or exports to make room",
        path.display()
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error(
        "{} filled up while the backup was written: nothing was changed; delete old backups \
         or exports to make room",
        path.display()
    )]
    Full { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} changed while it was being backed up; try again", path.display())]
    Changed { path: PathBuf },
    #[error(
        "{} and {} are on different file systems, so a restore could not swap them in one step",
        state.display(),
        staging.display()
    )]
    NotOneFileSystem { state: PathBuf, staging: PathBuf },
    #[error("{0}")]
    Systemd(String),
    #[error("{0}")]
    State(#[from] crate::state::StateError),
}

impl BackupError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| {
            if crate::state::io_full(&source) {
                // ENOSPC in the middle of a write: what was being written is removed by
                // the caller.
                return BackupError::Full {
                    path: path.to_owned(),
                };
            }
            BackupError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// How far a create or restore has got, in bytes of data, for the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: std::sync::atomic::AtomicU64,
    pub total: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn start(&self, total: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.total.store(total, Relaxed);
        self.done.store(0, Relaxed);
    }
    fn add(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One backup as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: BackupId,
    pub size: u64,
    pub created: String,
    pub created_unix: i64,
    pub kind: Kind,
    pub d3kos_version: String,
    pub files: u64,
    pub total_bytes: u64,
    pub items: std::collections::BTreeMap<String, u64>,
    /// `true`/`false` once checked (at creation, upload or verify), `null` before.
    pub verified: Option<bool>,
    /// Why it does not verify.
    pub problem: Option<String>,
}

/// The result of the last backup attempt, shown in settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub time: String,
    pub time_unix: i64,
    pub kind: Kind,
    pub ok: bool,
    pub id: Option<BackupId>,
    pub size: Option<u64>,
    pub error: Option<String>,
}

impl LastResult {
    pub fn of(result: &Result<create::Created, BackupError>, kind: Kind, now: i64) -> LastResult {
        LastResult {
            time: crate::time::rfc3339(now),
            time_unix: now,
            kind,
            ok: result.is_ok(),
            id: result.as_ref().ok().map(|c| c.id.clone()),
            size: result.as_ref().ok().map(|c| c.size),
            error: result.as_ref().err().map(ToString::to_string),
        }
    }
}

/// What was checked of each archive, keyed by id, with the size and mtime it had then.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checks(std::collections::BTreeMap<String, Check>);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Check {
    size: u64,
    mtime: i64,
    ok: bool,
    problem: Option<String>,
}

/// Nanoseconds: an archive damaged within the second it was written is still noticed.
fn mtime_of(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

impl Checks {
    fn load(dir: &Path) -> Checks {
        crate::state::load(&dir.join(CHECKS_NAME), 0)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn record(dir: &Path, id: &BackupId, ok: bool, problem: Option<String>) {
        let mut checks = Checks::load(dir);
        let Ok(meta) = std::fs::metadata(dir.join(format!("{id}{ARCHIVE_SUFFIX}"))) else {
            return;
        };
        checks.0.insert(
            id.0.clone(),
            Check {
                size: meta.len(),
                mtime: mtime_of(&meta),
                ok,
                problem,
            },
        );
        // The record only saves work: losing it costs a verify, never a backup.
        if let Err(e) = crate::state::save(&dir.join(CHECKS_NAME), &checks) {
            log::warn!("backup checks not saved: {e}");
        }
    }

    fn get(&self, id: &BackupId, meta: &std::fs::Metadata) -> Option<&Check> {
        self.0
            .get(&id.0)
            .filter(|c| c.size == meta.len() && c.mtime == mtime_of(meta))
    }
}

/// An exclusive hold on the backup folder: one create, restore, delete or upload at a time,
/// across processes (the daemon and `d3kosd backup`).
pub struct Lock(#[allow(dead_code)] File);

impl Lock {
    pub fn take(paths: &Paths) -> Result<Lock, BackupError> {
        make_dir(&paths.backup_dir)?;
        let path = paths.backup_dir.join(LOCK_NAME);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            // flock needs no write access: a lock file left by another user still serves.
            .or_else(|_| File::open(&path))
            .map_err(BackupError::io(&path))?;
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Lock(f)),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(BackupError::Busy),
            Err(e) => Err(BackupError::Io {
                path,
                source: e.into(),
            }),
        }
    }
}

/// Every backup in the folder, newest first. Archives whose manifest cannot be read are
/// listed too, as not verifying, so the owner sees them and can delete them.
pub fn list(paths: &Paths) -> Result<Vec<Listed>, BackupError> {
    let checks = Checks::load(&paths.backup_dir);
    let mut out = Vec::new();
    for id in ids(&paths.backup_dir)? {
        let path = paths.archive(&id);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io(&path)(e)),
        };
        let check = checks.get(&id, &meta);
        let (verified, problem) = match check {
            Some(c) => (Some(c.ok), c.problem.clone()),
            None => (None, None),
        };
        let listed = match read::manifest_of(&path) {
            Ok(m) => Listed {
                id,
                size: meta.len(),
                created: m.created,
                created_unix: m.created_unix,
                kind: m.kind,
                d3kos_version: m.d3kos_version,
                files: m.files.len() as u64,
                total_bytes: m.total_bytes,
                items: m.items,
                verified,
                problem,
            },
            Err(e) => Listed {
                id,
                size: meta.len(),
                created: String::new(),
                created_unix: 0,
                kind: Kind::Manual,
                d3kos_version: String::new(),
                files: 0,
                total_bytes: 0,
                items: Default::default(),
                verified: Some(false),
                problem: Some(e.to_string()),
            },
        };
        out.push(listed);
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(out)
}

/// The ids of the archives in `dir`, unsorted.
fn ids(dir: &Path) -> Result<Vec<BackupId>, BackupError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(BackupError::io(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(ARCHIVE_SUFFIX)) else {
            continue;
        };
        if let Ok(id) = BackupId::parse(stem) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The path of an existing backup.
pub fn existing(paths: &Paths, id: &BackupId) -> Result<PathBuf, BackupError> {
    let path = paths.archive(id);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BackupError::NotFound { id: id.clone() })
    }
}

/// Reads the whole archive and checks it against its checksum file and its manifest.
pub fn verify(
    paths: &Paths,
    id: &BackupId,
    limits: &Limits,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    let path = existing(paths, id)?;
    let expected = read::sidecar(&paths.sidecar(id), id);
    let result = expected
        .map_err(|reason| BackupError::Corrupt {
            id: id.to_string(),
            reason,
        })
        .and_then(|expected| {
            let mut sink = read::Discard(Some(progress));
            read::read(&path, id, Some(&expected), limits, &mut sink).map(|(m, _)| m)
        });
    match &result {
        Ok(_) => Checks::record(&paths.backup_dir, id, true, None),
        Err(BackupError::Corrupt { reason, .. }) => {
            Checks::record(&paths.backup_dir, id, false, Some(reason.to_string()))
        }
        Err(_) => {}
    }
    result
}

/// Deletes a backup (archive first, so a half-deleted one is never listed).
pub fn delete(paths: &Paths, id: &BackupId) -> Result<(), BackupError> {
    let _lock = Lock::take(paths)?;
    let path = existing(paths, id)?;
    std::fs::remove_file(&path).map_err(BackupError::io(&path))?;
    let sidecar = paths.sidecar(id);
    match std::fs::remove_file(&sidecar) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io(&sidecar)(e)),
    }
    sync_dir(&paths.backup_dir)
}

/// Free bytes where backups are written, if it can be told.
pub fn space_available(dir: &Path) -> Option<u64> {
    space::available(dir).ok()
}

/// A new temporary name in the backup folder for an upload in progress.
pub fn upload_path(paths: &Paths) -> PathBuf {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).expect("the kernel gives random bytes");
    paths.backup_dir.join(format!(
        "{TMP_PREFIX}upload-{}{ARCHIVE_SUFFIX}",
        hex::encode(r)
    ))
}

/// Creates the file an upload streams into, in the backup folder, [`FILE_MODE`].
pub fn upload_file(paths: &Paths, tmp: &Path) -> Result<File, BackupError> {
    make_dir(&paths.backup_dir)?;
    let f = File::create(tmp).map_err(BackupError::io(tmp))?;
    set_mode(tmp, FILE_MODE)?;
    Ok(f)
}

/// Checks an uploaded archive whole, as a restore would, and lists it under the id its
/// manifest names, with a checksum file made from its bytes. The upload is removed when
/// it is refused.
pub fn accept_upload(
    paths: &Paths,
    upload: &Path,
    limits: &Limits,
    now: i64,
) -> Result<(BackupId, Manifest), BackupError> {
    let result = (|| {
        let label = BackupId("the uploaded file".to_owned());
        let (m, sha256) = read::read(upload, &label, None, limits, &mut read::Discard(None))?;
        let corrupt = |reason| BackupError::Corrupt {
            id: label.to_string(),
            reason,
        };
        let id = BackupId::parse(&m.name).map_err(|_| {
            corrupt(Corruption::BadManifest(format!(
                "`{}` is not a backup id",
                m.name.chars().take(200).collect::<String>()
            )))
        })?;
        // An id far ahead would count as the newest backup for ever.
        if id.unix() > now + FUTURE_SLACK {
            return Err(corrupt(Corruption::Future {
                dated: crate::time::rfc3339(id.unix()),
                now: crate::time::rfc3339(now),
            }));
        }
        let _lock = Lock::take(paths)?;
        if paths.archive(&id).exists() {
            return Err(BackupError::Exists { id });
        }
        let tmp_sidecar = upload.with_extension("sha256");
        write_sidecar(&tmp_sidecar, &id, &sha256)?;
        let sidecar = paths.sidecar(&id);
        std::fs::rename(&tmp_sidecar, &sidecar).map_err(BackupError::io(&sidecar))?;
        let archive = paths.archive(&id);
        std::fs::rename(upload, &archive).map_err(BackupError::io(&archive))?;
        sync_dir(&paths.backup_dir)?;
        Checks::record(&paths.backup_dir, &id, true, None);
        Ok((id, m))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(upload);
    }
    result
}

/// How far ahead of the device's clock a backup may be dated: clocks differ, and a Pi has
/// no battery clock.
const FUTURE_SLACK: i64 = 86_400;

/// Limits on what a backup may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_total_bytes: u64,
}

impl Limits {
    pub fn of(config: &crate::config::BackupConfig) -> Limits {
        Limits {
            max_total_bytes: config.max_restore_bytes,
        }
    }
}

/// Deletes the oldest backups beyond `keep`, never the newest one that verifies. Returns
/// the ids deleted. Backups dated more than a day after `now` are left out of the count
/// and never deleted: put there by hand, or by a clock that was wrong, they would
/// otherwise rank as the newest for ever, or be the first deleted after a clock set
/// back.
pub fn retain(
    paths: &Paths,
    keep: u32,
    limits: &Limits,
    now: i64,
) -> Result<Vec<BackupId>, BackupError> {
    let mut all = ids(&paths.backup_dir)?;
    all.retain(|id| id.unix() <= now + FUTURE_SLACK);
    all.sort_by(|a, b| b.cmp(a));
    let keep = keep.max(1) as usize;
    if all.len() <= keep {
        return Ok(Vec::new());
    }
    // The newest verified backup is kept even when it is older than the newest `keep`:
    // after a run of failed or damaged backups, it is the one the boat can still go back to.
    let checks = Checks::load(&paths.backup_dir);
    let mut newest_good = None;
    for id in &all {
        let ok = match std::fs::metadata(paths.archive(id)) {
            Ok(meta) => match checks.get(id, &meta) {
                Some(c) => c.ok,
                None => verify(paths, id, limits, &Progress::default()).is_ok(),
            },
            Err(_) => false,
        };
        if ok {
            newest_good = Some(id.clone());
            break;
        }
    }
    let mut deleted = Vec::new();
    for id in all.iter().skip(keep) {
        if Some(id) == newest_good.as_ref() {
            continue;
        }
        let path = paths.archive(id);
        std::fs::remove_file(&path).map_err(BackupError::io(&path))?;
        let _ = std::fs::remove_file(paths.sidecar(id));
        deleted.push(id.clone());
    }
    sync_dir(&paths.backup_dir)?;
    Ok(deleted)
}

pub fn last_result(paths: &Paths) -> Option<LastResult> {
    crate::state::load(&paths.backup_dir.join(LAST_NAME), 0)
        .ok()
        .flatten()
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Manual => "asked for",
        Kind::Scheduled => "scheduled",
        Kind::PreRestore => "before a restore",
        Kind::PreUpdate => "before an update",
    }
}

pub fn record_result(paths: &Paths, result: &LastResult) {
    if let Err(e) = crate::state::save(&paths.backup_dir.join(LAST_NAME), result) {
        log::warn!("the last backup result was not saved: {e}");
    }
}

/// Notes a backup's result in the boat log. Only the daemon writes the log (the command
/// line may run as root, and would leave a file the daemon cannot write). The line names
/// the backup but never the error's details, which may name the device's files: the log is
/// read by the crew, the details by the owner on the settings page.
pub fn log_result(log: &crate::boatlog::Boatlog, result: &LastResult) {
    let text = match (&result.id, result.size) {
        (Some(id), Some(size)) if result.ok => {
            format!("Backup {id} made ({size} bytes, {}).", what(result.kind))
        }
        _ => format!(
            "The {} backup failed; the settings page says why.",
            what(result.kind)
        ),
    };
    // Now, to the millisecond: the result's own time has whole seconds, and entries sort
    // by time.
    log.auto(crate::time::unix_now_ms(), text);
}

/// Removes what an interrupted create, upload or restore left behind and finishes an
/// interrupted restore. Runs before every backup command and when the daemon starts;
/// returns one line per thing found, for the log and /api/health.
pub fn recover(paths: &Paths, limits: &Limits) -> Vec<String> {
    let mut said = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&paths.backup_dir) {
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(TMP_PREFIX) {
                let gone = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match gone {
                    Ok(()) => said.push(format!(
                        "removed {name}, left by a backup that was interrupted"
                    )),
                    Err(e) => said.push(format!("could not remove {}: {e}", path.display())),
                }
            } else if let Some(stem) = name.strip_suffix(SIDECAR_SUFFIX) {
                // The checksum file is put in place before its archive; alone, it is the
                // trace of an archive that never arrived.
                if !paths
                    .backup_dir
                    .join(format!("{stem}{ARCHIVE_SUFFIX}"))
                    .exists()
                {
                    let _ = std::fs::remove_file(&path);
                    said.push(format!("removed {name}, whose backup was never finished"));
                }
            }
        }
    }
    said.extend(restore::recover(paths, limits));
    said
}

/// sha256 of a whole file, hex.
pub fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let mut f = File::open(path).map_err(BackupError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(BackupError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes `ID.tar.gz.sha256` in the form `sha256sum -c` reads.
fn write_sidecar(path: &Path, id: &BackupId, sha256: &str) -> Result<(), BackupError> {
    let mut f = File::create(path).map_err(BackupError::io(path))?;
    set_mode(path, FILE_MODE)?;
    writeln!(f, "{sha256}  {id}{ARCHIVE_SUFFIX}").map_err(BackupError::io(path))?;
    f.sync_all().map_err(BackupError::io(path))
}

/// Hands what a root shell wrote under `path` to the user owning `like` (the daemon's
/// user, on the device), so that `sudo d3kosd backup …` never leaves the daemon files it
/// cannot write. Does nothing unless running as root.
pub(crate) fn adopt(path: &Path, like: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let owner = std::fs::metadata(like).map_err(BackupError::io(like))?;
    if owner.uid() == 0 && owner.gid() == 0 {
        return Ok(());
    }
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(BackupError::io(&p))?;
        if meta.uid() != owner.uid() || meta.gid() != owner.gid() {
            std::os::unix::fs::lchown(&p, Some(owner.uid()), Some(owner.gid()))
                .map_err(BackupError::io(&p))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p).map_err(BackupError::io(&p))? {
                stack.push(entry.map_err(BackupError::io(&p))?.path());
            }
        }
    }
    Ok(())
}

/// Backup archives and their checksum files: written by the daemon, readable by its group.
pub(crate) const FILE_MODE: u32 = 0o640;
/// Folders the backups make.
pub(crate) const DIR_MODE: u32 = 0o750;

/// Makes `dir` and its parents, each new one [`DIR_MODE`] whatever the umask.
pub(crate) fn make_dir(dir: &Path) -> Result<(), BackupError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => set_mode(dir, DIR_MODE),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(BackupError::io(dir)(e)),
    }
}

/// Sets `mode` on what the daemon made, whatever the umask. A file system without Unix
/// modes (FAT on a USB drive) refuses with EPERM and keeps its own: that is no error.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(BackupError::io(path)(e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BackupError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names_never_paths() {
        BackupId::parse("d3kos_backup_20261129_083000").unwrap();
        BackupId::parse("d3kos_backup_20261129_083000_2").unwrap();
        for bad in [
            "../d3kos_backup_20261129_083000",
            "/data/backups/d3kos_backup_20261129_083000.tar.gz",
            "d3kos_backup_20261129_083000.tar.gz",
            "d3kos_backup_2026112_083000",
            "d3kos_backup_20261129_083000_",
            "d3kos_backup_20261129_083000_1234",
            "d3kos_backup_20261129_08300a",
            "d3kos_backup_20261329_083000",
            "d3kos_backup_20260230_083000",
            "d3kos_backup_20261129_246000",
            "d3kos_backup_20261129_083060",
            "",
        ] {
            let e = BackupId::parse(bad).unwrap_err().to_string();
            assert!(e.contains("never by a path"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_id_with_a_multibyte_character_at_byte_15_is_refused_not_panicked() {
        for bad in [
            "d3kos_backup_xxxxxxxxxxxxxx\u{e9}",
            "d3kos_backup_20261129_08300\u{e9}",
            "d3kos_backup_20261129_083000\u{e9}",
            "d3kos_backup_20261129_083000_\u{e9}",
            "d3kos_backup_\u{1F6A2}\u{1F6A2}\u{1F6A2}\u{1F6A2}",
            "d3kos_backup_",
        ] {
            let e = BackupId::parse(bad).unwrap_err().to_string();
            assert!(e.contains("never by a path"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_id_is_the_utc_time() {
        assert_eq!(
            BackupId::at(1_795_941_000, 1).as_str(),
            "d3kos_backup_20261129_083000"
        );
        assert_eq!(
            BackupId::at(1_795_941_000, 3).as_str(),
            "d3kos_backup_20261129_083000_3"
        );
        assert_eq!(BackupId::at(1_795_941_000, 3).unix(), 1_795_941_000);
    }
}
