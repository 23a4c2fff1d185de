//! The boat's log: entries typed by the crew, spoken (a transcript and its recording), and
//! written by the appliance itself, kept in SQLite in the state folder so that backups
//! carry it.

pub mod csv;
pub mod retention;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::{self, DbError, Schema};

/// The database's file name in the state folder.
pub const FILE: &str = "boatlog.db";

const SCHEMA: Schema = Schema {
    name: "boatlog",
    migrations: &[
        // `at`: milliseconds since 1970 UTC. AUTOINCREMENT: an id is never used twice,
        // so an export or a link naming an entry never names another one.
        "CREATE TABLE entry (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('text', 'voice', 'auto')),
            text TEXT NOT NULL,
            author TEXT NOT NULL,
            latitude REAL,
            longitude REAL,
            engine_hours REAL
        );
        CREATE INDEX entry_at ON entry (at, id);
        CREATE INDEX entry_kind_at ON entry (kind, at, id);
        CREATE TABLE audio (
            entry INTEGER PRIMARY KEY REFERENCES entry (id) ON DELETE CASCADE,
            content_type TEXT NOT NULL,
            data BLOB NOT NULL
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    ],
};

/// The longest entry text, in characters: a long watch report fits, a pasted file does not.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Who writes the appliance's own entries.
pub const APPLIANCE: &str = "d3kOS";

/// Recordings the helm's browsers make and play.
const AUDIO_TYPES: &[&str] = &[
    "audio/webm",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/wav",
    "audio/x-wav",
    "audio/flac",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Typed by the crew.
    Text,
    /// Spoken: a transcript, and the recording when one was uploaded.
    Voice,
    /// Written by the appliance: backups, restores, time zone, engine events.
    Auto,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Voice => "voice",
            Kind::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "text" => Some(Kind::Text),
            "voice" => Some(Kind::Voice),
            "auto" => Some(Kind::Auto),
            _ => None,
        }
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: i64,
    /// Milliseconds since 1970 UTC.
    pub at: i64,
    pub kind: Kind,
    pub text: String,
    pub author: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub engine_hours: Option<f64>,
    pub has_audio: bool,
}

/// An entry to write. Position and engine hours when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEntry {
    pub at: i64,
    pub kind: Option<Kind>,
    pub text: String,
    pub author: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub engine_hours: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoatlogError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no log entry {id}")]
    NotFound { id: i64 },
    #[error("log entry {id} has no recording")]
    NoAudio { id: i64 },
    #[error("the recording is {size} bytes; the most a log entry takes is {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the data partition is full: nothing was written")]
    Full,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("boat log database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// A page of entries, newest first.
#[derive(Debug, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; none when this is the last.
    pub next: Option<String>,
}

/// Which entries: a time range (`from` inclusive, `to` exclusive, milliseconds UTC), a
/// kind, and where a previous page ended.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub kind: Option<Kind>,
    pub before: Option<Cursor>,
    pub limit: u32,
}

/// Where a page ended: the last entry's time and id. Entries sort by both, so a page
/// boundary never skips or repeats an entry written at the same millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: i64,
    pub id: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Cursor, BoatlogError> {
        let bad = || {
            BoatlogError::Invalid(format!(
                "`{s}` is not a page cursor: pass the `next` of the previous page"
            ))
        };
        let (at, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            at: at.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    fn of(e: &Entry) -> String {
        format!("{}.{}", e.at, e.id)
    }
}

/// The boat log in a state folder. Each call opens the database, so a restore that swaps
/// the state folder is seen by the next call.
#[derive(Clone)]
pub struct Boatlog {
    pool: std::sync::Arc<db::Pool>,
}

impl std::fmt::Debug for Boatlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boatlog")
            .field("path", &self.path())
            .finish()
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> BoatlogError + '_ {
    move |source| {
        if db::is_full(&source) {
            BoatlogError::Full
        } else {
            BoatlogError::Sql {
                path: path.to_owned(),
                source,
            }
        }
    }
}

fn finite(name: &str, v: Option<f64>, range: std::ops::RangeInclusive<f64>) -> Result<(), String> {
    match v {
        Some(x) if !x.is_finite() || !range.contains(&x) => Err(format!(
            "{name} {x} is outside {} to {}",
            range.start(),
            range.end()
        )),
        _ => Ok(()),
    }
}

