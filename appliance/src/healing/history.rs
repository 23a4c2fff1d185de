//! The healing record (`healing.db` in the state folder): every detection and every
//! action, what was seen, what was done and how it ended; kept seven days.

use std::path::{Path, PathBuf};

use rusqlite::params;
use serde::Serialize;

use crate::db::{Pool, Schema};

static SCHEMA: Schema = Schema {
    name: "healing",
    migrations: &["CREATE TABLE record (
            id INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,
            seen TEXT NOT NULL,
            action TEXT,
            result TEXT,
            outcome TEXT NOT NULL,
            advice TEXT
        );
        CREATE INDEX record_at ON record (at_ms);
        CREATE INDEX record_rule ON record (rule, subject, outcome, at_ms);"],
};

pub const FILE: &str = "healing.db";

/// How long records are kept.
pub const KEEP_MS: i64 = 7 * 86_400_000;

/// How a detection or an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Seen for the first time; what is done about it follows.
    Detected,
    /// The action ran and the problem went away.
    Fixed,
    /// The action ran and did not help, or could not run.
    Failed,
    /// The rule gave up (its bound reached, or nothing left it may do) and asks the owner.
    Escalated,
    /// The owner was told; nothing else was done.
    Notified,
    /// An engine problem, reported with its likely causes and what to check.
    Reported,
    /// The condition went away.
    Cleared,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Detected => "detected",
            Outcome::Fixed => "fixed",
            Outcome::Failed => "failed",
            Outcome::Escalated => "escalated",
            Outcome::Notified => "notified",
            Outcome::Reported => "reported",
            Outcome::Cleared => "cleared",
        }
    }
}

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub id: i64,
    pub at_ms: i64,
    pub rule: String,
    /// What the rule looked at: a unit, a mount point, an interface, an engine.
    pub subject: String,
    pub seen: String,
    pub action: Option<String>,
    pub result: Option<String>,
    pub outcome: String,
    pub advice: Vec<String>,
}

/// A line to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub at_ms: i64,
    pub rule: &'static str,
    pub subject: String,
    pub seen: String,
    pub action: Option<&'static str>,
    pub result: Option<String>,
    pub outcome: Outcome,
    pub advice: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("the healing record {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Counts per rule and outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    pub rule: String,
    pub outcome: String,
    pub count: u64,
}

pub struct History {
    pool: Pool,
}

impl History {
    pub fn in_state(state_dir: &Path) -> History {
        History {
            pool: Pool::new(state_dir.join(FILE), &SCHEMA),
        }
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        |source| HistoryError::Sql {
            path: self.pool.path().to_owned(),
            source,
        }
    }

    pub fn add(&self, r: &NewRecord) -> Result<i64, HistoryError> {
        let conn = self.pool.get()?;
        let advice =
            (!r.advice.is_empty()).then(|| serde_json::to_string(&r.advice).unwrap_or_default());
        conn.execute(
            "INSERT INTO record (at_ms, rule, subject, seen, action, result, outcome, advice)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.at_ms,
                r.rule,
                r.subject,
                r.seen,
                r.action,
                r.result,
                r.outcome.as_str(),
                advice
            ],
        )
        .map_err(self.sql())?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest records first, at most `limit`, of one rule when given.
    pub fn recent(&self, rule: Option<&str>, limit: usize) -> Result<Vec<Record>, HistoryError> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare(
                "SELECT id, at_ms, rule, subject, seen, action, result, outcome, advice
                 FROM record WHERE (?1 IS NULL OR rule = ?1)
                 ORDER BY at_ms DESC, id DESC LIMIT ?2",
            )
            .map_err(self.sql())?;
        stmt.query_map(params![rule, limit as i64], |row| {
            let advice: Option<String> = row.get(8)?;
            Ok(Record {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                rule: row.get(2)?,
                subject: row.get(3)?,
                seen: row.get(4)?,
                action: row.get(5)?,
                result: row.get(6)?,
                outcome: row.get(7)?,
                advice: advice
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.sql())
    }

    /// Counts per rule and outcome since `since_ms`.
    pub fn counts(&self, since_ms: i64) -> Result<Vec<Count>, HistoryError> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare(
                "SELECT rule, outcome, COUNT(*) FROM record WHERE at_ms >= ?1
                 GROUP BY rule, outcome ORDER BY rule, outcome",
            )
            .map_err(self.sql())?;
        stmt.query_map([since_ms], |row| {
            Ok(Count {
                rule: row.get(0)?,
                outcome: row.get(1)?,
                count: row.get::<_, i64>(2)? as u64,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.sql())
    }

    /// Actions of `action` on `subject` since `since_ms`: the bound on restarts, kept
    /// across restarts of the daemon.
    pub fn actions_since(
        &self,
        action: &str,
        subject: &str,
        since_ms: i64,
    ) -> Result<u32, HistoryError> {
        let conn = self.pool.get()?;
        conn.query_row(
            "SELECT COUNT(*) FROM record WHERE action = ?1 AND subject = ?2 AND at_ms >= ?3
             AND outcome IN ('fixed', 'failed')",
            params![action, subject, since_ms],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n as u32)
        .map_err(self.sql())
    }

    /// Forgets records older than seven days before `now_ms`.
    pub fn prune(&self, now_ms: i64) -> Result<usize, HistoryError> {
        let conn = self.pool.get()?;
        conn.execute("DELETE FROM record WHERE at_ms < ?1", [now_ms - KEEP_MS])
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        at_ms: i64,
        rule: &'static str,
        outcome: Outcome,
        action: Option<&'static str>,
    ) -> NewRecord {
        NewRecord {
            at_ms,
            rule,
            subject: "flaky.service".into(),
            seen: "failed".into(),
            action,
            result: None,
            outcome,
            advice: vec![],
        }
    }

    #[test]
    fn counts_actions_and_forgets_after_seven_days() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::in_state(dir.path());
        let day = 86_400_000;
        h.add(&rec(0, "unit_failed", Outcome::Detected, None))
            .unwrap();
        h.add(&rec(1, "unit_failed", Outcome::Fixed, Some("restart_unit")))
            .unwrap();
        h.add(&rec(
            day,
            "unit_failed",
            Outcome::Failed,
            Some("restart_unit"),
        ))
        .unwrap();
        h.add(&rec(
            8 * day,
            "disk_space",
            Outcome::Notified,
            Some("notify"),
        ))
        .unwrap();
        assert_eq!(
            h.actions_since("restart_unit", "flaky.service", 0).unwrap(),
            2
        );
        assert_eq!(
            h.actions_since("restart_unit", "flaky.service", 2).unwrap(),
            1
        );
        assert_eq!(h.prune(8 * day).unwrap(), 2, "the two older than a week");
        let counts = h.counts(0).unwrap();
        assert_eq!(counts.len(), 2);
        assert_eq!(
            h.recent(Some("disk_space"), 10).unwrap()[0].outcome,
            "notified"
        );
        assert_eq!(
            h.recent(None, 10).unwrap()[0].at_ms,
            8 * day,
            "newest first"
        );
    }
}
