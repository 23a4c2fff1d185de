//! Anomaly levels with hysteresis: how many standard deviations a value is from its
//! band's baseline, and whether it is past a hard limit. A level is entered at its
//! threshold and left only a margin below it, so a value sitting on a line does not flap.

use super::{Band, Level, Metric};
use crate::config::EngineConfig;

/// A baseline: the mean and standard deviation of a metric in a band.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stats {
    pub n: u64,
    pub mean: f64,
    pub stddev: f64,
}

/// σ below a threshold a level is left at.
pub const SIGMA_MARGIN: f64 = 0.25;

/// The fraction of a hard limit a value must come back by before the limit clears.
pub const LIMIT_MARGIN: f64 = 0.05;

/// The smallest spread a baseline is trusted with, as a fraction of its mean: a sensor
/// that read the same value for half an hour would otherwise make every tick an alarm.
const MIN_RELATIVE_SPREAD: f64 = 0.01;

impl Stats {
    /// How many (signed) standard deviations `value` is from the mean.
    pub fn sigma(&self, value: f64) -> f64 {
        let spread = self
            .stddev
            .max(self.mean.abs() * MIN_RELATIVE_SPREAD)
            .max(1e-9);
        (value - self.mean) / spread
    }
}

/// The σ level after `prev`, for a value `sigma` standard deviations out.
pub fn sigma_level(prev: Level, sigma: f64) -> Level {
    let s = sigma.abs();
    let enter = |l: Level| match l {
        Level::Normal => 0.0,
        Level::Info => 1.0,
        Level::Warning => 2.0,
        Level::Critical => 3.0,
    };
    let mut level = Level::Normal;
    for l in [Level::Info, Level::Warning, Level::Critical] {
        // A level already held is kept until the value is a margin below it.
        let threshold = if prev >= l {
            enter(l) - SIGMA_MARGIN
        } else {
            enter(l)
        };
        if s >= threshold {
            level = l;
        }
    }
    level
}

/// A hard limit on a metric.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limit {
    /// `max` or `min`.
    pub kind: &'static str,
    pub value: f64,
}

/// The hard limit on `metric` in `band`, in SI units.
pub fn limit(metric: Metric, band: Band, c: &EngineConfig) -> Option<Limit> {
    match metric {
        Metric::Temperature => Some(Limit {
            kind: "max",
            value: c.max_coolant_c + 273.15,
        }),
        Metric::OilPressure => Some(Limit {
            kind: "min",
            value: 1000.0
                * if band == Band::Idle {
                    c.min_oil_idle_kpa
                } else {
                    c.min_oil_cruise_kpa
                },
        }),
        // Revolutions are in Hz.
        Metric::Revolutions => c.max_rpm.map(|rpm| Limit {
            kind: "max",
            value: rpm / 60.0,
        }),
        _ => None,
    }
}

/// Whether `value` is past `limit`, given whether it was (`prev`).
pub fn past_limit(prev: bool, limit: Limit, value: f64) -> bool {
    let margin = limit.value.abs() * LIMIT_MARGIN;
    match (limit.kind, prev) {
        ("max", false) => value > limit.value,
        ("max", true) => value > limit.value - margin,
        (_, false) => value < limit.value,
        (_, true) => value < limit.value + margin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_sigma_thresholds() {
        assert_eq!(sigma_level(Level::Normal, 0.5), Level::Normal);
        assert_eq!(sigma_level(Level::Normal, -1.2), Level::Info);
        assert_eq!(sigma_level(Level::Normal, 2.0), Level::Warning);
        assert_eq!(sigma_level(Level::Normal, -3.5), Level::Critical);
    }

    #[test]
    fn a_value_oscillating_on_a_threshold_does_not_flap() {
        let mut level = Level::Normal;
        let mut changes = 0;
        for i in 0..1000 {
            let sigma = if i % 2 == 0 { 2.05 } else { 1.95 };
            let next = sigma_level(level, sigma);
            if next != level {
                changes += 1;
            }
            level = next;
        }
        assert_eq!(
            (changes, level),
            (1, Level::Warning),
            "entered once, never left"
        );
        assert_eq!(sigma_level(level, 1.7), Level::Info, "left a margin below");
        let l = limit(Metric::OilPressure, Band::Cruise, &EngineConfig::default()).unwrap();
        let mut past = false;
        let mut flips = 0;
        for i in 0..1000 {
            let v = l.value + if i % 2 == 0 { -500.0 } else { 500.0 };
            let now = past_limit(past, l, v);
            flips += usize::from(now != past);
            past = now;
        }
        assert_eq!((flips, past), (1, true));
        assert!(
            !past_limit(true, l, l.value * 1.06),
            "clears past the margin"
        );
    }

    #[test]
    fn a_flat_baseline_does_not_turn_noise_into_alarms() {
        let s = Stats {
            n: 1800,
            mean: 300_000.0,
            stddev: 0.0,
        };
        assert!(s.sigma(301_000.0).abs() < 1.0, "1 kPa on 300 kPa is noise");
        assert!(s.sigma(200_000.0) < -3.0);
    }
}
