//! `/etc/d3kos/appliance.toml`: every key optional, unknown keys refused by name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_PATH: &str = "/etc/d3kos/appliance.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the web UI and API listen.
    pub listen: SocketAddr,
    /// State on the data partition: licence, accounts, later backups and the boat log.
    pub state_dir: PathBuf,
    /// Backups: on the data partition, on the same file system as `state_dir`.
    pub backup_dir: PathBuf,
    pub backup: BackupConfig,
    /// Where the image puts version.txt and build-manifest.json.
    pub etc_dir: PathBuf,
    /// The one-time owner setup code is written here, on the config partition, so the
    /// owner can read it from the card as well as from the helm screen.
    pub setup_code_file: PathBuf,
    /// The setup Wi-Fi's name and passphrase are written here as text, and its QR code
    /// beside it (`.svg`), on the config partition: readable from any computer.
    pub setup_wifi_file: PathBuf,
    /// The data partition, where first boot keeps what it applied of Raspberry Pi Imager's
    /// settings (`d3kos/imager/settings.json`); its problems are reported in /api/health.
    pub data_dir: PathBuf,
    /// The tier a fresh device starts with (0-3).
    pub tier: u8,
    /// systemd units whose state /api/health reports.
    pub units: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub features: Features,
    pub server: ServerConfig,
    pub boatlog: BoatlogConfig,
    pub export: ExportConfig,
    pub n2k: N2kConfig,
    pub engine: EngineConfig,
    pub display: DisplayConfig,
    pub healing: HealingConfig,
    pub timezone: TimezoneConfig,
    /// A device description for the updater (tests); the running system's when left out.
    pub update_device: Option<PathBuf>,
    /// The root helper's socket, which installs an update for the appliance
    /// (d3kos-update.socket).
    pub update_helper: PathBuf,
}

/// The self-healing rules file on the device.
pub const HEALING_RULES_PATH: &str = "/etc/d3kos/healing.toml";

/// `[healing]`: where the self-healing rules are, and where the machine is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealingConfig {
    /// The rules file; a missing file means the default rules.
    pub rules: PathBuf,
    /// Where /proc and /sys are read from: `/` on the device; a fake tree in tests.
    pub probe_root: PathBuf,
}

impl Default for HealingConfig {
    fn default() -> Self {
        HealingConfig {
            rules: PathBuf::from(HEALING_RULES_PATH),
            probe_root: PathBuf::from("/"),
        }
    }
}

/// `[timezone]`: how the boat's time zone is found (appliance/src/timezone/decide.rs has
/// the rule), and whether the system's zone and clock are set from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimezoneConfig {
    /// An IP-geolocation service asked for the zone while there is no GPS fix, answering
    /// JSON with a `timezone` name (`http://ip-api.com/json`, `https://ipapi.co/json`).
    /// Off unless set: it tells a third party where the boat is.
    pub geolocation_url: Option<String>,
    /// Seconds the service has to answer.
    pub geolocation_timeout_secs: u64,
    /// Minutes between questions to the service while there is no fix.
    pub geolocation_every_mins: u64,
    /// Seconds between looks at the position.
    pub check_secs: u64,
    /// A position older than this many seconds is no fix.
    pub fix_max_age_secs: u64,
    /// A new zone is taken once it has been the answer for this many seconds...
    pub hold_secs: u64,
    /// ...and this many answers in a row.
    pub hold_answers: u32,
    /// Set the system's zone (timedatectl) to the decided one.
    pub apply: bool,
    /// Set the system clock from NMEA 2000 time, once, when it is clearly wrong.
    pub set_clock: bool,
}

impl Default for TimezoneConfig {
    fn default() -> Self {
        TimezoneConfig {
            geolocation_url: None,
            geolocation_timeout_secs: 3,
            geolocation_every_mins: 60,
            check_secs: 30,
            fix_max_age_secs: 10,
            hold_secs: 600,
            hold_answers: 3,
            apply: true,
            set_clock: true,
        }
    }
}

