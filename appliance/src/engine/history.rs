//! Engine history in SQLite (`engine.db` in the state folder, so backups carry it):
//! one-second samples for a day, one-minute averages for 30 days, hourly averages for
//! ten years, so its size is bounded; and the recorded baselines.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::monitor::Stats;
use super::{Band, Metric};
use crate::db::{Pool, Schema};

static SCHEMA: Schema = Schema {
    name: "engine history",
    migrations: &["CREATE TABLE sample (
            res INTEGER NOT NULL,
            engine TEXT NOT NULL,
            metric TEXT NOT NULL,
            t INTEGER NOT NULL,
            value REAL NOT NULL,
            lo REAL NOT NULL,
            hi REAL NOT NULL,
            PRIMARY KEY (res, engine, metric, t)
        ) WITHOUT ROWID;
        CREATE TABLE baseline (
            engine TEXT NOT NULL,
            band TEXT NOT NULL,
            metric TEXT NOT NULL,
            n INTEGER NOT NULL,
            mean REAL NOT NULL,
            stddev REAL NOT NULL,
            recorded_ms INTEGER NOT NULL,
            PRIMARY KEY (engine, band, metric)
        ) WITHOUT ROWID;"],
};

/// Resolutions kept, in seconds, and for how long.
pub const TIERS: [(i64, i64); 3] = [(1, 86_400), (60, 30 * 86_400), (3_600, 10 * 365 * 86_400)];

/// The most points a history query answers with.
pub const MAX_POINTS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("engine history {path}: {source}")]
    Db {
        path: PathBuf,
        source: Box<crate::db::DbError>,
    },
    #[error("engine history: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("while writing the engine history CSV: {0}")]
    Write(std::io::Error),
}

/// Engine history as CSV (RFC 4180, UTC times, SI units) from `from_s` (none: the oldest
/// kept) to `to_s`: the finest tier that still holds `from_s`, its average, least and
/// greatest value per step.
pub fn csv(
    h: &History,
    from_s: Option<i64>,
    to_s: i64,
    now_s: i64,
    out: &mut impl std::io::Write,
) -> Result<(), HistoryError> {
    // Everything: from the oldest sample kept, at the finest step that still covers it.
    let from_s = match from_s {
        Some(f) => f,
        None => h.oldest()?.unwrap_or(to_s),
    };
    let res = TIERS
        .iter()
        .find(|(_, keep)| from_s >= now_s - keep)
        .map_or(3_600, |(res, _)| *res);
    out.write_all(b"time_utc,engine,metric,unit,value,min,max,step_s\r\n")
        .map_err(HistoryError::Write)?;
    h.each(res, from_s, to_s, |engine, metric, t, v, lo, hi| {
        let unit = Metric::parse(metric).map_or("", Metric::unit);
        let at = jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string());
        // Engine ids are `port`, `starboard` or a number: nothing a spreadsheet would run.
        write!(out, "{at},{engine},{metric},{unit},{v},{lo},{hi},{res}\r\n")
    })
}

/// One one-second sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub engine: String,
    pub metric: Metric,
    /// Unix seconds.
    pub t: i64,
    pub value: f64,
}

/// A baseline kept: engine, band and metric, its statistics, when it was recorded (ms).
pub type Kept = ((String, Band, Metric), Stats, i64);

pub struct History {
    pool: Pool,
    path: PathBuf,
}

impl History {
    /// The history at `path`, opened on first use.
    pub fn at(path: &Path) -> History {
        History {
            pool: Pool::new(path.to_owned(), &SCHEMA),
            path: path.to_owned(),
        }
    }

    /// Opens it now, so a file this version cannot read is a start-up problem.
    pub fn check(&self) -> Result<(), HistoryError> {
        self.conn().map(drop)
    }

    #[cfg(test)]
    fn open(path: &Path) -> Result<History, HistoryError> {
        let h = History::at(path);
        h.check()?;
        Ok(h)
    }

