//! The wizard's questions and steps: each answer's kind, range, units and default, and the
//! one message a wrong value gets. The page is given this table, so the browser and the
//! server check with the same rules and say the same words.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A unit an answer can be entered in: shown = stored × `scale` + `offset`, rounded to
/// `digits` decimals. The first unit of a question is the one its answer is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Unit {
    pub id: &'static str,
    pub label: &'static str,
    pub scale: f64,
    pub offset: f64,
    pub digits: u8,
}

impl Unit {
    const fn plain(id: &'static str, label: &'static str, digits: u8) -> Unit {
        Unit {
            id,
            label,
            scale: 1.0,
            offset: 0.0,
            digits,
        }
    }

    pub fn show(&self, stored: f64) -> f64 {
        stored * self.scale + self.offset
    }

    /// `n` in this unit, with the label as the owner reads it ("0.5 L", "7:1").
    fn with_label(&self, n: f64) -> String {
        let sep = if self.label.starts_with(':') { "" } else { " " };
        format!("{}{sep}{}", number(n), self.label)
    }
}

/// Cubic inches in a litre.
pub const CID_PER_LITRE: f64 = 61.023_744_094_732_28;
/// Millimetres in an inch.
pub const MM_PER_INCH: f64 = 25.4;
/// Kilowatts in a mechanical horsepower (550 ft·lbf/s).
pub const KW_PER_HP: f64 = 0.745_699_871_582_270_2;
/// Kilopascals in a pound per square inch.
pub const KPA_PER_PSI: f64 = 6.894_757_293_168_361;

const LITRES: &[Unit] = &[
    Unit::plain("l", "L", 2),
    Unit {
        id: "cid",
        label: "CID",
        scale: CID_PER_LITRE,
        offset: 0.0,
        digits: 0,
    },
];
const MILLIMETRES: &[Unit] = &[
    Unit::plain("mm", "mm", 1),
    Unit {
        id: "in",
        label: "in",
        scale: 1.0 / MM_PER_INCH,
        offset: 0.0,
        digits: 2,
    },
];
const HORSEPOWER: &[Unit] = &[
    Unit::plain("hp", "HP", 0),
    Unit {
        id: "kw",
        label: "kW",
        scale: KW_PER_HP,
        offset: 0.0,
        digits: 1,
    },
];
const FAHRENHEIT: &[Unit] = &[
    Unit::plain("f", "°F", 0),
    Unit {
        id: "c",
        label: "°C",
        scale: 5.0 / 9.0,
        offset: -160.0 / 9.0,
        digits: 1,
    },
];
const RPM: &[Unit] = &[Unit::plain("rpm", "RPM", 0)];
const PSI: &[Unit] = &[Unit::plain("psi", "PSI", 0)];
const RATIO: &[Unit] = &[Unit::plain("ratio", ":1", 2)];
const YEARS: &[Unit] = &[];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// Characters on one line, trimmed.
    Text { min: usize, max: usize },
    /// A number from `min` to `max` in the first unit.
    Number { min: f64, max: f64, whole: bool },
    /// One of `options` (value, label).
    Choice {
        options: &'static [(&'static str, &'static str)],
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub units: &'static [Unit],
    pub required: bool,
    /// What the field starts with when it was never answered.
    pub default: Value,
    /// Where to find the answer, typical values.
    pub hint: &'static str,
    /// What a wrong value is told, in the browser and by the API.
    pub message: String,
}

/// Trailing zeros dropped: 15, 0.5, 7.46.
fn number(n: f64) -> String {
    let s = format!("{:.4}", n);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn round_to(n: f64, digits: u8, up: bool) -> f64 {
    let f = 10f64.powi(i32::from(digits));
    // The tolerance keeps a bound that is already round (31.0000000001) where it is.
    let x = n * f;
    (if up {
        (x - 1e-6).ceil()
    } else {
        (x + 1e-6).floor()
    }) / f
}

fn message(label: &str, kind: &Kind, units: &[Unit], required: bool) -> String {
    match kind {
        Kind::Text { max, .. } if !required => {
            format!("{label}: at most {max} characters on one line, or none.")
        }
        Kind::Text { min, max } => {
            format!("{label}: enter {min} to {max} characters on one line.")
        }
        Kind::Number { min, max, whole } => {
            let a = if *whole { "a whole number " } else { "" };
            let Some(first) = units.first() else {
                return format!(
                    "{label} must be {a}from {} to {}.",
                    number(*min),
                    number(*max)
                );
            };
            let others: Vec<String> = units[1..]
                .iter()
                .map(|u| {
                    // Rounded inwards, so a value typed at a shown bound is inside.
                    let (lo, hi) = (u.show(*min), u.show(*max));
                    format!(
                        "{} to {}",
                        u.with_label(round_to(lo.min(hi), u.digits, true)),
                        u.with_label(round_to(lo.max(hi), u.digits, false))
                    )
                })
                .collect();
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(" ({})", others.join(", "))
            };
            format!(
                "{label} must be {a}from {} to {}{also}.",
                first.with_label(*min),
                first.with_label(*max)
            )
        }
        Kind::Choice { .. } => format!("{label}: choose one of the answers."),
    }
}

