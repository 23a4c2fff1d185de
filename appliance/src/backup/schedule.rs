//! Automatic backups: daily or weekly at the owner's hour, driven by the daemon's own
//! scheduler with a clock passed in, so tests move time instead of waiting for it.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::jobs::Jobs;
use super::{BackupError, Kind, LastResult, Limits, Paths, Settings};

const STATE_NAME: &str = ".schedule.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auto {
    Off,
    Daily,
    /// Sundays.
    Weekly,
}

/// The latest time at or before `now` a backup was due: `hour`:00 on the boat's clock
/// (`tz`) of today (daily) or of the latest Sunday (weekly). An hour that a change to
/// summer time skips is taken as the hour after it.
pub fn latest_slot(auto: Auto, hour: u8, now: i64, tz: &TimeZone) -> Option<i64> {
    let at = |day: Date| {
        day.at(hour.min(23) as i8, 0, 0, 0)
            .to_zoned_datetime(tz.clone())
            .ok()
            .map(|z| z.timestamp().as_second())
    };
    let today = Timestamp::from_second(now)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let day = match at(today)? {
        slot if slot <= now => today,
        _ => today.yesterday().ok()?,
    };
    match auto {
        Auto::Off => None,
        Auto::Daily => at(day),
        Auto::Weekly => {
            let back = i64::from(day.weekday().to_sunday_zero_offset());
            at(day.checked_sub(jiff::Span::new().days(back)).ok()?)
        }
    }
}