impl NewEntry {
    /// What a person may write: some text (a voice entry may wait for its transcript),
    /// no NUL, at most [`MAX_TEXT_CHARS`], and a position on the earth.
    pub fn check(&self) -> Result<(), BoatlogError> {
        let kind = self.kind.unwrap_or(Kind::Text);
        if self.text.contains('\0') {
            return Err(BoatlogError::Invalid(
                "The text contains a NUL character, which a log cannot keep: remove it.".into(),
            ));
        }
        let chars = self.text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(BoatlogError::Invalid(format!(
                "The text is {chars} characters long; an entry takes at most {MAX_TEXT_CHARS}."
            )));
        }
        if kind == Kind::Text && self.text.trim().is_empty() {
            return Err(BoatlogError::Invalid("The entry has no text.".into()));
        }
        finite("latitude", self.latitude, -90.0..=90.0)
            .and_then(|_| finite("longitude", self.longitude, -180.0..=180.0))
            .and_then(|_| finite("engine hours", self.engine_hours, 0.0..=1e7))
            .map_err(|m| BoatlogError::Invalid(format!("The {m}.")))?;
        if self.latitude.is_some() != self.longitude.is_some() {
            return Err(BoatlogError::Invalid(
                "A position needs both latitude and longitude.".into(),
            ));
        }
        Ok(())
    }
}

const COLUMNS: &str = "id, at, kind, text, author, latitude, longitude, engine_hours, \
                       EXISTS (SELECT 1 FROM audio WHERE audio.entry = entry.id)";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(2)?;
    Ok(Entry {
        id: r.get(0)?,
        at: r.get(1)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Auto),
        text: r.get(3)?,
        author: r.get(4)?,
        latitude: r.get(5)?,
        longitude: r.get(6)?,
        engine_hours: r.get(7)?,
        has_audio: r.get(8)?,
    })
}

