//! What the healing rules look at, gathered once per check: the watched units, free space,
//! the processor's temperature and throttling, memory pressure, the NMEA 2000 bus and the
//! engines. Read from `root` (`/` on the device, a fake tree in tests).

use std::path::{Path, PathBuf};

use crate::health::{Probe, Throttling};
use crate::systemd::UnitDetail;

/// Free space on one watched mount point.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub mount: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

impl Space {
    pub fn free_percent(&self) -> f64 {
        self.free_bytes as f64 * 100.0 / self.total_bytes.max(1) as f64
    }
}

/// The bus as ingest sees it; `None` where no interface is read (a replay, or none).
#[derive(Debug, Clone, PartialEq)]
pub struct Bus {
    pub interface: String,
    pub up: bool,
    pub down_reason: Option<String>,
}

/// An engine alert open now.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineAlert {
    pub engine: String,
    pub metric: crate::engine::Metric,
    pub level: crate::engine::Level,
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub now_ms: i64,
    pub units: Vec<UnitDetail>,
    pub spaces: Vec<Space>,
    pub temperature_c: Option<f64>,
    pub throttling: Option<Throttling>,
    /// PSI `some avg60` of /proc/pressure/memory, in percent; `None` where the kernel has
    /// no PSI.
    pub memory_some_avg60: Option<f64>,
    pub bus: Option<Bus>,
    /// When the last NMEA 2000 message arrived, from any source.
    pub n2k_last_message_ms: Option<i64>,
    /// Whether any engine is running now.
    pub engine_running: bool,
    /// The engine alerts open now; `None` when the engines were not asked.
    pub engine_alerts: Option<Vec<EngineAlert>>,
}

/// The file-system half of the facts: everything read from files under `root`.
pub fn read(
    root: &Path,
    mounts: &[String],
) -> (Vec<Space>, Option<f64>, Option<Throttling>, Option<f64>) {
    let probe = Probe::new(root);
    let spaces = mounts
        .iter()
        .filter_map(|m| {
            let path: PathBuf = root.join(m.trim_start_matches('/'));
            let st = rustix::fs::statvfs(&path).ok()?;
            Some(Space {
                mount: m.clone(),
                total_bytes: st.f_blocks * st.f_frsize,
                free_bytes: st.f_bavail * st.f_frsize,
            })
        })
        .collect();
    let psi = std::fs::read_to_string(root.join("proc/pressure/memory"))
        .ok()
        .and_then(|t| some_avg60(&t));
    (spaces, probe.temperature(), probe.throttling(), psi)
}

/// `some avg10=0.00 avg60=1.25 avg300=0.00 total=0` (the kernel's PSI format,
/// Documentation/accounting/psi.rst): the `avg60` of the `some` line.
pub fn some_avg60(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("avg60="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_some_avg60() {
        let t = "some avg10=0.00 avg60=12.50 avg300=0.00 total=123\nfull avg10=0.00 avg60=3.00 avg300=0.00 total=0\n";
        assert_eq!(some_avg60(t), Some(12.5));
        assert_eq!(some_avg60("garbage"), None);
    }
}