    fn conn(&self) -> Result<crate::db::Pooled<'_>, HistoryError> {
        self.pool.get().map_err(|source| HistoryError::Db {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    /// Writes one-second samples in one transaction, rolls them up into the coarser
    /// tiers and prunes each tier to its age, as of `now_s`.
    pub fn write(&self, samples: &[Sample], now_s: i64) -> Result<(), HistoryError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO sample (res, engine, metric, t, value, lo, hi)
                 VALUES (1, ?1, ?2, ?3, ?4, ?4, ?4)",
            )?;
            for s in samples {
                put.execute(params![s.engine, s.metric.key(), s.t, s.value])?;
            }
        }
        if let (Some(first), Some(last)) = (
            samples.iter().map(|s| s.t).min(),
            samples.iter().map(|s| s.t).max(),
        ) {
            rollup(&tx, 1, 60, first, last)?;
            rollup(&tx, 60, 3_600, first, last)?;
        }
        for (res, keep) in TIERS {
            tx.execute(
                "DELETE FROM sample WHERE res = ?1 AND t < ?2",
                params![res, now_s - keep],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `max_points` averaged points of `metric` on `engine` from `from_s` to `to_s`
    /// (Unix seconds), oldest first, from the finest tier that still covers `from_s`.
    pub fn points(
        &self,
        engine: &str,
        metric: Metric,
        from_s: i64,
        to_s: i64,
        now_s: i64,
        max_points: usize,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let res = TIERS
            .iter()
            .find(|(_, keep)| from_s >= now_s - keep)
            .map_or(3_600, |(res, _)| *res);
        let span = (to_s - from_s).max(1);
        let bucket = (span / max_points.max(1) as i64).max(res);
        let conn = self.conn()?;
        let mut q = conn.prepare_cached(
            "SELECT (t / ?1) * ?1 AS b, avg(value) FROM sample
             WHERE res = ?2 AND engine = ?3 AND metric = ?4 AND t >= ?5 AND t < ?6
             GROUP BY b ORDER BY b",
        )?;
        let rows = q.query_map(
            params![bucket, res, engine, metric.key(), from_s, to_s],
            |r| Ok((r.get::<_, i64>(0)? * 1000, r.get::<_, f64>(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every sample of the tier `res` from `from_s` to `to_s`, in time order, for export.
    /// A write error from `f` stops it.
    pub fn each(
        &self,
        res: i64,
        from_s: i64,
        to_s: i64,
        mut f: impl FnMut(&str, &str, i64, f64, f64, f64) -> std::io::Result<()>,
    ) -> Result<(), HistoryError> {
        let conn = self.conn()?;
        let mut q = conn.prepare(
            "SELECT engine, metric, t, value, lo, hi FROM sample
             WHERE res = ?1 AND t >= ?2 AND t < ?3 ORDER BY t, engine, metric",
        )?;
        let mut rows = q.query(params![res, from_s, to_s])?;
        while let Some(r) = rows.next()? {
            let engine: String = r.get(0)?;
            let metric: String = r.get(1)?;
            f(&engine, &metric, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        }
        Ok(())
    }

    /// Replaces the baselines of every key in `rows`.
    pub fn save_baseline(
        &self,
        rows: &[((String, Band, Metric), Stats)],
        recorded_ms: i64,
    ) -> Result<(), HistoryError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for ((engine, band, metric), s) in rows {
            tx.execute(
                "INSERT OR REPLACE INTO baseline (engine, band, metric, n, mean, stddev, recorded_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![engine, band.key(), metric.key(), s.n as i64, s.mean, s.stddev, recorded_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every baseline kept, with when it was recorded.
    pub fn baselines(&self) -> Result<Vec<Kept>, HistoryError> {
        let conn = self.conn()?;
        let mut q = conn
            .prepare("SELECT engine, band, metric, n, mean, stddev, recorded_ms FROM baseline")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                Stats {
                    n: r.get::<_, i64>(3)? as u64,
                    mean: r.get(4)?,
                    stddev: r.get(5)?,
                },
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = vec![];
        for row in rows {
            let (engine, band, metric, stats, at) = row?;
            // A band or metric this version does not know is skipped, not an error.
            if let (Some(b), Some(m)) = (Band::parse(&band), Metric::parse(&metric)) {
                out.push(((engine, b, m), stats, at));
            }
        }
        Ok(out)
    }

    /// The time of the oldest sample kept, in any tier.
    pub fn oldest(&self) -> Result<Option<i64>, HistoryError> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT min(t) FROM sample", [], |r| r.get(0))?)
    }

    /// Rows per tier, for the benchmarks and the size bound.
    pub fn rows(&self) -> Result<Vec<(i64, i64)>, HistoryError> {
        let conn = self.conn()?;
        let mut q = conn.prepare("SELECT res, count(*) FROM sample GROUP BY res ORDER BY res")?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Recomputes the `to`-second averages covering `first..=last` from the `from` tier.
fn rollup(tx: &Connection, from: i64, to: i64, first: i64, last: i64) -> rusqlite::Result<()> {
    let start = first.div_euclid(to) * to;
    let end = (last.div_euclid(to) + 1) * to;
    tx.execute(
        "INSERT OR REPLACE INTO sample (res, engine, metric, t, value, lo, hi)
         SELECT ?2, engine, metric, (t / ?2) * ?2, avg(value), min(lo), max(hi)
         FROM sample WHERE res = ?1 AND t >= ?3 AND t < ?4
         GROUP BY engine, metric, (t / ?2) * ?2",
        params![from, to, start, end],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            engine: "port".into(),
            metric: Metric::OilPressure,
            t,
            value: v,
        }
    }

    #[test]
    fn seconds_roll_up_into_minutes_and_hours_and_old_rows_go() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("engine.db")).unwrap();
        // On the hour.
        let t0 = 1_800_000_000;
        let samples: Vec<_> = (0..120)
            .map(|i| s(t0 + i, if i < 60 { 100.0 } else { 200.0 }))
            .collect();
        h.write(&samples, t0 + 120).unwrap();
        assert_eq!(h.rows().unwrap(), vec![(1, 120), (60, 2), (3_600, 1)]);
        let minutes = h
            .points(
                "port",
                Metric::OilPressure,
                t0 - 40 * 86_400,
                t0 + 3_600,
                t0 + 120,
                100,
            )
            .unwrap();
        assert_eq!(minutes.len(), 1, "a point per hour bucket over 40 days");
        assert!((minutes[0].1 - 150.0).abs() < 1e-9);
        let seconds = h
            .points("port", Metric::OilPressure, t0, t0 + 120, t0 + 120, 240)
            .unwrap();
        assert_eq!(seconds.len(), 120);
        // A day later the seconds are gone, the minutes stay.
        h.write(&[], t0 + 86_400 + 200).unwrap();
        assert_eq!(h.rows().unwrap(), vec![(60, 2), (3_600, 1)]);
    }

    #[test]
    fn the_csv_export_takes_the_finest_tier_kept() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("engine.db")).unwrap();
        let t0 = 1_800_000_000;
        h.write(&[s(t0, 300_000.0), s(t0 + 1, 301_000.0)], t0 + 2)
            .unwrap();
        let mut out = vec![];
        csv(&h, Some(t0 - 10), t0 + 10, t0 + 2, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "time_utc,engine,metric,unit,value,min,max,step_s\r\n\
             2027-01-15T08:00:00Z,port,oilPressure,Pa,300000,300000,300000,1\r\n\
             2027-01-15T08:00:01Z,port,oilPressure,Pa,301000,301000,301000,1\r\n"
        );
        let mut all = vec![];
        csv(&h, None, t0 + 10, t0 + 2, &mut all).unwrap();
        assert_eq!(
            String::from_utf8(all).unwrap(),
            text,
            "all of it: still seconds"
        );
        let mut old = vec![];
        csv(&h, Some(t0 - 40 * 86_400), t0 + 10, t0 + 2, &mut old).unwrap();
        let old = String::from_utf8(old).unwrap();
        assert!(old.contains(",300500,300000,301000,3600\r\n"), "{old}");
    }

    #[test]
    fn baselines_are_replaced_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("engine.db")).unwrap();
        let key = ("port".to_owned(), Band::Cruise, Metric::OilPressure);
        let stats = |mean| Stats {
            n: 100,
            mean,
            stddev: 5.0,
        };
        h.save_baseline(&[(key.clone(), stats(1.0))], 1).unwrap();
        h.save_baseline(&[(key.clone(), stats(2.0))], 2).unwrap();
        assert_eq!(h.baselines().unwrap(), vec![(key, stats(2.0), 2)]);
    }
}