impl Boatlog {
    pub fn in_state(state_dir: &Path) -> Boatlog {
        Boatlog {
            pool: std::sync::Arc::new(db::Pool::new(state_dir.join(FILE), &SCHEMA)),
        }
    }

    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    pub fn open(&self) -> Result<db::Pooled<'_>, BoatlogError> {
        self.pool.get().map_err(|e| {
            if e.is_full() {
                BoatlogError::Full
            } else {
                BoatlogError::Db(e)
            }
        })
    }

    /// Writes an entry; it is on the card when this returns.
    pub fn add(&self, e: &NewEntry) -> Result<Entry, BoatlogError> {
        e.check()?;
        let kind = e.kind.unwrap_or(Kind::Text);
        let conn = self.open()?;
        conn.execute(
            "INSERT INTO entry (at, kind, text, author, latitude, longitude, engine_hours)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.at,
                kind.as_str(),
                e.text,
                e.author,
                e.latitude,
                e.longitude,
                e.engine_hours
            ],
        )
        .map_err(sql(self.path()))?;
        self.get_in(&conn, conn.last_insert_rowid())
    }

    /// Writes many entries in one transaction, all of them or none (an import of an older
    /// log). Each is checked as [`Boatlog::add`] checks it.
    pub fn add_many(&self, entries: &[NewEntry]) -> Result<(), BoatlogError> {
        for e in entries {
            e.check()?;
        }
        let mut conn = self.open()?;
        let tx = conn.transaction().map_err(sql(self.path()))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO entry (at, kind, text, author, latitude, longitude, engine_hours)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql(self.path()))?;
            for e in entries {
                stmt.execute(params![
                    e.at,
                    e.kind.unwrap_or(Kind::Text).as_str(),
                    e.text,
                    e.author,
                    e.latitude,
                    e.longitude,
                    e.engine_hours
                ])
                .map_err(sql(self.path()))?;
            }
        }
        tx.commit().map_err(sql(self.path()))
    }

    /// The appliance's own entry, for every service that has something to log. A log that
    /// cannot be written never stops the work it reports on: the failure is logged.
    pub fn auto(&self, at: i64, text: impl Into<String>) {
        let e = NewEntry {
            at,
            kind: Some(Kind::Auto),
            text: text.into(),
            author: APPLIANCE.into(),
            ..NewEntry::default()
        };
        if let Err(err) = self.add(&e) {
            log::warn!("boat log: could not write \"{}\": {err}", e.text);
        }
    }

    pub fn get(&self, id: i64) -> Result<Entry, BoatlogError> {
        let conn = self.open()?;
        self.get_in(&conn, id)
    }

    fn get_in(&self, conn: &Connection, id: i64) -> Result<Entry, BoatlogError> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM entry WHERE id = ?1"),
            [id],
            row,
        )
        .optional()
        .map_err(sql(self.path()))?
        .ok_or(BoatlogError::NotFound { id })
    }

    /// Entries newest first, `q.limit` at a time.
    pub fn page(&self, q: &Query) -> Result<Page, BoatlogError> {
        let conn = self.open()?;
        let limit = q.limit.clamp(1, 500);
        // One upper bound, the lower of the cursor and the range's end, so the index is
        // entered where the page starts rather than scanned down from the newest entry.
        let mut upper = q.before.unwrap_or(Cursor {
            at: i64::MAX,
            id: i64::MAX,
        });
        if let Some(to) = q.to {
            upper = upper.min(Cursor {
                at: to.saturating_sub(1),
                id: i64::MAX,
            });
        }
        // With a kind, the (kind, at, id) index serves the page.
        let kind = if q.kind.is_some() {
            "AND kind = ?4"
        } else {
            ""
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entry
                 WHERE (at, id) < (?1, ?2) AND at >= ?3 {kind}
                 ORDER BY at DESC, id DESC LIMIT ?5"
            ))
            .map_err(sql(self.path()))?;
        let mut entries = stmt
            .query_map(
                params![
                    upper.at,
                    upper.id,
                    q.from.unwrap_or(i64::MIN),
                    q.kind.map(Kind::as_str),
                    limit + 1
                ],
                row,
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql(self.path()))?;
        let next = (entries.len() > limit as usize).then(|| {
            entries.truncate(limit as usize);
            Cursor::of(entries.last().expect("a full page"))
        });
        Ok(Page { entries, next })
    }

    /// Entries from `after` on, oldest first: what an export reads, a page at a time.
    pub fn forward(
        &self,
        conn: &Connection,
        from: i64,
        to: i64,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Entry>, BoatlogError> {
        let after = after.unwrap_or(Cursor {
            at: i64::MIN,
            id: i64::MIN,
        });
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entry
                 WHERE (at, id) > (?1, ?2) AND at >= ?3 AND at < ?4
                 ORDER BY at, id LIMIT ?5"
            ))
            .map_err(sql(self.path()))?;
        stmt.query_map(params![after.at, after.id, from, to, limit], row)
            .and_then(|rows| rows.collect())
            .map_err(sql(self.path()))
    }

    pub fn delete(&self, id: i64) -> Result<(), BoatlogError> {
        let n = self
            .open()?
            .execute("DELETE FROM entry WHERE id = ?1", [id])
            .map_err(sql(self.path()))?;
        if n == 0 {
            return Err(BoatlogError::NotFound { id });
        }
        Ok(())
    }

    /// Keeps `data` as the recording of voice entry `id`, replacing any earlier one.
    pub fn set_audio(
        &self,
        id: i64,
        content_type: &str,
        data: &[u8],
        limit: u64,
    ) -> Result<(), BoatlogError> {
        let content_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !AUDIO_TYPES.contains(&content_type.as_str()) {
            return Err(BoatlogError::Invalid(format!(
                "`{content_type}` is not a recording the log keeps: send one of {}.",
                AUDIO_TYPES.join(", ")
            )));
        }
        if data.len() as u64 > limit {
            return Err(BoatlogError::TooLarge {
                size: data.len() as u64,
                limit,
            });
        }
        if data.is_empty() {
            return Err(BoatlogError::Invalid("The recording is empty.".into()));
        }
        let conn = self.open()?;
        let entry = self.get_in(&conn, id)?;
        if entry.kind != Kind::Voice {
            return Err(BoatlogError::Invalid(format!(
                "Log entry {id} is a {} entry; only voice entries have recordings.",
                entry.kind.as_str()
            )));
        }
        conn.execute(
            "INSERT OR REPLACE INTO audio (entry, content_type, data) VALUES (?1, ?2, ?3)",
            params![id, content_type, data],
        )
        .map_err(sql(self.path()))?;
        Ok(())
    }

    /// The recording of entry `id` and its content type.
    pub fn audio(&self, id: i64) -> Result<(String, Vec<u8>), BoatlogError> {
        let conn = self.open()?;
        self.get_in(&conn, id)?;
        conn.query_row(
            "SELECT content_type, data FROM audio WHERE entry = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql(self.path()))?
        .ok_or(BoatlogError::NoAudio { id })
    }

    /// How many entries there are.
    pub fn count(&self) -> Result<u64, BoatlogError> {
        self.open()?
            .query_row("SELECT count(*) FROM entry", [], |r| r.get(0))
            .map_err(sql(self.path()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn entry(at: i64, text: &str) -> NewEntry {
        NewEntry {
            at,
            kind: Some(Kind::Text),
            text: text.into(),
            author: "skipper".into(),
            ..NewEntry::default()
        }
    }

    #[test]
    fn pages_walk_every_entry_once_newest_first_even_within_one_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        for i in 0..25 {
            log.add(&entry(1_000 + i / 4, &format!("entry {i}")))
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut q = Query {
            limit: 7,
            ..Query::default()
        };
        loop {
            let page = log.page(&q).unwrap();
            seen.extend(page.entries.iter().map(|e| e.text.clone()));
            match page.next {
                Some(n) => q.before = Some(Cursor::parse(&n).unwrap()),
                None => break,
            }
        }
        let want: Vec<String> = (0..25).rev().map(|i| format!("entry {i}")).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_batch_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        let mut batch: Vec<NewEntry> = (0..100).map(|i| entry(i, "ok")).collect();
        batch.push(entry(100, "bad\0"));
        assert!(matches!(
            log.add_many(&batch),
            Err(BoatlogError::Invalid(_))
        ));
        assert_eq!(log.count().unwrap(), 0);
        batch.pop();
        log.add_many(&batch).unwrap();
        assert_eq!(log.count().unwrap(), 100);
    }

    #[test]
    fn a_range_and_a_kind_filter_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        for at in [100, 200, 300] {
            log.add(&entry(at, "typed")).unwrap();
        }
        log.auto(250, "Backup made");
        let q = Query {
            from: Some(200),
            to: Some(300),
            limit: 50,
            ..Query::default()
        };
        let ats: Vec<i64> = log.page(&q).unwrap().entries.iter().map(|e| e.at).collect();
        assert_eq!(ats, [250, 200]);
        let q = Query {
            kind: Some(Kind::Auto),
            limit: 50,
            ..Query::default()
        };
        let page = log.page(&q).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].author, APPLIANCE);
    }

    #[test]
    fn nul_oversized_empty_and_off_the_earth_entries_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        let bad = [
            entry(1, "a\0b"),
            entry(1, &"x".repeat(MAX_TEXT_CHARS + 1)),
            entry(1, "  \n"),
            NewEntry {
                latitude: Some(91.0),
                longitude: Some(0.0),
                ..entry(1, "where")
            },
            NewEntry {
                latitude: Some(f64::NAN),
                longitude: Some(0.0),
                ..entry(1, "where")
            },
            NewEntry {
                latitude: Some(10.0),
                ..entry(1, "half a position")
            },
        ];
        for e in bad {
            assert!(
                matches!(log.add(&e), Err(BoatlogError::Invalid(_))),
                "{e:?}"
            );
        }
        assert_eq!(log.count().unwrap(), 0);
        assert!(log.add(&entry(1, &"é".repeat(MAX_TEXT_CHARS))).is_ok());
    }

    #[test]
    fn a_recording_belongs_to_a_voice_entry_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        let typed = log.add(&entry(1, "typed")).unwrap();
        let voice = log
            .add(&NewEntry {
                kind: Some(Kind::Voice),
                ..entry(2, "anchor down")
            })
            .unwrap();
        assert!(matches!(
            log.set_audio(typed.id, "audio/webm", b"x", 10),
            Err(BoatlogError::Invalid(_))
        ));
        assert!(matches!(
            log.set_audio(voice.id, "text/html", b"<script>", 10),
            Err(BoatlogError::Invalid(_))
        ));
        assert!(matches!(
            log.set_audio(voice.id, "audio/webm", &[0; 11], 10),
            Err(BoatlogError::TooLarge { size: 11, .. })
        ));
        log.set_audio(voice.id, "audio/webm; codecs=opus", b"OggS", 10)
            .unwrap();
        assert_eq!(
            log.audio(voice.id).unwrap(),
            ("audio/webm".to_owned(), b"OggS".to_vec())
        );
        assert!(log.get(voice.id).unwrap().has_audio);
        log.delete(voice.id).unwrap();
        let left: i64 = log
            .open()
            .unwrap()
            .query_row("SELECT count(*) FROM audio", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        assert!(matches!(
            log.delete(voice.id),
            Err(BoatlogError::NotFound { .. })
        ));
    }
}
