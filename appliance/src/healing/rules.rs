//! The healing rules file (`/etc/d3kos/healing.toml`): what is watched, the thresholds, and
//! the one safe action each rule may take. Every key is optional; unknown keys, negative
//! thresholds and actions outside a rule's safe list are refused with file, line and key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// What a rule may do about what it sees. Engine problems are only ever reported: the
/// device never "fixes" an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `systemctl restart` the unit, at most `max_restarts_per_hour` times an hour.
    RestartUnit,
    /// Free space from the known-safe targets only (journal, apt cache, exports beyond
    /// their retention, backups beyond `keep`).
    CleanDisk,
    /// Bring the CAN interface down and up.
    RestartCan,
    /// Tell the owner; nothing else.
    Notify,
    /// Tell the owner, with the likely causes and what to check.
    Report,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RestartUnit => "restart_unit",
            Action::CleanDisk => "clean_disk",
            Action::RestartCan => "restart_can",
            Action::Notify => "notify",
            Action::Report => "report",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        [
            Action::RestartUnit,
            Action::CleanDisk,
            Action::RestartCan,
            Action::Notify,
            Action::Report,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The rules, by the name they have in the file and in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    UnitFailed,
    DiskSpace,
    CpuTemperature,
    Throttling,
    MemoryPressure,
    CanBus,
    N2kSilent,
    Engine,
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("there is no rule `{s}`")))
    }
}

impl RuleId {
    pub const ALL: [RuleId; 8] = [
        RuleId::UnitFailed,
        RuleId::DiskSpace,
        RuleId::CpuTemperature,
        RuleId::Throttling,
        RuleId::MemoryPressure,
        RuleId::CanBus,
        RuleId::N2kSilent,
        RuleId::Engine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::UnitFailed => "unit_failed",
            RuleId::DiskSpace => "disk_space",
            RuleId::CpuTemperature => "cpu_temperature",
            RuleId::Throttling => "throttling",
            RuleId::MemoryPressure => "memory_pressure",
            RuleId::CanBus => "can_bus",
            RuleId::N2kSilent => "n2k_silent",
            RuleId::Engine => "engine",
        }
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// For people: what the rule watches.
    pub fn title(self) -> &'static str {
        match self {
            RuleId::UnitFailed => "A service failed or keeps restarting",
            RuleId::DiskSpace => "Little free space on the data or system partition",
            RuleId::CpuTemperature => "The processor runs hot",
            RuleId::Throttling => "Under-voltage or throttling",
            RuleId::MemoryPressure => "Memory pressure",
            RuleId::CanBus => "The NMEA 2000 interface is down",
            RuleId::N2kSilent => "No NMEA 2000 data while the engine runs",
            RuleId::Engine => "Engine alerts",
        }
    }

    /// The actions this rule may be given: its safe list, the first the default.
    pub fn safe_actions(self) -> &'static [Action] {
        match self {
            RuleId::UnitFailed => &[Action::RestartUnit, Action::Notify],
            RuleId::DiskSpace => &[Action::CleanDisk, Action::Notify],
            RuleId::CanBus => &[Action::RestartCan, Action::Notify],
            RuleId::N2kSilent => &[Action::Notify, Action::RestartCan],
            RuleId::CpuTemperature | RuleId::Throttling | RuleId::MemoryPressure => {
                &[Action::Notify]
            }
            RuleId::Engine => &[Action::Report],
        }
    }
}

/// The rules as the daemon runs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub check_every_secs: u64,
    pub unit_failed: UnitFailed,
    pub disk_space: DiskSpace,
    pub cpu_temperature: CpuTemperature,
    pub throttling: Throttling,
    pub memory_pressure: MemoryPressure,
    pub can_bus: CanBus,
    pub n2k_silent: N2kSilent,
    pub engine: Engine,
    pub diagnosis: Diagnosis,
}

