//! The machine's health, read from the kernel: CPU load and temperature, memory, free space
//! per mount, uptime, the Raspberry Pi's throttling flags, and the state of the services.
//! A sensor this machine lacks is `null`, never an error.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::systemd::{SystemState, UnitState};

#[derive(Debug, Clone, Serialize, Default)]
pub struct Snapshot {
    pub cpu: Cpu,
    pub memory: Option<Memory>,
    pub disks: Vec<Disk>,
    pub uptime_seconds: Option<u64>,
    pub throttling: Option<Throttling>,
    pub services: Vec<UnitState>,
    /// systemd's view of the whole system; `None` where systemd cannot be asked.
    pub system: Option<SystemState>,
    /// State files that could not be read at start-up, and what was done about them.
    pub problems: Vec<String>,
    /// The daemon itself: what it holds and the bounds it runs within.
    pub daemon: Option<Daemon>,
    pub sampled_at: String,
    /// When `services` and `system` were asked of systemd.
    #[serde(skip)]
    pub systemd_asked: Option<tokio::time::Instant>,
}

/// The daemon's own use of the machine and the limits its service sets (`LimitNOFILE`,
/// `MemoryMax`, `TasksMax`); a limit that is not set is `null`.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Daemon {
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_files: Option<u64>,
    pub open_files_limit: Option<u64>,
    pub memory_max_bytes: Option<u64>,
    pub tasks_max: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Cpu {
    pub cores: usize,
    pub usage_percent: Option<f64>,
    pub temperature_c: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub mount: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

/// The firmware's get_throttled bits (Raspberry Pi documentation, "vcgencmd get_throttled").
#[derive(Debug, Clone, Serialize)]
pub struct Throttling {
    pub raw: String,
    pub under_voltage: bool,
    pub frequency_capped: bool,
    pub throttled: bool,
    pub soft_temp_limit: bool,
    pub occurred_since_boot: bool,
}

impl Throttling {
    pub fn from_bits(bits: u32) -> Self {
        Throttling {
            raw: format!("{bits:#x}"),
            under_voltage: bits & 0x1 != 0,
            frequency_capped: bits & 0x2 != 0,
            throttled: bits & 0x4 != 0,
            soft_temp_limit: bits & 0x8 != 0,
            occurred_since_boot: bits & 0xf_0000 != 0,
        }
    }
}

/// Where the kernel's files are: `/` on the device, a fixture folder in tests.
#[derive(Debug, Clone)]
pub struct Probe {
    pub root: PathBuf,
    last_cpu: Option<(u64, u64)>,
}

/// File systems worth reporting free space for.
const REAL_FS: &[&str] = &[
    "ext4", "ext3", "ext2", "vfat", "btrfs", "xfs", "f2fs", "exfat",
];

impl Probe {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Probe {
            root: root.into(),
            last_cpu: None,
        }
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(rel)).ok()
    }

    /// Busy and total jiffies from the first line of /proc/stat.
    fn cpu_times(&self) -> Option<(u64, u64)> {
        let stat = self.read("proc/stat")?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() < 4 {
            return None;
        }
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
        Some((total - idle, total))
    }

    /// CPU use since the previous sample; `None` on the first.
    pub fn cpu_usage(&mut self) -> Option<f64> {
        let now = self.cpu_times()?;
        let prev = self.last_cpu.replace(now)?;
        let total = now.1.checked_sub(prev.1)?;
        let busy = now.0.checked_sub(prev.0)?;
        (total > 0).then(|| (busy as f64 * 1000.0 / total as f64).round() / 10.0)
    }

    pub fn temperature(&self) -> Option<f64> {
        let milli: f64 = self
            .read("sys/class/thermal/thermal_zone0/temp")?
            .trim()
            .parse()
            .ok()?;
        Some((milli / 100.0).round() / 10.0)
    }

    pub fn memory(&self) -> Option<Memory> {
        let info = self.read("proc/meminfo")?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|r| {
                    r.trim_start_matches(':')
                        .split_whitespace()
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
        };
        let total = field("MemTotal")?;
        let available = field("MemAvailable")?;
        Some(Memory {
            total_bytes: total,
            available_bytes: available,
            used_percent: ((total.saturating_sub(available)) as f64 * 1000.0 / total.max(1) as f64)
                .round()
                / 10.0,
        })
    }

    pub fn uptime(&self) -> Option<u64> {
        let text = self.read("proc/uptime")?;
        text.split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
            .map(|s| s as u64)
    }

    /// The throttling flags the firmware driver exposes (Raspberry Pi kernels).
    pub fn throttling(&self) -> Option<Throttling> {
        let text = self.read("sys/devices/platform/soc/soc:firmware/get_throttled")?;
        let t = text.trim();
        let bits = t
            .strip_prefix("0x")
            .map_or_else(|| t.parse().ok(), |h| u32::from_str_radix(h, 16).ok())?;
        Some(Throttling::from_bits(bits))
    }

    pub fn disks(&self) -> Vec<Disk> {
        let Some(mounts) = self.read("proc/self/mounts") else {
            return Vec::new();
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 || !REAL_FS.contains(&f[2]) {
                continue;
            }
            // Octal escapes for spaces and the like (fstab(5)).
            let mount = f[1].replace("\\040", " ");
            if !seen.insert(mount.clone()) {
                continue;
            }
            let path = if self.root == Path::new("/") {
                PathBuf::from(&mount)
            } else {
                self.root.join(mount.trim_start_matches('/'))
            };
            if let Ok(st) = rustix::fs::statvfs(&path) {
                out.push(Disk {
                    mount,
                    total_bytes: st.f_blocks * st.f_frsize,
                    free_bytes: st.f_bavail * st.f_frsize,
                });
            }
        }
        out
    }

    /// The daemon's own process, from /proc/self and its cgroup.
    pub fn daemon(&self) -> Daemon {
        let status = self.read("proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        };
        let open_files = std::fs::read_dir(self.root.join("proc/self/fd"))
            .ok()
            .map(|d| d.count() as u64);
        let limits = self.read("proc/self/limits").unwrap_or_default();
        let open_files_limit = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok());
        // cgroup v2: one line `0::/system.slice/d3kosd.service`.
        let cgroup = self.read("proc/self/cgroup").and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        });
        let limit = |file: &str| {
            let dir = cgroup.as_ref()?;
            self.read(&format!("sys/fs/cgroup{dir}/{file}"))?
                .trim()
                .parse::<u64>()
                .ok()
        };
        Daemon {
            rss_bytes: field("VmRSS").map(|k| k * 1024),
            peak_rss_bytes: field("VmHWM").map(|k| k * 1024),
            threads: field("Threads"),
            open_files,
            open_files_limit,
            memory_max_bytes: limit("memory.max"),
            tasks_max: limit("pids.max"),
        }
    }

    /// Everything but the services, which come from systemd.
    pub fn sample(&mut self) -> Snapshot {
        Snapshot {
            cpu: Cpu {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                usage_percent: self.cpu_usage(),
                temperature_c: self.temperature(),
            },
            memory: self.memory(),
            disks: self.disks(),
            uptime_seconds: self.uptime(),
            throttling: self.throttling(),
            services: Vec::new(),
            system: None,
            problems: Vec::new(),
            daemon: Some(self.daemon()),
            sampled_at: crate::api::now_rfc3339(),
            systemd_asked: None,
        }
    }
}

