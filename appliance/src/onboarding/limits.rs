//! The hand-off to the engine monitor: the bands and hard limits a finished wizard's
//! answers set.

use super::questions::KPA_PER_PSI;
use super::store::Progress;
use crate::config::EngineConfig;

/// The idle band reaches half again above the idle speed, so an engine idling a little
/// fast (cold, or set a notch high) is still idling.
const IDLE_BAND: f64 = 1.5;

/// `base` with the limits the finished wizard's answers give; `base` itself while the
/// wizard is not finished.
pub fn engine_config(p: &Progress, base: &EngineConfig) -> EngineConfig {
    let n = |k: &str| p.answers.get(k).and_then(serde_json::Value::as_f64);
    let (
        Some(_),
        Some(coolant_f),
        Some(oil_idle),
        Some(oil_cruise),
        Some(idle),
        Some(wot_min),
        Some(wot_max),
    ) = (
        p.finished_at,
        n("max_coolant_f"),
        n("min_oil_idle_psi"),
        n("min_oil_cruise_psi"),
        n("idle_rpm"),
        n("wot_min_rpm"),
        n("wot_max_rpm"),
    )
    else {
        return base.clone();
    };
    EngineConfig {
        max_coolant_c: (coolant_f - 32.0) * 5.0 / 9.0,
        min_oil_idle_kpa: oil_idle * KPA_PER_PSI,
        min_oil_cruise_kpa: oil_cruise * KPA_PER_PSI,
        idle_below_rpm: (idle * IDLE_BAND).min(wot_min),
        wide_open_from_rpm: wot_min,
        max_rpm: Some(wot_max),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finished_wizard_sets_the_limits_and_an_unfinished_one_does_not() {
        let mut p = Progress {
            answers: [
                ("max_coolant_f", json!(194)),
                ("min_oil_idle_psi", json!(10)),
                ("min_oil_cruise_psi", json!(40)),
                ("idle_rpm", json!(700)),
                ("wot_min_rpm", json!(4800)),
                ("wot_max_rpm", json!(5200)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            ..Progress::default()
        };
        let base = EngineConfig::default();
        assert_eq!(engine_config(&p, &base), base);
        p.finished_at = Some(1);
        let c = engine_config(&p, &base);
        assert!((c.max_coolant_c - 90.0).abs() < 1e-9);
        assert!((c.min_oil_idle_kpa - 68.947_572_931_683_6).abs() < 1e-9);
        assert!((c.min_oil_cruise_kpa - 275.790_291_726_734_4).abs() < 1e-9);
        assert_eq!(
            (c.idle_below_rpm, c.wide_open_from_rpm, c.max_rpm),
            (1050.0, 4800.0, Some(5200.0))
        );
        assert_eq!(c.flush_secs, base.flush_secs);
    }
}
