//! The time zone worker: one task that looks at the vessel's position every `check_secs`,
//! asks the geolocation service while there is no fix, keeps the decision in the state
//! folder, sets the system's zone to it (timedatectl), and sets the clock from NMEA 2000
//! once when it is clearly wrong. The routes read its status and set the owner's override
//! through [`Timezone`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;

use super::clock::{self, Reading};
use super::decide::{Answer, Decider, Decision, Hysteresis, Pending, Source};
use super::keep::{self, Kept, Override};
use super::locate::{self, Position};
use crate::config::TimezoneConfig;
use crate::signalk::Model;
use crate::state::StateError;
use crate::timedate::{self, Change, Property, TimedateError};

/// The zone when nothing has decided one.
pub const DEFAULT_ZONE: &str = "UTC";

/// How long a change the system refused waits before it is tried again.
const RETRY: Duration = Duration::from_secs(600);

/// The time zone concern as every request and the worker share it.
pub struct Timezone {
    config: TimezoneConfig,
    state_dir: PathBuf,
    vessel: Arc<Model>,
    note: Option<Note>,
    writes: Arc<tokio::sync::RwLock<()>>,
    /// The clock is set only from a live bus: a replayed capture's times are not now.
    clock_from_bus: bool,
    /// When this run began: the time of the default decision.
    started_ms: i64,
    /// The zone from Raspberry Pi Imager's settings, the default until something decides.
    imager_zone: Option<String>,
    shared: Mutex<Shared>,
    /// Held while the kept file is written, so the last write is of the latest state.
    saving: Mutex<()>,
    wake: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Shared {
    decider: Decider,
    manual: Option<Override>,
}

/// What the device decided, for `GET /api/timezone`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The decision in force: the override, else the automatic one, else UTC.
    pub decision: Decision,
    /// The owner's zone, when set.
    pub manual: Option<String>,
    pub pending: Option<Pending>,
}

/// Writes one boat log `auto` entry: when, and what.
pub type Note = Arc<dyn Fn(i64, String) + Send + Sync>;

/// What the worker is given besides the configuration.
pub struct Inputs {
    pub state_dir: PathBuf,
    pub vessel: Arc<Model>,
    /// Writes a boat log `auto` entry (at, text): the clock set is logged there.
    pub note: Option<Note>,
    pub writes: Arc<tokio::sync::RwLock<()>>,
    pub clock_from_bus: bool,
    /// The zone the owner gave Raspberry Pi Imager, if any (first boot's summary).
    pub imager_zone: Option<String>,
}

impl Timezone {
    /// Loads the kept decision. What cannot be used (a damaged file, a zone this system's
    /// tz database lacks) is set aside and listed in the returned problems.
    pub fn load(config: TimezoneConfig, inputs: Inputs, now_ms: i64) -> (Timezone, Vec<String>) {
        let mut problems = Vec::new();
        let mut kept =
            keep::load(&inputs.state_dir, (now_ms / 1000).max(0) as u64).unwrap_or_else(|e| {
                problems.push(format!("time zone: {e}"));
                Kept::default()
            });
        if let Some(d) = kept.automatic.take_if(|d| !locate::known(&d.zone)) {
            problems.push(format!(
                "time zone: the kept zone {} is not in this system's tz database; it is \
                 decided again",
                d.zone
            ));
        }
        if let Some(m) = kept.manual.take_if(|m| !locate::known(&m.zone)) {
            problems.push(format!(
                "time zone: the owner's zone {} is not in this system's tz database; set it \
                 again in the settings",
                m.zone
            ));
        }
        for p in &problems {
            log::error!("{p}");
        }
        let tz = Timezone {
            config,
            state_dir: inputs.state_dir,
            vessel: inputs.vessel,
            note: inputs.note,
            writes: inputs.writes,
            clock_from_bus: inputs.clock_from_bus,
            started_ms: now_ms,
            imager_zone: inputs.imager_zone.filter(|z| locate::known(z)),
            shared: Mutex::new(Shared {
                decider: Decider {
                    current: kept.automatic,
                    pending: None,
                },
                manual: kept.manual,
            }),
            saving: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        };
        tz.publish();
        (tz, problems)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("time zone state")
    }