/// Whether a scheduled backup is due at `now`, given when the schedule last ran (or began
/// counting: a new device has nothing worth a backup at its first start).
pub fn due(settings: &Settings, last_run: i64, now: i64, tz: &TimeZone) -> bool {
    latest_slot(settings.auto, settings.hour, now, tz).is_some_and(|slot| last_run < slot)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ScheduleState {
    last_run: Option<i64>,
}

fn load_state(paths: &Paths) -> ScheduleState {
    crate::state::load(&paths.backup_dir.join(STATE_NAME), 0)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn save_state(paths: &Paths, at: i64) {
    let _ = super::make_dir(&paths.backup_dir);
    let state = ScheduleState { last_run: Some(at) };
    if let Err(e) = crate::state::save(&paths.backup_dir.join(STATE_NAME), &state) {
        log::warn!("the backup schedule state was not saved: {e}");
    }
}

/// Whether a scheduled backup is due, without taking the backup job slot: the daemon looks
/// every minute, and a look holding the slot made an owner's backup or update meanwhile
/// answer "a backup is running". The first look starts the count and is never due.
pub fn looks_due(paths: &Paths, settings: &Settings, now: i64, tz: &TimeZone) -> bool {
    match load_state(paths).last_run {
        None => {
            save_state(paths, now);
            false
        }
        Some(last_run) => due(settings, last_run, now, tz),
    }
}

/// One look at the clock (`now`, on the boat's clock in `tz`): makes the scheduled backup
/// when one is due, records the result, and applies retention. `None` when nothing was due.
pub fn tick(
    paths: &Paths,
    settings: &Settings,
    limits: &Limits,
    now: i64,
    tz: &TimeZone,
) -> Option<Result<super::create::Created, BackupError>> {
    let state = load_state(paths);
    let save = |at: i64| save_state(paths, at);
    let Some(last_run) = state.last_run else {
        // The first look starts the count; the first backup comes at the next slot.
        save(now);
        return None;
    };
    if !due(settings, last_run, now, tz) {
        return None;
    }
    // Recorded before the attempt: a backup that fails is retried at the next slot, not at
    // every tick until then.
    save(now);
    let result = super::create::create(paths, Kind::Scheduled, now, &super::Progress::default());
    let last = LastResult::of(&result, Kind::Scheduled, now);
    super::record_result(paths, &last);
    super::log_result(&crate::boatlog::Boatlog::in_state(&paths.state_dir), &last);
    if result.is_ok()
        && let Err(e) = super::retain(paths, settings.keep, limits, now)
    {
        log::warn!("backup retention: {e}");
    }
    Some(result)
}

/// The daemon's scheduler: looks at the clock every minute, and makes the scheduled backup
/// when one is due and no other backup job runs.
pub async fn run(paths: Paths, limits: Limits, jobs: Arc<Jobs>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let look = paths.clone();
        let due = tokio::task::spawn_blocking(move || {
            let settings = Settings::load(&look);
            let (now, tz) = (crate::time::unix_now(), crate::timezone::boat());
            looks_due(&look, &settings, now, &tz)
        })
        .await
        .unwrap_or(false);
        // An owner's job holding the slot: the next minute's look tries again.
        if !due {
            continue;
        }
        let Ok((_job, _)) = jobs.begin("create") else {
            continue;
        };
        let paths = paths.clone();
        let done = tokio::task::spawn_blocking(move || {
            let settings = Settings::load(&paths);
            let (now, tz) = (crate::time::unix_now(), crate::timezone::boat());
            self::tick(&paths, &settings, &limits, now, &tz).map(|r| r.map(|c| c.id))
        })
        .await;
        match done {
            Ok(Some(Ok(id))) => log::info!("scheduled backup {id} made"),
            Ok(Some(Err(e))) => log::error!("scheduled backup failed: {e}"),
            Ok(None) => {}
            Err(e) => log::error!("the backup scheduler stopped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOV_29_2026: i64 = 1_795_910_400; // a Sunday, 00:00 UTC
    const UTC: TimeZone = TimeZone::UTC;

    #[test]
    fn daily_is_due_once_per_day_after_the_hour() {
        let s = Settings {
            auto: Auto::Daily,
            keep: 10,
            hour: 3,
        };
        let at3 = NOV_29_2026 + 3 * 3600;
        assert!(!due(&s, at3 - 3600, at3 - 1, &UTC), "before today's 03:00");
        assert!(due(&s, at3 - 3600, at3, &UTC));
        assert!(!due(&s, at3, at3 + 20 * 3600, &UTC));
        assert!(due(&s, at3, at3 + DAY, &UTC));
    }

    #[test]
    fn weekly_is_due_on_sundays() {
        let s = Settings {
            auto: Auto::Weekly,
            keep: 10,
            hour: 0,
        };
        assert_eq!(
            latest_slot(Auto::Weekly, 0, NOV_29_2026 + 5, &UTC),
            Some(NOV_29_2026)
        );
        assert_eq!(
            latest_slot(Auto::Weekly, 0, NOV_29_2026 + 6 * DAY, &UTC),
            Some(NOV_29_2026)
        );
        assert!(!due(&s, NOV_29_2026, NOV_29_2026 + 6 * DAY, &UTC));
        assert!(due(&s, NOV_29_2026, NOV_29_2026 + 7 * DAY, &UTC));
        assert!(!due(
            &Settings {
                auto: Auto::Off,
                ..s
            },
            0,
            NOV_29_2026,
            &UTC
        ));
    }

    #[test]
    fn the_hour_is_on_the_boats_clock_through_summer_time() {
        // 03:00 in Auckland on Sunday 29 November 2026 (NZDT, +13) is 14:00 UTC on the 28th.
        let auckland = TimeZone::get("Pacific/Auckland").unwrap();
        let slot = NOV_29_2026 - 10 * 3600;
        assert_eq!(
            latest_slot(Auto::Daily, 3, NOV_29_2026, &auckland),
            Some(slot)
        );
        assert_eq!(
            latest_slot(Auto::Weekly, 3, NOV_29_2026, &auckland),
            Some(slot)
        );
        assert_eq!(
            latest_slot(Auto::Daily, 3, slot - 1, &auckland),
            Some(slot - DAY)
        );
        // Berlin springs forward at 02:00 on 29 March 2026: a 02:00 backup runs at 03:00
        // CEST (01:00 UTC), once.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let march_29 = 1_774_742_400; // 00:00 UTC
        let s = Settings {
            auto: Auto::Daily,
            keep: 10,
            hour: 2,
        };
        assert_eq!(
            latest_slot(Auto::Daily, 2, march_29 + 3600, &berlin),
            Some(march_29 + 3600)
        );
        assert!(due(&s, march_29 - 3600, march_29 + 3600, &berlin));
        assert!(!due(&s, march_29 + 3600, march_29 + 20 * 3600, &berlin));
    }

    #[test]
    fn the_minutely_look_starts_the_count_and_says_due_only_when_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_dir: dir.path().join("state"),
            backup_dir: dir.path().join("backups"),
        };
        let s = Settings {
            auto: Auto::Daily,
            keep: 10,
            hour: 3,
        };
        let at3 = NOV_29_2026 + 3 * 3600;
        assert!(!looks_due(&paths, &s, at3 - 60, &UTC), "the first look");
        assert_eq!(load_state(&paths).last_run, Some(at3 - 60));
        assert!(!looks_due(&paths, &s, at3 - 1, &UTC));
        assert!(looks_due(&paths, &s, at3, &UTC));
        // A look that finds it due changes nothing: the backup, under the job slot, does.
        assert_eq!(load_state(&paths).last_run, Some(at3 - 60));
        assert!(
            !paths
                .backup_dir
                .join("d3kos_backup_20261129_030000.tar.gz")
                .exists()
        );
    }
}
