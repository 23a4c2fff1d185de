//! How long the boat log keeps entries, and the pruning that holds to it even though a Pi
//! has no real-time clock: a clock set back or jumping forward never mass-deletes.
//!
//! The prune counts from a *reference* time, not from the clock alone. While the clock is
//! synchronised (NTP or GPS) the reference is the clock. Otherwise it may run ahead of the
//! last reference only by the time that really passed (the monotonic clock) plus an hour:
//! a clock that jumps to 2040 moves nothing, and after a lay-up the log keeps entries a
//! little longer than asked until the clock is synchronised again. A clock set back makes
//! the reference earlier, which deletes less. Entries dated before 2024 were written by a
//! clock that had not been set, and are never pruned.

use std::time::Instant;

use rusqlite::params;

use super::{Boatlog, BoatlogError};

pub use crate::time::UNSET_CLOCK_BEFORE;

/// How far a reference may run ahead of the time that passed.
const SLACK_MS: i64 = 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// Rows deleted per transaction, so a large prune never holds the writer for long.
const BATCH: i64 = 5_000;

/// The days each tier keeps (tier 0 first); 0 keeps everything.
pub fn days_for(tier: u8, by_tier: &[u32; 4]) -> Option<u32> {
    let d = by_tier[usize::from(tier.min(3))];
    (d > 0).then_some(d)
}

/// The reference of a prune at clock time `now`, given the last reference and the
/// monotonic milliseconds since it was taken.
pub fn reference(now: i64, synced: bool, last: Option<i64>, elapsed_ms: i64) -> i64 {
    match last {
        Some(last) if !synced => now.min(last.saturating_add(elapsed_ms).saturating_add(SLACK_MS)),
        _ => now,
    }
}

/// Deletes the entries older than `days` before `reference` (and not before 2024).
/// Returns how many went.
pub fn prune(log: &Boatlog, reference: i64, days: u32) -> Result<u64, BoatlogError> {
    let cutoff = reference.saturating_sub(i64::from(days) * DAY_MS);
    let conn = log.open()?;
    let mut total = 0;
    loop {
        let n = conn
            .execute(
                "DELETE FROM entry WHERE id IN
                   (SELECT id FROM entry WHERE at < ?1 AND at >= ?2 LIMIT ?3)",
                params![cutoff, UNSET_CLOCK_BEFORE, BATCH],
            )
            .map_err(super::sql(log.path()))?;
        total += n as u64;
        if (n as i64) < BATCH {
            break;
        }
    }
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('prune_reference', ?1)",
        [reference],
    )
    .map_err(super::sql(log.path()))?;
    Ok(total)
}