fn q(
    key: &'static str,
    label: &'static str,
    kind: Kind,
    units: &'static [Unit],
    default: Value,
    hint: &'static str,
) -> Question {
    let required = !matches!(kind, Kind::Text { min: 0, .. });
    Question {
        message: message(label, &kind, units, required),
        key,
        label,
        kind,
        units,
        required,
        default,
        hint,
    }
}

fn num(min: f64, max: f64) -> Kind {
    Kind::Number {
        min,
        max,
        whole: false,
    }
}

fn whole(min: f64, max: f64) -> Kind {
    Kind::Number {
        min,
        max,
        whole: true,
    }
}

/// Every question, in the wizard's order. `this_year` is the newest engine year.
pub fn questions(this_year: i32) -> Vec<Question> {
    use serde_json::json;
    vec![
        q(
            "boat_name",
            "Boat name",
            Kind::Text { min: 0, max: 40 },
            &[],
            Value::Null,
            "Shown on the pairing code for your phone. You can leave it empty.",
        ),
        q(
            "manufacturer",
            "Engine manufacturer",
            Kind::Text { min: 2, max: 60 },
            &[],
            Value::Null,
            "As on the engine's plate or manual: Mercury, Volvo Penta, Yanmar, Yamaha…",
        ),
        q(
            "model",
            "Engine model",
            Kind::Text { min: 1, max: 60 },
            &[],
            Value::Null,
            "As on the engine's plate: 5.0L MPI Alpha, D2-40, 3YM30…",
        ),
        q(
            "year",
            "Engine year",
            whole(1950.0, f64::from(this_year)),
            YEARS,
            json!(2010),
            "The model year on the engine's plate.",
        ),
        q(
            "cylinders",
            "Cylinders",
            whole(1.0, 16.0),
            &[],
            json!(4),
            "Outboards often have 3, 4 or 6; sterndrives 4, 6 or 8; inboard diesels 2 to 6.",
        ),
        q(
            "stroke_cycle",
            "Engine cycle",
            Kind::Choice {
                options: &[("four", "4-stroke"), ("two", "2-stroke")],
            },
            &[],
            json!("four"),
            "Nearly every inboard and most outboards since 2006 are 4-stroke.",
        ),
        q(
            "displacement_l",
            "Displacement",
            num(0.5, 15.0),
            LITRES,
            json!(5.0),
            "The engine's size: 5.0 L is 305 CID.",
        ),
        q(
            "compression_ratio",
            "Compression ratio",
            num(7.0, 22.0),
            RATIO,
            json!(9.5),
            "Petrol engines 8:1 to 11:1, diesels 15:1 to 22:1.",
        ),
        q(
            "stroke_mm",
            "Stroke length",
            num(50.0, 200.0),
            MILLIMETRES,
            json!(90.0),
            "How far a piston travels; in the engine's specifications.",
        ),
        q(
            "induction",
            "Induction",
            Kind::Choice {
                options: &[
                    ("naturally_aspirated", "Naturally aspirated"),
                    ("turbocharged", "Turbocharged"),
                    ("supercharged", "Supercharged"),
                ],
            },
            &[],
            json!("naturally_aspirated"),
            "Most petrol marine engines are naturally aspirated; most modern diesels are turbocharged.",
        ),
        q(
            "power_hp",
            "Rated power",
            num(10.0, 1000.0),
            HORSEPOWER,
            json!(200),
            "The power on the engine's plate or in its manual.",
        ),
        q(
            "idle_rpm",
            "Idle speed",
            whole(400.0, 1200.0),
            RPM,
            json!(700),
            "The manufacturer's idle speed: petrol engines 600 to 800 RPM, diesels 500 to 700.",
        ),
        q(
            "wot_min_rpm",
            "Lowest wide-open-throttle speed",
            whole(2000.0, 7000.0),
            RPM,
            json!(4800),
            "The bottom of the engine's wide-open-throttle range, in its manual.",
        ),
        q(
            "wot_max_rpm",
            "Highest wide-open-throttle speed",
            whole(2000.0, 7000.0),
            RPM,
            json!(5200),
            "The top of that range; a propeller that lets the engine run past it is too small.",
        ),
        q(
            "max_coolant_f",
            "Highest coolant temperature",
            num(120.0, 220.0),
            FAHRENHEIT,
            json!(180),
            "Fresh-water cooled 180 to 190 °F (82 to 88 °C), raw-water cooled 140 to 160 °F.",
        ),
        q(
            "min_oil_idle_psi",
            "Lowest oil pressure at idle",
            num(5.0, 20.0),
            PSI,
            json!(10),
            "Usually 10 to 15 PSI; below it the engine alarm sounds.",
        ),
        q(
            "min_oil_cruise_psi",
            "Lowest oil pressure at cruise",
            num(30.0, 80.0),
            PSI,
            json!(40),
            "At 2,500 RPM and above; usually 40 to 60 PSI.",
        ),
        q(
            "engines",
            "Engines aboard",
            whole(1.0, 4.0),
            &[],
            json!(1),
            "How many engines the boat has. Each has its own gateway.",
        ),
        q(
            "position",
            "This gateway's engine",
            Kind::Choice {
                options: &[
                    ("single", "The only engine"),
                    ("port", "Port engine"),
                    ("starboard", "Starboard engine"),
                    ("centre_aux", "Centre or auxiliary engine"),
                ],
            },
            &[],
            json!("single"),
            "Which engine the gateway you are setting up is wired to.",
        ),
        q(
            "rpm_source",
            "RPM signal",
            Kind::Choice {
                options: &[
                    ("alternator", "Alternator W terminal"),
                    ("ignition_coil", "Ignition coil"),
                    ("magnetic_pickup", "Magnetic pickup on the flywheel"),
                    ("ecu", "The engine's computer (ECU)"),
                ],
            },
            &[],
            json!("alternator"),
            "Where the gateway's RPM wire is connected; the tachometer usually shares it.",
        ),
        q(
            "gear_ratio",
            "Gear ratio",
            num(1.0, 5.0),
            RATIO,
            json!(1.0),
            "Engine turns per propeller-shaft turn: 1:1 for direct drive, often 2:1 for a reduction gear.",
        ),
        q(
            "sender",
            "Tank senders",
            Kind::Choice {
                options: &[
                    (
                        "north_american",
                        "North American, 240 Ω empty to 33 Ω full (most US and Canadian boats)",
                    ),
                    (
                        "european",
                        "European, 0 Ω empty to 190 Ω full (most European boats)",
                    ),
                ],
            },
            &[],
            json!("north_american"),
            "If tank levels read backwards after fitting, the other standard is the right one.",
        ),
    ]
}

