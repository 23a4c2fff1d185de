//! The boat's time zone: which zone the boat is in (from its position, the internet or
//! the owner), kept and applied to the system, and what local times are shown, exported
//! and scheduled in. Times are kept in UTC everywhere; this turns them into the boat's
//! wall-clock time.

pub mod cli;
pub mod clock;
pub mod decide;
pub mod geolocate;
pub mod keep;
pub mod locate;
pub mod lookup;
pub mod worker;

use std::sync::{PoisonError, RwLock};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The zone the device decided, once a source or the owner has (the worker sets it).
static DECIDED: RwLock<Option<TimeZone>> = RwLock::new(None);

/// The boat's zone: the one the device decided ([`worker`]); before that, the zone the
/// system clock is set to (`/etc/localtime`, or `TZ`); UTC when neither names a zone the
/// tz database knows.
pub fn boat() -> TimeZone {
    if let Some(tz) = DECIDED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return tz.clone();
    }
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

/// Makes `tz` the boat's zone for the whole process; `None`: the system's.
pub(crate) fn set_boat(tz: Option<TimeZone>) {
    *DECIDED.write().unwrap_or_else(PoisonError::into_inner) = tz;
}

/// `+HH:MM` or `-HH:MM` for an offset from UTC in seconds.
pub fn offset_text(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)
}

/// The zone's name for people and files: its IANA name, or `UTC`.
pub fn name(tz: &TimeZone) -> String {
    tz.iana_name().unwrap_or("UTC").to_owned()
}

/// One instant on the boat's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// `YYYY-MM-DD HH:MM:SS`, the form spreadsheets read as a date and time.
    pub time: String,
    /// `+HH:MM` or `-HH:MM` from UTC.
    pub offset: String,
}

/// `ms` (milliseconds since 1970 UTC) on the boat's clock.
pub fn local(ms: i64, tz: &TimeZone) -> Local {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let zdt = ts.to_zoned_datetime(tz.clone());
    Local {
        time: zdt.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        offset: offset_text(zdt.offset().seconds()),
    }
}

/// `ms` as RFC 3339 UTC with milliseconds: `2026-01-15T12:00:00.000Z`.
pub fn utc(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// A moment a person typed: an RFC 3339 time (`2026-07-01T12:00:00Z`, with its own
/// offset), or a date (`2026-07-01`), which means the start of that day on the boat's
/// clock. Milliseconds since 1970 UTC.
pub fn parse_moment(text: &str, tz: &TimeZone) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| {
        format!("`{text}` is not a date (2026-07-01) or a time (2026-07-01T12:00:00Z)")
    })?;
    date.to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("`{text}` cannot be placed on the boat's clock: {e}"))
}

/// The start of the day after `text` when it is a plain date (an inclusive "to" date),
/// else the moment itself.
pub fn parse_end(text: &str, tz: &TimeZone) -> Result<i64, String> {
    let text = text.trim();
    match text.parse::<jiff::civil::Date>() {
        Ok(date) if text.len() == 10 => {
            let next = date
                .tomorrow()
                .map_err(|e| format!("`{text}` has no next day: {e}"))?;
            next.to_zoned_datetime(tz.clone())
                .map(|z| z.timestamp().as_millisecond())
                .map_err(|e| format!("`{text}` cannot be placed on the boat's clock: {e}"))
        }
        _ => parse_moment(text, tz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_follows_the_zone_and_its_summer_time() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 2026-01-15T12:00:00Z and 2026-07-15T12:00:00Z.
        assert_eq!(
            local(1_768_478_400_000, &berlin),
            Local {
                time: "2026-01-15 13:00:00".into(),
                offset: "+01:00".into()
            }
        );
        assert_eq!(local(1_784_116_800_000, &berlin).offset, "+02:00");
        let st_johns = TimeZone::get("America/St_Johns").unwrap();
        assert_eq!(local(1_768_478_400_000, &st_johns).offset, "-03:30");
    }

    #[test]
    fn a_date_is_the_start_of_the_boats_day_and_an_end_date_is_inclusive() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            parse_moment("2026-01-15", &berlin).unwrap(),
            1_768_431_600_000
        );
        assert_eq!(
            parse_end("2026-01-15", &berlin).unwrap(),
            1_768_431_600_000 + 86_400_000
        );
        assert_eq!(
            parse_moment("2026-01-15T12:00:00Z", &berlin).unwrap(),
            1_768_478_400_000
        );
        assert!(parse_moment("yesterday", &berlin).is_err());
        assert!(parse_moment("2026-02-30", &berlin).is_err());
    }
}
