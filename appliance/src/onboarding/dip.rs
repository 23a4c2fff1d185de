//! The CX5106 engine gateway's DIP switches, worked out from the wizard's answers: which
//! switch goes which way, and why.
//!
//! Row 1 sets the engine instance (SW1–2), the RPM signal source (SW3–4), the cylinder
//! count (SW5–6), the stroke cycle (SW7) and the gear ratio (SW8); row 2 the tank sender
//! standard ("1") and the starboard engine ("2").

use serde::{Deserialize, Serialize};

/// Where this unit's engine sits, which sets its NMEA 2000 engine instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Single,
    Port,
    Starboard,
    CentreAux,
}

/// Where the gateway takes the engine speed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpmSource {
    /// The alternator's W terminal.
    Alternator,
    IgnitionCoil,
    MagneticPickup,
    Ecu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stroke {
    Four,
    Two,
}

/// The resistance range of the tank senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderStandard {
    /// North American: 240 Ω empty to 33 Ω full.
    NorthAmerican,
    /// European: 0 Ω empty to 190 Ω full.
    European,
}

/// The answers the switches depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Engine {
    pub position: Position,
    pub rpm_source: RpmSource,
    pub cylinders: u8,
    pub stroke: Stroke,
    /// Engine turns per propeller-shaft turn (1.0 for 1:1, 2.0 for 2:1).
    pub gear_ratio: f64,
    pub sender: SenderStandard,
}

/// One switch, its setting and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switch {
    pub row: u8,
    /// As printed on the switch block: `SW1`…`SW8` on row 1, `1` and `2` on row 2.
    pub label: &'static str,
    pub on: bool,
    pub reason: String,
}

/// Both rows, and what the gateway cannot do with these answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub switches: Vec<Switch>,
    /// Answers the CX5106 cannot represent, each with what to do about it.
    pub notes: Vec<String>,
    /// False when a note means the gateway will report the engine wrongly.
    pub supported: bool,
}

