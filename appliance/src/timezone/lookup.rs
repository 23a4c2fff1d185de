//! The worker's zone lookups: made by a short-lived `d3kosd timezone at`, and only again
//! once the boat has moved.
//!
//! Opening the boundary data checks a CRC over all of its 4 MB, which leaves every page
//! of it resident in whichever process opened it. The daemon looks a position up once a
//! few minutes at most, so it lets a helper process do it: the daemon never holds the
//! data, and a fault in the data can only stop the helper.

use std::time::Duration;

use super::locate::{self, Area, Located, Position};

/// How far the boat moves before its zone is looked up again: several times the
/// boundaries' own simplification (about 111 m), and a few minutes under way.
pub const MOVED_M: f64 = 500.0;

/// The longest a lookup may take (about 20 ms on a Raspberry Pi 4).
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The last lookup, reused while the boat stays within [`MOVED_M`] of it.
#[derive(Debug, Default)]
pub struct Lookups {
    last: Option<(Position, Located)>,
    /// Helper processes run, for the log and tests.
    pub made: u64,
}

impl Lookups {
    /// The zone at `p`: the last answer when the boat is near where it was asked, else a
    /// new lookup. Where the helper cannot run, the lookup is made here, so the answer is
    /// never lost.
    pub async fn zone_at(&mut self, p: Position) -> Located {
        if let Some((at, found)) = &self.last
            && metres_between(*at, p) < MOVED_M
        {
            return found.clone();
        }
        self.made += 1;
        let found = match apart(p).await {
            Ok(found) => found,
            Err(why) => {
                log::warn!("time zone: the lookup helper failed ({why}); looking up here");
                tokio::task::spawn_blocking(move || locate::zone_at(p))
                    .await
                    .unwrap_or_else(|_| locate::nautical_at(p))
            }
        };
        self.last = Some((p, found.clone()));
        found
    }
}

/// `d3kosd timezone at LAT LON` run from this very executable.
async fn apart(p: Position) -> Result<Located, String> {
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(["timezone", "at", "--"])
        .arg(p.latitude.to_string())
        .arg(p.longitude.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    log::debug!(
        "time zone: looking up {:.4}, {:.4} in a helper",
        p.latitude,
        p.longitude
    );
    let out = tokio::time::timeout(TIME_LIMIT, cmd.output())
        .await
        .map_err(|_| format!("no answer within {} s", TIME_LIMIT.as_secs()))?
        .map_err(|e| format!("cannot run it: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// `Europe/Berlin +02:00 land` (the `timezone at` line) as a zone and an area.
fn parse(line: &str) -> Result<Located, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let area = match words.as_slice() {
        [_, _, "land"] => Area::Land,
        [_, _, "sea"] => Area::Sea,
        _ => {
            return Err(format!(
                "an answer that is not `ZONE OFFSET land|sea`: {line:?}"
            ));
        }
    };
    let zone = words[0];
    if !locate::known(zone) {
        return Err(format!("{zone} is not in this system's tz database"));
    }
    Ok(Located {
        zone: zone.to_owned(),
        area,
    })
}

/// The great-circle distance between two positions (haversine, mean Earth radius).
pub fn metres_between(a: Position, b: Position) -> f64 {
    const EARTH_M: f64 = 6_371_008.8;
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Position {
        Position::new(lat, lon).unwrap()
    }

    #[test]
    fn distances_match_known_ones() {
        // One minute of latitude is a nautical mile (1,852 m, to within the Earth's shape).
        let d = metres_between(at(45.0, -63.0), at(45.0 + 1.0 / 60.0, -63.0));
        assert!((d - 1_853.2).abs() < 1.0, "{d}");
        // Across the date line the short way round.
        let d = metres_between(at(0.0, 179.999), at(0.0, -179.999));
        assert!((d - 222.4).abs() < 0.5, "{d}");
        assert_eq!(metres_between(at(10.0, 10.0), at(10.0, 10.0)), 0.0);
    }

    #[test]
    fn the_helpers_line_is_read_and_anything_else_refused() {
        let l = parse("Europe/Berlin +02:00 land\n").unwrap();
        assert_eq!((l.zone.as_str(), l.area), ("Europe/Berlin", Area::Land));
        assert_eq!(parse("Etc/GMT+8 -08:00 sea").unwrap().area, Area::Sea);
        assert!(
            parse("")
                .unwrap_err()
                .contains("not `ZONE OFFSET land|sea`")
        );
        assert!(parse("Europe/Berlin +02:00 moon").is_err());
        assert!(
            parse("Mars/Olympus +00:00 land")
                .unwrap_err()
                .contains("not in this system's tz database")
        );
    }

    #[tokio::test]
    async fn a_boat_that_has_not_moved_is_not_looked_up_again() {
        let mut l = Lookups::default();
        let home = at(-36.8485, 174.7633);
        l.last = Some((
            home,
            Located {
                zone: "Pacific/Auckland".into(),
                area: Area::Land,
            },
        ));
        // 300 m away: the last answer stands, and no helper runs.
        let near = at(-36.8485 + 300.0 / 111_195.0, 174.7633);
        assert_eq!(l.zone_at(near).await.zone, "Pacific/Auckland");
        assert_eq!(l.made, 0);
    }
}