/// `[n2k]`: where NMEA 2000 comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct N2kConfig {
    /// The SocketCAN interface of the bus (the PiCAN-M is `can0`); empty for none.
    pub interface: String,
    /// Instead of the bus: a capture (candump or canboat plain) replayed at its own pace,
    /// round and round; for demonstrations and tests.
    pub replay: Option<PathBuf>,
}

impl Default for N2kConfig {
    fn default() -> Self {
        N2kConfig {
            interface: "can0".into(),
            replay: None,
        }
    }
}

/// `[engine]`: the hard limits and RPM bands the engine is watched with, until the
/// owner's onboarding answers replace them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Below this the engine is idling.
    pub idle_below_rpm: f64,
    /// From this up it runs wide open.
    pub wide_open_from_rpm: f64,
    /// Coolant hotter than this is critical, °C.
    pub max_coolant_c: f64,
    /// Oil pressure below this at idle is critical, kPa.
    pub min_oil_idle_kpa: f64,
    /// Oil pressure below this above idle is critical, kPa.
    pub min_oil_cruise_kpa: f64,
    /// Engine speed above this is critical (over-revving); none when unset.
    pub max_rpm: Option<f64>,
    /// Seconds of 1 s samples kept in memory before they are written in one transaction.
    pub flush_secs: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        // Marine diesels: coolant thermostats open near 80 °C and alarms sound from about
        // 95 °C; oil pressure alarms are commonly set near 0.7 bar (10 psi) at idle and
        // 2 bar (30 psi) under way.
        EngineConfig {
            idle_below_rpm: 1000.0,
            wide_open_from_rpm: 3200.0,
            max_coolant_c: 95.0,
            min_oil_idle_kpa: 70.0,
            min_oil_cruise_kpa: 200.0,
            max_rpm: None,
            flush_secs: 30,
        }
    }
}

/// `[display]`: the units the owner reads values in.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// `bar`, `psi` or `kPa`.
    pub pressure: String,
    /// `C` or `F`.
    pub temperature: String,
    /// `L` or `gal`.
    pub volume: String,
    /// `kn`, `km/h` or `mph`.
    pub speed: String,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            pressure: "bar".into(),
            temperature: "C".into(),
            volume: "L".into(),
            speed: "kn".into(),
        }
    }
}

/// `[boatlog]`: how long entries are kept, and how large a recording may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoatlogConfig {
    /// Days each tier keeps entries, tier 0 first; 0 keeps them for ever.
    pub retention_days: [u32; 4],
    /// The largest recording a voice entry takes, in bytes.
    pub max_audio_bytes: u64,
}

impl Default for BoatlogConfig {
    fn default() -> Self {
        BoatlogConfig {
            retention_days: [30, 365, 0, 0],
            max_audio_bytes: 10 << 20,
        }
    }
}

/// How long and how many: the limits that keep a crowd of slow or idle clients from
/// taking the server down.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Seconds a client has to send a whole request head; also how long a kept-alive
    /// connection may sit idle before its next request.
    pub header_timeout_secs: u64,
    /// Seconds a request body may pause before the request is dropped.
    pub body_timeout_secs: u64,
    /// Seconds an answer may wait for the client to read it.
    pub write_timeout_secs: u64,
    /// Connections open at once from the network (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Connections open at once from one client (an IPv4 address, an IPv6 /64).
    pub max_connections_per_client: usize,
    /// Connections kept for the helm screen (http://localhost) whatever the network does.
    pub helm_connections: usize,
    /// Seconds open requests get to finish after SIGTERM before their connections close.
    pub stop_timeout_secs: u64,
    /// Names the device answers to besides its host name, HOST.local, d3kos.local and
    /// localhost (and its own addresses). Any other Host gets 421.
    pub host_names: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            write_timeout_secs: 30,
            max_connections: 512,
            max_connections_per_client: 32,
            helm_connections: 64,
            stop_timeout_secs: 5,
            host_names: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// A configured number of seconds; never zero, which would mean no time at all.
    pub fn secs(s: u64) -> std::time::Duration {
        std::time::Duration::from_secs(s.max(1))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    /// Live instrument data (dashboard, health) readable without signing in: on the boat's
    /// own network the crew should see the engine without a password.
    pub public_live_data: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Services that hold the boat's data, stopped while a restore swaps it in.
    pub stop_units: Vec<String>,
    /// The most a backup may unpack to, in bytes.
    pub max_restore_bytes: u64,
    /// The largest backup an owner may upload, in bytes.
    pub max_upload_bytes: u64,
    /// Where USB drives are mounted (as `usb-UUID`) for backups.
    pub media_dir: PathBuf,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            stop_units: Vec::new(),
            max_restore_bytes: 32 << 30,
            max_upload_bytes: 8 << 30,
            media_dir: PathBuf::from("/media"),
        }
    }
}