/// What every rule has: whether it runs, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Common {
    pub enabled: bool,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitFailed {
    pub common: Common,
    /// The units watched.
    pub units: Vec<String>,
    /// A unit restarted this many times by systemd within `loop_window_secs` is in a loop.
    pub loop_restarts: u32,
    pub loop_window_secs: u64,
    /// The restarts this rule makes per unit in any hour; then it gives up and escalates.
    pub max_restarts_per_hour: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskSpace {
    pub common: Common,
    /// The mount points watched: the data and system partitions.
    pub mounts: Vec<String>,
    /// Below this share of free space, in percent, the partition is short of space.
    pub min_free_percent: f64,
    /// The journal is vacuumed down to this size, in MiB.
    pub journal_keep_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuTemperature {
    pub common: Common,
    pub max_c: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throttling {
    pub common: Common,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPressure {
    pub common: Common,
    /// Above this share of the last minute with some task stalled on memory (PSI
    /// `some avg60`), in percent.
    pub max_some_avg60: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanBus {
    pub common: Common,
    pub max_restarts_per_hour: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct N2kSilent {
    pub common: Common,
    /// No NMEA 2000 message for this long while the engine was running.
    pub after_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Engine {
    pub common: Common,
    /// The lowest engine alert level reported: `info`, `warning` or `critical`.
    pub min_level: crate::engine::Level,
}

/// An optional remote diagnosis service, asked for a second opinion on a problem. Off
/// unless a URL is set; it never holds up an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub url: Option<String>,
    pub timeout_secs: u64,
}

impl Default for Rules {
    fn default() -> Self {
        let common = |id: RuleId| Common {
            enabled: true,
            action: id.safe_actions()[0],
        };
        Rules {
            check_every_secs: 30,
            unit_failed: UnitFailed {
                common: common(RuleId::UnitFailed),
                units: [
                    "systemd-networkd.service",
                    "systemd-timesyncd.service",
                    "ssh.service",
                ]
                .map(String::from)
                .to_vec(),
                loop_restarts: 3,
                loop_window_secs: 300,
                max_restarts_per_hour: 3,
            },
            disk_space: DiskSpace {
                common: common(RuleId::DiskSpace),
                mounts: vec!["/data".into(), "/".into()],
                min_free_percent: 10.0,
                journal_keep_mib: 16,
            },
            cpu_temperature: CpuTemperature {
                common: common(RuleId::CpuTemperature),
                max_c: 80.0,
            },
            throttling: Throttling {
                common: common(RuleId::Throttling),
            },
            memory_pressure: MemoryPressure {
                common: common(RuleId::MemoryPressure),
                max_some_avg60: 20.0,
            },
            can_bus: CanBus {
                common: common(RuleId::CanBus),
                max_restarts_per_hour: 6,
            },
            n2k_silent: N2kSilent {
                common: common(RuleId::N2kSilent),
                after_secs: 30,
            },
            engine: Engine {
                common: common(RuleId::Engine),
                min_level: crate::engine::Level::Warning,
            },
            diagnosis: Diagnosis {
                url: None,
                timeout_secs: 5,
            },
        }
    }
}

impl Rules {
    pub fn common(&self, id: RuleId) -> Common {
        match id {
            RuleId::UnitFailed => self.unit_failed.common,
            RuleId::DiskSpace => self.disk_space.common,
            RuleId::CpuTemperature => self.cpu_temperature.common,
            RuleId::Throttling => self.throttling.common,
            RuleId::MemoryPressure => self.memory_pressure.common,
            RuleId::CanBus => self.can_bus.common,
            RuleId::N2kSilent => self.n2k_silent.common,
            RuleId::Engine => self.engine.common,
        }
    }

    /// Reads the file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Rules::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Rules::default()),
            Err(source) => Err(RulesError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Rules, RulesError> {
        let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        let file: File = toml::from_str(text).map_err(|e| RulesError::Invalid {
            path: path.to_owned(),
            line: line_of(e.span().map_or(0, |s| s.start)),
            key: None,
            message: e.message().trim_end().to_owned(),
        })?;
        let bad =
            |key: String, span: std::ops::Range<usize>, message: String| RulesError::Invalid {
                path: path.to_owned(),
                line: line_of(span.start),
                key: Some(key),
                message,
            };
        let mut rules = Rules::default();
        if let Some(v) = file.check_every_secs {
            if !(5..=3600).contains(v.get_ref()) {
                return Err(bad(
                    "check_every_secs".into(),
                    v.span(),
                    format!("{} s is out of range: check every 5 to 3600 s", v.get_ref()),
                ));
            }
            rules.check_every_secs = *v.get_ref() as u64;
        }
        let r = file.rules;
        let d = &mut rules;
        common(
            &mut d.unit_failed.common,
            RuleId::UnitFailed,
            r.unit_failed.c(),
            &bad,
        )?;
        if let Some(u) = r.unit_failed.units.clone() {
            d.unit_failed.units = u;
        }
        count(
            &mut d.unit_failed.loop_restarts,
            "rules.unit_failed.loop_restarts",
            &r.unit_failed.loop_restarts,
            1,
            &bad,
        )?;
        secs(
            &mut d.unit_failed.loop_window_secs,
            "rules.unit_failed.loop_window_secs",
            &r.unit_failed.loop_window_secs,
            &bad,
        )?;
        count(
            &mut d.unit_failed.max_restarts_per_hour,
            "rules.unit_failed.max_restarts_per_hour",
            &r.unit_failed.max_restarts_per_hour,
            0,
            &bad,
        )?;

        common(
            &mut d.disk_space.common,
            RuleId::DiskSpace,
            r.disk_space.c(),
            &bad,
        )?;
        if let Some(m) = r.disk_space.mounts.clone() {
            d.disk_space.mounts = m;
        }
        percent(
            &mut d.disk_space.min_free_percent,
            "rules.disk_space.min_free_percent",
            &r.disk_space.min_free_percent,
            &bad,
        )?;
        if let Some(v) = &r.disk_space.journal_keep_mib {
            let mib = *v.get_ref();
            if !(1..=4096).contains(&mib) {
                return Err(bad(
                    "rules.disk_space.journal_keep_mib".into(),
                    v.span(),
                    format!("{mib} MiB is out of range: keep 1 to 4096 MiB of journal"),
                ));
            }
            d.disk_space.journal_keep_mib = mib as u64;
        }

        common(
            &mut d.cpu_temperature.common,
            RuleId::CpuTemperature,
            r.cpu_temperature.c(),
            &bad,
        )?;
        if let Some(v) = &r.cpu_temperature.max_c {
            let c = *v.get_ref();
            if !(c.is_finite() && (0.0..=125.0).contains(&c)) {
                return Err(bad(
                    "rules.cpu_temperature.max_c".into(),
                    v.span(),
                    format!("{c} °C is not a processor temperature limit: use 0 to 125"),
                ));
            }
            d.cpu_temperature.max_c = c;
        }
        common(
            &mut d.throttling.common,
            RuleId::Throttling,
            r.throttling.c(),
            &bad,
        )?;
        common(
            &mut d.memory_pressure.common,
            RuleId::MemoryPressure,
            r.memory_pressure.c(),
            &bad,
        )?;
        percent(
            &mut d.memory_pressure.max_some_avg60,
            "rules.memory_pressure.max_some_avg60",
            &r.memory_pressure.max_some_avg60,
            &bad,
        )?;
        common(&mut d.can_bus.common, RuleId::CanBus, r.can_bus.c(), &bad)?;
        count(
            &mut d.can_bus.max_restarts_per_hour,
            "rules.can_bus.max_restarts_per_hour",
            &r.can_bus.max_restarts_per_hour,
            0,
            &bad,
        )?;
        common(
            &mut d.n2k_silent.common,
            RuleId::N2kSilent,
            r.n2k_silent.c(),
            &bad,
        )?;
        secs(
            &mut d.n2k_silent.after_secs,
            "rules.n2k_silent.after_secs",
            &r.n2k_silent.after_secs,
            &bad,
        )?;
        common(&mut d.engine.common, RuleId::Engine, r.engine.c(), &bad)?;
        if let Some(v) = &r.engine.min_level {
            d.engine.min_level = match v.get_ref().as_str() {
                "info" => crate::engine::Level::Info,
                "warning" => crate::engine::Level::Warning,
                "critical" => crate::engine::Level::Critical,
                other => {
                    return Err(bad(
                        "rules.engine.min_level".into(),
                        v.span(),
                        format!("`{other}` is not a level: use info, warning or critical"),
                    ));
                }
            };
        }
        if let Some(dg) = file.diagnosis {
            if let Some(u) = dg.url {
                let url = u.get_ref().trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad(
                        "diagnosis.url".into(),
                        u.span(),
                        format!("`{url}` is not an http:// or https:// address"),
                    ));
                }
                d.diagnosis.url = Some(url.to_owned());
            }
            if let Some(t) = dg.timeout_secs {
                if !(1..=30).contains(t.get_ref()) {
                    return Err(bad(
                        "diagnosis.timeout_secs".into(),
                        t.span(),
                        format!("{} s: the diagnosis may take 1 to 30 s", t.get_ref()),
                    ));
                }
                d.diagnosis.timeout_secs = *t.get_ref() as u64;
            }
        }
        Ok(rules)
    }
}

type Bad<'a> = dyn Fn(String, std::ops::Range<usize>, String) -> RulesError + 'a;

fn common(
    out: &mut Common,
    id: RuleId,
    given: CommonFile<'_>,
    bad: &Bad,
) -> Result<(), RulesError> {
    if let Some(e) = given.enabled {
        out.enabled = e;
    }
    if let Some(a) = given.action {
        let key = format!("rules.{}.action", id.as_str());
        let allowed = id
            .safe_actions()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let action = Action::parse(a.get_ref())
            .filter(|x| id.safe_actions().contains(x))
            .ok_or_else(|| {
                bad(
                    key,
                    a.span(),
                    format!(
                        "`{}` is not in this rule's safe list: it may only {allowed}",
                        a.get_ref()
                    ),
                )
            })?;
        out.action = action;
    }
    Ok(())
}

/// A whole number that may be given as a negative in the file, refused by name.
fn count(
    out: &mut u32,
    key: &str,
    given: &Option<Spanned<i64>>,
    min: i64,
    bad: &Bad,
) -> Result<(), RulesError> {
    if let Some(v) = given {
        let n = *v.get_ref();
        if n < min || n > 1000 {
            return Err(bad(
                key.into(),
                v.span(),
                format!("{n} is out of range: use {min} to 1000"),
            ));
        }
        *out = n as u32;
    }
    Ok(())
}

fn secs(
    out: &mut u64,
    key: &str,
    given: &Option<Spanned<i64>>,
    bad: &Bad,
) -> Result<(), RulesError> {
    if let Some(v) = given {
        let n = *v.get_ref();
        if !(1..=86_400).contains(&n) {
            return Err(bad(
                key.into(),
                v.span(),
                format!("{n} s is out of range: use 1 to 86400 s"),
            ));
        }
        *out = n as u64;
    }
    Ok(())
}

fn percent(
    out: &mut f64,
    key: &str,
    given: &Option<Spanned<f64>>,
    bad: &Bad,
) -> Result<(), RulesError> {
    if let Some(v) = given {
        let p = *v.get_ref();
        if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
            let why = if p < 0.0 {
                "a threshold cannot be negative"
            } else {
                "it is not a percentage"
            };
            return Err(bad(
                key.into(),
                v.span(),
                format!("{p}: {why}; use 0 to 100"),
            ));
        }
        *out = p;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read the healing rules {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {}{message}", path.display(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: Option<String>,
        message: String,
    },
}

// The file as written: numbers signed and spanned, so a negative is refused by its key and
// line rather than by a type error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    check_every_secs: Option<Spanned<i64>>,
    #[serde(default)]
    rules: RulesFile,
    diagnosis: Option<DiagnosisFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DiagnosisFile {
    url: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RulesFile {
    unit_failed: UnitFailedFile,
    disk_space: DiskSpaceFile,
    cpu_temperature: CpuTemperatureFile,
    throttling: ThrottlingFile,
    memory_pressure: MemoryPressureFile,
    can_bus: CanBusFile,
    n2k_silent: N2kSilentFile,
    engine: EngineFile,
}

/// What every rule has in the file.
struct CommonFile<'a> {
    enabled: Option<bool>,
    action: &'a Option<Spanned<String>>,
}

/// One rule's table: `enabled` and `action`, and its own keys. (serde's `flatten` would
/// lose both the spans and the refusal of unknown keys.)
macro_rules! rule_file {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct $name {
            enabled: Option<bool>,
            action: Option<Spanned<String>>,
            $($field: Option<$ty>,)*
        }

        impl $name {
            fn c(&self) -> CommonFile<'_> {
                CommonFile { enabled: self.enabled, action: &self.action }
            }
        }
    };
}

rule_file!(UnitFailedFile {
    units: Vec<String>,
    loop_restarts: Spanned<i64>,
    loop_window_secs: Spanned<i64>,
    max_restarts_per_hour: Spanned<i64>,
});
rule_file!(DiskSpaceFile {
    mounts: Vec<String>,
    min_free_percent: Spanned<f64>,
    journal_keep_mib: Spanned<i64>,
});
rule_file!(CpuTemperatureFile { max_c: Spanned<f64> });
rule_file!(ThrottlingFile {});
rule_file!(MemoryPressureFile { max_some_avg60: Spanned<f64> });
rule_file!(CanBusFile { max_restarts_per_hour: Spanned<i64> });
rule_file!(N2kSilentFile { after_secs: Spanned<i64> });
rule_file!(EngineFile { min_level: Spanned<String> });

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rules, String> {
        Rules::parse(Path::new("/etc/d3kos/healing.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn no_file_and_an_empty_file_are_the_defaults() {
        assert_eq!(
            Rules::load(Path::new("/nonexistent/healing.toml")).unwrap(),
            Rules::default()
        );
        assert_eq!(parse("").unwrap(), Rules::default());
    }

    #[test]
    fn the_file_sets_thresholds_actions_and_switches() {
        let r = parse(
            "check_every_secs = 5\n[rules.unit_failed]\nunits = [\"flaky.service\"]\nmax_restarts_per_hour = 2\n\
             [rules.disk_space]\naction = \"notify\"\nmin_free_percent = 25.5\n[rules.throttling]\nenabled = false\n\
             [rules.engine]\nmin_level = \"critical\"\n[diagnosis]\nurl = \"http://127.0.0.1:9/ask\"\ntimeout_secs = 2\n",
        )
        .unwrap();
        assert_eq!(r.check_every_secs, 5);
        assert_eq!(r.unit_failed.units, vec!["flaky.service".to_owned()]);
        assert_eq!(r.unit_failed.max_restarts_per_hour, 2);
        assert_eq!(r.disk_space.common.action, Action::Notify);
        assert_eq!(r.disk_space.min_free_percent, 25.5);
        assert!(!r.throttling.common.enabled);
        assert_eq!(r.engine.min_level, crate::engine::Level::Critical);
        assert_eq!(r.diagnosis.url.as_deref(), Some("http://127.0.0.1:9/ask"));
    }

    #[test]
    fn an_unknown_key_is_refused_with_file_line_and_key() {
        let e = parse("[rules.disk_space]\nmin_free_percent = 10\ncolour = \"red\"\n").unwrap_err();
        assert!(
            e.starts_with("/etc/d3kos/healing.toml:3:") && e.contains("colour"),
            "{e}"
        );
        let e = parse("[rules.reboot_everything]\nenabled = true\n").unwrap_err();
        assert!(e.contains(":1:") && e.contains("reboot_everything"), "{e}");
    }

    #[test]
    fn a_negative_threshold_is_refused_with_file_line_and_key() {
        let e = parse("[rules.disk_space]\n\nmin_free_percent = -5\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/d3kos/healing.toml:3: rules.disk_space.min_free_percent: -5: a threshold \
             cannot be negative; use 0 to 100"
        );
        let e = parse("[rules.unit_failed]\nmax_restarts_per_hour = -1\n").unwrap_err();
        assert!(
            e.contains(":2: rules.unit_failed.max_restarts_per_hour: -1"),
            "{e}"
        );
        let e = parse("[rules.n2k_silent]\nafter_secs = -30\n").unwrap_err();
        assert!(e.contains(":2: rules.n2k_silent.after_secs"), "{e}");
    }

    #[test]
    fn an_action_outside_the_rules_safe_list_is_refused_with_file_line_and_key() {
        let e = parse("[rules.engine]\naction = \"restart_unit\"\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/d3kos/healing.toml:2: rules.engine.action: `restart_unit` is not in this \
             rule's safe list: it may only report"
        );
        let e = parse("[rules.unit_failed]\nunits = []\naction = \"reboot\"\n").unwrap_err();
        assert!(
            e.contains(":3: rules.unit_failed.action: `reboot`")
                && e.contains("restart_unit, notify"),
            "{e}"
        );
    }
}
