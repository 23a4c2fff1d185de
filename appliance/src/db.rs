//! SQLite for the concerns that keep records: one way to open a database (WAL, a busy
//! timeout, commits that survive a power cut) and to bring its schema forward.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// A database's schema: its name for messages, and every migration since the first, in
/// order. Migration N (counting from 1) brings the schema to version N; a shipped
/// migration is never changed, only followed by new ones.
pub struct Schema {
    pub name: &'static str,
    pub migrations: &'static [&'static str],
}

impl Schema {
    pub fn version(&self) -> u32 {
        self.migrations.len() as u32
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the {name} database {}: {source}", path.display())]
    Open {
        name: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the {name} database {} has schema version {found}, written by a newer d3kOS; this \
         version knows up to {known}. Update d3kOS, or restore a backup made by this version",
        path.display()
    )]
    Newer {
        name: &'static str,
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("cannot bring the {name} database {} to schema version {version}: {source}", path.display())]
    Migrate {
        name: &'static str,
        path: PathBuf,
        version: u32,
        source: rusqlite::Error,
    },
}

impl DbError {
    /// Whether the disk is full (SQLITE_FULL), as opposed to a broken database.
    pub fn is_full(&self) -> bool {
        let source = match self {
            DbError::Open { source, .. } | DbError::Migrate { source, .. } => source,
            DbError::Newer { .. } => return false,
        };
        is_full(source)
    }
}

/// Whether an SQLite error says the disk is full.
pub fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
}

/// How long a writer waits for another to finish before giving up.
const BUSY: Duration = Duration::from_secs(5);

/// Opens (creating it if need be) the database at `path` and brings it to `schema`'s
/// version. A database from a newer version is refused, never changed.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection, DbError> {
    let open_err = |source| DbError::Open {
        name: schema.name,
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY).map_err(open_err)?;
    // WAL: readers never wait for the writer. synchronous=FULL: a commit is on the card
    // when it returns, so an entry acknowledged to the crew survives a power cut (in WAL
    // mode NORMAL may lose the last commits; sqlite.org/pragma.html#pragma_synchronous).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_err)?;
    let found = version(&conn).map_err(open_err)?;
    if found == schema.version() {
        return Ok(conn);
    }
    if found > schema.version() {
        return Err(newer(path, schema, found));
    }
    migrate(&mut conn, path, schema)?;
    Ok(conn)
}

/// Open connections to one database, kept between uses: opening one costs more than most
/// queries. A connection is handed out only while the file at the path is still the one it
/// opened, so a restore that swaps the folder (or anything that replaces the file) is
/// followed at the next use, never written past.
pub struct Pool {
    path: PathBuf,
    schema: &'static Schema,
    idle: std::sync::Mutex<Vec<(FileId, Connection)>>,
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

/// Connections kept idle at most.
const IDLE: usize = 4;

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Pool {
    pub fn new(path: PathBuf, schema: &'static Schema) -> Pool {
        Pool {
            path,
            schema,
            idle: std::sync::Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection to the database as it is at the path now.
    pub fn get(&self) -> Result<Pooled<'_>, DbError> {
        let now = file_id(&self.path);
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Connections to a file that is no longer at the path are closed.
            idle.retain(|(id, _)| Some(*id) == now);
            idle.pop()
        };
        let (id, conn) = match reused {
            Some(c) => c,
            None => {
                let conn = open(&self.path, self.schema)?;
                let id = file_id(&self.path).ok_or_else(|| DbError::Open {
                    name: self.schema.name,
                    path: self.path.clone(),
                    source: rusqlite::Error::InvalidPath(self.path.clone()),
                })?;
                (id, conn)
            }
        };
        Ok(Pooled {
            pool: self,
            id,
            conn: Some(conn),
        })
    }
}

/// A connection from a [`Pool`], back in it when dropped.
pub struct Pooled<'a> {
    pool: &'a Pool,
    id: FileId,
    conn: Option<Connection>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction (a panic mid-way) is not reused.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE {
            idle.push((self.id, conn));
        }
    }
}

fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn newer(path: &Path, schema: &Schema, found: u32) -> DbError {
    DbError::Newer {
        name: schema.name,
        path: path.to_owned(),
        found,
        known: schema.version(),
    }
}

/// Each migration and its version number commit together: a cut leaves the schema at the
/// last whole version.
fn migrate(conn: &mut Connection, path: &Path, schema: &Schema) -> Result<(), DbError> {
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| DbError::Open {
                name: schema.name,
                path: path.to_owned(),
                source,
            })?;
        // Read again inside the write lock: another connection may have migrated.
        let found = version(&tx).map_err(|source| DbError::Open {
            name: schema.name,
            path: path.to_owned(),
            source,
        })?;
        if found > schema.version() {
            return Err(newer(path, schema, found));
        }
        if found == schema.version() {
            return Ok(());
        }
        let next = found + 1;
        let step_err = |source| DbError::Migrate {
            name: schema.name,
            path: path.to_owned(),
            version: next,
            source,
        };
        tx.execute_batch(schema.migrations[found as usize])
            .map_err(step_err)?;
        tx.pragma_update(None, "user_version", next)
            .map_err(step_err)?;
        tx.commit().map_err(step_err)?;
        log::info!(
            "{} database {}: schema version {next}",
            schema.name,
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Schema = Schema {
        name: "test",
        migrations: &["CREATE TABLE a (x INTEGER);"],
    };
    const V2: Schema = Schema {
        name: "test",
        migrations: &[
            "CREATE TABLE a (x INTEGER);",
            "ALTER TABLE a ADD COLUMN y TEXT NOT NULL DEFAULT 'old';",
        ],
    };

    #[test]
    fn a_database_is_brought_forward_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        open(&p, &V1)
            .unwrap()
            .execute("INSERT INTO a (x) VALUES (7)", [])
            .unwrap();
        let c = open(&p, &V2).unwrap();
        let (x, y): (i64, String) = c
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((x, y.as_str()), (7, "old"));
        assert_eq!(version(&c).unwrap(), 2);
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        open(&p, &V2).unwrap();
        let before = std::fs::read(&p).unwrap();
        let e = open(&p, &V1).unwrap_err();
        assert!(
            matches!(
                e,
                DbError::Newer {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("newer d3kOS"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }

    #[test]
    fn a_pooled_connection_follows_a_folder_that_was_swapped() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let pool = Pool::new(state.join("t.db"), &V1);
        pool.get()
            .unwrap()
            .execute("INSERT INTO a (x) VALUES (1)", [])
            .unwrap();
        // Another folder is swapped in, as a restore does, while a connection is kept.
        let restored = dir.path().join("restored");
        std::fs::create_dir(&restored).unwrap();
        open(&restored.join("t.db"), &V1)
            .unwrap()
            .execute("INSERT INTO a (x) VALUES (2)", [])
            .unwrap();
        std::fs::rename(&state, dir.path().join("replaced")).unwrap();
        std::fs::rename(&restored, &state).unwrap();
        let conn = pool.get().unwrap();
        conn.execute("INSERT INTO a (x) VALUES (3)", []).unwrap();
        let xs: Vec<i64> = conn
            .prepare("SELECT x FROM a ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(xs, [2, 3], "written to the database now in place");
    }

    #[test]
    fn a_failing_migration_leaves_the_last_whole_version() {
        const BAD: Schema = Schema {
            name: "test",
            migrations: &["CREATE TABLE a (x INTEGER);", "CREATE TABLE a (y);"],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        let e = open(&p, &BAD).unwrap_err();
        assert!(matches!(e, DbError::Migrate { version: 2, .. }), "{e}");
        assert_eq!(version(&open(&p, &V1).unwrap()).unwrap(), 1);
    }
}
