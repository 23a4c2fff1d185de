//! What every request shares: the configuration, the licence, the accounts, the latest
//! health sample, the running backup job, and the gate that keeps writers of the state
//! folder out while a restore swaps it.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Mutex, RwLock, RwLockReadGuard};

use super::hosts::HostNames;
use crate::api::ApiError;
use crate::auth::Auth;
use crate::backup::jobs::Jobs;
use crate::boatlog::Boatlog;
use crate::config::Config;
use crate::export::worker::Exports;
use crate::licence::Licence;

pub struct AppState {
    pub config: Config,
    pub licence: Mutex<Licence>,
    pub auth: Auth,
    pub health: Arc<crate::health::Latest>,
    pub problems: Vec<String>,
    pub backup_jobs: Arc<Jobs>,
    /// The update being installed, if one is.
    pub update: Arc<crate::update::client::Installing>,
    /// Held shared by each write to the state folder, exclusively by a restore. Signing
    /// in never takes it: a restore never keeps the owner out.
    pub writes: Arc<RwLock<()>>,
    /// The names this device answers to.
    pub hosts: HostNames,
    pub boatlog: Boatlog,
    pub exports: Arc<Exports>,
    /// The vessel's live data (Signal K).
    pub vessel: Arc<crate::signalk::Model>,
    /// The engine watch: history, baseline, alerts.
    pub engine: Arc<crate::engine::worker::Engine>,
    /// What NMEA 2000 ingest has seen.
    pub n2k: crate::n2k::ingest::Shared,
    /// The self-healing rules, their record and the problems open now.
    pub healing: Arc<crate::healing::worker::Healing>,
    /// When the helm screen last asked for anything (its kiosk is restarted when it never does).
    pub helm_seen: Arc<crate::helm::Seen>,
    /// The setup Wi-Fi's credentials; `None` where there is no data partition to keep them.
    pub setup_wifi: Mutex<Option<crate::wifi::SetupWifi>>,
    /// The boat's time zone: the decision, its sources and the owner's override.
    pub timezone: Arc<crate::timezone::worker::Timezone>,
    /// The setup wizard's progress and answers.
    pub onboarding: crate::onboarding::store::Store,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Loads the state folder. Files that cannot be read are moved aside and listed in
    /// `problems`, which the log and /api/health report.
    pub fn load(config: Config) -> anyhow::Result<Shared> {
        use anyhow::Context;
        let now = crate::time::unix_now().max(0) as u64;
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "while creating the state folder {}",
                config.state_dir.display()
            )
        })?;
        crate::release::load(&config.etc_dir);
        let mut problems = Vec::new();
        // A restore cut off by a power cut is finished or undone before anything reads the
        // state folder.
        problems.extend(
            crate::backup::recover(
                &crate::backup::Paths::of(&config),
                &crate::backup::Limits::of(&config.backup),
            )
            .into_iter()
            .map(|line| format!("backup: {line}")),
        );
        let (licence, p) = Licence::load_or_create(&config.state_dir, config.tier, now)
            .context("while loading the licence")?;
        problems.extend(p);
        let (auth, p) = Auth::load(&config.state_dir, &config.setup_code_file, now)
            .context("while loading the accounts")?;
        problems.extend(p);
        // What first boot could not apply of the owner's Raspberry Pi Imager settings.
        let imager = crate::firstboot::imager::Summary::load(&config.data_dir).unwrap_or_default();
        problems.extend(
            imager
                .problems
                .iter()
                .map(|p| format!("Raspberry Pi Imager settings: {p}")),
        );
        let setup_wifi = setup_wifi(&config, &licence.installation_id, &mut problems);
        for p in &problems {
            log::error!("{p}");
        }
        let hosts = HostNames::of_this_device(&config.server.host_names);
        let boatlog = Boatlog::in_state(&config.state_dir);
        // A log this version cannot read is reported, and left as it is.
        if let Err(e) = boatlog.open() {
            problems.push(format!("boat log: {e}"));
            log::error!("boat log: {e}");
        }
        let exports = Arc::new(Exports {
            queue: crate::export::Queue::in_dir(&config.export.dir),
            sources: crate::export::deliver::Sources {
                boatlog: boatlog.clone(),
                engine: crate::engine::history::History::at(&config.state_dir.join("engine.db")),
                backups: crate::backup::Paths::of(&config),
                media: crate::backup::media::Roots::system(&config.backup.media_dir),
                uploads: config.export.upload.clone(),
                files: config.export.dir.join("files"),
            },
            retry_secs: config.export.retry_secs.clone(),
            progress: Default::default(),
            wake: Default::default(),
        });
        let uuid = crate::signalk::vessel_uuid(&config.state_dir)
            .context("while reading the vessel's Signal K id")?;
        let vessel = Arc::new(crate::signalk::Model::new(&uuid));
        let engine = {
            use crate::engine::{history::History, worker::Engine};
            let history = || History::at(&config.state_dir.join("engine.db"));
            let (c, log) = (config.engine.clone(), Some(boatlog.clone()));
            // History this version cannot read is reported and left as it is; the engine
            // is still watched, against the hard limits.
            match Engine::new(c.clone(), history(), vessel.clone(), log.clone()) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("engine history: {e}"));
                    log::error!("engine history: {e}");
                    Engine::without_baselines(c, history(), vessel.clone(), log)
                }
            }
        };
        let engine = Arc::new(engine);
        let n2k = crate::n2k::ingest::Shared::default();
        let writes: Arc<RwLock<()>> = Arc::default();
        let healing = {
            use crate::healing::{clean::Targets, rules::Rules, worker};
            // A rules file that cannot be used stops the start, as appliance.toml does: the
            // owner asked for rules the device cannot keep.
            let rules = Rules::load(&config.healing.rules)?;
            let bus_interface = (config.n2k.replay.is_none() && !config.n2k.interface.is_empty())
                .then(|| config.n2k.interface.clone());
            Arc::new(worker::Healing::new(
                rules,
                config.state_dir.clone(),
                Some(boatlog.clone()),
                Targets {
                    exports: exports.clone(),
                    backups: crate::backup::Paths::of(&config),
                    limits: crate::backup::Limits::of(&config.backup),
                    journal_dir: "/var/log/journal".into(),
                    apt_cache_dir: "/var/cache/apt/archives".into(),
                },
                worker::Sources {
                    probe_root: config.healing.probe_root.clone(),
                    n2k: n2k.clone(),
                    bus_interface,
                    engine: Some(engine.clone()),
                },
                writes.clone(),
            ))
        };
        let timezone = {
            use crate::timezone::worker::{Inputs, Timezone};
            let (tz, p) = Timezone::load(
                config.timezone.clone(),
                Inputs {
                    state_dir: config.state_dir.clone(),
                    vessel: vessel.clone(),
                    note: Some({
                        let log = boatlog.clone();
                        Arc::new(move |at, text| log.auto(at, text))
                    }),
                    writes: writes.clone(),
                    clock_from_bus: config.n2k.replay.is_none(),
                    imager_zone: imager.timezone.clone(),
                },
                crate::time::unix_now_ms(),
            );
            problems.extend(p);
            Arc::new(tz)
        };
        let onboarding = crate::onboarding::store::Store::in_state(&config.state_dir);
        let state = Arc::new(AppState {
            config,
            licence: Mutex::new(licence),
            auth,
            health: Arc::default(),
            problems,
            backup_jobs: Arc::default(),
            update: Arc::default(),
            writes,
            hosts,
            boatlog,
            exports,
            vessel,
            engine,
            n2k,
            healing,
            timezone,
            setup_wifi: Mutex::new(setup_wifi),
            helm_seen: Arc::default(),
            onboarding,
        });
        state.apply_engine_limits();
        Ok(state)
    }

    /// Gives the engine monitor the limits the setup wizard's answers set (the configured
    /// ones while it is not finished). Called at the start, and after anything that changes
    /// the answers: a save, a reset, a restore.
    pub fn apply_engine_limits(&self) {
        match self.onboarding.load() {
            Ok(p) => self.apply_engine_limits_of(&p),
            Err(e) => log::error!("the setup wizard's answers could not be read: {e}"),
        }
    }

    /// [`Self::apply_engine_limits`] with the progress already in hand.
    pub fn apply_engine_limits_of(&self, p: &crate::onboarding::store::Progress) {
        self.engine
            .set_limits(crate::onboarding::limits::engine_config(
                p,
                &self.config.engine,
            ));
    }

    /// Leave to write to the state folder, refused while a restore is swapping it.
    pub fn writing(&self) -> Result<RwLockReadGuard<'_, ()>, ApiError> {
        self.writes.try_read().map_err(|_| {
            ApiError::conflict(
                "A restore is putting the boat's data back right now: nothing was changed. Try again in a minute.",
            )
        })
    }
}

/// The setup Wi-Fi's credentials, made on the first start, and their copy on the config
/// partition. Only where the data partition is mounted: a daemon run elsewhere (a test, a
/// developer's machine) makes no folders at `data_dir`.
fn setup_wifi(
    config: &Config,
    installation_id: &str,
    problems: &mut Vec<String>,
) -> Option<crate::wifi::SetupWifi> {
    if !config.data_dir.is_dir() {
        return None;
    }
    let w = match crate::wifi::SetupWifi::load_or_make(&config.data_dir, installation_id) {
        Ok((w, p)) => {
            problems.extend(p);
            w
        }
        Err(e) => {
            problems.push(format!("setup Wi-Fi: {e}"));
            return None;
        }
    };
    let card = &config.setup_wifi_file;
    if card.parent().is_some_and(Path::is_dir)
        && let Err(e) = w.write_card(card)
    {
        log::warn!("could not write the setup Wi-Fi to {}: {e}", card.display());
    }
    Some(w)
}