/// The reference the last prune stored in the log itself (so a restored log brings its
/// own).
pub fn last_reference(log: &Boatlog) -> Result<Option<i64>, BoatlogError> {
    use rusqlite::OptionalExtension;
    log.open()?
        .query_row(
            "SELECT value FROM meta WHERE key = 'prune_reference'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(super::sql(log.path()))
}

/// What the pruning task needs to know each time.
pub struct Pruner {
    pub log: Boatlog,
    /// The days of each tier (0: for ever).
    pub days_by_tier: [u32; 4],
    /// The licence's tier now.
    pub tier: Box<dyn Fn() -> u8 + Send + Sync>,
    /// Whether the system clock is synchronised now.
    pub synced: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Pruner {
    /// One prune at clock time `now`; `since` is when the last reference was taken (for
    /// the first one in a run: when the daemon started). Logs what it did.
    pub fn once(&self, now: i64, since: Instant) -> Result<u64, BoatlogError> {
        let Some(days) = days_for((self.tier)(), &self.days_by_tier) else {
            return Ok(0);
        };
        let last = last_reference(&self.log)?;
        let elapsed = since.elapsed().as_millis().min(i64::MAX as u128) as i64;
        let r = reference(now, (self.synced)(), last, elapsed);
        if r < now - SLACK_MS {
            log::info!(
                "boat log: the clock is {} s ahead of the time that passed and is not \
                 synchronised; entries are kept by the earlier time",
                (now - r) / 1000
            );
        }
        let n = prune(&self.log, r, days)?;
        if n > 0 {
            log::info!("boat log: {n} entries older than {days} days were removed");
        }
        Ok(n)
    }
}

/// Prunes at start and every hour, until the daemon stops.
pub async fn run(pruner: Pruner) {
    let pruner = std::sync::Arc::new(pruner);
    let mut since = Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let p = pruner.clone();
        let started = Instant::now();
        let now = crate::time::unix_now_ms();
        match tokio::task::spawn_blocking(move || p.once(now, since)).await {
            Ok(Ok(_)) => since = started,
            Ok(Err(e)) => log::warn!("boat log: pruning failed: {e}"),
            Err(e) => log::warn!("boat log: pruning stopped: {e}"),
        }
    }
}

/// Whether systemd-timesyncd has synchronised the clock since boot (it touches this
/// file; systemd-timesyncd.service(8)).
pub fn clock_synced() -> bool {
    std::path::Path::new("/run/systemd/timesync/synchronized").exists()
}

#[cfg(test)]
mod tests {
    use super::super::tests::entry;
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    fn log_with(ats: &[i64]) -> (tempfile::TempDir, Boatlog) {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        for &at in ats {
            log.add(&entry(at, &at.to_string())).unwrap();
        }
        (dir, log)
    }

    fn left(log: &Boatlog) -> Vec<i64> {
        let mut v: Vec<i64> = log
            .page(&super::super::Query {
                limit: 500,
                ..Default::default()
            })
            .unwrap()
            .entries
            .iter()
            .map(|e| e.at)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn exactly_what_is_older_than_the_limit_goes() {
        let limit = NOW - 30 * DAY_MS;
        let (_d, log) = log_with(&[limit - 1, limit, limit + 1, NOW]);
        assert_eq!(prune(&log, NOW, 30).unwrap(), 1);
        assert_eq!(left(&log), [limit, limit + 1, NOW]);
    }

    #[test]
    fn a_clock_jumping_years_ahead_deletes_nothing_until_it_is_synchronised() {
        let (_d, log) = log_with(&[NOW - 20 * DAY_MS, NOW - DAY_MS, NOW]);
        prune(&log, NOW, 30).unwrap();
        // Ten minutes later the clock says 2040.
        let jumped = NOW + 14 * 365 * DAY_MS;
        let r = reference(jumped, false, last_reference(&log).unwrap(), 600_000);
        assert_eq!(r, NOW + 600_000 + SLACK_MS);
        assert_eq!(prune(&log, r, 30).unwrap(), 0);
        assert_eq!(left(&log).len(), 3);
        // Synchronised, the clock is trusted.
        assert_eq!(reference(jumped, true, Some(r), 0), jumped);
    }

    #[test]
    fn a_clock_set_back_deletes_less_and_entries_from_an_unset_clock_stay() {
        let unset = 86_400_000; // 1970-01-02, a Pi that booted without a clock
        let (_d, log) = log_with(&[unset, NOW - 40 * DAY_MS, NOW - 10 * DAY_MS]);
        prune(&log, NOW, 30).unwrap();
        assert_eq!(left(&log), [unset, NOW - 10 * DAY_MS]);
        let back = NOW - 365 * DAY_MS;
        let r = reference(back, false, last_reference(&log).unwrap(), 1000);
        assert_eq!(r, back);
        assert_eq!(prune(&log, r, 30).unwrap(), 0);
        assert_eq!(left(&log), [unset, NOW - 10 * DAY_MS]);
    }

    #[test]
    fn tiers_keep_their_days_and_zero_keeps_everything() {
        let by_tier = [30, 365, 0, 0];
        assert_eq!(days_for(0, &by_tier), Some(30));
        assert_eq!(days_for(1, &by_tier), Some(365));
        assert_eq!(days_for(3, &by_tier), None);
    }

    #[test]
    fn a_large_prune_goes_in_batches_and_misses_none() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        {
            let mut conn = log.open().unwrap();
            let tx = conn.transaction().unwrap();
            for i in 0..12_000i64 {
                tx.execute(
                    "INSERT INTO entry (at, kind, text, author) VALUES (?1, 'auto', 'x', 'd3kOS')",
                    [NOW - 60 * DAY_MS + i],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        log.add(&entry(NOW, "kept")).unwrap();
        assert_eq!(prune(&log, NOW, 30).unwrap(), 12_000);
        assert_eq!(log.count().unwrap(), 1);
    }
}