/// Checks that involve two answers, each reported on one of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub field: &'static str,
    pub message: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "wot_order",
        field: "wot_max_rpm",
        message: "The highest wide-open-throttle speed must be above the lowest.",
    },
    Rule {
        id: "oil_order",
        field: "min_oil_cruise_psi",
        message: "The lowest oil pressure at cruise must be above the one at idle.",
    },
    Rule {
        id: "position_fits",
        field: "position",
        message: "This gateway's engine must fit the engines aboard: the only engine when there \
                  is one; port or starboard when there are two; port, starboard or centre when \
                  there are three or four.",
    },
];

/// One step of the wizard and the questions on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub n: u8,
    pub id: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub fields: &'static [&'static str],
}

const fn step(
    n: u8,
    id: &'static str,
    title: &'static str,
    intro: &'static str,
    fields: &'static [&'static str],
) -> Step {
    Step {
        n,
        id,
        title,
        intro,
        fields,
    }
}

/// The step that shows the gateway's switches; from it on every question must be answered.
pub const DIP_STEP: u8 = 18;
/// The last step: the wizard is finished.
pub const LAST_STEP: u8 = 20;

pub const STEPS: &[Step] = &[
    step(
        1,
        "welcome",
        "Welcome aboard",
        "This wizard tells d3kOS about your engine: its answers set the engine alarms and the \
         switches of the CX5106 engine gateway. It takes 10 to 15 minutes; have the engine's \
         manual at hand. Your answers are saved at every step, so you can stop and go on later \
         on this screen or on a phone.",
        &["boat_name"],
    ),
    step(
        2,
        "engine",
        "Your engine",
        "Who made it, and which model.",
        &["manufacturer", "model"],
    ),
    step(3, "year", "Engine year", "", &["year"]),
    step(
        4,
        "cylinders",
        "Cylinders",
        "",
        &["cylinders", "stroke_cycle"],
    ),
    step(5, "displacement", "Displacement", "", &["displacement_l"]),
    step(
        6,
        "compression",
        "Compression ratio",
        "",
        &["compression_ratio"],
    ),
    step(7, "stroke", "Stroke length", "", &["stroke_mm"]),
    step(8, "induction", "Induction", "", &["induction"]),
    step(9, "power", "Rated power", "", &["power_hp"]),
    step(10, "idle", "Idle speed", "", &["idle_rpm"]),
    step(
        11,
        "wot",
        "Wide-open-throttle range",
        "The speed range the engine should reach at full throttle.",
        &["wot_min_rpm", "wot_max_rpm"],
    ),
    step(
        12,
        "coolant",
        "Coolant temperature",
        "Above this, d3kOS raises the overheat alarm.",
        &["max_coolant_f"],
    ),
    step(
        13,
        "oil",
        "Oil pressure",
        "Below these, d3kOS raises the low oil pressure alarm.",
        &["min_oil_idle_psi", "min_oil_cruise_psi"],
    ),
    step(
        14,
        "engines",
        "Engines aboard",
        "",
        &["engines", "position"],
    ),
    step(15, "rpm", "RPM signal", "", &["rpm_source"]),
    step(16, "gear", "Gear ratio", "", &["gear_ratio"]),
    step(17, "senders", "Tank senders", "", &["sender"]),
    step(
        DIP_STEP,
        "dip",
        "CX5106 switches",
        "Set the gateway's switches like this, with its power off. Print this page to keep it \
         with the engine's papers.",
        &[],
    ),
    step(
        19,
        "pairing",
        "Pair your phone",
        "Scan this code with the d3kOS app to pair your phone with this helm computer. It holds \
         no password.",
        &[],
    ),
    step(
        LAST_STEP,
        "done",
        "All set",
        "d3kOS now watches your engine against these limits.",
        &[],
    ),
];

