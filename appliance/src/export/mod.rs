//! The export queue: copies of the boat's records (the boat log as CSV, a backup archive)
//! sent to a USB drive, to an upload address from the configuration, or kept on the device
//! for download. Jobs live in SQLite and one worker runs them one at a time, retrying a
//! failure on a schedule; a job is never lost and its file never written twice.

pub mod deliver;
pub mod queue;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use crate::config::{ExportConfig, Upload, UploadMethod};
use crate::db::DbError;
pub use queue::{Job, Queue, State};

/// What a job exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum What {
    /// The boat log's entries from `from` (inclusive, none: the first) to `to`
    /// (exclusive), milliseconds UTC. `to` is fixed when the job is made, so every
    /// attempt writes the same file.
    BoatlogCsv { from: Option<i64>, to: i64 },
    /// A backup archive of the device's data partition, by id.
    Backup { id: String },
    /// Engine history from `from` (none: the oldest kept) to `to`, milliseconds UTC, at
    /// the finest resolution still kept for `from`.
    EngineCsv { from: Option<i64>, to: i64 },
}

/// Where a job sends its file: `device`, `usb:UUID` or `upload:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Kept on the data partition, for download from the web UI.
    Device,
    /// A USB drive, by file system UUID.
    Usb(String),
    /// An upload address named in the configuration (`[[export.upload]]`).
    Upload(String),
}

impl Destination {
    pub fn parse(s: &str) -> Result<Destination, String> {
        if s == "device" {
            return Ok(Destination::Device);
        }
        let ok = |v: &str| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match s.split_once(':') {
            Some(("usb", uuid)) if ok(uuid) => Ok(Destination::Usb(uuid.to_owned())),
            Some(("upload", name)) if ok(name) => Ok(Destination::Upload(name.to_owned())),
            Some(("http" | "https", _)) => Err(format!(
                "`{s}` is an address: exports go only to the uploads named in the device's \
                 configuration (`upload:NAME`), never to an address given with the request"
            )),
            _ => Err(format!(
                "`{s}` is not a destination: use `device`, `usb:UUID` or `upload:NAME` from \
                 /api/export/destinations"
            )),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Device => f.write_str("device"),
            Destination::Usb(u) => write!(f, "usb:{u}"),
            Destination::Upload(n) => write!(f, "upload:{n}"),
        }
    }
}

impl Serialize for Destination {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export queue {}: {source}", path.display())]
    Queue {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Db(DbError),
    /// The path goes to the log only: what the status shows never names the device's files.
    #[error(
        "the export could not be written ({source}); retry it, and if it fails again the helm computer's log names the file"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no export {id}")]
    NoJob { id: i64 },
    #[error("export {id} is not waiting to run")]
    NotPending { id: i64 },
    #[error("export {id} is {}; only a failed or waiting export can be retried", state.as_str())]
    NotRetryable { id: i64, state: State },
    #[error("export {id} is running; wait for it to finish")]
    Running { id: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("no USB drive with id {uuid} is plugged in; plug it in and the export is retried")]
    NoDrive { uuid: String },
    #[error(
        "the USB drive {uuid} cannot be written by the helm computer: use a drive formatted FAT32 or exFAT"
    )]
    ReadOnlyDrive { uuid: String },
    #[error(
        "the USB drive {uuid} went away while the export was written and nothing was kept on it; plug it back in and retry the export"
    )]
    Removed { uuid: String },
    #[error(
        "{where_} is full: {written} bytes were written before it filled and nothing was kept; make room on it or choose another destination, then retry the export"
    )]
    Full { where_: String, written: u64 },
    #[error("{0}")]
    Source(String),
    #[error("upload {name}: {message}")]
    Upload { name: String, message: String },
}

impl ExportError {
    /// Whether the device's disk or the USB drive is full, as opposed to a fault.
    pub fn is_full(&self) -> bool {
        match self {
            ExportError::Full { .. } => true,
            ExportError::Queue { source, .. } => crate::db::is_full(source),
            ExportError::Db(e) => e.is_full(),
            ExportError::Io { source, .. } => crate::state::io_full(source),
            _ => false,
        }
    }

    /// The error as a sentence for a person: capital first letter, full stop.
    pub fn sentence(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => text,
        }
    }
}

/// Where the running job has got to.
#[derive(Debug, Default)]
pub struct Progress {
    /// The running job's id; 0 when none runs.
    job: AtomicI64,
    bytes: AtomicU64,
}

impl Progress {
    pub fn start(&self, id: i64) {
        self.bytes.store(0, Ordering::Relaxed);
        self.job.store(id, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn end(&self) {
        self.job.store(0, Ordering::Relaxed);
    }
    /// Bytes written so far by job `id`, if it is the one running.
    pub fn of(&self, id: i64) -> Option<u64> {
        (self.job.load(Ordering::Relaxed) == id).then(|| self.bytes.load(Ordering::Relaxed))
    }
}

/// The file name a job's export has at its destination: the same for every attempt, so a
/// retry after a cut replaces its own file and never leaves a second one.
pub fn file_name(job_id: i64, created: i64, what: &What) -> String {
    match what {
        What::BoatlogCsv { .. } => format!(
            "d3kos-boatlog-{}-job{job_id}.csv",
            crate::time::date(created.div_euclid(1000))
        ),
        What::Backup { id } => format!("{id}.tar.gz"),
        What::EngineCsv { .. } => format!(
            "d3kos-engine-{}-job{job_id}.csv",
            crate::time::date(created.div_euclid(1000))
        ),
    }
}