/// The latest sample, and whether clients are reading it.
#[derive(Debug)]
pub struct Latest {
    snap: tokio::sync::watch::Sender<Snapshot>,
    /// Set by a read, taken by the sampler.
    read: std::sync::atomic::AtomicBool,
    /// A read found the services' states stale and waits for a fresh round.
    wanted: tokio::sync::Notify,
}

impl Default for Latest {
    fn default() -> Latest {
        Latest {
            snap: tokio::sync::watch::Sender::new(Snapshot::default()),
            read: Default::default(),
            wanted: Default::default(),
        }
    }
}

impl Latest {
    /// The latest sample. Reading keeps the sampler asking systemd every round; a read
    /// after a quiet spell waits for one fresh round (at most `FRESH_WAIT`), so no answer
    /// holds services' states older than a round.
    pub async fn read(&self) -> Snapshot {
        use std::sync::atomic::Ordering;
        let mut rx = self.snap.subscribe();
        let stale = !self.read.swap(true, Ordering::Relaxed)
            && rx
                .borrow_and_update()
                .systemd_asked
                .is_none_or(|at| at.elapsed() > 2 * EVERY);
        if stale {
            self.wanted.notify_one();
            let _ = tokio::time::timeout(FRESH_WAIT, rx.changed()).await;
        }
        rx.borrow().clone()
    }
}