    pub fn status(&self) -> Status {
        let sh = self.shared();
        let decision = match (&sh.manual, &sh.decider.current) {
            (Some(m), _) => Decision {
                zone: m.zone.clone(),
                source: Source::Manual,
                decided_at_ms: m.set_at_ms,
                position: None,
            },
            (None, Some(d)) => d.clone(),
            (None, None) => Decision {
                zone: self
                    .imager_zone
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ZONE.into()),
                source: if self.imager_zone.is_some() {
                    Source::Imager
                } else {
                    Source::Default
                },
                decided_at_ms: self.started_ms,
                position: None,
            },
        };
        Status {
            decision,
            manual: sh.manual.as_ref().map(|m| m.zone.clone()),
            pending: sh.decider.pending.clone(),
        }
    }

    fn kept(&self) -> Kept {
        let sh = self.shared();
        Kept {
            automatic: sh.decider.current.clone(),
            manual: sh.manual.clone(),
        }
    }

    /// Makes the decision in force the appliance's own zone ([`super::boat`]). Until a
    /// source or the owner decides, the appliance follows the system's zone.
    fn publish(&self) {
        let d = self.status().decision;
        let tz = match d.source {
            Source::Default => None,
            _ => TimeZone::get(&d.zone).ok(),
        };
        super::set_boat(tz);
    }

    /// Sets (`Some`) or clears (`None`) the owner's zone, a name the tz database has, and
    /// keeps it. The caller holds the state folder's write gate. When it cannot be kept
    /// nothing changes.
    pub fn set_override(&self, zone: Option<String>, now_ms: i64) -> Result<Status, StateError> {
        {
            let _saving = self.saving.lock().expect("time zone save");
            let before = std::mem::replace(
                &mut self.shared().manual,
                zone.map(|zone| Override {
                    zone,
                    set_at_ms: now_ms,
                }),
            );
            if let Err(e) = keep::save(&self.state_dir, &self.kept()) {
                self.shared().manual = before;
                return Err(e);
            }
        }
        self.publish();
        let s = self.status();
        match &s.manual {
            Some(z) => log::info!("time zone: the owner chose {z}"),
            None => log::info!(
                "time zone: the owner's choice was cleared; {} ({})",
                s.decision.zone,
                source_words(s.decision.source)
            ),
        }
        self.wake.notify_one();
        Ok(s)
    }

    /// Reads the kept decision again: a restore put the state folder back.
    pub fn reload(&self, now_ms: i64) {
        match keep::load(&self.state_dir, (now_ms / 1000).max(0) as u64) {
            Ok(kept) => {
                let mut sh = self.shared();
                sh.decider = Decider {
                    current: kept.automatic.filter(|d| locate::known(&d.zone)),
                    pending: None,
                };
                sh.manual = kept.manual.filter(|m| locate::known(&m.zone));
            }
            Err(e) => log::error!("time zone: the restored decision could not be read: {e}"),
        }
        self.publish();
        self.wake.notify_one();
    }

    /// Takes a source's answer into account; `true` when the automatic decision changed.
    fn answer(&self, a: Answer) -> bool {
        let rule = Hysteresis {
            hold_ms: self.config.hold_secs.saturating_mul(1000) as i64,
            hold_answers: self.config.hold_answers.max(1),
        };
        let (changed, decided, manual) = {
            let mut sh = self.shared();
            let changed = sh.decider.answer(a, rule);
            let decided = sh.decider.current.clone();
            (changed, decided, sh.manual.clone())
        };
        if let (true, Some(d)) = (changed, decided) {
            let words = source_words(d.source);
            match manual {
                None => log::info!("time zone: {} ({words})", d.zone),
                Some(m) => log::info!(
                    "time zone: {} ({words}); the owner's {} stays in force",
                    d.zone,
                    m.zone
                ),
            }
            self.publish();
        }
        changed
    }

    /// Writes the kept decision under the state folder's write gate (after a restore that
    /// is running, not during it).
    async fn persist(self: &Arc<Self>) {
        let gate = self.writes.clone().read_owned().await;
        let me = self.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let _saving = me.saving.lock().expect("time zone save");
            keep::save(&me.state_dir, &me.kept())
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("time zone: the decision was not kept: {e}"),
            Err(e) => log::error!("time zone: the writer stopped: {e}"),
        }
    }

    /// The vessel's position, when it is fresh. A receiver without a fix that sends 0, 0
    /// sends no position.
    fn fix(&self, now_ms: i64) -> Option<Position> {
        let e = self.vessel.get("navigation.position")?;
        let max_age = self.config.fix_max_age_secs.saturating_mul(1000) as i64;
        if (now_ms - e.at_ms).abs() > max_age {
            return None;
        }
        let lat = e.value.get("latitude")?.as_f64()?;
        let lon = e.value.get("longitude")?.as_f64()?;
        if lat == 0.0 && lon == 0.0 {
            return None;
        }
        Position::new(lat, lon).ok()
    }
}

