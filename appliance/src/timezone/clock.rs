//! The system clock of a Pi, which has no battery-backed clock: after a boot without
//! internet it starts from when it last ran. When NMEA 2000 says what time it is (System
//! Time, PGN 126992, or GNSS Position Data, 129029) and the clock is clearly wrong, it is
//! set from the bus, once. Pure: the worker passes the readings and the time in.
//!
//! The rule: the bus's time is taken when
//! - it was received in the last `MAX_AGE_MS` (a reading, not a memory);
//! - it is after 2024-01-01 (a receiver without a fix sends zeros, and one hit by the GPS
//!   week rollover sends a date 19.7 years back) and before 2100;
//! - two readings received at different times say the same thing about the clock, within
//!   `AGREE_MS` (one corrupt frame is never believed);
//! - the clock is off by more than `MAX_ERROR_MS` (5 minutes: a clock that is merely
//!   a little off is systemd-timesyncd's business, not the bus's);
//! - and systemd-timesyncd has not synchronised the clock (checked by the worker).

use crate::time::UNSET_CLOCK_BEFORE;

/// How old a reading may be.
pub const MAX_AGE_MS: i64 = 10_000;
/// How far two readings may disagree about the clock's error.
pub const AGREE_MS: i64 = 2_000;
/// How wrong the clock must be to be set.
pub const MAX_ERROR_MS: i64 = 5 * 60_000;
/// 2100-01-01T00:00:00Z.
const LATEST_MS: i64 = 4_102_444_800_000;

/// One time from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// What the bus said, milliseconds since 1970 UTC.
    pub time_ms: i64,
    /// The system clock when it was received.
    pub received_ms: i64,
    /// 126992 or 129029.
    pub pgn: u32,
}

impl Reading {
    /// How far the system clock is ahead of the bus (negative: behind).
    pub fn error_ms(&self) -> i64 {
        self.received_ms - self.time_ms
    }

    /// A reading from the vessel model's `navigation.datetime`.
    pub fn of(entry: &crate::signalk::model::Entry) -> Option<Reading> {
        let t: jiff::Timestamp = entry.value.as_str()?.parse().ok()?;
        Some(Reading {
            time_ms: t.as_millisecond(),
            received_ms: entry.at_ms,
            pgn: entry.pgn?,
        })
    }
}

/// What the clock should be now, when the rule says to set it from `latest` (with the
/// reading before it, `earlier`); `None` when the clock is to be left alone.
pub fn correct_now(earlier: Option<Reading>, latest: Reading, now_ms: i64) -> Option<i64> {
    let earlier = earlier?;
    let plausible = |r: &Reading| (UNSET_CLOCK_BEFORE..LATEST_MS).contains(&r.time_ms);
    let fresh = now_ms - latest.received_ms <= MAX_AGE_MS && now_ms >= latest.received_ms;
    let distinct = earlier.received_ms != latest.received_ms;
    let agree = (earlier.error_ms() - latest.error_ms()).abs() <= AGREE_MS;
    let wrong = latest.error_ms().abs() > MAX_ERROR_MS;
    (fresh && distinct && agree && wrong && plausible(&earlier) && plausible(&latest))
        .then(|| now_ms - latest.error_ms())
}

/// "3 h 12 min behind", for the log and the boat log.
pub fn describe(error_ms: i64) -> String {
    let way = if error_ms < 0 { "behind" } else { "ahead" };
    let mins = error_ms.unsigned_abs() / 60_000;
    let (days, hours, mins) = (mins / 1440, mins / 60 % 24, mins % 60);
    let amount = match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (d, h) => format!("{d} d {h} h"),
    };
    format!("{amount} {way}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-01T12:00:00Z.
    const TRUE_NOW: i64 = 1_782_907_200_000;

    /// A reading received `ago_ms` before now by a clock that is `error_ms` off.
    fn reading(error_ms: i64, ago_ms: i64) -> Reading {
        Reading {
            time_ms: TRUE_NOW - ago_ms,
            received_ms: TRUE_NOW + error_ms - ago_ms,
            pgn: 126_992,
        }
    }

    #[test]
    fn a_clock_hours_behind_is_set_from_two_agreeing_fresh_readings() {
        let behind = -3 * 3_600_000 - 12 * 60_000;
        let now = TRUE_NOW + behind;
        assert_eq!(
            correct_now(Some(reading(behind, 2_000)), reading(behind, 1_000), now),
            Some(TRUE_NOW)
        );
        assert_eq!(describe(behind), "3 h 12 min behind");
        // A Pi that booted at its last shutdown, months ago.
        let months = -95 * 86_400_000;
        assert_eq!(
            correct_now(
                Some(reading(months, 1_500)),
                reading(months, 500),
                TRUE_NOW + months
            ),
            Some(TRUE_NOW)
        );
        assert_eq!(describe(months), "95 d 0 h behind");
    }

    #[test]
    fn a_clock_nearly_right_a_lone_or_stale_reading_and_disagreeing_readings_leave_it_alone() {
        let now = |error| TRUE_NOW + error;
        // Four minutes off: not clearly wrong.
        let e = -4 * 60_000;
        assert_eq!(
            correct_now(Some(reading(e, 2_000)), reading(e, 1_000), now(e)),
            None
        );
        let e = -3_600_000;
        // One reading only.
        assert_eq!(correct_now(None, reading(e, 1_000), now(e)), None);
        // The same reading twice.
        assert_eq!(
            correct_now(Some(reading(e, 1_000)), reading(e, 1_000), now(e)),
            None
        );
        // Received a minute ago.
        assert_eq!(
            correct_now(Some(reading(e, 61_000)), reading(e, 60_000), now(e)),
            None
        );
        // Two readings that do not agree: one of them is corrupt.
        assert_eq!(
            correct_now(Some(reading(e + 30_000, 2_000)), reading(e, 1_000), now(e)),
            None
        );
    }

    #[test]
    fn times_from_a_receiver_without_a_fix_or_after_a_week_rollover_are_not_believed() {
        let zeros = Reading {
            time_ms: 0,
            received_ms: TRUE_NOW,
            pgn: 129_029,
        };
        let zeros_again = Reading {
            received_ms: TRUE_NOW + 1_000,
            time_ms: 1_000,
            ..zeros
        };
        assert_eq!(
            correct_now(Some(zeros), zeros_again, TRUE_NOW + 1_500),
            None
        );
        // 1024 weeks back.
        let rollover = 1024 * 7 * 86_400_000;
        let r = |ago| Reading {
            time_ms: TRUE_NOW - rollover - ago,
            received_ms: TRUE_NOW - ago,
            pgn: 129_029,
        };
        assert_eq!(correct_now(Some(r(2_000)), r(1_000), TRUE_NOW), None);
    }

    #[test]
    fn a_reading_is_taken_from_the_vessel_models_datetime() {
        let e = crate::signalk::model::Entry {
            value: serde_json::json!("2026-07-01T12:00:00.000Z"),
            source: "can0.3".into(),
            pgn: Some(129_029),
            at_ms: TRUE_NOW - 3_600_000,
            seq: 1,
        };
        let r = Reading::of(&e).unwrap();
        assert_eq!(r.time_ms, TRUE_NOW);
        assert_eq!(r.error_ms(), -3_600_000);
        assert_eq!(describe(r.error_ms()), "1 h 0 min behind");
        assert_eq!(describe(7 * 60_000), "7 min ahead");
    }
}