/// How often the kernel's figures are read.
const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often systemd is asked when nobody is reading: each question is a `systemctl`
/// process (three a round, a few milliseconds of a Pi's core each), so the services'
/// states are refreshed every round only while a client reads them.
const SYSTEMD_UNWATCHED: std::time::Duration = std::time::Duration::from_secs(30);
/// How long after a read the sampler still counts someone as looking.
const WATCHED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest a read waits for a fresh round (systemctl itself is given 3 s).
const FRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// Samples the machine into `out` every two seconds; /api/health answers from the latest
/// sample, so a busy client cannot make the device spawn processes.
pub async fn sample(
    out: std::sync::Arc<Latest>,
    units: Vec<String>,
    problems: Vec<String>,
    n2k: crate::n2k::ingest::Shared,
) {
    use tokio::time::Instant;
    let mut probe = Probe::new("/");
    let mut tick = tokio::time::interval(EVERY);
    let mut watched_until = Instant::now();
    loop {
        let asked_now = tokio::select! {
            _ = tick.tick() => false,
            () = out.wanted.notified() => true,
        };
        let Ok((mut snap, probe_back)) = tokio::task::spawn_blocking(move || {
            let s = probe.sample();
            (s, probe)
        })
        .await
        else {
            log::error!("the health probe stopped");
            return;
        };
        probe = probe_back;
        let now = Instant::now();
        if out.read.swap(false, std::sync::atomic::Ordering::Relaxed) || asked_now {
            watched_until = now + WATCHED_FOR;
        }
        let last = out.snap.borrow().systemd_asked;
        if now < watched_until || last.is_none_or(|at| now - at >= SYSTEMD_UNWATCHED) {
            snap.services = crate::systemd::unit_states(&units).await;
            snap.system = crate::systemd::system_state().await;
            snap.systemd_asked = Some(now);
        } else {
            let last = out.snap.borrow();
            snap.services = last.services.clone();
            snap.system = last.system.clone();
            snap.systemd_asked = last.systemd_asked;
        }
        snap.problems = problems.clone();
        let bus = n2k.lock().expect("n2k status").clone();
        if let Some(why) = bus.down_reason.filter(|_| !bus.up) {
            snap.problems.push(format!(
                "NMEA 2000: {why}; trying again every {} s",
                crate::n2k::ingest::RETRY.as_secs()
            ));
        }
        out.snap.send_replace(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_a_raspberry_pi_like_machine() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
        write(
            r,
            "proc/meminfo",
            "MemTotal:        4000000 kB\nMemFree: 1 kB\nMemAvailable:    1000000 kB\n",
        );
        write(r, "proc/uptime", "3600.52 7000.00\n");
        write(r, "sys/class/thermal/thermal_zone0/temp", "48312\n");
        write(
            r,
            "sys/devices/platform/soc/soc:firmware/get_throttled",
            "0x50005\n",
        );
        let mut p = Probe::new(r);
        let first = p.sample();
        assert_eq!(first.cpu.usage_percent, None, "no usage before two samples");
        write(r, "proc/stat", "cpu  150 0 150 900 0 0 0 0 0 0\n");
        let s = p.sample();
        assert_eq!(s.cpu.usage_percent, Some(50.0));
        assert_eq!(s.cpu.temperature_c, Some(48.3));
        assert_eq!(s.memory.unwrap().used_percent, 75.0);
        assert_eq!(s.uptime_seconds, Some(3600));
        let t = s.throttling.unwrap();
        assert!(t.under_voltage && t.throttled && !t.frequency_capped && t.occurred_since_boot);
    }

    #[test]
    fn reads_the_daemons_own_use_and_its_service_limits() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "proc/self/status",
            "Name:\td3kosd\nVmHWM:\t   51200 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n",
        );
        write(
            r,
            "proc/self/limits",
            "Limit                     Soft Limit           Hard Limit           Units\n\
             Max open files            4096                 4096                 files\n",
        );
        write(r, "proc/self/cgroup", "0::/system.slice/d3kosd.service\n");
        write(
            r,
            "sys/fs/cgroup/system.slice/d3kosd.service/memory.max",
            "536870912\n",
        );
        write(
            r,
            "sys/fs/cgroup/system.slice/d3kosd.service/pids.max",
            "max\n",
        );
        write(r, "proc/self/fd/0", "");
        write(r, "proc/self/fd/1", "");
        assert_eq!(
            Probe::new(r).daemon(),
            Daemon {
                rss_bytes: Some(10 << 20),
                peak_rss_bytes: Some(50 << 20),
                threads: Some(7),
                open_files: Some(2),
                open_files_limit: Some(4096),
                memory_max_bytes: Some(512 << 20),
                tasks_max: None,
            }
        );
    }

    #[test]
    fn missing_sensors_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = Probe::new(dir.path()).sample();
        assert!(
            s.cpu.temperature_c.is_none()
                && s.memory.is_none()
                && s.throttling.is_none()
                && s.uptime_seconds.is_none()
        );
        assert!(s.disks.is_empty());
    }

    #[tokio::test]
    async fn a_read_after_a_quiet_spell_waits_for_fresh_service_states() {
        let latest = std::sync::Arc::new(Latest::default());
        // The services were last asked a minute ago.
        let old = tokio::time::Instant::now() - std::time::Duration::from_secs(60);
        latest.snap.send_modify(|s| s.systemd_asked = Some(old));
        // A sampler that answers a wanted round.
        let sampler = {
            let latest = latest.clone();
            tokio::spawn(async move {
                latest.wanted.notified().await;
                latest.snap.send_modify(|s| {
                    s.systemd_asked = Some(tokio::time::Instant::now());
                    s.sampled_at = "fresh".into();
                });
            })
        };
        let s = latest.read().await;
        assert_eq!(s.sampled_at, "fresh");
        sampler.await.unwrap();
        // Read again at once: fresh enough, answered without waiting, and the sampler is
        // told someone is looking.
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(100), latest.read()).await;
        assert_eq!(again.unwrap().sampled_at, "fresh");
        assert!(latest.read.load(std::sync::atomic::Ordering::Relaxed));
    }
}
