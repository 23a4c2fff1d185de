//! Calendar arithmetic in UTC: SOURCE_DATE_EPOCH for the builder's artifacts, timestamps for the daemon's answers.

/// 2024-01-01T00:00:00Z in milliseconds: before any d3kOS existed. A clock before it was
/// never set (the device has no real-time clock).
pub const UNSET_CLOCK_BEFORE: i64 = 1_704_067_200_000;

/// Seconds since 1970-01-01 UTC by the system clock (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Milliseconds since 1970-01-01 UTC by the system clock (0 if the clock is before it).
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A UTC time split into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub fn civil(epoch: i64) -> Civil {
    let (year, month, day) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400) as u32;
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// The Unix time of `c`, when every field is one of the calendar (no 31 February, no hour
/// 24, no leap second).
pub fn from_civil(c: &Civil) -> Option<i64> {
    if !(1..=12).contains(&c.month) || c.day == 0 || c.hour > 23 || c.minute > 59 || c.second > 59 {
        return None;
    }
    let days = days_from_civil(c.year, c.month, c.day);
    if civil_from_days(days) != (c.year, c.month, c.day) {
        return None;
    }
    Some(days * 86_400 + i64::from(c.hour * 3600 + c.minute * 60 + c.second))
}

/// `YYYY-MM-DD` of a Unix time.
pub fn date(epoch: i64) -> String {
    let c = civil(epoch);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

/// RFC 3339 of a Unix time, in UTC.
pub fn rfc3339(epoch: i64) -> String {
    let c = civil(epoch);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Midnight UTC of a `YYYY-MM-DD` date, as a Unix time.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a date: write YYYY-MM-DD");
    let mut parts = text.trim().splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1980..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let epoch = days_from_civil(y, m, d) * 86_400;
    // Reject 2026-02-31 and friends: the day must survive the round trip.
    if civil(epoch).day != d {
        return Err(format!("`{text}` is not a day of the calendar"));
    }
    Ok(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH_2026_11_29: i64 = 1_795_910_400;

    #[test]
    fn dates_round_trip() {
        assert_eq!(
            parse_date("1970-01-01"),
            Err("`1970-01-01` is not a date: write YYYY-MM-DD".into())
        );
        // date -u -d 2026-11-29 +%s
        assert_eq!(parse_date("2026-11-29"), Ok(EPOCH_2026_11_29));
        let e = parse_date("2024-02-29").unwrap();
        assert_eq!(date(e), "2024-02-29");
        assert_eq!(rfc3339(e + 3661), "2024-02-29T01:01:01Z");
        assert!(parse_date("2026-02-31").is_err());
        assert!(parse_date("2026-13-01").is_err());
    }

    #[test]
    fn civil_times_round_trip_and_impossible_ones_are_refused() {
        for t in [0, 1_700_000_000, EPOCH_2026_11_29 + 86_399, 253_402_300_799] {
            assert_eq!(from_civil(&civil(t)), Some(t));
        }
        let c = civil(EPOCH_2026_11_29);
        for bad in [
            Civil { month: 13, ..c },
            Civil { day: 31, ..c },
            Civil { hour: 24, ..c },
            Civil { second: 60, ..c },
            Civil { day: 0, ..c },
        ] {
            assert_eq!(from_civil(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn known_epoch() {
        // date -u -d 2023-11-14T22:13:20 +%s
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
