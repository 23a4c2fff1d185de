//! `d3kosd timezone at LAT LON`: the zone the device would choose for a GPS fix at that
//! position (the worker's own lookup), for scripts and tests.

use super::locate::{self, Area, Position};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the zone for a position: its IANA name, its UTC offset now, and whether it is
    /// a country's zone (land) or the nautical zone of the open sea (sea).
    At {
        /// Degrees north, -90 to 90 (south is negative).
        #[arg(allow_negative_numbers = true)]
        latitude: f64,
        /// Degrees east, -180 to 180 (west is negative).
        #[arg(allow_negative_numbers = true)]
        longitude: f64,
    },
}

pub fn run(c: &Command) -> anyhow::Result<()> {
    let Command::At {
        latitude,
        longitude,
    } = c;
    let p = Position::new(*latitude, *longitude)?;
    println!("{}", line(p));
    Ok(())
}

/// `Europe/Berlin +02:00 land`.
pub fn line(p: Position) -> String {
    let found = locate::zone_at(p);
    let offset = jiff::tz::TimeZone::get(&found.zone)
        .map(|tz| super::offset_text(tz.to_offset(jiff::Timestamp::now()).seconds()))
        .unwrap_or_else(|_| "+00:00".into());
    let area = match found.area {
        Area::Land => "land",
        Area::Sea => "sea",
    };
    format!("{} {offset} {area}", found.zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_zone_its_offset_and_land_or_sea() {
        let l = line(Position::new(-36.8485, 174.7633).unwrap());
        assert!(
            l == "Pacific/Auckland +12:00 land" || l == "Pacific/Auckland +13:00 land",
            "{l}"
        );
        assert_eq!(
            line(Position::new(-40.0, -120.0).unwrap()),
            "Etc/GMT+8 -08:00 sea"
        );
    }
}
