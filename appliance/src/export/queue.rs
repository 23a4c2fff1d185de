//! The export queue on disk (SQLite): every job and its history survive a crash, a power
//! cut and a reboot. A job is pending, running, done or failed; a job found running when
//! the daemon starts was cut off, and runs again.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Destination, ExportError, What};
use crate::db::{self, Schema};

pub const FILE: &str = "queue.db";

const SCHEMA: Schema = Schema {
    name: "export queue",
    migrations: &[
        // AUTOINCREMENT: a job id is never used twice, and file names carry it.
        "CREATE TABLE job (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created INTEGER NOT NULL,
            what TEXT NOT NULL,
            destination TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt INTEGER,
            started INTEGER,
            finished INTEGER,
            bytes INTEGER,
            file TEXT,
            error TEXT
        );
        CREATE INDEX job_due ON job (state, next_attempt);",
    ],
};

/// Finished jobs kept in the history.
pub const HISTORY: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Running,
    Done,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "pending" => State::Pending,
            "running" => State::Running,
            "done" => State::Done,
            _ => State::Failed,
        }
    }
}

/// One job as the queue keeps it. Times are milliseconds since 1970 UTC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub created: i64,
    pub what: What,
    pub destination: Destination,
    pub state: State,
    /// Attempts made, the one running included.
    pub attempts: u32,
    pub next_attempt: Option<i64>,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub bytes: Option<u64>,
    /// The file name the export has at its destination.
    pub file: Option<String>,
    /// What went wrong the last time.
    pub error: Option<String>,
}

/// The queue at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub pending: Vec<Job>,
    pub running: Option<Job>,
    pub failed: Vec<Job>,
    pub done: Vec<Job>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    path: PathBuf,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> ExportError + '_ {
    move |source| ExportError::Queue {
        path: path.to_owned(),
        source,
    }
}

const COLUMNS: &str = "id, created, what, destination, state, attempts, next_attempt, started, \
                       finished, bytes, file, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let what: String = r.get(2)?;
    let destination: String = r.get(3)?;
    let state: String = r.get(4)?;
    let bad = |n, e: String| {
        rusqlite::Error::FromSqlConversionFailure(
            n,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(e),
        )
    };
    Ok(Job {
        id: r.get(0)?,
        created: r.get(1)?,
        what: serde_json::from_str(&what).map_err(|e| bad(2, e.to_string()))?,
        destination: Destination::parse(&destination).map_err(|e| bad(3, e))?,
        state: State::parse(&state),
        attempts: r.get(5)?,
        next_attempt: r.get(6)?,
        started: r.get(7)?,
        finished: r.get(8)?,
        bytes: r.get::<_, Option<i64>>(9)?.map(|b| b.max(0) as u64),
        file: r.get(10)?,
        error: r.get(11)?,
    })
}

impl Queue {
    pub fn in_dir(dir: &Path) -> Queue {
        Queue {
            path: dir.join(FILE),
        }
    }

