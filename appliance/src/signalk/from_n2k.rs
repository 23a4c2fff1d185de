//! Which Signal K paths a decoded NMEA 2000 message sets, in SI units (Signal K
//! specification 1.7, `vessels` schema): engines, batteries, tanks and navigation.

use serde_json::{Value as Json, json};

use crate::n2k::Decoded;

/// A value for one Signal K path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathValue {
    pub path: String,
    pub value: Json,
}

fn pv(path: impl Into<String>, value: impl Into<Json>) -> PathValue {
    PathValue {
        path: path.into(),
        value: value.into(),
    }
}

/// `raw × resolution` carries binary noise (2.3000000000000003): ten significant digits
/// are more than any NMEA 2000 field holds.
fn tidy(v: f64) -> f64 {
    format!("{v:.9e}").parse().unwrap_or(v)
}

/// The name of engine `instance` in paths: Signal K servers call instance 0 `port` and 1
/// `starboard` (canboat's ENGINE_INSTANCE lookup), so an app set up against one finds
/// the same paths here; any further engine goes by its number.
pub fn engine_id(instance: i64) -> String {
    match instance {
        0 => "port".into(),
        1 => "starboard".into(),
        n => n.to_string(),
    }
}

/// Signal K's tank kinds for canboat's TANK_TYPE.
fn tank_kind(raw: i64) -> &'static str {
    match raw {
        0 => "fuel",
        1 => "freshWater",
        2 => "wasteWater",
        3 => "liveWell",
        4 => "lubrication",
        5 => "blackWater",
        _ => "unknown",
    }
}

/// Litres per hour to cubic metres per second.
const LPH: f64 = 1.0 / 3_600_000.0;

