//! Self-healing through the real daemon: a rules file it cannot keep stops the start with
//! file, line and key; a hot, throttled, memory-starved machine (a fake /proc and /sys) is
//! detected, notified, recorded and cleared; a full data partition (a real tmpfs) is
//! cleaned of exactly the known-safe targets; the owner's switches and "check now".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Device, assert_error, assert_ok, create_owner, eventually, get, write};
use serde_json::{Value, json};

fn put(p: &Path, rel: &str, text: &str) {
    let f = p.join(rel);
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, text).unwrap();
}

fn device_with_rules(rules: &str, extra: &str) -> Device {
    let dev = Device::new(extra);
    let path = dev.dir.path().join("healing.toml");
    std::fs::write(&path, rules).unwrap();
    let mut config = std::fs::read_to_string(dev.config()).unwrap();
    config.push_str(&format!("\n[healing]\nrules = \"{}\"\n", path.display()));
    std::fs::write(dev.config(), config).unwrap();
    dev
}

#[test]
fn a_rules_file_it_cannot_keep_stops_the_start_with_file_line_and_key() {
    for (rules, line, says) in [
        (
            "[rules.disk_space]\nmin_free_percent = 10\nshade = \"blue\"\n",
            3,
            "shade",
        ),
        (
            "[rules.cpu_temperature]\nmax_c = 80\n[rules.disk_space]\nmin_free_percent = -10\n",
            4,
            "rules.disk_space.min_free_percent: -10: a threshold cannot be negative",
        ),
        (
            "[rules.engine]\naction = \"restart_unit\"\n",
            2,
            "rules.engine.action: `restart_unit` is not in this rule's safe list: it may only report",
        ),
        (
            "[rules.unit_failed]\naction = \"reboot\"\n",
            2,
            "rules.unit_failed.action: `reboot` is not in this rule's safe list",
        ),
    ] {
        let dev = device_with_rules(rules, "");
        let out = Command::new(common::bin())
            .arg("--config")
            .arg(dev.config())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rules}: {err}");
        let file = dev.dir.path().join("healing.toml");
        assert!(
            err.contains(&format!("{}:{line}:", file.display())) && err.contains(says),
            "{rules}\nsaid: {err}"
        );
        assert!(
            !dev.state().join("healing.db").exists(),
            "nothing was started"
        );
    }
}