fn state(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// The reasons for two switches that say one thing together: each names its own state
/// first, then the pair's.
fn pair_reasons(labels: (&str, &str), on: (bool, bool), what: &str) -> (String, String) {
    let both = format!(
        "{} {}, {} {}: {what}",
        labels.0,
        state(on.0),
        labels.1,
        state(on.1)
    );
    (
        format!("{} ({both})", state(on.0)),
        format!("{} ({both})", state(on.1)),
    )
}

/// The switches for `e`.
pub fn switches(e: &Engine) -> Setting {
    let mut notes = Vec::new();
    let mut supported = true;
    let mut s = Vec::with_capacity(10);
    let mut put = |row, label, on, reason: String| {
        s.push(Switch {
            row,
            label,
            on,
            reason,
        })
    };

    let (instance, what) = match e.position {
        Position::Single => ((false, false), "engine instance 0: a single engine"),
        Position::Port => ((true, false), "engine instance 1: the port engine"),
        Position::Starboard => ((false, true), "engine instance 2: the starboard engine"),
        Position::CentreAux => (
            (true, true),
            "engine instance 3: a centre or auxiliary engine",
        ),
    };
    let (a, b) = pair_reasons(("SW1", "SW2"), instance, what);
    put(1, "SW1", instance.0, a);
    put(1, "SW2", instance.1, b);

    let (rpm, what) = match e.rpm_source {
        RpmSource::Alternator => ((false, false), "RPM from the alternator's W terminal"),
        RpmSource::IgnitionCoil => ((true, false), "RPM from the ignition coil"),
        RpmSource::MagneticPickup => ((false, true), "RPM from a magnetic pickup"),
        RpmSource::Ecu => ((true, true), "RPM from the engine's ECU"),
    };
    let (a, b) = pair_reasons(("SW3", "SW4"), rpm, what);
    put(1, "SW3", rpm.0, a);
    put(1, "SW4", rpm.1, b);

    let cylinders = match e.cylinders {
        4 => Some((false, false)),
        6 => Some((true, false)),
        8 => Some((false, true)),
        3 => Some((true, true)),
        _ => None,
    };
    let (cyl, what) = match cylinders {
        Some(c) => (c, format!("{} cylinders", e.cylinders)),
        None => {
            supported = false;
            notes.push(format!(
                "{} cylinders are not supported by the CX5106 (it knows 3, 4, 6 and 8): its RPM \
                 reading will be wrong. Take the RPM from the engine's ECU if it has one (SW3–4 \
                 ON/ON, where the cylinder count does not matter), or use a gateway that can be \
                 set for {} cylinders.",
                e.cylinders, e.cylinders
            ));
            (
                (false, false),
                format!("4 cylinders, as {} is not a CX5106 setting", e.cylinders),
            )
        }
    };
    let (a, b) = pair_reasons(("SW5", "SW6"), cyl, &what);
    put(1, "SW5", cyl.0, a);
    put(1, "SW6", cyl.1, b);

    match e.stroke {
        Stroke::Four => put(1, "SW7", false, "OFF (4-stroke)".into()),
        Stroke::Two => put(1, "SW7", true, "ON (2-stroke)".into()),
    }

    if e.gear_ratio == 1.0 {
        put(1, "SW8", false, "OFF (gear ratio 1:1)".into());
    } else if e.gear_ratio == 2.0 {
        put(1, "SW8", true, "ON (gear ratio 2:1)".into());
    } else {
        notes.push(format!(
            "The CX5106 knows the gear ratios 1:1 and 2:1 only; SW8 is left OFF (1:1) for \
             {}:1, so the shaft speed it reports is the engine's.",
            trim(e.gear_ratio)
        ));
        put(
            1,
            "SW8",
            false,
            format!(
                "OFF (gear ratio {}:1 is not a CX5106 setting)",
                trim(e.gear_ratio)
            ),
        );
    }

    match e.sender {
        SenderStandard::NorthAmerican => put(
            2,
            "1",
            true,
            "ON (North American tank senders, 240–33 Ω)".into(),
        ),
        SenderStandard::European => {
            put(2, "1", false, "OFF (European tank senders, 0–190 Ω)".into())
        }
    }
    let starboard = e.position == Position::Starboard;
    put(
        2,
        "2",
        starboard,
        if starboard {
            "ON (the starboard engine)".into()
        } else {
            "OFF (not the starboard engine)".into()
        },
    );

    Setting {
        switches: s,
        notes,
        supported,
    }
}

/// A ratio as the owner typed it: `1.5`, `2`.
fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Engine {
        Engine {
            position: Position::Single,
            rpm_source: RpmSource::Alternator,
            cylinders: 4,
            stroke: Stroke::Four,
            gear_ratio: 1.0,
            sender: SenderStandard::European,
        }
    }

    /// The switches as `SW1..SW8` then row 2's `1`, `2`: `1` for ON, `0` for OFF.
    fn bits(s: &Setting) -> String {
        let (row1, row2): (Vec<&Switch>, Vec<&Switch>) =
            s.switches.iter().partition(|w| w.row == 1);
        let b = |v: &[&Switch]| {
            v.iter()
                .map(|w| if w.on { '1' } else { '0' })
                .collect::<String>()
        };
        format!("{} {}", b(&row1), b(&row2))
    }

    fn with(f: impl FnOnce(&mut Engine)) -> Setting {
        let mut e = base();
        f(&mut e);
        switches(&e)
    }

    #[test]
    fn sw1_and_sw2_give_the_engine_instance() {
        for (p, want) in [
            (Position::Single, "00"),
            (Position::Port, "10"),
            (Position::Starboard, "01"),
            (Position::CentreAux, "11"),
        ] {
            assert_eq!(&bits(&with(|e| e.position = p))[..2], want, "{p:?}");
        }
    }

    #[test]
    fn sw3_and_sw4_give_the_rpm_source() {
        for (r, want) in [
            (RpmSource::Alternator, "00"),
            (RpmSource::IgnitionCoil, "10"),
            (RpmSource::MagneticPickup, "01"),
            (RpmSource::Ecu, "11"),
        ] {
            assert_eq!(&bits(&with(|e| e.rpm_source = r))[2..4], want, "{r:?}");
        }
    }

    #[test]
    fn sw5_and_sw6_give_the_cylinders_and_other_counts_are_not_supported() {
        for (n, want) in [(4, "00"), (6, "10"), (8, "01"), (3, "11")] {
            let s = with(|e| e.cylinders = n);
            assert_eq!(&bits(&s)[4..6], want, "{n} cylinders");
            assert!(s.supported && s.notes.is_empty(), "{s:?}");
        }
        for n in [1, 2, 5, 10, 12] {
            let s = with(|e| e.cylinders = n);
            assert!(!s.supported, "{n} cylinders");
            assert!(
                s.notes[0].contains("not supported by the CX5106") && s.notes[0].contains("ECU"),
                "{:?}",
                s.notes
            );
        }
    }

    #[test]
    fn sw7_gives_the_stroke_cycle() {
        assert_eq!(&bits(&with(|e| e.stroke = Stroke::Four))[6..7], "0");
        assert_eq!(&bits(&with(|e| e.stroke = Stroke::Two))[6..7], "1");
    }

    #[test]
    fn sw8_gives_the_gear_ratio_and_others_are_left_off_with_a_note() {
        assert_eq!(&bits(&with(|e| e.gear_ratio = 1.0))[7..8], "0");
        let two = with(|e| e.gear_ratio = 2.0);
        assert_eq!(&bits(&two)[7..8], "1");
        assert!(two.notes.is_empty());
        let odd = with(|e| e.gear_ratio = 2.5);
        assert_eq!(&bits(&odd)[7..8], "0");
        assert!(
            odd.supported,
            "a ratio note does not make the engine unsupported"
        );
        assert!(odd.notes[0].contains("2.5:1"), "{:?}", odd.notes);
    }

    #[test]
    fn row_2_gives_the_sender_standard_and_the_starboard_engine() {
        let na = with(|e| e.sender = SenderStandard::NorthAmerican);
        assert_eq!(&bits(&na)[9..], "10");
        let eu = with(|e| e.sender = SenderStandard::European);
        assert_eq!(&bits(&eu)[9..], "00");
        let stbd = with(|e| e.position = Position::Starboard);
        assert_eq!(&bits(&stbd)[9..], "01");
        let port = with(|e| e.position = Position::Port);
        assert_eq!(&bits(&port)[9..], "00");
    }

    #[test]
    fn worked_examples() {
        // A single 4-cylinder outboard on its alternator.
        let outboard = switches(&base());
        assert_eq!(bits(&outboard), "00000000 00");
        // A single 6-cylinder sterndrive on the coil, North American senders.
        let sterndrive = with(|e| {
            e.cylinders = 6;
            e.rpm_source = RpmSource::IgnitionCoil;
            e.sender = SenderStandard::NorthAmerican;
        });
        assert_eq!(bits(&sterndrive), "00101000 10");
        // Twin 8-cylinders, port and starboard.
        let port = with(|e| {
            e.cylinders = 8;
            e.position = Position::Port;
        });
        let starboard = with(|e| {
            e.cylinders = 8;
            e.position = Position::Starboard;
        });
        assert_eq!(bits(&port), "10000100 00");
        assert_eq!(bits(&starboard), "01000100 01");
        // A single Yanmar 3YM30: 3 cylinders, magnetic pickup, 2:1 gear.
        let yanmar = with(|e| {
            e.cylinders = 3;
            e.rpm_source = RpmSource::MagneticPickup;
            e.gear_ratio = 2.0;
        });
        assert_eq!(bits(&yanmar), "00011101 00");
        assert!(yanmar.supported && yanmar.notes.is_empty());
        // Every switch says why.
        for s in [&outboard, &sterndrive, &port, &starboard, &yanmar] {
            assert_eq!(s.switches.len(), 10);
            assert!(s.switches.iter().all(|w| w.reason.starts_with(if w.on {
                "ON"
            } else {
                "OFF"
            })));
        }
    }
}