impl Default for Features {
    fn default() -> Self {
        Features {
            public_live_data: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            state_dir: PathBuf::from("/var/lib/d3kos"),
            backup_dir: PathBuf::from("/var/lib/d3kos-backups"),
            backup: BackupConfig::default(),
            etc_dir: PathBuf::from("/etc/d3kos"),
            setup_code_file: PathBuf::from("/boot/config/d3kos-setup-code.txt"),
            setup_wifi_file: PathBuf::from("/boot/config/d3kos-setup-wifi.txt"),
            data_dir: PathBuf::from("/data"),
            tier: 0,
            units: vec!["d3kosd.service".into()],
            max_body_bytes: 64 * 1024,
            features: Features::default(),
            server: ServerConfig::default(),
            boatlog: BoatlogConfig::default(),
            export: ExportConfig::default(),
            n2k: N2kConfig::default(),
            engine: EngineConfig::default(),
            display: DisplayConfig::default(),
            healing: HealingConfig::default(),
            timezone: TimezoneConfig::default(),
            update_device: None,
            update_helper: PathBuf::from("/run/d3kos-update.sock"),
        }
    }
}

/// `[export]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// The queue and the exports kept on the device: on the data partition, outside the
    /// state folder, so a restore never takes the queue back in time.
    pub dir: PathBuf,
    /// Seconds before each retry of a failed job; after the last, the job has failed.
    pub retry_secs: Vec<u64>,
    /// Upload addresses exports may be sent to.
    pub upload: Vec<Upload>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            dir: PathBuf::from("/var/lib/d3kos-exports"),
            retry_secs: vec![5, 300, 900],
            upload: Vec::new(),
        }
    }
}

/// One upload address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// How the owner picks it: `upload:NAME`.
    pub name: String,
    /// `http://` or `https://`. With PUT the file name is appended (a folder URL ends in
    /// `/`); with POST the file goes to the URL as it is.
    pub url: String,
    #[serde(default)]
    pub method: UploadMethod,
    /// Seconds the whole upload may take.
    #[serde(default = "default_upload_timeout")]
    pub timeout_secs: u64,
    /// Sent as the Authorization header.
    #[serde(default)]
    pub authorization: Option<String>,
}

fn default_upload_timeout() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UploadMethod {
    #[default]
    Put,
    Post,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Config {
    /// Reads the file; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start).min(text.len());
            ConfigError::Invalid {
                path: path.to_owned(),
                line: text[..at].matches('\n').count() + 1,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        if config.tier > 3 {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("tier"))
                    .map_or(1, |l| l + 1),
                message: format!("tier {} does not exist: tiers are 0 to 3", config.tier),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_defaults() {
        let c = Config::load(Path::new("/nonexistent/appliance.toml")).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/d3kos"));
        assert!(c.features.public_live_data);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("appliance.toml");
        std::fs::write(
            &p,
            "tier = 1\n\n[features]\npublic_live_data = false\nsecret_mode = true\n",
        )
        .unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("appliance.toml:5") && e.contains("secret_mode"),
            "{e}"
        );
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("appliance.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:8080\"\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.max_body_bytes, 64 * 1024);
    }

    #[test]
    fn the_image_keeps_state_on_the_data_partition() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../rootfs-overlay")
            .join(DEFAULT_PATH.trim_start_matches('/'));
        let c = Config::load(&p).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/data/d3kos/state"));
        assert_eq!(c.export.dir, PathBuf::from("/data/d3kos/exports"));
    }
}
