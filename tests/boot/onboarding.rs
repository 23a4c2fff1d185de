//! The setup wizard inside a booted image: finished through the API on the first boot, its
//! limits handed to the engine monitor that watches the replayed bus, its switches and
//! pairing code served; and on the second boot, the answers and the limits still there.

use std::path::Path;

use serde_json::{Value, json};

use crate::boot::http;

/// A finished wizard for the replayed engine (1,800 RPM, 350 kPa of oil, 80 °C coolant):
/// limits it stays inside, so no alarm is raised.
fn answers() -> Value {
    json!({
        "boat_name": "Booted", "manufacturer": "Yanmar", "model": "4JH57", "year": 2019,
        "cylinders": 4, "stroke_cycle": "four", "displacement_l": 2.09, "compression_ratio": 19.1,
        "stroke_mm": 90, "induction": "naturally_aspirated", "power_hp": 57, "idle_rpm": 700,
        "wot_min_rpm": 2800, "wot_max_rpm": 3000, "max_coolant_f": 200, "min_oil_idle_psi": 10,
        "min_oil_cruise_psi": 40, "engines": 1, "position": "single", "rpm_source": "alternator",
        "gear_ratio": 2, "sender": "european"
    })
}

fn call(port: u16, jar: &Path, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (code, text) = http(port, method, path, body, Some(jar)).expect("the appliance answers");
    assert_eq!(code, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The limits the engine API shows for the port engine's `metric`, in SI units.
fn limit(port: u16, jar: &Path, metric: &str) -> f64 {
    let current = call(port, jar, "GET", "/api/engine/current", None);
    current["data"]["engines"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["id"] == "port"))
        .and_then(|e| e["metrics"].as_array())
        .and_then(|m| m.iter().find(|m| m["metric"] == metric))
        .and_then(|m| m["limit"]["value"].as_f64())
        .unwrap_or_else(|| panic!("no {metric} limit for the port engine: {current}"))
}

/// The limits the answers above set, as the engine monitor works in them.
fn assert_handed_off(port: u16, jar: &Path) {
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() < 1e-6 * want,
            "{what}: {got}, want {want}"
        );
    };
    close(
        limit(port, jar, "temperature"),
        (200.0 - 32.0) * 5.0 / 9.0 + 273.15,
        "coolant K",
    );
    close(
        limit(port, jar, "oilPressure"),
        40.0 * 6_894.757_293_168_361,
        "oil at cruise Pa",
    );
    close(limit(port, jar, "revolutions"), 3000.0 / 60.0, "engine Hz");
}

/// First boot, with the replayed engine running: the wizard finished through the API.
pub fn finished_inside(port: u16, jar: &Path) {
    let before = limit(port, jar, "temperature");
    assert!(
        (before - (95.0 + 273.15)).abs() < 1e-6,
        "the general limit before the wizard: {before}"
    );
    let done = call(
        port,
        jar,
        "PUT",
        "/api/onboarding",
        Some(&json!({"step": 20, "answers": answers(), "units": {"max_coolant_f": "c"}})),
    );
    assert_eq!(done["data"]["finished"], true, "{done}");
    assert_handed_off(port, jar);
    let dip = call(port, jar, "GET", "/api/onboarding/dip", None);
    let bits: String = dip["data"]["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| if s["on"] == true { '1' } else { '0' })
        .collect();
    // Single, alternator, 4 cylinders, 4-stroke, 2:1; European senders, not starboard.
    assert_eq!(bits, "0000000100", "{dip}");
    let (code, svg) = http(port, "GET", "/api/onboarding/qr.svg", None, Some(jar)).unwrap();
    assert!(code == 200 && svg.contains("<svg"), "{code} {svg:.200}");
    let (code, page) = http(port, "GET", "/onboarding", None, None).unwrap();
    assert!(code == 200 && page.contains("Setup wizard"), "{code}");
    eprintln!("onboarding inside: finished, limits handed to the engine monitor, switches {bits}");
}

/// Second boot: the answers came back from the data partition, and with them the limits.
pub fn kept_inside(port: u16, jar: &Path) {
    let p = call(port, jar, "GET", "/api/onboarding", None);
    assert_eq!(p["data"]["finished"], true, "{p}");
    assert_eq!(p["data"]["answers"]["model"], "4JH57", "{p}");
    assert_eq!(p["data"]["units"]["max_coolant_f"], "c", "{p}");
    eprintln!("onboarding inside the second boot: kept");
}
