//! The engine watch: once a second it reads each engine's values from the vessel model,
//! keeps their history, records a baseline when asked, raises and clears alerts
//! (Signal K notifications, boat log entries, events for the healing rules) and notes
//! starts and stops.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::baseline::{self, Key, Recording};
use super::history::{History, HistoryError, Sample};
use super::monitor::{self, Limit, Stats};
use super::{Band, Level, Metric, engine_label};
use crate::boatlog::Boatlog;
use crate::config::EngineConfig;
use crate::signalk::Model;
use crate::signalk::from_n2k::PathValue;

/// A value older than this is no longer current.
pub const STALE_MS: i64 = 5_000;
/// From this speed the engine is running.
pub const RUNNING_RPM: f64 = 100.0;

/// Something that happened to an engine: for the boat log, the alerts list and the
/// healing rules.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub at_ms: i64,
    pub engine: String,
    /// `started`, `stopped` or `anomaly`.
    pub kind: &'static str,
    pub metric: Option<Metric>,
    pub level: Option<Level>,
    /// An anomaly's side: `low` or `high`.
    pub direction: Option<&'static str>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricNow {
    pub metric: Metric,
    pub unit: &'static str,
    pub value: f64,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub sigma: Option<f64>,
    pub level: Level,
    pub limit: Option<Limit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineNow {
    pub id: String,
    pub running: bool,
    pub band: Option<Band>,
    pub metrics: Vec<MetricNow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub engine: String,
    pub metric: Metric,
    pub level: Level,
    pub message: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineNow {
    /// `none`, `recording` or `ready`.
    pub state: &'static str,
    pub started_ms: Option<i64>,
    pub ends_ms: Option<i64>,
    pub recorded_ms: Option<i64>,
    /// Baselines kept: engine, band, metric.
    pub bands: Vec<(String, Band, Metric, Stats)>,
    pub last_result: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Current {
    pub engines: Vec<EngineNow>,
    pub alerts: Vec<Alert>,
    pub baseline: BaselineNow,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("a baseline is already being recorded, until {0}")]
    Recording(String),
    #[error("a baseline takes {min} to {max} minutes, not {0}", min = baseline::MIN_MINUTES, max = baseline::MAX_MINUTES)]
    Minutes(u32),
    #[error("no baseline is being recorded")]
    NotRecording,
    #[error(transparent)]
    History(#[from] HistoryError),
}

#[derive(Debug, Default)]
struct Watch {
    level: Level,
    past_limit: bool,
    since_ms: i64,
    message: String,
}

#[derive(Debug, Default)]
struct Running {
    running: bool,
    started_ms: i64,
    last_seen_ms: i64,
    band: Option<Band>,
    values: BTreeMap<Metric, f64>,
}

#[derive(Default)]
struct State {
    baselines: HashMap<Key, (Stats, i64)>,
    recording: Option<Recording>,
    last_result: Option<String>,
    watches: HashMap<(String, Metric), Watch>,
    engines: BTreeMap<String, Running>,
    pending: Vec<Sample>,
    last_flush_ms: i64,
    events: VecDeque<Event>,
}

/// Events kept for the API and the healing rules.
const MAX_EVENTS: usize = 200;

/// The engine watch.
pub struct Engine {
    /// Replaced whole when the setup wizard's answers set new limits.
    config: std::sync::RwLock<EngineConfig>,
    history: History,
    model: Arc<Model>,
    boatlog: Option<Boatlog>,
    state: Mutex<State>,
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        history: History,
        model: Arc<Model>,
        boatlog: Option<Boatlog>,
    ) -> Result<Engine, EngineError> {
        let baselines = history
            .baselines()?
            .into_iter()
            .map(|(k, s, at)| (k, (s, at)))
            .collect();
        Ok(Engine::with(config, history, model, boatlog, baselines))
    }

    /// The watch without the kept baselines (the history could not be read).
    pub fn without_baselines(
        config: EngineConfig,
        history: History,
        model: Arc<Model>,
        boatlog: Option<Boatlog>,
    ) -> Engine {
        Engine::with(config, history, model, boatlog, HashMap::new())
    }

    fn with(
        config: EngineConfig,
        history: History,
        model: Arc<Model>,
        boatlog: Option<Boatlog>,
        baselines: HashMap<Key, (Stats, i64)>,
    ) -> Engine {
        Engine {
            config: std::sync::RwLock::new(config),
            history,
            model,
            boatlog,
            state: Mutex::new(State {
                baselines,
                ..State::default()
            }),
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// The bands and hard limits from now on (the setup wizard's hand-off).
    pub fn set_limits(&self, config: EngineConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub fn limits(&self) -> EngineConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One look at the model at `now_ms`; returns the events it raised and the samples
    /// due to be written (every `flush_secs`).
    pub fn tick(&self, now_ms: i64) -> (Vec<Event>, Vec<Sample>) {
        let config = self.limits();
        let mut st = self.state.lock().expect("engine state");
        let st = &mut *st;
        let mut events = vec![];
        let mut notes = vec![];
        let (_, entries) = self
            .model
            .select(|path, e| path.starts_with("propulsion.") && now_ms - e.at_ms <= STALE_MS);
        let mut seen: BTreeMap<String, BTreeMap<Metric, f64>> = BTreeMap::new();
        for (path, e) in &entries {
            let rest = &path["propulsion.".len()..];
            let Some((engine, key)) = rest.split_once('.') else {
                continue;
            };
            let key = if key == "fuel.rate" { "fuelRate" } else { key };
            if let (Some(m), Some(v)) = (Metric::parse(key), e.value.as_f64()) {
                seen.entry(engine.to_owned()).or_default().insert(m, v);
            }
        }
        // Engines that fell silent stop.
        for (id, r) in st.engines.iter_mut() {
            if !seen.contains_key(id) && r.running && now_ms - r.last_seen_ms > STALE_MS {
                r.running = false;
                r.band = None;
                events.push(stopped(id, r, now_ms, "its data stopped"));
            }
        }
        for (id, values) in seen {
            let r = st.engines.entry(id.clone()).or_default();
            r.last_seen_ms = now_ms;
            let rpm = values.get(&Metric::Revolutions).map(|hz| hz * 60.0);
            let running = rpm.is_some_and(|rpm| rpm >= RUNNING_RPM);
            if running && !r.running {
                r.running = true;
                r.started_ms = now_ms;
                events.push(Event {
                    at_ms: now_ms,
                    engine: id.clone(),
                    kind: "started",
                    metric: None,
                    level: None,
                    direction: None,
                    message: format!("{} started.", engine_label(&id)),
                });
            } else if !running && r.running && rpm.is_some() {
                r.running = false;
                events.push(stopped(&id, r, now_ms, "it stopped"));
            }
            r.band = rpm.filter(|_| running).map(|rpm| Band::of(rpm, &config));
            r.values = values.clone();
            for (&metric, &value) in &values {
                st.pending.push(Sample {
                    engine: id.clone(),
                    metric,
                    t: now_ms.div_euclid(1000),
                    value,
                });
                let Some(band) = r.band else {
                    // A stopped engine has no pressure to speak of: nothing to judge.
                    if let Some(w) = st.watches.get_mut(&(id.clone(), metric))
                        && w.level != Level::Normal
                    {
                        w.level = Level::Normal;
                        w.past_limit = false;
                        notes.push((
                            id.clone(),
                            metric,
                            Level::Normal,
                            "Engine stopped".to_owned(),
                        ));
                    }
                    continue;
                };
                if let Some(rec) = st.recording.as_mut() {
                    rec.add(&id, band, metric, value);
                }
                let stats = st.baselines.get(&(id.clone(), band, metric)).map(|b| b.0);
                let limit = monitor::limit(metric, band, &config);
                let w = st.watches.entry((id.clone(), metric)).or_default();
                let sigma_level = stats.map_or(Level::Normal, |s| {
                    monitor::sigma_level(w.level, s.sigma(value))
                });
                w.past_limit = limit.is_some_and(|l| monitor::past_limit(w.past_limit, l, value));
                let level = if w.past_limit {
                    Level::Critical
                } else {
                    sigma_level
                };
                if level != w.level {
                    let message =
                        describe(&id, metric, band, value, stats, limit, w.past_limit, level);
                    if level > w.level {
                        // A limit is a floor but for temperature, which is a ceiling.
                        let low = if w.past_limit {
                            metric != Metric::Temperature
                        } else {
                            stats.is_some_and(|s| s.sigma(value) < 0.0)
                        };
                        events.push(Event {
                            at_ms: now_ms,
                            engine: id.clone(),
                            kind: "anomaly",
                            metric: Some(metric),
                            level: Some(level),
                            direction: Some(if low { "low" } else { "high" }),
                            message: message.clone(),
                        });
                    }
                    w.level = level;
                    w.since_ms = now_ms;
                    w.message = message.clone();
                    notes.push((id.clone(), metric, level, message));
                }
            }
        }
        if let Some(rec) = &st.recording
            && rec.done(now_ms)
        {
            let rows = rec.finish();
            st.last_result = Some(match self.history.save_baseline(&rows, now_ms) {
                Ok(()) if rows.is_empty() => {
                    "The baseline recording ended without enough engine data; run the engine and record it again.".into()
                }
                Ok(()) => {
                    for (k, s) in &rows {
                        st.baselines.insert(k.clone(), (*s, now_ms));
                    }
                    format!("Baseline recorded: {} values.", rows.len())
                }
                Err(e) => format!("The baseline could not be saved: {e}"),
            });
            st.recording = None;
        }
        for (engine, metric, level, message) in notes {
            let path = format!("notifications.{}", metric.path(&engine));
            let value = json!({
                "state": level.signalk_state(),
                "method": if level >= Level::Warning { json!(["visual", "sound"]) } else { json!(["visual"]) },
                "message": message,
            });
            let source: Arc<str> = "d3kos.engine".into();
            self.model
                .set(&source, None, now_ms, vec![PathValue { path, value }]);
        }
        for e in &events {
            st.events.push_back(e.clone());
            if st.events.len() > MAX_EVENTS {
                st.events.pop_front();
            }
        }
        let flush = if now_ms - st.last_flush_ms >= config.flush_secs as i64 * 1000 {
            st.last_flush_ms = now_ms;
            std::mem::take(&mut st.pending)
        } else {
            vec![]
        };
        (events, flush)
    }

    /// Writes the log entries for `events`.
    pub fn log(&self, events: &[Event]) {
        let Some(log) = &self.boatlog else { return };
        for e in events {
            let worth = match e.kind {
                "anomaly" => e.level >= Some(Level::Warning),
                _ => true,
            };
            if worth {
                log.auto(e.at_ms, e.message.clone());
            }
        }
    }

    pub fn current(&self, now_ms: i64) -> Current {
        let config = self.limits();
        let st = self.state.lock().expect("engine state");
        let engines = st
            .engines
            .iter()
            .filter(|(_, r)| now_ms - r.last_seen_ms <= STALE_MS)
            .map(|(id, r)| EngineNow {
                id: id.clone(),
                running: r.running,
                band: r.band,
                metrics: r
                    .values
                    .iter()
                    .map(|(&metric, &value)| {
                        let stats = r
                            .band
                            .and_then(|b| st.baselines.get(&(id.clone(), b, metric)))
                            .map(|b| b.0);
                        MetricNow {
                            metric,
                            unit: metric.unit(),
                            value,
                            mean: stats.map(|s| s.mean),
                            stddev: stats.map(|s| s.stddev),
                            sigma: stats.map(|s| s.sigma(value)),
                            level: st
                                .watches
                                .get(&(id.clone(), metric))
                                .map_or(Level::Normal, |w| w.level),
                            limit: r.band.and_then(|b| monitor::limit(metric, b, &config)),
                        }
                    })
                    .collect(),
            })
            .collect();
        let alerts = st
            .watches
            .iter()
            .filter(|(_, w)| w.level > Level::Normal)
            .map(|((engine, metric), w)| Alert {
                engine: engine.clone(),
                metric: *metric,
                level: w.level,
                message: w.message.clone(),
                since_ms: w.since_ms,
            })
            .collect();
        let recorded_ms = st.baselines.values().map(|b| b.1).max();
        let mut bands: Vec<_> = st
            .baselines
            .iter()
            .map(|((e, b, m), (s, _))| (e.clone(), *b, *m, *s))
            .collect();
        bands.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        Current {
            engines,
            alerts,
            baseline: BaselineNow {
                state: match (&st.recording, recorded_ms) {
                    (Some(_), _) => "recording",
                    (None, Some(_)) => "ready",
                    (None, None) => "none",
                },
                started_ms: st.recording.as_ref().map(|r| r.started_ms),
                ends_ms: st.recording.as_ref().map(|r| r.ends_ms),
                recorded_ms,
                bands,
                last_result: st.last_result.clone(),
            },
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.state
            .lock()
            .expect("engine state")
            .events
            .iter()
            .cloned()
            .collect()
    }

    pub fn start_baseline(&self, minutes: u32, now_ms: i64) -> Result<BaselineNow, EngineError> {
        if !(baseline::MIN_MINUTES..=baseline::MAX_MINUTES).contains(&minutes) {
            return Err(EngineError::Minutes(minutes));
        }
        {
            let mut st = self.state.lock().expect("engine state");
            if let Some(r) = &st.recording {
                return Err(EngineError::Recording(crate::signalk::timestamp(r.ends_ms)));
            }
            st.recording = Some(Recording::new(now_ms, minutes));
            st.last_result = None;
        }
        Ok(self.current(now_ms).baseline)
    }

    pub fn cancel_baseline(&self) -> Result<(), EngineError> {
        let mut st = self.state.lock().expect("engine state");
        if st.recording.take().is_none() {
            return Err(EngineError::NotRecording);
        }
        st.last_result = Some("The baseline recording was cancelled.".into());
        Ok(())
    }
}

fn stopped(id: &str, r: &Running, now_ms: i64, why: &str) -> Event {
    let mins = (now_ms - r.started_ms).max(0) / 60_000;
    Event {
        at_ms: now_ms,
        engine: id.to_owned(),
        kind: "stopped",
        metric: None,
        level: None,
        direction: None,
        message: format!(
            "{} stopped ({why}) after {} h {:02} min.",
            engine_label(id),
            mins / 60,
            mins % 60
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn describe(
    engine: &str,
    metric: Metric,
    band: Band,
    value: f64,
    stats: Option<Stats>,
    limit: Option<Limit>,
    past_limit: bool,
    level: Level,
) -> String {
    let who = format!(
        "{}: {}",
        engine_label(engine),
        metric.label().to_lowercase()
    );
    if level == Level::Normal {
        return format!("{who} is back to normal {}.", band.label());
    }
    if past_limit && let Some(l) = limit {
        let (word, shown, limit_shown) = match metric {
            Metric::Temperature => (
                "above",
                format!("{:.0} °C", value - 273.15),
                format!("{:.0} °C", l.value - 273.15),
            ),
            _ => (
                "below",
                format!("{:.0} kPa", value / 1000.0),
                format!("{:.0} kPa", l.value / 1000.0),
            ),
        };
        return format!(
            "{} {who} {shown} is {word} its limit of {limit_shown} {}.",
            level.word(),
            band.label()
        );
    }
    match stats {
        Some(s) => {
            let sigma = s.sigma(value);
            format!(
                "{} {who} is {:.1}σ {} its baseline {}.",
                level.word(),
                sigma.abs(),
                if sigma < 0.0 { "below" } else { "above" },
                band.label()
            )
        }
        None => format!("{} {who}.", level.word()),
    }
}

/// Runs the watch once a second until the daemon stops; samples are written off the
/// async threads, under the state folder's write gate.
pub async fn run(
    engine: Arc<Engine>,
    writes: Arc<tokio::sync::RwLock<()>>,
    on_event: impl Fn(&Event) + Send + 'static,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = crate::time::unix_now_ms();
        let (events, samples) = engine.tick(now);
        for e in &events {
            match e.level {
                Some(l) if l >= Level::Warning => log::warn!("engine: {}", e.message),
                _ => log::info!("engine: {}", e.message),
            }
            on_event(e);
        }
        if events.is_empty() && samples.is_empty() {
            continue;
        }
        let gate = writes.clone().read_owned().await;
        let e = engine.clone();
        let written = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            e.log(&events);
            if samples.is_empty() {
                return Ok(());
            }
            e.history.write(&samples, now.div_euclid(1000))
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => log::warn!("engine: history not written: {err}"),
            Err(err) => log::error!("engine: the history writer failed: {err}"),
        }
    }
}
