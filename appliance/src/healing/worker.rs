//! The healing worker: checks the rules every `check_every_secs`, at once when an event
//! arrives or the owner asks, takes each rule's action within its bounds, and records
//! everything (the healing record, and the boat log).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clean::{self, Targets};
use super::detect::{self, Finding, Memory};
use super::facts::{self, Bus, EngineAlert, Facts};
use super::history::{History, NewRecord, Outcome};
use super::rules::{Action, RuleId, Rules};
use super::{Event, Inbox};

/// How long a restarted unit or interface is given before it is looked at again.
const SETTLE: Duration = Duration::from_secs(2);
const HOUR_MS: i64 = 3_600_000;

/// Where the facts come from.
pub struct Sources {
    pub probe_root: PathBuf,
    pub n2k: crate::n2k::ingest::Shared,
    /// The CAN interface read, when the bus (not a replay) is the source.
    pub bus_interface: Option<String>,
    pub engine: Option<Arc<crate::engine::worker::Engine>>,
}

/// A problem open now.
#[derive(Debug, Clone, Serialize)]
pub struct Open {
    pub rule: RuleId,
    pub subject: String,
    pub seen: String,
    pub advice: Vec<String>,
    pub since_ms: i64,
    /// `open`, or `escalated` when the rule has done all it may and the owner must act.
    pub state: &'static str,
    pub last_action: Option<String>,
    /// Whether its once-only action (clean, notify, report) has been taken.
    #[serde(skip)]
    done: bool,
}

/// The owner's switches, kept in the state folder: a rule turned on or off over what the
/// rules file says.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Switches {
    rules: BTreeMap<RuleId, bool>,
}

const SWITCHES: &str = "healing.json";

pub struct Healing {
    base: Rules,
    rules: std::sync::RwLock<Rules>,
    switches: std::sync::Mutex<Switches>,
    state_dir: PathBuf,
    pub history: History,
    open: std::sync::Mutex<BTreeMap<(RuleId, String), Open>>,
    memory: std::sync::Mutex<Memory>,
    events: std::sync::Mutex<tokio::sync::mpsc::Receiver<Event>>,
    wake: Arc<tokio::sync::Notify>,
    pub inbox: Inbox,
    boatlog: Option<crate::boatlog::Boatlog>,
    targets: Targets,
    sources: Sources,
    /// One check at a time.
    checking: tokio::sync::Mutex<()>,
    /// The state folder's write gate: a check waits while a restore swaps the folder.
    writes: Arc<tokio::sync::RwLock<()>>,
    last_check_ms: std::sync::atomic::AtomicI64,
}

/// What one check found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub at_ms: i64,
    pub open: Vec<Open>,
    pub recorded: Vec<super::history::Record>,
}

#[derive(Debug, thiserror::Error)]
pub enum HealingError {
    #[error("there is no rule `{0}`; the rules are {list}", list = RuleId::ALL.map(RuleId::as_str).join(", "))]
    NoRule(String),
    #[error("the healing switches could not be saved: {0}")]
    Save(#[from] crate::state::StateError),
}

impl Healing {
    pub fn new(
        base: Rules,
        state_dir: PathBuf,
        boatlog: Option<crate::boatlog::Boatlog>,
        targets: Targets,
        sources: Sources,
        writes: Arc<tokio::sync::RwLock<()>>,
    ) -> Healing {
        let (inbox, rx, wake) = Inbox::new();
        let switches: Switches = crate::state::load(&state_dir.join(SWITCHES), 0)
            .ok()
            .flatten()
            .unwrap_or_default();
        let rules = apply(&base, &switches);
        Healing {
            history: History::in_state(&state_dir),
            base,
            rules: std::sync::RwLock::new(rules),
            switches: std::sync::Mutex::new(switches),
            state_dir,
            open: Default::default(),
            memory: Default::default(),
            events: std::sync::Mutex::new(rx),
            wake,
            inbox,
            boatlog,
            targets,
            sources,
            checking: Default::default(),
            writes,
            last_check_ms: Default::default(),
        }
    }