    fn open(&self) -> Result<Connection, ExportError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        db::open(&self.path, &SCHEMA).map_err(ExportError::Db)
    }

    /// Adds a job, due at once; it is on the card when this returns.
    pub fn add(&self, what: &What, to: &Destination, now: i64) -> Result<Job, ExportError> {
        let conn = self.open()?;
        let what = serde_json::to_string(what).expect("a job's description serialises");
        conn.execute(
            "INSERT INTO job (created, what, destination, state, next_attempt)
             VALUES (?1, ?2, ?3, 'pending', ?1)",
            params![now, what, to.to_string()],
        )
        .map_err(sql(&self.path))?;
        self.get_in(&conn, conn.last_insert_rowid())
    }

    pub fn get(&self, id: i64) -> Result<Job, ExportError> {
        self.get_in(&self.open()?, id)
    }

    fn get_in(&self, conn: &Connection, id: i64) -> Result<Job, ExportError> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM job WHERE id = ?1"),
            [id],
            row,
        )
        .optional()
        .map_err(sql(&self.path))?
        .ok_or(ExportError::NoJob { id })
    }

    /// Jobs a cut left running are pending again, due at once; their cut attempt counts.
    /// Returns how many.
    pub fn recover(&self, now: i64) -> Result<usize, ExportError> {
        self.open()?
            .execute(
                "UPDATE job SET state = 'pending', next_attempt = ?1,
                   error = 'The helm computer stopped while this export ran; it runs again.'
                 WHERE state = 'running'",
                [now],
            )
            .map_err(sql(&self.path))
    }

    /// The pending job due first, if it is due by `now`; else when the next one is due.
    pub fn due(&self, now: i64) -> Result<Result<Job, Option<i64>>, ExportError> {
        let conn = self.open()?;
        let first = conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM job WHERE state = 'pending'
                     ORDER BY next_attempt, id LIMIT 1"
                ),
                [],
                row,
            )
            .optional()
            .map_err(sql(&self.path))?;
        Ok(match first {
            Some(j) if j.next_attempt.unwrap_or(0) <= now => Ok(j),
            Some(j) => Err(j.next_attempt),
            None => Err(None),
        })
    }

    /// Marks a pending job running, counting the attempt.
    pub fn claim(&self, id: i64, now: i64) -> Result<Job, ExportError> {
        let conn = self.open()?;
        let n = conn
            .execute(
                "UPDATE job SET state = 'running', attempts = attempts + 1, started = ?2,
                   next_attempt = NULL
                 WHERE id = ?1 AND state = 'pending'",
                params![id, now],
            )
            .map_err(sql(&self.path))?;
        if n == 0 {
            return Err(ExportError::NotPending { id });
        }
        self.get_in(&conn, id)
    }

    pub fn done(&self, id: i64, now: i64, file: &str, bytes: u64) -> Result<(), ExportError> {
        self.open()?
            .execute(
                "UPDATE job SET state = 'done', finished = ?2, file = ?3, bytes = ?4,
                   error = NULL, next_attempt = NULL
                 WHERE id = ?1 AND state = 'running'",
                params![id, now, file, bytes as i64],
            )
            .map_err(sql(&self.path))?;
        Ok(())
    }

    /// Records a failed attempt: pending again at `retry_at`, or failed for good.
    pub fn failed(
        &self,
        id: i64,
        now: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), ExportError> {
        let state = if retry_at.is_some() {
            State::Pending
        } else {
            State::Failed
        };
        self.open()?
            .execute(
                "UPDATE job SET state = ?2, error = ?3, next_attempt = ?4,
                   finished = CASE WHEN ?4 IS NULL THEN ?5 ELSE NULL END
                 WHERE id = ?1 AND state = 'running'",
                params![id, state.as_str(), error, retry_at, now],
            )
            .map_err(sql(&self.path))?;
        Ok(())
    }

    /// A failed job (or a pending one waiting for its retry) runs again now, with the whole
    /// schedule of retries ahead of it.
    pub fn retry(&self, id: i64, now: i64) -> Result<Job, ExportError> {
        let conn = self.open()?;
        let job = self.get_in(&conn, id)?;
        if !matches!(job.state, State::Failed | State::Pending) {
            return Err(ExportError::NotRetryable {
                id,
                state: job.state,
            });
        }
        conn.execute(
            "UPDATE job SET state = 'pending', attempts = 0, next_attempt = ?2, finished = NULL
             WHERE id = ?1",
            params![id, now],
        )
        .map_err(sql(&self.path))?;
        self.get_in(&conn, id)
    }

    /// Removes a job that is not running; returns it.
    pub fn remove(&self, id: i64) -> Result<Job, ExportError> {
        let conn = self.open()?;
        let job = self.get_in(&conn, id)?;
        if job.state == State::Running {
            return Err(ExportError::Running { id });
        }
        conn.execute("DELETE FROM job WHERE id = ?1", [id])
            .map_err(sql(&self.path))?;
        Ok(job)
    }

    /// Every job by state, read in one transaction: a job that moves on while the queue is
    /// read (a retry, the worker starting it, the start-up recovery) shows once, never in
    /// no list. Waiting and failed jobs oldest first; finished ones newest first, at most
    /// [`HISTORY`].
    pub fn snapshot(&self) -> Result<Snapshot, ExportError> {
        let mut conn = self.open()?;
        let tx = conn.transaction().map_err(sql(&self.path))?;
        let list = |state: State| -> Result<Vec<Job>, ExportError> {
            let order = if state == State::Done {
                "finished DESC, id DESC"
            } else {
                "id"
            };
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM job WHERE state = ?1 ORDER BY {order} LIMIT ?2"
                ))
                .map_err(sql(&self.path))?;
            stmt.query_map(params![state.as_str(), HISTORY as i64], row)
                .and_then(|r| r.collect())
                .map_err(sql(&self.path))
        };
        Ok(Snapshot {
            pending: list(State::Pending)?,
            running: list(State::Running)?.into_iter().next(),
            failed: list(State::Failed)?,
            done: list(State::Done)?,
        })
    }

    /// Forgets finished jobs beyond the newest [`HISTORY`]; returns them, so the device's
    /// copies of their files go too.
    pub fn trim(&self) -> Result<Vec<Job>, ExportError> {
        let conn = self.open()?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM job WHERE state = 'done'
                 ORDER BY finished DESC, id DESC LIMIT -1 OFFSET ?1"
            ))
            .map_err(sql(&self.path))?;
        let old: Vec<Job> = stmt
            .query_map([HISTORY as i64], row)
            .and_then(|r| r.collect())
            .map_err(sql(&self.path))?;
        for j in &old {
            conn.execute("DELETE FROM job WHERE id = ?1", [j.id])
                .map_err(sql(&self.path))?;
        }
        Ok(old)
    }
}