/// "from GPS", for the log.
fn source_words(s: Source) -> &'static str {
    match s {
        Source::Gps => "from the GPS position",
        Source::Internet => "from the geolocation service",
        Source::Manual => "the owner's choice",
        Source::Imager => "from Raspberry Pi Imager's settings",
        Source::Default => "nothing decided yet",
    }
}

/// The system's zone as far as the worker knows it.
#[derive(Debug, Default)]
struct System {
    zone: Option<String>,
    refused: Option<(String, Instant)>,
}

/// The clock's watch.
#[derive(Debug, Default)]
struct ClockWatch {
    latest: Option<Reading>,
    done: bool,
    tried: Option<Instant>,
}

/// Runs until the daemon stops.
pub async fn run(tz: Arc<Timezone>) {
    let mut tick = tokio::time::interval(Duration::from_secs(tz.config.check_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ask_every = Duration::from_secs(tz.config.geolocation_every_mins.max(1) * 60);
    let mut system = System {
        zone: system_zone().await,
        refused: None,
    };
    let mut lookup: Option<tokio::task::JoinHandle<()>> = None;
    let mut asked: Option<Instant> = None;
    let mut clock = ClockWatch::default();
    let mut lookups = super::lookup::Lookups::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tz.wake.notified() => {}
        }
        let now = crate::time::unix_now_ms();
        match tz.fix(now) {
            Some(p) => {
                let answer = Answer {
                    zone: lookups.zone_at(p).await.zone,
                    source: Source::Gps,
                    at_ms: now,
                    position: Some(p),
                };
                if tz.answer(answer) {
                    tz.persist().await;
                }
            }
            None => {
                let idle = lookup.as_ref().is_none_or(|l| l.is_finished());
                let due = asked.is_none_or(|t| t.elapsed() >= ask_every);
                if let Some(url) = &tz.config.geolocation_url
                    && idle
                    && due
                {
                    asked = Some(Instant::now());
                    lookup = Some(tokio::spawn(geolocate(tz.clone(), url.clone())));
                }
            }
        }
        apply(&tz, &mut system).await;
        watch_clock(&tz, &mut clock).await;
    }
}

/// The zone `/etc/localtime` points at; `None` where it cannot be asked.
async fn system_zone() -> Option<String> {
    match timedate::show(Property::Timezone).await {
        Ok(z) => {
            log::info!("time zone: the system's zone is {z}");
            Some(z)
        }
        Err(e @ TimedateError::NotBooted) => {
            log::info!("time zone: {e}");
            None
        }
        Err(e) => {
            log::warn!("time zone: the system's zone could not be read: {e}");
            None
        }
    }
}

/// One question to the geolocation service, off the worker's loop: a service that does
/// not answer holds up nothing.
async fn geolocate(tz: Arc<Timezone>, url: String) {
    let timeout = Duration::from_secs(tz.config.geolocation_timeout_secs.max(1));
    let asked = tokio::task::spawn_blocking(move || super::geolocate::ask(&url, timeout)).await;
    match asked {
        Ok(Ok(zone)) => {
            log::info!("time zone: the geolocation service says {zone}");
            let answer = Answer {
                zone,
                source: Source::Internet,
                at_ms: crate::time::unix_now_ms(),
                position: None,
            };
            if tz.answer(answer) {
                tz.persist().await;
                tz.wake.notify_one();
            }
        }
        Ok(Err(e)) => {
            let d = tz.status().decision;
            log::warn!(
                "time zone: {e}; the zone stays {} ({})",
                d.zone,
                source_words(d.source)
            );
        }
        Err(e) => log::error!("time zone: the geolocation lookup stopped: {e}"),
    }
}

