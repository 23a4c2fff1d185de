//! The rules applied to one check's facts and the events since the last: the problems
//! present now. Pure, so every rule is tested on made-up facts.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::Event;
use super::facts::Facts;
use super::rules::{RuleId, Rules};
use crate::engine::Metric;

/// A problem present now.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: RuleId,
    /// What it is about: a unit, a mount point, an interface, an engine's metric.
    pub subject: String,
    pub seen: String,
    /// Likely causes and what to check (engine problems).
    pub advice: Vec<String>,
}

/// What detection remembers between checks.
#[derive(Debug, Default)]
pub struct Memory {
    /// Per unit: systemd's restart count as it was at each check in the loop window.
    restarts: HashMap<String, VecDeque<(i64, u32)>>,
    /// Whether an engine was running the last time NMEA 2000 data was fresh.
    engine_was_running: bool,
    /// Engine problems raised by events, until the engine's alert goes.
    engine: BTreeMap<(String, Metric), Finding>,
}

fn finding(rule: RuleId, subject: impl Into<String>, seen: String) -> Finding {
    Finding {
        rule,
        subject: subject.into(),
        seen,
        advice: Vec::new(),
    }
}

/// The problems present at `f.now_ms`, for the enabled rules.
pub fn detect(rules: &Rules, f: &Facts, events: &[Event], mem: &mut Memory) -> Vec<Finding> {
    let on = |id: RuleId| rules.common(id).enabled;
    let mut out = Vec::new();

    if on(RuleId::UnitFailed) {
        let r = &rules.unit_failed;
        let window_ms = r.loop_window_secs as i64 * 1000;
        for u in &f.units {
            let seen = mem.restarts.entry(u.name.clone()).or_default();
            if let Some(n) = u.n_restarts {
                seen.push_back((f.now_ms, n));
            }
            while seen.front().is_some_and(|(t, _)| *t < f.now_ms - window_ms) {
                seen.pop_front();
            }
            let looped = match (seen.front(), seen.back()) {
                (Some((_, first)), Some((_, last))) => last.saturating_sub(*first),
                _ => 0,
            };
            if u.active_state.as_deref() == Some("failed") {
                let why = u.result.as_deref().unwrap_or("unknown");
                out.push(finding(
                    RuleId::UnitFailed,
                    &u.name,
                    format!("{} failed ({why})", u.name),
                ));
            } else if looped >= r.loop_restarts {
                out.push(finding(
                    RuleId::UnitFailed,
                    &u.name,
                    format!(
                        "{} restarted {looped} times by systemd in the last {} min",
                        u.name,
                        r.loop_window_secs.div_ceil(60)
                    ),
                ));
            }
        }
    }

    if on(RuleId::DiskSpace) {
        let min = rules.disk_space.min_free_percent;
        for s in &f.spaces {
            let free = s.free_percent();
            if free < min {
                out.push(finding(
                    RuleId::DiskSpace,
                    &s.mount,
                    format!(
                        "{} has {free:.1} % free ({} MiB of {} MiB), below {min} %",
                        s.mount,
                        s.free_bytes >> 20,
                        s.total_bytes >> 20
                    ),
                ));
            }
        }
    }

    if on(RuleId::CpuTemperature)
        && let Some(t) = f.temperature_c
        && t > rules.cpu_temperature.max_c
    {
        out.push(finding(
            RuleId::CpuTemperature,
            "cpu",
            format!(
                "the processor is at {t:.1} °C, above {} °C",
                rules.cpu_temperature.max_c
            ),
        ));
    }

    if on(RuleId::Throttling)
        && let Some(t) = &f.throttling
    {
        let now: Vec<&str> = [
            (t.under_voltage, "under-voltage"),
            (t.throttled, "throttled"),
            (t.frequency_capped, "frequency capped"),
            (t.soft_temp_limit, "soft temperature limit"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        if !now.is_empty() {
            out.push(finding(
                RuleId::Throttling,
                "power",
                format!("the firmware reports {} ({})", now.join(", "), t.raw),
            ));
        }
    }

    if on(RuleId::MemoryPressure)
        && let Some(p) = f.memory_some_avg60
        && p > rules.memory_pressure.max_some_avg60
    {
        out.push(finding(
            RuleId::MemoryPressure,
            "memory",
            format!(
                "tasks waited for memory {p:.1} % of the last minute, above {} %",
                rules.memory_pressure.max_some_avg60
            ),
        ));
    }

    // Down with a reason: ingest tried the interface and failed (before its first try
    // there is no reason yet).
    if on(RuleId::CanBus)
        && let Some(b) = &f.bus
        && !b.up
        && b.down_reason.is_some()
    {
        out.push(finding(
            RuleId::CanBus,
            &b.interface,
            format!(
                "{} is down: {}",
                b.interface,
                b.down_reason.as_deref().unwrap_or("no reason given")
            ),
        ));
    }

    let after_ms = rules.n2k_silent.after_secs as i64 * 1000;
    let fresh = f
        .n2k_last_message_ms
        .is_some_and(|t| f.now_ms - t <= after_ms);
    if fresh {
        mem.engine_was_running = f.engine_running;
    } else if on(RuleId::N2kSilent)
        && let Some(last) = f.n2k_last_message_ms
        && mem.engine_was_running
    {
        out.push(finding(
            RuleId::N2kSilent,
            "NMEA 2000",
            format!(
                "no NMEA 2000 data for {} s while the engine was running",
                (f.now_ms - last) / 1000
            ),
        ));
    }

    if on(RuleId::Engine) {
        let min = rules.engine.min_level;
        for Event::Engine(e) in events {
            let (Some(metric), Some(level)) = (e.metric, e.level) else {
                continue;
            };
            if e.kind != "anomaly" || level < min {
                continue;
            }
            let low = e.direction == Some("low");
            mem.engine.insert(
                (e.engine.clone(), metric),
                Finding {
                    rule: RuleId::Engine,
                    subject: format!("{} {}", e.engine, metric.key()),
                    seen: e.message.clone(),
                    advice: super::advice::engine(metric, low),
                },
            );
        }
        if let Some(alerts) = &f.engine_alerts {
            mem.engine.retain(|(engine, metric), _| {
                alerts
                    .iter()
                    .any(|a| &a.engine == engine && a.metric == *metric && a.level >= min)
            });
        }
        out.extend(mem.engine.values().cloned());
    } else {
        mem.engine.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Level;
    use crate::healing::facts::{Bus, EngineAlert, Space};
    use crate::health::Throttling;
    use crate::systemd::UnitDetail;

    fn unit(name: &str, state: &str, restarts: u32) -> UnitDetail {
        UnitDetail {
            name: name.into(),
            active_state: Some(state.into()),
            sub_state: None,
            result: Some("exit-code".into()),
            n_restarts: Some(restarts),
        }
    }

    fn rules_of(f: impl FnOnce(&mut Rules)) -> Rules {
        let mut r = Rules::default();
        f(&mut r);
        r
    }

    #[test]
    fn a_failed_unit_and_a_unit_in_a_restart_loop_are_found() {
        let rules = Rules::default();
        let mut mem = Memory::default();
        let mut f = Facts {
            now_ms: 0,
            units: vec![
                unit("a.service", "failed", 0),
                unit("b.service", "active", 0),
            ],
            ..Facts::default()
        };
        let found = detect(&rules, &f, &[], &mut mem);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "a.service");
        assert!(
            found[0].seen.contains("failed (exit-code)"),
            "{}",
            found[0].seen
        );
        // b restarts by systemd: 2 in the window is not yet a loop, 3 is.
        f.units = vec![unit("b.service", "activating", 2)];
        f.now_ms = 60_000;
        assert!(detect(&rules, &f, &[], &mut mem).is_empty());
        f.units = vec![unit("b.service", "active", 3)];
        f.now_ms = 120_000;
        let found = detect(&rules, &f, &[], &mut mem);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].seen.contains("restarted 3 times"),
            "{}",
            found[0].seen
        );
        // Beyond the window the old restarts no longer count.
        f.now_ms = 120_000 + 301_000;
        assert!(detect(&rules, &f, &[], &mut mem).is_empty());
    }

    #[test]
    fn little_free_space_heat_throttling_and_memory_pressure_are_found() {
        let rules = Rules::default();
        let f = Facts {
            spaces: vec![
                Space {
                    mount: "/data".into(),
                    total_bytes: 100 << 20,
                    free_bytes: 9 << 20,
                },
                Space {
                    mount: "/".into(),
                    total_bytes: 100 << 20,
                    free_bytes: 50 << 20,
                },
            ],
            temperature_c: Some(82.5),
            throttling: Some(Throttling::from_bits(0x50005)),
            memory_some_avg60: Some(25.0),
            ..Facts::default()
        };
        let found = detect(&rules, &f, &[], &mut Memory::default());
        let ids: Vec<_> = found.iter().map(|x| (x.rule, x.subject.as_str())).collect();
        assert_eq!(
            ids,
            vec![
                (RuleId::DiskSpace, "/data"),
                (RuleId::CpuTemperature, "cpu"),
                (RuleId::Throttling, "power"),
                (RuleId::MemoryPressure, "memory"),
            ]
        );
        assert!(
            found[2].seen.contains("under-voltage, throttled"),
            "{}",
            found[2].seen
        );
        // Only past bits (0x50000) are not a problem now.
        let past = Facts {
            throttling: Some(Throttling::from_bits(0x50000)),
            ..Facts::default()
        };
        assert!(detect(&rules, &past, &[], &mut Memory::default()).is_empty());
        // A switched-off rule sees nothing.
        let off = rules_of(|r| r.disk_space.common.enabled = false);
        assert_eq!(detect(&off, &f, &[], &mut Memory::default()).len(), 3);
    }

    #[test]
    fn the_bus_down_and_silence_while_the_engine_ran_are_found() {
        let rules = Rules::default();
        let mut mem = Memory::default();
        let mut f = Facts {
            now_ms: 10_000,
            bus: Some(Bus {
                interface: "can0".into(),
                up: false,
                down_reason: Some("no such device".into()),
            }),
            n2k_last_message_ms: Some(9_000),
            engine_running: true,
            ..Facts::default()
        };
        let found = detect(&rules, &f, &[], &mut mem);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seen, "can0 is down: no such device");
        // 31 s later: no data, and the engine was running when there was.
        f.now_ms = 40_001;
        f.engine_running = false;
        f.bus = None;
        let found = detect(&rules, &f, &[], &mut mem);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, RuleId::N2kSilent);
        // Silence after the engine had stopped is no problem.
        let mut quiet = Memory::default();
        f.n2k_last_message_ms = Some(40_000);
        detect(&rules, &f, &[], &mut quiet);
        f.now_ms = 100_000;
        assert!(detect(&rules, &f, &[], &mut quiet).is_empty());
    }

    fn engine_event(metric: Metric, level: Level, direction: &'static str) -> Event {
        Event::Engine(crate::engine::worker::Event {
            at_ms: 1_000,
            engine: "port".into(),
            kind: "anomaly",
            metric: Some(metric),
            level: Some(level),
            direction: Some(direction),
            message: "CRITICAL: port engine oil pressure 90 kPa is below its limit".into(),
        })
    }

    #[test]
    fn a_synthetic_engine_event_is_reported_with_advice_until_its_alert_goes() {
        let rules = Rules::default();
        let mut mem = Memory::default();
        let f = Facts::default();
        let info = engine_event(Metric::Temperature, Level::Info, "high");
        assert!(
            detect(&rules, &f, &[info], &mut mem).is_empty(),
            "below the rule's level"
        );
        let oil = engine_event(Metric::OilPressure, Level::Critical, "low");
        let found = detect(&rules, &f, &[oil], &mut mem);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "port oilPressure");
        assert!(
            found[0].advice.iter().any(|a| a.contains("dipstick")),
            "{:?}",
            found[0].advice
        );
        // Still open at the next check without events, until the engine's alert is gone.
        assert_eq!(detect(&rules, &f, &[], &mut mem).len(), 1);
        let alerts = Facts {
            engine_alerts: Some(vec![EngineAlert {
                engine: "port".into(),
                metric: Metric::OilPressure,
                level: Level::Critical,
            }]),
            ..Facts::default()
        };
        assert_eq!(detect(&rules, &alerts, &[], &mut mem).len(), 1);
        let gone = Facts {
            engine_alerts: Some(vec![]),
            ..Facts::default()
        };
        assert!(detect(&rules, &gone, &[], &mut mem).is_empty());
    }
}
