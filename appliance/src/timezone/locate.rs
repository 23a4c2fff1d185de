//! Where a position is: the IANA zone of the land (or territorial water) under it, from
//! time-zone boundaries embedded in the daemon; at sea, the nautical zone of its longitude.
//!
//! The boundaries are timezone-boundary-builder's (ODbL), as tzf-rs ships them: simplified
//! so that no border moves by more than about 111 m, and read in place from the binary
//! (`EmbeddedFinder`, a few MB, no network, nothing unpacked).

use std::sync::OnceLock;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use tzf_rs::EmbeddedFinder;

/// A position in degrees (WGS 84), as NMEA 2000 and Signal K give it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocateError {
    #[error("latitude {0} is not on Earth: it must be a number from -90 to 90 (degrees north)")]
    Latitude(f64),
    #[error("longitude {0} is not on Earth: it must be a number from -180 to 180 (degrees east)")]
    Longitude(f64),
}

impl Position {
    /// A position, or what is wrong with it (not a number, off the globe).
    pub fn new(latitude: f64, longitude: f64) -> Result<Position, LocateError> {
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(LocateError::Latitude(latitude));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(LocateError::Longitude(longitude));
        }
        Ok(Position {
            latitude,
            longitude,
        })
    }
}

/// Whether the zone is a country's, or the sea's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// A country's zone: land, lakes and territorial waters.
    Land,
    /// International waters: the nautical zone of the longitude.
    Sea,
}

/// The zone a position is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// An IANA name the system's tz database has.
    pub zone: String,
    pub area: Area,
}

fn finder() -> &'static EmbeddedFinder {
    static FINDER: OnceLock<EmbeddedFinder> = OnceLock::new();
    FINDER.get_or_init(EmbeddedFinder::new)
}

/// The boundary data's release (timezone-boundary-builder's, e.g. `2026f`).
pub fn data_version() -> &'static str {
    finder().data_version()
}

/// Whether the system's tz database (what `timedatectl set-timezone` and every program on
/// the device read) has `zone`.
pub fn known(zone: &str) -> bool {
    TimeZone::get(zone).is_ok()
}

/// The zone at `p`. The boundary data names a country's zone for land and territorial
/// waters, and `Etc/GMT±N` (or nothing) beyond them; there the nautical zone of the
/// longitude is used. A country's zone the system's tz database does not have (newer data
/// than the installed tzdata) is never chosen: the nautical zone stands in, and it is
/// logged.
pub fn zone_at(p: Position) -> Located {
    let name = finder().get_tz_name(p.longitude, p.latitude);
    if !name.is_empty() && !name.starts_with("Etc/") {
        if known(name) {
            return Located {
                zone: name.to_owned(),
                area: Area::Land,
            };
        }
        log::warn!(
            "time zone: the boundary data puts {:.4}, {:.4} in {name}, which this system's tz \
             database does not have (update tzdata); the nautical zone is used instead",
            p.latitude,
            p.longitude
        );
    }
    nautical_at(p)
}

/// The nautical zone at `p`, as if at sea (UTC where the tz database lacks it).
pub fn nautical_at(p: Position) -> Located {
    let sea = nautical(p.longitude);
    Located {
        zone: if known(&sea) { sea } else { "UTC".into() },
        area: Area::Sea,
    }
}

/// The nautical zone of `longitude`: 15° bands centred on multiples of 15°, each an hour
/// from UTC, the half-bands either side of the date line at +12 (east longitudes) and -12
/// (west) (Nautical Almanac; the zone descriptions of the IHO). As a tz name it is
/// `Etc/GMT±N`, whose sign is POSIX's and so inverted: UTC+2 is `Etc/GMT-2`.
pub fn nautical(longitude: f64) -> String {
    // Each band takes its western edge. -180 and +180 are the same meridian: the sign says
    // which side of the date line, -12 or +12.
    let hours = ((longitude + 7.5) / 15.0).floor().clamp(-12.0, 12.0) as i32;
    match hours {
        0 => "Etc/GMT".into(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Located {
        zone_at(Position::new(lat, lon).unwrap())
    }

    #[test]
    fn nautical_zones_are_centred_on_multiples_of_fifteen_and_split_at_the_date_line() {
        assert_eq!(nautical(0.0), "Etc/GMT");
        assert_eq!(nautical(7.49), "Etc/GMT");
        assert_eq!(nautical(7.5), "Etc/GMT-1");
        assert_eq!(nautical(-7.5), "Etc/GMT");
        assert_eq!(nautical(-7.51), "Etc/GMT+1");
        assert_eq!(nautical(-40.0), "Etc/GMT+3");
        assert_eq!(nautical(80.0), "Etc/GMT-5");
        assert_eq!(nautical(172.49), "Etc/GMT-11");
        assert_eq!(nautical(172.5), "Etc/GMT-12");
        assert_eq!(nautical(180.0), "Etc/GMT-12");
        assert_eq!(nautical(-172.5), "Etc/GMT+11");
        assert_eq!(nautical(-172.51), "Etc/GMT+12");
        assert_eq!(nautical(-180.0), "Etc/GMT+12");
        for lon in (-180..=180).map(f64::from) {
            assert!(known(&nautical(lon)), "{lon}: {}", nautical(lon));
        }
    }

    #[test]
    fn positions_off_the_globe_or_not_numbers_are_refused() {
        assert_eq!(Position::new(90.5, 0.0), Err(LocateError::Latitude(90.5)));
        assert_eq!(
            Position::new(0.0, -180.1),
            Err(LocateError::Longitude(-180.1))
        );
        assert!(Position::new(f64::NAN, 0.0).is_err());
        assert!(Position::new(0.0, f64::INFINITY).is_err());
        assert!(Position::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn land_has_its_country_zone_and_the_open_sea_its_nautical_zone() {
        assert_eq!(
            at(52.52, 13.405),
            Located {
                zone: "Europe/Berlin".into(),
                area: Area::Land
            }
        );
        assert_eq!(
            at(30.0, -40.0),
            Located {
                zone: "Etc/GMT+3".into(),
                area: Area::Sea
            }
        );
        // Apia keeps UTC+13 east of the date line; the sea beside it is at -11.
        assert_eq!(at(-13.8333, -171.7667).zone, "Pacific/Apia");
        assert_eq!(at(-13.0, -168.0).zone, "Etc/GMT+11");
    }

    #[test]
    fn every_zone_of_the_boundary_data_is_in_the_tz_database_or_stood_in_for() {
        let missing: Vec<&str> = finder()
            .timezonenames()
            .into_iter()
            .filter(|z| !known(z))
            .collect();
        // This host's tzdata has every zone the data names; a device with older tzdata
        // gets the nautical zone for the missing ones (zone_at), never an unusable name.
        assert!(missing.is_empty(), "not in this tz database: {missing:?}");
        assert!(!data_version().is_empty());
    }
}
