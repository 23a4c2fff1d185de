//! What an engine problem most likely means and what to check, in plain words. The device
//! never acts on an engine: it tells the crew where to look.

use crate::engine::Metric;

/// Likely causes first, then what to check, for `metric` reading `low` (or high).
pub fn engine(metric: Metric, low: bool) -> Vec<String> {
    let (causes, checks): (&[&str], &[&str]) = match (metric, low) {
        (Metric::OilPressure, true) => (
            &[
                "low oil level or an oil leak",
                "a faulty oil pressure sender or a loose sender wire",
                "oil thinned by heat or fuel, or the wrong grade",
                "a worn oil pump or bearings",
            ],
            &[
                "if the reading is real, slow down and stop the engine as soon as it is safe",
                "the oil level on the dipstick, and the bilge under the engine for oil",
                "the sender's wire and connector, and a mechanical gauge if one is fitted",
            ],
        ),
        (Metric::OilPressure, false) => (
            &[
                "a cold engine with thick oil",
                "a faulty sender or a short in its wire",
                "a stuck pressure relief valve or a blocked oil filter",
            ],
            &[
                "whether it settles as the engine warms up",
                "the sender and its wiring",
                "when the oil and filter were last changed",
            ],
        ),
        (Metric::Temperature, false) | (Metric::OilTemperature, false) => (
            &[
                "a blocked raw-water intake or strainer (weed, a plastic bag)",
                "a worn or broken raw-water pump impeller",
                "a slipping or broken belt",
                "low coolant, or a stuck thermostat",
                "a fouled heat exchanger",
            ],
            &[
                "water coming out of the exhaust: little or none points at the raw-water side",
                "the raw-water strainer and the seacock",
                "the belt's tension, and the coolant level once the engine has cooled",
                "slow down; stop the engine if the temperature keeps rising",
            ],
        ),
        (Metric::Temperature, true) | (Metric::OilTemperature, true) => (
            &[
                "a thermostat stuck open",
                "a faulty temperature sender or its wiring",
            ],
            &[
                "the sender's wire and connector",
                "the thermostat at the next service",
            ],
        ),
        (Metric::AlternatorVoltage, true) => (
            &[
                "a slipping or broken alternator belt",
                "a loose or corroded charging wire or ground",
                "a failing alternator or regulator",
                "a battery that no longer holds a charge",
            ],
            &[
                "the belt and the alternator's wiring",
                "the battery voltage with the engine off (12.6 V is full for a 12 V bank)",
                "switch off what you can do without until charging is back",
            ],
        ),
        (Metric::AlternatorVoltage, false) => (
            &[
                "a failing voltage regulator",
                "a wrong charger or solar controller setting",
            ],
            &[
                "for hot or swollen batteries and a smell of sulphur",
                "the regulator and charge controller settings",
            ],
        ),
        (Metric::Revolutions, true) => (
            &[
                "fuel starvation: a clogged fuel filter or air in the fuel",
                "a fouled propeller or a line around it",
                "an overloaded engine",
            ],
            &[
                "the fuel filter and water separator",
                "the propeller for fouling",
                "the throttle linkage",
            ],
        ),
        (Metric::Revolutions, false) => (
            &[
                "lost propeller bite: a damaged propeller or a slipping drive",
                "a throttle linkage out of adjustment",
            ],
            &["the propeller and the drive", "the throttle linkage"],
        ),
        (Metric::FuelRate, _) => (
            &[
                "a fuel leak, or a fouled hull or propeller when the rate is high",
                "a clogged fuel filter when it is low",
                "a faulty flow sender",
            ],
            &[
                "the fuel lines and the bilge for diesel",
                "the fuel filter and the hull",
            ],
        ),
    };
    causes
        .iter()
        .map(|c| format!("Likely cause: {c}."))
        .chain(checks.iter().map(|c| format!("Check: {c}.")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_oil_pressure_says_to_stop_and_check_the_oil() {
        let a = engine(Metric::OilPressure, true);
        assert!(a[0].starts_with("Likely cause: low oil level"), "{a:?}");
        assert!(a.iter().any(|l| l.contains("dipstick")), "{a:?}");
        let hot = engine(Metric::Temperature, false);
        assert!(hot.iter().any(|l| l.contains("impeller")), "{hot:?}");
    }
}
