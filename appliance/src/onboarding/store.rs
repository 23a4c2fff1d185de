//! The wizard's progress in the state folder (`onboarding.db`, so backups carry it): the
//! step reached, the answers, the units chosen, and when the wizard was finished.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::questions::Answers;
use crate::db::{DbError, Pool, Schema};

static SCHEMA: Schema = Schema {
    name: "onboarding",
    migrations: &["CREATE TABLE progress (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            step INTEGER NOT NULL,
            finished_at INTEGER,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE answer (question TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE unit (question TEXT PRIMARY KEY, unit TEXT NOT NULL);"],
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the onboarding database: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl StoreError {
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Db(e) => e.is_full(),
            StoreError::Sql(e) => crate::db::is_full(e),
        }
    }
}

/// Where the wizard stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The step the owner is on, 1 to 20.
    pub step: u8,
    pub answers: Answers,
    /// The unit each question with a choice of units is shown in.
    pub units: BTreeMap<String, String>,
    /// Unix seconds; `None` while the wizard is not finished.
    pub finished_at: Option<i64>,
    pub updated_at: Option<i64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            step: 1,
            answers: Answers::new(),
            units: BTreeMap::new(),
            finished_at: None,
            updated_at: None,
        }
    }
}

pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn in_state(state_dir: &Path) -> Store {
        Store {
            pool: Pool::new(state_dir.join("onboarding.db"), &SCHEMA),
        }
    }

    pub fn load(&self) -> Result<Progress, StoreError> {
        let conn = self.pool.get()?;
        let Some((step, finished_at, updated_at)) = conn
            .query_row(
                "SELECT step, finished_at, updated_at FROM progress WHERE id = 1",
                [],
                |r| Ok((r.get::<_, u8>(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
        else {
            return Ok(Progress::default());
        };
        let mut answers = Answers::new();
        let mut q = conn.prepare("SELECT question, value FROM answer")?;
        for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (k, v) = row?;
            // A value this version cannot read is left unanswered, to be asked again.
            if let Ok(v) = serde_json::from_str(&v) {
                answers.insert(k, v);
            }
        }
        let mut units = BTreeMap::new();
        let mut q = conn.prepare("SELECT question, unit FROM unit")?;
        for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (k, v) = row?;
            units.insert(k, v);
        }
        Ok(Progress {
            step,
            answers,
            units,
            finished_at,
            updated_at: Some(updated_at),
        })
    }

    /// Replaces what is kept with `p`, in one transaction: a cut keeps the old progress or
    /// the new, never half of each.
    pub fn save(&self, p: &Progress, now: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO progress (id, step, finished_at, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET step = ?1, finished_at = ?2, updated_at = ?3",
            params![p.step, p.finished_at, now],
        )?;
        tx.execute("DELETE FROM answer", [])?;
        tx.execute("DELETE FROM unit", [])?;
        for (k, v) in &p.answers {
            tx.execute(
                "INSERT INTO answer (question, value) VALUES (?1, ?2)",
                params![k, v.to_string()],
            )?;
        }
        for (k, u) in &p.units {
            tx.execute(
                "INSERT INTO unit (question, unit) VALUES (?1, ?2)",
                params![k, u],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets every answer: the wizard starts again at step 1. The units chosen stay.
    pub fn clear(&self, now: i64) -> Result<(), StoreError> {
        let units = self.load()?.units;
        self.save(
            &Progress {
                units,
                ..Progress::default()
            },
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_is_kept_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::in_state(dir.path());
        assert_eq!(store.load().unwrap(), Progress::default());
        let p = Progress {
            step: 7,
            answers: [
                ("manufacturer".to_owned(), json!("Yanmar")),
                ("displacement_l".to_owned(), json!(1.642)),
            ]
            .into(),
            units: [("displacement_l".to_owned(), "cid".to_owned())].into(),
            finished_at: None,
            updated_at: None,
        };
        store.save(&p, 100).unwrap();
        // Another store on the same folder: what a restarted daemon reads.
        let again = Store::in_state(dir.path()).load().unwrap();
        assert_eq!(
            again,
            Progress {
                updated_at: Some(100),
                ..p.clone()
            }
        );
        store.clear(200).unwrap();
        let cleared = store.load().unwrap();
        assert_eq!((cleared.step, cleared.answers.len()), (1, 0));
        assert_eq!(cleared.units, p.units, "the units chosen stay");
    }
}