/// The paths `d` sets; none for a PGN Signal K has no place for here.
pub fn paths(pgn: u32, d: &Decoded) -> Vec<PathValue> {
    let mut out = vec![];
    let num = |out: &mut Vec<PathValue>, path: String, v: Option<f64>, scale: f64| {
        if let Some(v) = v {
            out.push(pv(path, tidy(v * scale)));
        }
    };
    match pgn {
        // Engine Parameters, Rapid Update.
        127_488 => {
            let Some(e) = d.raw("instance").map(engine_id) else {
                return vec![];
            };
            num(
                &mut out,
                format!("propulsion.{e}.revolutions"),
                d.number("speed"),
                1.0 / 60.0,
            );
            num(
                &mut out,
                format!("propulsion.{e}.boostPressure"),
                d.number("boostPressure"),
                1.0,
            );
            num(
                &mut out,
                format!("propulsion.{e}.drive.trimState"),
                d.number("tiltTrim"),
                0.01,
            );
        }
        // Engine Parameters, Dynamic.
        127_489 => {
            let Some(e) = d.raw("instance").map(engine_id) else {
                return vec![];
            };
            let p = format!("propulsion.{e}");
            num(
                &mut out,
                format!("{p}.oilPressure"),
                d.number("oilPressure"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.oilTemperature"),
                d.number("oilTemperature"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.temperature"),
                d.number("temperature"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.alternatorVoltage"),
                d.number("alternatorPotential"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.fuel.rate"),
                d.number("fuelRate"),
                LPH,
            );
            num(
                &mut out,
                format!("{p}.runTime"),
                d.number("totalEngineHours"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.coolantPressure"),
                d.number("coolantPressure"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.fuel.pressure"),
                d.number("fuelPressure"),
                1.0,
            );
            num(
                &mut out,
                format!("{p}.engineLoad"),
                d.number("engineLoad"),
                0.01,
            );
            num(
                &mut out,
                format!("{p}.engineTorque"),
                d.number("engineTorque"),
                0.01,
            );
        }
        // Fluid Level.
        127_505 => {
            let (Some(n), Some(kind)) = (d.raw("instance"), d.raw("type")) else {
                return vec![];
            };
            let t = format!("tanks.{}.{n}", tank_kind(kind));
            num(
                &mut out,
                format!("{t}.currentLevel"),
                d.number("level"),
                0.01,
            );
            num(
                &mut out,
                format!("{t}.capacity"),
                d.number("capacity"),
                0.001,
            );
        }
        // Battery Status.
        127_508 => {
            let Some(n) = d.raw("instance") else {
                return vec![];
            };
            let b = format!("electrical.batteries.{n}");
            num(&mut out, format!("{b}.voltage"), d.number("voltage"), 1.0);
            num(&mut out, format!("{b}.current"), d.number("current"), 1.0);
            num(
                &mut out,
                format!("{b}.temperature"),
                d.number("temperature"),
                1.0,
            );
        }
        // Position, Rapid Update, and the position of GNSS Position Data.
        129_025 | 129_029 => {
            if let (Some(lat), Some(lon)) = (d.number("latitude"), d.number("longitude")) {
                out.push(pv(
                    "navigation.position",
                    json!({"latitude": lat, "longitude": lon}),
                ));
            }
            if pgn == 129_029 {
                if let Some(at) = datetime(d) {
                    out.push(pv("navigation.datetime", at));
                }
                num(
                    &mut out,
                    "navigation.gnss.satellites".into(),
                    d.number("numberOfSvs"),
                    1.0,
                );
                num(
                    &mut out,
                    "navigation.gnss.horizontalDilution".into(),
                    d.number("hdop"),
                    1.0,
                );
            }
        }
        // COG & SOG, Rapid Update.
        129_026 => {
            let reference = match d.raw("cogReference") {
                Some(1) => "courseOverGroundMagnetic",
                _ => "courseOverGroundTrue",
            };
            num(
                &mut out,
                format!("navigation.{reference}"),
                d.number("cog"),
                1.0,
            );
            num(
                &mut out,
                "navigation.speedOverGround".into(),
                d.number("sog"),
                1.0,
            );
        }
        // Vessel Heading.
        127_250 => {
            let reference = match d.raw("reference") {
                Some(1) => "headingMagnetic",
                _ => "headingTrue",
            };
            num(
                &mut out,
                format!("navigation.{reference}"),
                d.number("heading"),
                1.0,
            );
            num(
                &mut out,
                "navigation.magneticVariation".into(),
                d.number("variation"),
                1.0,
            );
            num(
                &mut out,
                "navigation.magneticDeviation".into(),
                d.number("deviation"),
                1.0,
            );
        }
        // Rate of Turn.
        127_251 => num(
            &mut out,
            "navigation.rateOfTurn".into(),
            d.number("rate"),
            1.0,
        ),
        // Attitude.
        127_257 => {
            let (roll, pitch, yaw) = (d.number("roll"), d.number("pitch"), d.number("yaw"));
            if roll.is_some() || pitch.is_some() || yaw.is_some() {
                out.push(pv(
                    "navigation.attitude",
                    json!({"roll": roll, "pitch": pitch, "yaw": yaw}),
                ));
            }
        }
        // Rudder.
        127_245 => num(
            &mut out,
            "steering.rudderAngle".into(),
            d.number("position"),
            1.0,
        ),
        // System Time.
        126_992 => {
            if let Some(at) = datetime(d) {
                out.push(pv("navigation.datetime", at));
            }
        }
        // Speed.
        128_259 => num(
            &mut out,
            "navigation.speedThroughWater".into(),
            d.number("speedWaterReferenced"),
            1.0,
        ),
        // Water Depth.
        128_267 => num(
            &mut out,
            "environment.depth.belowTransducer".into(),
            d.number("depth"),
            1.0,
        ),
        // Wind Data.
        130_306 => {
            let (speed, angle) = match d.raw("reference") {
                Some(2) => ("speedApparent", "angleApparent"),
                Some(3) => ("speedTrue", "angleTrueGround"),
                Some(4) => ("speedTrue", "angleTrueWater"),
                Some(0) => ("speedOverGround", "directionTrue"),
                Some(1) => ("speedOverGround", "directionMagnetic"),
                _ => return vec![],
            };
            num(
                &mut out,
                format!("environment.wind.{speed}"),
                d.number("windSpeed"),
                1.0,
            );
            let a = d.number("windAngle").map(|a| {
                // Angles relative to the bow run -π..π in Signal K.
                if angle.starts_with("angle") && a > std::f64::consts::PI {
                    a - 2.0 * std::f64::consts::PI
                } else {
                    a
                }
            });
            num(&mut out, format!("environment.wind.{angle}"), a, 1.0);
        }
        _ => {}
    }
    out
}

/// A date and time of day as RFC 3339 UTC.
fn datetime(d: &Decoded) -> Option<String> {
    let days = d.number("date")?;
    let secs = d.number("time")?;
    let ms = (days * 86_400_000.0 + secs * 1000.0).round() as i64;
    let t = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(format!("{t:.3}"))
}

/// What a path holds and in which unit, for `meta` (Signal K `sendMeta`).
pub fn meta(path: &str) -> Option<(&'static str, &'static str)> {
    let last = path.rsplit('.').next()?;
    let m = match last {
        "revolutions" => ("Hz", "Engine revolutions"),
        "oilPressure" => ("Pa", "Oil pressure"),
        "oilTemperature" => ("K", "Oil temperature"),
        "temperature" if path.starts_with("propulsion") => ("K", "Coolant temperature"),
        "temperature" => ("K", "Temperature"),
        "alternatorVoltage" => ("V", "Alternator voltage"),
        "rate" if path.ends_with("fuel.rate") => ("m3/s", "Fuel rate"),
        "pressure" if path.ends_with("fuel.pressure") => ("Pa", "Fuel pressure"),
        "runTime" => ("s", "Total running time"),
        "coolantPressure" => ("Pa", "Coolant pressure"),
        "boostPressure" => ("Pa", "Boost pressure"),
        "engineLoad" | "engineTorque" | "trimState" | "currentLevel" => ("ratio", "Ratio"),
        "capacity" => ("m3", "Tank capacity"),
        "voltage" => ("V", "Voltage"),
        "current" => ("A", "Current"),
        "speedOverGround" | "speedThroughWater" | "speedApparent" | "speedTrue" => ("m/s", "Speed"),
        "courseOverGroundTrue"
        | "courseOverGroundMagnetic"
        | "headingTrue"
        | "headingMagnetic"
        | "magneticVariation"
        | "magneticDeviation"
        | "rudderAngle"
        | "angleApparent"
        | "angleTrueGround"
        | "angleTrueWater"
        | "directionTrue"
        | "directionMagnetic" => ("rad", "Angle"),
        "rateOfTurn" => ("rad/s", "Rate of turn"),
        "belowTransducer" => ("m", "Depth below the transducer"),
        _ => return None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::n2k::{Database, Message, decode};

    fn paths_of(pgn: u32, data: &[u8]) -> Vec<PathValue> {
        let m = Message {
            at_ms: 0,
            prio: 2,
            pgn,
            src: 1,
            dst: 255,
            data: data.to_vec(),
        };
        paths(
            pgn,
            &decode(Database::get(), &m, crate::n2k::database::Units::Si).unwrap(),
        )
    }

    #[test]
    fn engine_speed_is_in_hertz_and_fuel_rate_in_cubic_metres_per_second() {
        // Engine 1 at 1,800 rpm: 7,200 quarter-revolutions.
        let p = paths_of(127_488, &[1, 0x20, 0x1C, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF]);
        assert_eq!(p, vec![pv("propulsion.starboard.revolutions", 30.0)]);
        let p = paths_of(
            127_489,
            &[
                0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 36, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7F, 0x7F,
            ],
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "propulsion.port.fuel.rate");
        assert!((p[0].value.as_f64().unwrap() - 3.6 / 3_600_000.0).abs() < 1e-15);
    }

    #[test]
    fn headings_follow_their_reference() {
        let p = paths_of(127_250, &[0, 0x9C, 0x99, 0xFF, 0x7F, 0xF6, 0xF5, 0xFD]);
        assert_eq!(p[0].path, "navigation.headingMagnetic");
        assert!((p[0].value.as_f64().unwrap() - 3.9324).abs() < 1e-9);
    }
}