/// What is wrong with one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// The answers, each under its question's key, as they are stored: texts trimmed, whole
/// numbers as integers, numbers in the question's first unit. Unanswered questions are
/// absent.
pub type Answers = BTreeMap<String, Value>;

fn one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// `v` as question `q` keeps it; `Err` with the question's message when it does not fit.
/// `Ok(None)`: no answer (null, or an optional text left empty).
fn normalise(q: &Question, v: &Value) -> Result<Option<Value>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let wrong = || q.message.clone();
    match &q.kind {
        Kind::Text { min, max } => {
            let s = v.as_str().ok_or_else(wrong)?.trim();
            let n = s.chars().count();
            if n == 0 && !q.required {
                return Ok(None);
            }
            if n < *min || n > *max || !one_line(s) {
                return Err(wrong());
            }
            Ok(Some(Value::String(s.to_owned())))
        }
        Kind::Number { min, max, whole } => {
            let n = v.as_f64().filter(|n| n.is_finite()).ok_or_else(wrong)?;
            // A hair's tolerance: 916 CID typed is 15.01 L and out; 15 L typed is in.
            let eps = 1e-9 * max.abs().max(1.0);
            if n < min - eps || n > max + eps || (*whole && n.fract() != 0.0) {
                return Err(wrong());
            }
            Ok(Some(if *whole {
                Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
            }))
        }
        Kind::Choice { options } => {
            let s = v.as_str().ok_or_else(wrong)?;
            if !options.iter().any(|(value, _)| *value == s) {
                return Err(wrong());
            }
            Ok(Some(Value::String(s.to_owned())))
        }
    }
}

