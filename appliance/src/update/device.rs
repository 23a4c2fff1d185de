//! The device as the updater sees it: the running release, the trusted keys, each slot's
//! boot and system partitions, where the boot loader's switches are, and what "healthy"
//! means. Found from the running system, or read from a file (tests use file-backed slots).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::autoboot::{AUTOBOOT, Autoboot};
use crate::layout::{Plan, Role, Slot};

use super::{UpdateError, io};

/// The boot loader back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootControl {
    /// The Raspberry Pi firmware: autoboot.txt with tryboot_a_b, and its one-time flag.
    RpiTryboot,
    /// The QEMU boards: the same autoboot.txt and a one-time flag file on the config
    /// partition, which the boot test's harness reads as the firmware would.
    Harness,
}

/// One slot's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotParts {
    /// The boot partition's device (or a file standing in for it).
    pub boot: PathBuf,
    /// Its number, as autoboot.txt names it.
    pub boot_number: u32,
    pub system: PathBuf,
    /// What root= names when this slot runs.
    pub system_partuuid: String,
}

/// What a try-booted system must show before it is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Units that must be active.
    pub units: Vec<String>,
    /// A URL that must answer 200 (the appliance's own health).
    pub url: Option<String>,
    /// Mount points that must be mounted.
    pub mounts: Vec<PathBuf>,
    /// SQLite databases that must pass `PRAGMA quick_check`.
    pub databases: Vec<PathBuf>,
    /// Seconds the system has to show it, from the verdict's start.
    pub limit_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The running release: `PRODUCT/BOARD` and its version.
    pub compatible: String,
    pub version: String,
    /// The folder of trusted minisign public keys (`*.pub`).
    pub keys: PathBuf,
    /// The mounted config partition, where autoboot.txt is.
    pub config: PathBuf,
    /// The updater's record (on the data partition).
    pub state: PathBuf,
    pub boot_control: BootControl,
    pub a: SlotParts,
    pub b: SlotParts,
    /// The kernel's command line (`/proc/cmdline`).
    pub cmdline: PathBuf,
    /// Where the firmware's boot facts are (`/proc/device-tree/chosen/bootloader`).
    pub bootloader: PathBuf,
    /// Where a loaded d3kos-tryboot module takes the one-time flag.
    pub tryboot_flag: PathBuf,
    pub health: Health,
    /// The appliance's boat log, where installs, commits and rollbacks are noted.
    #[serde(default)]
    pub boatlog: Option<PathBuf>,
    /// The command that reboots.
    pub reboot: Vec<String>,
    /// The running system's mount point, frozen while a factory restore copies it (none for
    /// file-backed slots).
    #[serde(default)]
    pub root: Option<PathBuf>,
}

/// The SQLite databases in the appliance's state folder, sorted: each must pass
/// `PRAGMA quick_check` before a try is committed.
fn databases(state: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(state)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "db") && p.is_file())
        .collect();
    found.sort();
    found
}

/// The manifest the image carries of itself.
pub const BUILD_MANIFEST: &str = "/etc/d3kos/build-manifest.json";
/// The one-time flag file of the harness back end, on the config partition.
pub const HARNESS_FLAG: &str = "tryboot";
/// The kernel parameter the harness adds for a try boot, as the Pi firmware sets
/// chosen/bootloader/tryboot.
pub const HARNESS_TRYING: &str = "d3kos.tryboot=1";

/// The parts of the image's own build manifest the updater reads.
#[derive(Deserialize)]
struct Built {
    name: String,
    version: String,
    board: String,
    boot_control: BootControl,
}