/// Sets the system's zone to the decision in force when it differs: at start (the other
/// A/B slot has its own /etc/localtime) and after every change.
async fn apply(tz: &Timezone, system: &mut System) {
    if !tz.config.apply {
        return;
    }
    let want = tz.status().decision.zone;
    if system.zone.as_deref() == Some(want.as_str()) {
        return;
    }
    if let Some((zone, at)) = &system.refused
        && *zone == want
        && at.elapsed() < RETRY
    {
        return;
    }
    match timedate::set(&Change::Timezone(want.clone())).await {
        Ok(()) => {
            log::info!("time zone: the system's zone is now {want}");
            system.zone = Some(want);
        }
        Err(e @ TimedateError::NotBooted) => {
            log::debug!("time zone: {e}");
            system.zone = Some(want);
        }
        Err(e) => {
            log::warn!("time zone: the system's zone could not be set to {want}: {e}");
            system.refused = Some((want, Instant::now()));
        }
    }
}

/// PGN names for the log.
fn pgn_words(pgn: u32) -> &'static str {
    match pgn {
        126_992 => "System Time, PGN 126992",
        129_029 => "GNSS Position Data, PGN 129029",
        _ => "NMEA 2000",
    }
}

/// Sets the clock from the bus when the rule in [`clock`] says so; once a run.
async fn watch_clock(tz: &Timezone, w: &mut ClockWatch) {
    if w.done || !tz.config.set_clock || !tz.clock_from_bus {
        return;
    }
    let Some(r) = tz
        .vessel
        .get("navigation.datetime")
        .and_then(|e| Reading::of(&e))
    else {
        return;
    };
    if w.latest == Some(r) {
        return;
    }
    let earlier = w.latest.replace(r);
    if clock::correct_now(earlier, r, crate::time::unix_now_ms()).is_none()
        || w.tried.is_some_and(|t| t.elapsed() < RETRY)
    {
        return;
    }
    w.tried = Some(Instant::now());
    let off = clock::describe(r.error_ms());
    let from = pgn_words(r.pgn);
    match timedate::show(Property::NtpSynchronized).await {
        Ok(synced) if synced == "yes" => {
            log::info!(
                "clock: {off} by NMEA 2000 time ({from}), but systemd-timesyncd has \
                 synchronised it: left alone"
            );
            w.done = true;
            return;
        }
        Ok(_) => {}
        Err(e @ TimedateError::NotBooted) => {
            log::info!("clock: {off} by NMEA 2000 time ({from}); {e}");
            w.done = true;
            return;
        }
        Err(e) => {
            log::warn!("clock: whether it is synchronised could not be read: {e}");
            return;
        }
    }
    let Ok(bus_time) = jiff::Timestamp::from_millisecond(r.time_ms) else {
        return;
    };
    match set_clock(bus_time, r.received_ms).await {
        Ok(()) => {
            w.done = true;
            let text = format!("Clock set from NMEA 2000 time ({from}): it had been {off}.");
            log::info!("clock: {text}");
            if let Some(note) = tz.note.clone() {
                let gate = tz.writes.clone().read_owned().await;
                let written = tokio::task::spawn_blocking(move || {
                    let _gate = gate;
                    note(crate::time::unix_now_ms(), text);
                })
                .await;
                if let Err(e) = written {
                    log::warn!("clock: the boat log entry was not written: {e}");
                }
            }
        }
        Err(e) => log::warn!("clock: it could not be set from NMEA 2000 time: {e}"),
    }
}