fn f(a: &Answers, key: &str) -> Option<f64> {
    a.get(key).and_then(Value::as_f64)
}

/// Whether `position` fits `engines` aboard.
pub fn position_fits(engines: f64, position: &str) -> bool {
    match engines as i64 {
        1 => position == "single",
        2 => matches!(position, "port" | "starboard"),
        _ => matches!(position, "port" | "starboard" | "centre_aux"),
    }
}

/// The answers as stored, or every problem with them. Keys that are no question are
/// problems too.
pub fn check(
    raw: &serde_json::Map<String, Value>,
    qs: &[Question],
) -> Result<Answers, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut answers = Answers::new();
    for (key, v) in raw {
        let Some(q) = qs.iter().find(|q| q.key == key) else {
            problems.push(Problem {
                field: key.clone(),
                message: format!(
                    "There is no question `{}`.",
                    key.chars().take(40).collect::<String>()
                ),
            });
            continue;
        };
        match normalise(q, v) {
            Ok(Some(v)) => {
                answers.insert(key.clone(), v);
            }
            Ok(None) => {}
            Err(message) => problems.push(Problem {
                field: key.clone(),
                message,
            }),
        }
    }
    let wrong = |p: &Vec<Problem>, field| p.iter().any(|p| p.field == field);
    for rule in RULES {
        if wrong(&problems, rule.field) {
            continue;
        }
        let broken = match rule.id {
            "wot_order" => {
                matches!((f(&answers, "wot_min_rpm"), f(&answers, "wot_max_rpm")), (Some(lo), Some(hi)) if hi <= lo)
            }
            "oil_order" => {
                matches!((f(&answers, "min_oil_idle_psi"), f(&answers, "min_oil_cruise_psi")), (Some(lo), Some(hi)) if hi <= lo)
            }
            "position_fits" => matches!(
                (f(&answers, "engines"), answers.get("position").and_then(Value::as_str)),
                (Some(n), Some(p)) if !position_fits(n, p)
            ),
            _ => false,
        };
        if broken {
            problems.push(Problem {
                field: rule.field.into(),
                message: rule.message.into(),
            });
        }
    }
    if problems.is_empty() {
        Ok(answers)
    } else {
        Err(problems)
    }
}

/// The required questions not answered, in the wizard's order.
pub fn missing(answers: &Answers, qs: &[Question]) -> Vec<&'static str> {
    qs.iter()
        .filter(|q| q.required && !answers.contains_key(q.key))
        .map(|q| q.key)
        .collect()
}