fn open_rules(d: &common::Daemon) -> Vec<String> {
    let v = assert_ok(&get(d, "/healing/rules"));
    v["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn heat_throttling_and_memory_pressure_from_a_fake_sys_tree_are_notified_recorded_and_cleared() {
    let fake = tempfile::tempdir().unwrap();
    let root = fake.path();
    put(root, "sys/class/thermal/thermal_zone0/temp", "85123\n");
    put(
        root,
        "sys/devices/platform/soc/soc:firmware/get_throttled",
        "0x50005\n",
    );
    put(
        root,
        "proc/pressure/memory",
        "some avg10=40.00 avg60=31.50 avg300=5.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    let dev = device_with_rules(
        "check_every_secs = 5\n[rules.unit_failed]\nunits = []\n[rules.disk_space]\nmounts = []\n",
        "[n2k]\ninterface = \"\"\n",
    );
    let mut config = std::fs::read_to_string(dev.config()).unwrap();
    config.push_str(&format!("probe_root = \"{}\"\n", root.display()));
    std::fs::write(dev.config(), config).unwrap();
    let d = dev.start();
    let cookie = create_owner(&dev, &d);

    // Checked at once on the owner's word; before, nothing is open.
    assert_error(
        &write(&d, "POST", "/healing/check", None, &json!({})),
        401,
        "unauthorized",
    );
    let c = assert_ok(&write(
        &d,
        "POST",
        "/healing/check",
        Some(&cookie),
        &json!({}),
    ));
    let mut open: Vec<&str> = c["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["rule"].as_str().unwrap())
        .collect();
    open.sort();
    assert_eq!(
        open,
        ["cpu_temperature", "memory_pressure", "throttling"],
        "{c:#}"
    );
    let seen: Vec<&str> = c["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["seen"].as_str().unwrap())
        .collect();
    assert!(
        seen.contains(&"the processor is at 85.1 °C, above 80 °C"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.contains("under-voltage, throttled") && s.contains("0x50005")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.contains("31.5 % of the last minute")),
        "{seen:?}"
    );
    let outcomes: Vec<(&str, &str)> = c["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    for rule in ["cpu_temperature", "throttling", "memory_pressure"] {
        assert!(
            outcomes.contains(&(rule, "detected")) && outcomes.contains(&(rule, "notified")),
            "{outcomes:?}"
        );
    }

    // The owner switches the temperature rule off: it stays off across a restart.
    assert_error(
        &write(
            &d,
            "PUT",
            "/healing/rules/warp_drive",
            Some(&cookie),
            &json!({"enabled": false}),
        ),
        404,
        "not_found",
    );
    assert_error(
        &write(
            &d,
            "PUT",
            "/healing/rules/cpu_temperature",
            Some(&cookie),
            &json!({"enabled": "no"}),
        ),
        400,
        "bad_json",
    );
    let r = assert_ok(&write(
        &d,
        "PUT",
        "/healing/rules/cpu_temperature",
        Some(&cookie),
        &json!({"enabled": false}),
    ));
    let t = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "cpu_temperature")
        .unwrap()
        .clone();
    assert_eq!(t["enabled"], false);
    assert_eq!(t["safe_actions"], json!(["notify"]));

    // The machine cools, power is good, memory is free: each problem is cleared at the
    // next check, all but the switched-off one by seeing it go.
    put(root, "sys/class/thermal/thermal_zone0/temp", "51000\n");
    put(
        root,
        "sys/devices/platform/soc/soc:firmware/get_throttled",
        "0x50000\n",
    );
    put(
        root,
        "proc/pressure/memory",
        "some avg10=0.00 avg60=0.10 avg300=0.00 total=1\n",
    );
    eventually("the problems clear", Duration::from_secs(15), || {
        open_rules(&d).is_empty()
    });

    let stats = assert_ok(&get(&d, "/healing/stats"));
    assert_eq!(stats["days"], 7);
    assert_eq!(
        stats["rules"]["throttling"],
        json!({"detected": 1, "notified": 1, "cleared": 1}),
        "{stats:#}"
    );
    assert_eq!(
        stats["rules"]["cpu_temperature"],
        json!({"detected": 1, "notified": 1, "cleared": 1})
    );
    assert_eq!(stats["rules"]["disk_space"], json!({}));
    assert_eq!(stats["total"]["detected"], 3);
    let h = assert_ok(&get(&d, "/healing/history?rule=throttling"));
    let recs = h["records"].as_array().unwrap();
    assert_eq!(recs[0]["outcome"], "cleared", "newest first: {recs:?}");
    assert_error(&get(&d, "/healing/history?rule=nope"), 400, "bad_request");
    // Each detection and action is in the boat log.
    let log = assert_ok(&get(&d, "/api/boatlog?limit=100"));
    let texts: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Healing (notified): the processor is at 85.1 °C")),
        "{texts:?}"
    );
    drop(d);
    let d = dev.start();
    let rules = assert_ok(&get(&d, "/healing/rules"));
    let t = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "cpu_temperature")
        .unwrap()
        .clone();
    assert_eq!(t["enabled"], false, "the switch is kept");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let s = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            s.success(),
            "mount tmpfs (the test needs root, as CI runs it)"
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(path: &Path, mib: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![0x5a; mib << 20]).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_full_data_partition_is_cleaned_of_exactly_the_known_safe_targets() {
    let dev = device_with_rules("", "[n2k]\ninterface = \"\"\n");
    let data = dev.dir.path().join("data");
    let _fs = Tmpfs::mount(&data, 64);
    std::fs::create_dir_all(data.join("state")).unwrap();
    // The state, backups and exports all on the small data partition.
    let config = std::fs::read_to_string(dev.config()).unwrap();
    let moved = config
        .replace(
            &dev.state().display().to_string(),
            &data.join("state").display().to_string(),
        )
        .replace(
            &dev.backups().display().to_string(),
            &data.join("backups").display().to_string(),
        )
        .replace(
            &dev.exports().display().to_string(),
            &data.join("exports").display().to_string(),
        );
    std::fs::write(dev.config(), moved).unwrap();
    std::fs::write(
        dev.dir.path().join("healing.toml"),
        format!(
            "check_every_secs = 3600\n[rules.unit_failed]\nunits = []\n[rules.disk_space]\nmounts = [\"{}\"]\nmin_free_percent = 40\n",
            data.display()
        ),
    )
    .unwrap();
    // Three real backups; the owner keeps one.
    for _ in 0..3 {
        let out = Command::new(common::bin())
            .args(["--config"])
            .arg(dev.config())
            .args(["backup", "create"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    put(&data, "state/backup-settings.json", "{\"keep\": 1}\n");
    let backups_before = names(&data.join("backups"));
    let archives: Vec<&String> = backups_before
        .iter()
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 3, "{backups_before:?}");
    let newest = archives.iter().max().unwrap().to_string();
    // An export file no job names, two hours old: beyond retention. A fresh one (a job may
    // be writing it) and the boat's own files stay.
    let stale = data.join("exports/files/boatlog-old.csv");
    fill(&stale, 20);
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7_200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    fill(&data.join("exports/files/boatlog-new.csv"), 1);
    fill(&data.join("state/manuals/engine-manual.pdf"), 20);
    put(&data, "state/notes.txt", "the boat's own\n");

    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let c = assert_ok(&write(
        &d,
        "POST",
        "/healing/check",
        Some(&cookie),
        &json!({}),
    ));
    let recorded = c["recorded"].as_array().unwrap();
    let clean = recorded
        .iter()
        .find(|r| r["action"] == "clean_disk")
        .unwrap_or_else(|| panic!("no cleaning: {c:#}"));
    assert_eq!(clean["outcome"], "fixed", "{clean:#}");
    let result = clean["result"].as_str().unwrap();
    assert!(
        result.contains("exports beyond retention: 1 removed, 20.0 MiB freed"),
        "{result}"
    );
    assert!(
        result.contains("backups beyond keep: 2 removed"),
        "{result}"
    );
    assert!(
        !result.contains("journal"),
        "the journal is not on this partition: {result}"
    );

    // Exactly the known-safe targets went.
    assert!(!stale.exists());
    assert_eq!(names(&data.join("exports/files")), ["boatlog-new.csv"]);
    let after: Vec<String> = names(&data.join("backups"))
        .into_iter()
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(after, [newest], "the newest backup is kept");
    assert_eq!(
        std::fs::metadata(data.join("state/manuals/engine-manual.pdf"))
            .unwrap()
            .len(),
        20 << 20
    );
    assert_eq!(
        std::fs::read_to_string(data.join("state/notes.txt")).unwrap(),
        "the boat's own\n"
    );
    assert!(data.join("state/boatlog.db").exists());
    assert!(
        open_rules(&d).is_empty()
            || c["open"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["state"] != "escalated")
    );

    // The boat's own data fills it again: nothing more may go, so the rule gives up and
    // says so, and deletes nothing.
    fill(&data.join("state/manuals/chart-pack.bin"), 24);
    let c = assert_ok(&write(
        &d,
        "POST",
        "/healing/check",
        Some(&cookie),
        &json!({}),
    ));
    let open: Vec<&Value> = c["open"].as_array().unwrap().iter().collect();
    assert_eq!(open.len(), 1, "{c:#}");
    assert_eq!(open[0]["state"], "escalated");
    let outcomes: Vec<&str> = c["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.ends_with(&["failed", "escalated"]), "{outcomes:?}");
    assert!(data.join("state/manuals/chart-pack.bin").exists());
    assert_eq!(names(&data.join("exports/files")), ["boatlog-new.csv"]);
    // Escalated, it is not cleaned again at every check.
    let c = assert_ok(&write(
        &d,
        "POST",
        "/healing/check",
        Some(&cookie),
        &json!({}),
    ));
    assert!(c["recorded"].as_array().unwrap().is_empty(), "{c:#}");
}

/// A loopback stand-in for the remote diagnosis service: answers each request with
/// `answer` once `release` says so (at once when it is already set).
fn diagnosis_server(
    answer: &'static str,
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/diagnose", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = Vec::new();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while let Ok(n) = c.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(head) = text.find("\r\n\r\n") {
                    let len = text[..head]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= head + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            asked2
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&got).into_owned());
            while !release.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, asked)
}

#[test]
fn a_remote_diagnosis_is_asked_never_waited_for_and_its_answer_recorded() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let release = std::sync::Arc::new(AtomicBool::new(false));
    let (url, asked) = diagnosis_server(
        r#"{"diagnosis": "The fan is likely blocked: check the enclosure's vents."}"#,
        release.clone(),
    );
    let fake = tempfile::tempdir().unwrap();
    put(
        fake.path(),
        "sys/class/thermal/thermal_zone0/temp",
        "85123\n",
    );
    let dev = device_with_rules(
        &format!(
            "check_every_secs = 3600\n[rules.unit_failed]\nunits = []\n[rules.disk_space]\nmounts = []\n\
             [diagnosis]\nurl = \"{url}\"\ntimeout_secs = 10\n"
        ),
        "[n2k]\ninterface = \"\"\n",
    );
    let mut config = std::fs::read_to_string(dev.config()).unwrap();
    config.push_str(&format!("probe_root = \"{}\"\n", fake.path().display()));
    std::fs::write(dev.config(), config).unwrap();
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    // The check answers while the service still holds its answer back.
    let c = assert_ok(&write(
        &d,
        "POST",
        "/healing/check",
        Some(&cookie),
        &json!({}),
    ));
    assert_eq!(c["open"][0]["rule"], "cpu_temperature", "{c:#}");
    assert!(!release.load(Ordering::SeqCst));
    eventually("the service is asked", Duration::from_secs(10), || {
        !asked.lock().unwrap().is_empty()
    });
    let request = asked.lock().unwrap()[0].clone();
    assert!(request.starts_with("POST /diagnose"), "{request}");
    assert!(
        request.contains(r#""rule":"cpu_temperature""#) && request.contains("85.1 °C"),
        "{request}"
    );
    let diagnosis = || {
        assert_ok(&get(&d, "/healing/history?rule=cpu_temperature"))["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "diagnosis")
            .cloned()
    };
    assert!(diagnosis().is_none(), "not recorded before it answers");
    release.store(true, Ordering::SeqCst);
    eventually("the diagnosis is recorded", Duration::from_secs(10), || {
        diagnosis().is_some()
    });
    assert_eq!(
        diagnosis().unwrap()["result"],
        "The fan is likely blocked: check the enclosure's vents."
    );
}

/// Regression: a missing CAN interface (no HAT) was "restarted" through a root unit that
/// failed and left the system degraded; it is escalated to the owner instead.
#[test]
fn a_missing_can_interface_is_escalated_not_restarted() {
    let dev = device_with_rules(
        "[rules.unit_failed]\nunits = []\n[rules.disk_space]\nmounts = []\n",
        "[n2k]\ninterface = \"d3kosnone0\"\n",
    );
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let mut last = Value::Null;
    eventually("the bus rule escalates", Duration::from_secs(15), || {
        last = assert_ok(&write(
            &d,
            "POST",
            "/healing/check",
            Some(&cookie),
            &json!({}),
        ));
        last["open"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["rule"] == "can_bus" && o["state"] == "escalated")
    });
    let h = assert_ok(&get(&d, "/healing/history?rule=can_bus"));
    let recs = h["records"].as_array().unwrap();
    assert!(
        recs.iter().all(|r| r["action"].is_null()),
        "nothing was run: {recs:?}"
    );
    assert!(
        recs[0]["result"]
            .as_str()
            .unwrap()
            .contains("there is no d3kosnone0 to bring down and up"),
        "{recs:?}"
    );
}