impl Device {
    /// Reads a device description (JSON).
    pub fn load(path: &Path) -> Result<Device, UpdateError> {
        let text = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&text).map_err(|e| {
            UpdateError::Device(format!("{} is not a device file: {e}", path.display()))
        })
    }

    /// The running system's: its build manifest and partition plan, the disk holding its
    /// root, the appliance's own health.
    pub fn discover() -> Result<Device, UpdateError> {
        let path = Path::new(BUILD_MANIFEST);
        let built: Built = serde_json::from_slice(&std::fs::read(path).map_err(io(path))?)
            .map_err(|e| UpdateError::Device(format!("{BUILD_MANIFEST}: {e}")))?;
        let plan_path = Path::new("/").join(crate::layout::PLAN_PATH);
        let plan = Plan::from_json(&std::fs::read_to_string(&plan_path).map_err(io(&plan_path))?)
            .map_err(|e| UpdateError::Device(format!("{}: {e}", plan_path.display())))?;
        let slot = |slot: Slot| -> Result<SlotParts, UpdateError> {
            let find = |role: Role| {
                plan.partitions
                    .iter()
                    .find(|p| p.spec.role == role && p.spec.slot == Some(slot))
                    .ok_or_else(|| {
                        UpdateError::Device(format!(
                            "the plan has no {role:?} partition for slot {slot:?}"
                        ))
                    })
            };
            let (boot, system) = (find(Role::Boot)?, find(Role::System)?);
            let node = |partuuid: &str| {
                Path::new("/dev/disk/by-partuuid").join(partuuid.to_ascii_lowercase())
            };
            Ok(SlotParts {
                boot: node(&boot.partuuid),
                boot_number: boot.number,
                system: node(&system.partuuid),
                system_partuuid: system.partuuid.clone(),
            })
        };
        // The appliance's state folder, where its databases are. A configuration that cannot
        // be read leaves them out: the appliance fails its own start then, which a try's
        // verdict sees.
        let state = match crate::config::Config::load(Path::new(crate::config::DEFAULT_PATH)) {
            Ok(c) => Some(c.state_dir),
            Err(e) => {
                log::warn!("update: the appliance's configuration: {e}");
                None
            }
        };
        Ok(Device {
            compatible: format!("{}/{}", built.name, built.board),
            version: built.version,
            keys: crate::bundle::KEYS_DIR.into(),
            config: "/boot/config".into(),
            state: "/data/update".into(),
            boot_control: built.boot_control,
            a: slot(Slot::A)?,
            b: slot(Slot::B)?,
            cmdline: "/proc/cmdline".into(),
            bootloader: "/proc/device-tree/chosen/bootloader".into(),
            tryboot_flag: "/sys/module/d3kos_tryboot/parameters/flag".into(),
            health: Health {
                units: vec!["d3kosd.service".into()],
                url: Some("http://127.0.0.1/api/version".into()),
                mounts: vec!["/data".into()],
                databases: state.as_deref().map(databases).unwrap_or_default(),
                limit_secs: 180,
            },
            boatlog: state.map(|s| s.join(crate::boatlog::FILE)),
            reboot: vec!["systemctl".into(), "reboot".into()],
            root: Some("/".into()),
        })
    }

    pub fn slot(&self, slot: Slot) -> &SlotParts {
        match slot {
            Slot::A => &self.a,
            Slot::B => &self.b,
        }
    }

    /// The slot whose boot partition has `number`.
    pub fn slot_of_boot(&self, number: u32) -> Option<Slot> {
        [Slot::A, Slot::B]
            .into_iter()
            .find(|s| self.slot(*s).boot_number == number)
    }

    /// The running slot: the one whose system partition root= names (the last root= wins,
    /// as the kernel reads it).
    pub fn booted(&self) -> Result<Slot, UpdateError> {
        let cmdline = std::fs::read_to_string(&self.cmdline).map_err(io(&self.cmdline))?;
        let root = cmdline
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("root=PARTUUID="))
            .next_back()
            .ok_or_else(|| {
                UpdateError::Device(format!(
                    "no root=PARTUUID= on the kernel command line: {}",
                    cmdline.trim()
                ))
            })?;
        [Slot::A, Slot::B]
            .into_iter()
            .find(|s| self.slot(*s).system_partuuid.eq_ignore_ascii_case(root))
            .ok_or_else(|| {
                UpdateError::Device(format!(
                    "root=PARTUUID={root} is neither slot's system partition"
                ))
            })
    }

    pub fn autoboot_path(&self) -> PathBuf {
        self.config.join(AUTOBOOT)
    }

    /// autoboot.txt as the firmware reads it.
    pub fn autoboot(&self) -> Result<Autoboot, UpdateError> {
        let path = self.autoboot_path();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        Autoboot::parse(&text)
            .ok_or_else(|| UpdateError::Boot(format!("{} names no boot partition", path.display())))
    }

    /// The slot the firmware boots when nothing else is asked: the committed one.
    pub fn committed(&self) -> Result<Slot, UpdateError> {
        let a = self.autoboot()?;
        self.slot_of_boot(a.default).ok_or_else(|| {
            UpdateError::Boot(format!(
                "autoboot.txt boots partition {}, neither slot's",
                a.default
            ))
        })
    }
}