/// The units chosen for questions that have more than one; a key or unit that is not one
/// is a problem.
pub fn check_units(
    units: &BTreeMap<String, String>,
    qs: &[Question],
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    for (key, unit) in units {
        let ok = qs
            .iter()
            .find(|q| q.key == key)
            .is_some_and(|q| q.units.len() > 1 && q.units.iter().any(|u| u.id == unit));
        if !ok {
            problems.push(Problem {
                field: format!("units.{}", key.chars().take(40).collect::<String>()),
                message: "Choose one of the units the question offers.".into(),
            });
        }
    }
    if problems.is_empty() {
        Ok(units.clone())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn problems(v: Value) -> Vec<Problem> {
        check(&raw(v), &questions(2026)).unwrap_err()
    }

    #[test]
    fn messages_give_the_range_in_every_unit_rounded_inwards() {
        let qs = questions(2026);
        let m = |k| qs.iter().find(|q| q.key == k).unwrap().message.clone();
        assert_eq!(
            m("year"),
            "Engine year must be a whole number from 1950 to 2026."
        );
        assert_eq!(
            m("displacement_l"),
            "Displacement must be from 0.5 L to 15 L (31 CID to 915 CID)."
        );
        assert_eq!(
            m("stroke_mm"),
            "Stroke length must be from 50 mm to 200 mm (1.97 in to 7.87 in)."
        );
        assert_eq!(
            m("power_hp"),
            "Rated power must be from 10 HP to 1000 HP (7.5 kW to 745.6 kW)."
        );
        assert_eq!(
            m("max_coolant_f"),
            "Highest coolant temperature must be from 120 °F to 220 °F (48.9 °C to 104.4 °C)."
        );
        assert_eq!(
            m("compression_ratio"),
            "Compression ratio must be from 7:1 to 22:1."
        );
        assert_eq!(
            m("manufacturer"),
            "Engine manufacturer: enter 2 to 60 characters on one line."
        );
    }

    #[test]
    fn a_value_typed_at_a_shown_bound_in_another_unit_is_inside() {
        let qs = questions(2026);
        let at = |key: &str, unit: usize, shown: f64| {
            let q = qs.iter().find(|q| q.key == key).unwrap();
            let u = q.units[unit];
            let stored = (shown - u.offset) / u.scale;
            check(&raw(json!({ key: stored })), &qs).is_ok()
        };
        assert!(at("displacement_l", 1, 31.0) && at("displacement_l", 1, 915.0));
        assert!(!at("displacement_l", 1, 30.0) && !at("displacement_l", 1, 916.0));
        assert!(at("max_coolant_f", 1, 48.9) && at("max_coolant_f", 1, 104.4));
        assert!(!at("max_coolant_f", 1, 104.5));
        assert!(at("stroke_mm", 1, 1.97) && at("stroke_mm", 1, 7.87));
        assert!(at("power_hp", 1, 7.5) && at("power_hp", 1, 745.6) && !at("power_hp", 1, 745.8));
    }

    #[test]
    fn answers_are_stored_trimmed_and_whole_numbers_as_integers() {
        let a = check(
            &raw(json!({"manufacturer": "  Yanmar ", "year": 2011.0, "boat_name": "", "model": null})),
            &questions(2026),
        )
        .unwrap();
        assert_eq!(
            a,
            raw(json!({"manufacturer": "Yanmar", "year": 2011}))
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn each_wrong_value_is_named_with_its_message() {
        let qs = questions(2026);
        let p = problems(json!({
            "year": 2027, "cylinders": 4.5, "model": "x".repeat(30_000), "induction": "steam",
            "gear_ratio": "2", "boat_name": "a\nb", "nonsense": 1
        }));
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "boat_name",
                "cylinders",
                "gear_ratio",
                "induction",
                "model",
                "nonsense",
                "year"
            ]
        );
        for p in &p {
            if let Some(q) = qs.iter().find(|q| q.key == p.field) {
                assert_eq!(p.message, q.message);
            }
        }
    }

    #[test]
    fn rules_between_answers() {
        let p = problems(json!({"wot_min_rpm": 5000, "wot_max_rpm": 5000}));
        assert_eq!(p[0].field, "wot_max_rpm");
        let p = problems(json!({"engines": 1, "position": "port"}));
        assert_eq!(p[0].field, "position");
        let p = problems(json!({"engines": 2, "position": "centre_aux"}));
        assert_eq!(p[0].field, "position");
        assert!(
            check(
                &raw(json!({"engines": 3, "position": "centre_aux"})),
                &questions(2026)
            )
            .is_ok()
        );
        // A value already wrong is reported once, by its own message.
        let p = problems(json!({"wot_min_rpm": 5000, "wot_max_rpm": 9000}));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("from 2000 RPM to 7000 RPM"));
    }

    #[test]
    fn every_step_field_is_a_question_and_every_question_is_on_a_step() {
        let qs = questions(2026);
        let on_steps: Vec<&str> = STEPS
            .iter()
            .flat_map(|s| s.fields.iter().copied())
            .collect();
        let keys: Vec<&str> = qs.iter().map(|q| q.key).collect();
        assert_eq!(on_steps, keys);
        assert_eq!(STEPS.len(), usize::from(LAST_STEP));
        assert!(
            STEPS
                .iter()
                .enumerate()
                .all(|(i, s)| usize::from(s.n) == i + 1)
        );
        assert_eq!(STEPS[usize::from(DIP_STEP) - 1].id, "dip");
        for q in &qs {
            if !q.default.is_null() {
                let one = raw(json!({ q.key: q.default }));
                assert!(check(&one, &qs).is_ok(), "{}'s default is valid", q.key);
            }
        }
    }

    #[test]
    fn units_must_be_offered_by_their_question() {
        let qs = questions(2026);
        let ok: BTreeMap<String, String> = [("displacement_l".into(), "cid".into())].into();
        assert!(check_units(&ok, &qs).is_ok());
        let bad: BTreeMap<String, String> = [("year".into(), "cid".into())].into();
        assert_eq!(check_units(&bad, &qs).unwrap_err()[0].field, "units.year");
    }
}