    pub fn rules(&self) -> Rules {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn open(&self) -> Vec<Open> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn last_check_ms(&self) -> Option<i64> {
        let t = self
            .last_check_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        (t > 0).then_some(t)
    }

    /// Switches a rule on or off; kept in the state folder.
    pub fn switch(&self, rule: &str, enabled: bool) -> Result<Rules, HealingError> {
        let id = RuleId::parse(rule).ok_or_else(|| HealingError::NoRule(rule.to_owned()))?;
        let mut switches = self.switches.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = switches.clone();
        next.rules.insert(id, enabled);
        crate::state::save(&self.state_dir.join(SWITCHES), &next)?;
        *switches = next;
        let rules = apply(&self.base, &switches);
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules.clone();
        Ok(rules)
    }

    async fn facts(&self, rules: &Rules, now_ms: i64) -> Facts {
        let units = crate::systemd::unit_details(&rules.unit_failed.units).await;
        let root = self.sources.probe_root.clone();
        let mounts = rules.disk_space.mounts.clone();
        let (spaces, temperature_c, throttling, psi) =
            tokio::task::spawn_blocking(move || facts::read(&root, &mounts))
                .await
                .unwrap_or_default();
        let n2k = self.sources.n2k.lock().expect("n2k status").clone();
        let bus = self.sources.bus_interface.as_ref().map(|i| Bus {
            interface: i.clone(),
            up: n2k.up,
            down_reason: n2k.down_reason.clone(),
        });
        let (engine_running, engine_alerts) = match &self.sources.engine {
            Some(e) => {
                let c = e.current(now_ms);
                (
                    c.engines.iter().any(|x| x.running),
                    Some(
                        c.alerts
                            .iter()
                            .map(|a| EngineAlert {
                                engine: a.engine.clone(),
                                metric: a.metric,
                                level: a.level,
                            })
                            .collect(),
                    ),
                )
            }
            None => (false, None),
        };
        Facts {
            now_ms,
            units,
            spaces,
            temperature_c,
            throttling,
            memory_some_avg60: psi,
            bus,
            n2k_last_message_ms: n2k.last_message_ms,
            engine_running,
            engine_alerts,
        }
    }

    /// Records `r` and writes it to the boat log.
    fn record(&self, r: NewRecord, out: &mut Vec<super::history::Record>) {
        let text = match (&r.action, &r.result) {
            (Some(a), Some(res)) => {
                format!("Healing ({}): {} — {a}: {res}", r.outcome.as_str(), r.seen)
            }
            _ => format!("Healing ({}): {}", r.outcome.as_str(), r.seen),
        };
        match self.history.add(&r) {
            Ok(id) => out.push(super::history::Record {
                id,
                at_ms: r.at_ms,
                rule: r.rule.to_owned(),
                subject: r.subject.clone(),
                seen: r.seen.clone(),
                action: r.action.map(str::to_owned),
                result: r.result.clone(),
                outcome: r.outcome.as_str().to_owned(),
                advice: r.advice.clone(),
            }),
            Err(e) => log::warn!("healing: not recorded ({text}): {e}"),
        }
        match r.outcome {
            Outcome::Escalated | Outcome::Failed | Outcome::Reported => log::warn!("{text}"),
            _ => log::info!("{text}"),
        }
        if let Some(log) = &self.boatlog {
            log.auto(r.at_ms, text);
        }
    }

    /// One check: facts, findings, actions, records.
    pub async fn check(&self) -> Checked {
        let _one = self.checking.lock().await;
        let _gate = self.writes.clone().read_owned().await;
        let rules = self.rules();
        let now_ms = crate::time::unix_now_ms();
        let events: Vec<Event> = {
            let mut rx = self.events.lock().unwrap_or_else(|e| e.into_inner());
            std::iter::from_fn(|| rx.try_recv().ok()).collect()
        };
        let facts = self.facts(&rules, now_ms).await;
        let found = {
            let mut mem = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            detect::detect(&rules, &facts, &events, &mut mem)
        };
        let mut recorded = Vec::new();
        // Gone: cleared. Recorded before it leaves the open list, so whoever sees it
        // gone also finds why in the history.
        let gone: Vec<Open> = {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.iter()
                .filter(|(k, _)| !found.iter().any(|f| f.rule == k.0 && f.subject == k.1))
                .map(|(_, o)| o.clone())
                .collect()
        };
        for g in gone {
            self.record(
                NewRecord {
                    at_ms: now_ms,
                    rule: g.rule.as_str(),
                    subject: g.subject.clone(),
                    seen: format!("no longer seen: {}", g.seen),
                    action: None,
                    result: None,
                    outcome: Outcome::Cleared,
                    advice: vec![],
                },
                &mut recorded,
            );
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.remove(&(g.rule, g.subject));
        }
        for f in found {
            let key = (f.rule, f.subject.clone());
            let fresh = {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                let fresh = !open.contains_key(&key);
                let o = open.entry(key.clone()).or_insert_with(|| Open {
                    rule: f.rule,
                    subject: f.subject.clone(),
                    seen: f.seen.clone(),
                    advice: f.advice.clone(),
                    since_ms: now_ms,
                    state: "open",
                    last_action: None,
                    done: false,
                });
                o.seen = f.seen.clone();
                fresh
            };
            if fresh {
                self.record(
                    NewRecord {
                        at_ms: now_ms,
                        rule: f.rule.as_str(),
                        subject: f.subject.clone(),
                        seen: f.seen.clone(),
                        action: None,
                        result: None,
                        outcome: Outcome::Detected,
                        advice: vec![],
                    },
                    &mut recorded,
                );
                self.ask_remote(&rules, &f);
            }
            let action = rules.common(f.rule).action;
            let (done, state) = {
                let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                open.get(&key).map_or((true, "open"), |o| (o.done, o.state))
            };
            if done || state == "escalated" {
                continue;
            }
            let taken = self.act(&rules, action, &f, now_ms, &mut recorded).await;
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(taken, Taken::Fixed) {
                open.remove(&key);
                continue;
            }
            if let Some(o) = open.get_mut(&key) {
                o.last_action = recorded.last().map(|r| {
                    format!(
                        "{}: {}",
                        r.action.as_deref().unwrap_or(r.outcome.as_str()),
                        r.result.as_deref().unwrap_or(r.outcome.as_str())
                    )
                });
                match taken {
                    Taken::Fixed | Taken::Again => {}
                    Taken::Once => o.done = true,
                    Taken::Escalated => {
                        o.done = true;
                        o.state = "escalated";
                    }
                }
            }
        }
        if let Err(e) = self.history.prune(now_ms) {
            log::warn!("healing: old records not pruned: {e}");
        }
        self.last_check_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
        Checked {
            at_ms: now_ms,
            open: self.open(),
            recorded,
        }
    }

    fn ask_remote(&self, rules: &Rules, f: &Finding) {
        let Some(url) = rules.diagnosis.url.clone() else {
            return;
        };
        let timeout = Duration::from_secs(rules.diagnosis.timeout_secs);
        let f = f.clone();
        let history = History::in_state(&self.state_dir);
        let device = crate::signalk::vessel_uuid(&self.state_dir).unwrap_or_default();
        // Detached: the answer is recorded when it comes; nothing waits for it.
        tokio::task::spawn_blocking(move || {
            let (result, outcome) = match super::remote::ask(&url, timeout, &f, &device) {
                Ok(text) => (text, Outcome::Reported),
                Err(e) => {
                    log::info!("healing: no remote diagnosis: {e}");
                    return;
                }
            };
            let r = NewRecord {
                at_ms: crate::time::unix_now_ms(),
                rule: f.rule.as_str(),
                subject: f.subject.clone(),
                seen: f.seen.clone(),
                action: Some("diagnosis"),
                result: Some(result),
                outcome,
                advice: vec![],
            };
            if let Err(e) = history.add(&r) {
                log::warn!("healing: the remote diagnosis was not recorded: {e}");
            }
        });
    }

    /// A bounded action: refused (and escalated) once `max` were taken on `subject` in
    /// the last hour.
    fn bound_reached(&self, action: &str, subject: &str, max: u32, now_ms: i64) -> Option<u32> {
        let n = self
            .history
            .actions_since(action, subject, now_ms - HOUR_MS)
            .unwrap_or(u32::MAX);
        (n >= max).then_some(n)
    }

    async fn act(
        &self,
        rules: &Rules,
        action: Action,
        f: &Finding,
        now_ms: i64,
        out: &mut Vec<super::history::Record>,
    ) -> Taken {
        let rec = |action: Option<&'static str>, result: String, outcome: Outcome| NewRecord {
            at_ms: crate::time::unix_now_ms(),
            rule: f.rule.as_str(),
            subject: f.subject.clone(),
            seen: f.seen.clone(),
            action,
            result: Some(result),
            outcome,
            advice: f.advice.clone(),
        };
        let escalate = |n: u32, what: &str| {
            rec(
                None,
                format!("gave up after {n} {what} in the last hour: the owner needs to look at it"),
                Outcome::Escalated,
            )
        };
        match action {
            Action::RestartUnit => {
                let max = rules.unit_failed.max_restarts_per_hour;
                if let Some(n) = self.bound_reached("restart_unit", &f.subject, max, now_ms) {
                    self.record(escalate(n, "restarts"), out);
                    return Taken::Escalated;
                }
                let r = crate::systemd::job(
                    crate::systemd::Job::Restart,
                    &f.subject,
                    Duration::from_secs(30),
                )
                .await;
                tokio::time::sleep(SETTLE).await;
                let state = crate::systemd::unit_details(std::slice::from_ref(&f.subject))
                    .await
                    .pop()
                    .and_then(|u| u.active_state)
                    .unwrap_or_else(|| "unknown".into());
                let (result, outcome) = match r {
                    Ok(()) if state == "active" => {
                        ("restarted; it is active".to_owned(), Outcome::Fixed)
                    }
                    Ok(()) => (format!("restarted; it is {state}"), Outcome::Failed),
                    Err(e) => (e, Outcome::Failed),
                };
                self.record(rec(Some("restart_unit"), result, outcome), out);
                Taken::after(outcome)
            }
            Action::RestartCan => {
                let max = rules.can_bus.max_restarts_per_hour;
                if let Some(n) = self.bound_reached("restart_can", &f.subject, max, now_ms) {
                    self.record(escalate(n, "restarts of the interface"), out);
                    return Taken::Escalated;
                }
                let iface = &f.subject;
                // An interface that is not there (no HAT, or its overlay not loaded) does not
                // come back by being brought down and up: the owner has to look.
                if !std::path::Path::new("/sys/class/net").join(iface).exists() {
                    self.record(
                        rec(
                            None,
                            format!(
                                "there is no {iface} to bring down and up: is the CAN HAT fitted \
                                 and its overlay enabled?"
                            ),
                            Outcome::Escalated,
                        ),
                        out,
                    );
                    return Taken::Escalated;
                }
                let unit = format!("d3kos-can-restart@{iface}.service");
                let r =
                    crate::systemd::job(crate::systemd::Job::Start, &unit, Duration::from_secs(30))
                        .await;
                tokio::time::sleep(SETTLE).await;
                let up = std::fs::read_to_string(format!("/sys/class/net/{iface}/flags"))
                    .ok()
                    .and_then(|t| u32::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok())
                    .is_some_and(|flags| flags & 1 != 0);
                let (result, outcome) = match r {
                    Ok(()) if up => (
                        format!("{iface} brought down and up; it is up"),
                        Outcome::Fixed,
                    ),
                    Ok(()) => (
                        format!("{iface} brought down and up; it is still down"),
                        Outcome::Failed,
                    ),
                    Err(e) => (e, Outcome::Failed),
                };
                self.record(rec(Some("restart_can"), result, outcome), out);
                Taken::after(outcome)
            }
            Action::CleanDisk => {
                let mount = self
                    .sources
                    .probe_root
                    .join(f.subject.trim_start_matches('/'));
                let cleaned =
                    clean::clean(&self.targets, &mount, rules.disk_space.journal_keep_mib).await;
                let min = rules.disk_space.min_free_percent;
                let root = self.sources.probe_root.clone();
                let subject = f.subject.clone();
                let after = tokio::task::spawn_blocking(move || facts::read(&root, &[subject]).0)
                    .await
                    .unwrap_or_default();
                let free = after.first().map(|s| s.free_percent());
                let summary = format!(
                    "{}; {} now has {}",
                    if cleaned.lines.is_empty() {
                        "nothing the device may clean is on this partition".to_owned()
                    } else {
                        cleaned.lines.join("; ")
                    },
                    f.subject,
                    free.map_or("unknown free space".into(), |p| format!("{p:.1} % free"))
                );
                if free.is_some_and(|p| p >= min) {
                    self.record(rec(Some("clean_disk"), summary, Outcome::Fixed), out);
                    Taken::Fixed
                } else {
                    self.record(
                        rec(Some("clean_disk"), summary.clone(), Outcome::Failed),
                        out,
                    );
                    self.record(
                        rec(
                            None,
                            format!(
                                "still below {min} % free after cleaning everything the device may \
                                 clean: the rest is the boat's own data; delete what is not needed or \
                                 move it off the device"
                            ),
                            Outcome::Escalated,
                        ),
                        out,
                    );
                    Taken::Escalated
                }
            }
            Action::Notify => {
                self.record(
                    rec(
                        Some("notify"),
                        "the owner was told".into(),
                        Outcome::Notified,
                    ),
                    out,
                );
                Taken::Once
            }
            Action::Report => {
                self.record(
                    rec(
                        Some("report"),
                        "reported with its likely causes and what to check".into(),
                        Outcome::Reported,
                    ),
                    out,
                );
                Taken::Once
            }
        }
    }
}

/// What acting on an open problem leaves.
enum Taken {
    /// The problem is gone: a new occurrence is a new detection.
    Fixed,
    /// The action may be taken again at the next check (a bounded restart).
    Again,
    /// Done for as long as the problem stays open.
    Once,
    /// Given up: the owner must act.
    Escalated,
}

impl Taken {
    /// After a bounded restart: fixed, or to be tried again at the next check.
    fn after(outcome: Outcome) -> Taken {
        if outcome == Outcome::Fixed {
            Taken::Fixed
        } else {
            Taken::Again
        }
    }
}

fn apply(base: &Rules, s: &Switches) -> Rules {
    let mut r = base.clone();
    for (id, on) in &s.rules {
        let c = match id {
            RuleId::UnitFailed => &mut r.unit_failed.common,
            RuleId::DiskSpace => &mut r.disk_space.common,
            RuleId::CpuTemperature => &mut r.cpu_temperature.common,
            RuleId::Throttling => &mut r.throttling.common,
            RuleId::MemoryPressure => &mut r.memory_pressure.common,
            RuleId::CanBus => &mut r.can_bus.common,
            RuleId::N2kSilent => &mut r.n2k_silent.common,
            RuleId::Engine => &mut r.engine.common,
        };
        c.enabled = *on;
    }
    r
}

/// Checks every `check_every_secs`, and at once when an event arrives, until the daemon
/// stops.
pub async fn run(h: Arc<Healing>) {
    loop {
        let every = Duration::from_secs(h.rules().check_every_secs);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = h.wake.notified() => {}
        }
        h.check().await;
    }
}