/// Sets the clock to `bus_time` plus the time since it was received: systemd-timesyncd
/// off (timedated refuses to set the time while it is on), the time, and timesyncd on
/// again whatever happened, to refine it when there is a network.
async fn set_clock(bus_time: jiff::Timestamp, received_ms: i64) -> Result<(), TimedateError> {
    timedate::set(&Change::Ntp(false)).await?;
    let since = jiff::SignedDuration::from_millis(crate::time::unix_now_ms() - received_ms);
    let now = bus_time.checked_add(since).unwrap_or(bus_time);
    let set = timedate::set(&Change::Time(now)).await;
    let ntp = timedate::set(&Change::Ntp(true)).await;
    set.and(ntp)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::signalk::from_n2k::PathValue;

    fn timezone(dir: &Path, now_ms: i64) -> (Timezone, Vec<String>) {
        Timezone::load(
            TimezoneConfig::default(),
            Inputs {
                state_dir: dir.to_owned(),
                vessel: Arc::new(Model::new("0f0e")),
                note: None,
                writes: Arc::default(),
                clock_from_bus: false,
                imager_zone: None,
            },
            now_ms,
        )
    }

    fn gps(zone: &str, at_ms: i64) -> Answer {
        Answer {
            zone: zone.into(),
            source: Source::Gps,
            at_ms,
            position: Some(Position {
                latitude: 54.32,
                longitude: 10.14,
            }),
        }
    }

    #[test]
    fn the_override_wins_is_kept_and_clearing_it_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let (tz, problems) = timezone(dir.path(), 1_000);
        assert!(problems.is_empty());
        let s = tz.status();
        assert_eq!(
            (
                s.decision.zone.as_str(),
                s.decision.source,
                s.decision.decided_at_ms
            ),
            ("UTC", Source::Default, 1_000)
        );
        assert!(tz.answer(gps("Europe/Berlin", 2_000)));
        let s = tz
            .set_override(Some("Pacific/Auckland".into()), 3_000)
            .unwrap();
        assert_eq!(s.decision.source, Source::Manual);
        assert_eq!(s.decision.zone, "Pacific/Auckland");
        assert_eq!(s.manual.as_deref(), Some("Pacific/Auckland"));
        // A fix meanwhile changes the automatic decision, not the zone in force.
        assert!(!tz.answer(gps("Europe/Berlin", 4_000)));
        assert_eq!(tz.status().decision.zone, "Pacific/Auckland");

        let (again, problems) = timezone(dir.path(), 5_000);
        assert!(problems.is_empty());
        assert_eq!(again.status(), tz.status());
        let s = again.set_override(None, 6_000).unwrap();
        assert_eq!(
            (
                s.decision.zone.as_str(),
                s.decision.source,
                s.decision.decided_at_ms
            ),
            ("Europe/Berlin", Source::Gps, 2_000)
        );
        assert_eq!(s.manual, None);
        super::super::set_boat(None);
    }

    #[test]
    fn kept_zones_the_tz_database_lacks_are_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(keep::FILE_NAME),
            json!({
                "automatic": {"zone": "Atlantis/Poseidonia", "source": "gps",
                              "decided_at_ms": 1, "position": null},
                "override": {"zone": "Mars/Olympus_Mons", "set_at_ms": 2},
            })
            .to_string(),
        )
        .unwrap();
        let (tz, problems) = timezone(dir.path(), 1_000);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Atlantis/Poseidonia"), "{problems:?}");
        assert!(problems[1].contains("Mars/Olympus_Mons"), "{problems:?}");
        assert_eq!(tz.status().decision.source, Source::Default);
    }

    #[test]
    fn only_a_fresh_real_fix_is_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let (tz, _) = timezone(dir.path(), 0);
        let now = 1_780_000_000_000;
        assert_eq!(tz.fix(now), None);
        let set = |lat: f64, lon: f64, at_ms: i64| {
            tz.vessel.set(
                &"can0.3".into(),
                Some(129_025),
                at_ms,
                vec![PathValue {
                    path: "navigation.position".into(),
                    value: json!({"latitude": lat, "longitude": lon}),
                }],
            )
        };
        set(42.478308, -71.4232898, now - 2_000);
        assert_eq!(
            tz.fix(now),
            Some(Position {
                latitude: 42.478308,
                longitude: -71.4232898
            })
        );
        assert_eq!(tz.fix(now + 9_000), None, "eleven seconds old");
        set(0.0, 0.0, now);
        assert_eq!(tz.fix(now), None, "a receiver without a fix");
        set(91.0, 0.0, now);
        assert_eq!(tz.fix(now), None);
    }
}
