//! The engine: what is watched (metrics by RPM band), its history, its baseline, and
//! the anomalies and limits that raise alerts.

pub mod baseline;
pub mod history;
pub mod monitor;
pub mod worker;

use serde::{Deserialize, Serialize};

/// What is watched on each engine, by its Signal K name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Metric {
    Revolutions,
    OilPressure,
    Temperature,
    AlternatorVoltage,
    FuelRate,
    OilTemperature,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Revolutions,
        Metric::OilPressure,
        Metric::Temperature,
        Metric::AlternatorVoltage,
        Metric::FuelRate,
        Metric::OilTemperature,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Metric::Revolutions => "revolutions",
            Metric::OilPressure => "oilPressure",
            Metric::Temperature => "temperature",
            Metric::AlternatorVoltage => "alternatorVoltage",
            Metric::FuelRate => "fuelRate",
            Metric::OilTemperature => "oilTemperature",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == s)
    }

    /// Its Signal K path on engine `engine` (`propulsion.port.oilPressure`).
    pub fn path(self, engine: &str) -> String {
        match self {
            Metric::FuelRate => format!("propulsion.{engine}.fuel.rate"),
            m => format!("propulsion.{engine}.{}", m.key()),
        }
    }

    /// The SI unit of its values.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Revolutions => "Hz",
            Metric::OilPressure => "Pa",
            Metric::Temperature | Metric::OilTemperature => "K",
            Metric::AlternatorVoltage => "V",
            Metric::FuelRate => "m3/s",
        }
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Revolutions => "Engine speed",
            Metric::OilPressure => "Oil pressure",
            Metric::Temperature => "Coolant temperature",
            Metric::AlternatorVoltage => "Alternator voltage",
            Metric::FuelRate => "Fuel rate",
            Metric::OilTemperature => "Oil temperature",
        }
    }
}

/// Where in its range the engine runs; a baseline is kept per band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Idle,
    Cruise,
    Wot,
}

impl Band {
    pub const ALL: [Band; 3] = [Band::Idle, Band::Cruise, Band::Wot];

    pub fn of(rpm: f64, c: &crate::config::EngineConfig) -> Band {
        if rpm < c.idle_below_rpm {
            Band::Idle
        } else if rpm >= c.wide_open_from_rpm {
            Band::Wot
        } else {
            Band::Cruise
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Band::Idle => "idle",
            Band::Cruise => "cruise",
            Band::Wot => "wot",
        }
    }

    pub fn parse(s: &str) -> Option<Band> {
        Band::ALL.into_iter().find(|b| b.key() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Band::Idle => "at idle",
            Band::Cruise => "at cruise",
            Band::Wot => "wide open",
        }
    }
}

/// How far out of the ordinary a value is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Normal,
    /// At least 1σ from the baseline.
    Info,
    /// At least 2σ.
    Warning,
    /// At least 3σ, or past a hard limit.
    Critical,
}

impl Level {
    /// Signal K's notification state for it.
    pub fn signalk_state(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Info => "alert",
            Level::Warning => "warn",
            Level::Critical => "alarm",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Level::Normal => "NORMAL",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
        }
    }
}

/// An engine's name as a person reads it: `port` → "Port engine".
pub fn engine_label(id: &str) -> String {
    match id {
        "port" => "Port engine".into(),
        "starboard" => "Starboard engine".into(),
        "main" => "Main engine".into(),
        n => format!("Engine {n}"),
    }
}
