//! The pages as a browser shows them: each page of the real d3kosd in headless Chromium at
//! 1280×800, day and night theme, checked with axe-core for WCAG 2.1 A and AA, with a
//! screenshot of each written to target/page-screenshots/.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Device;

/// The repository's root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Where the page checks put their screenshots.
fn shots() -> PathBuf {
    let shots = repo().join("target/page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

/// Runs a page check from tests/pages with `args`; it must pass. Returns what it printed.
fn page_check(script: &str, args: &[&std::ffi::OsStr]) -> String {
    assert!(
        repo().join("tests/pages/node_modules").is_dir(),
        "the page checker's packages are missing: run `npm ci` in tests/pages (ci/test does)"
    );
    let out = Command::new("node")
        .arg(repo().join("tests/pages").join(script))
        .args(args)
        .output()
        .expect("node runs (ci/setup-host installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{script}: a check failed or the browser failed:\n{stdout}"
    );
    stdout
}

#[test]
fn pages_pass_axe_in_chromium_with_screenshots() {
    let dev = Device::new("");
    let d = dev.start();
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let stdout = page_check("check.mjs", &[base.as_ref(), shots.as_os_str()]);
    let pngs: Vec<_> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert!(
        pngs.len() >= 14,
        "a screenshot per page and theme: {pngs:?}"
    );
    for p in &pngs {
        println!("screenshot: {}", p.display());
    }
    assert!(
        stdout.lines().any(|l| l.trim() == "14 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn an_update_is_installed_from_the_settings_page_and_a_refused_one_says_why() {
    use common::slots::{Helper, Rig, bundle_of, key, release};
    let key = key();
    let (v1, v2) = (release("1.0", 1), release("2.0", 10));
    let mut rig = Rig::new(&v1, &key);
    rig.releases.push(v2.clone());
    rig.settle();
    let helper = Helper::start(&rig);
    let dev = Device::new(&format!(
        "update_device = \"{}\"\nupdate_helper = \"{}\"\n",
        rig.path("device.json").display(),
        helper.socket.display()
    ));
    let d = dev.start();
    let good = rig.write_bundle(
        "d3kOS-2.0-qemu-amd64.d3kb",
        &bundle_of(&v2, "qemu-amd64", &key),
    );
    let other = common::slots::key();
    let refused = rig.write_bundle("other-key.d3kb", &bundle_of(&v2, "qemu-amd64", &other));
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let code = dev.setup_code();
    let stdout = page_check(
        "update.mjs",
        &[
            base.as_ref(),
            code.as_ref(),
            refused.as_ref(),
            good.as_ref(),
            shots.as_os_str(),
        ],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "10 passed, 0 failed"),
        "{stdout}"
    );
    // What the page did, on the slots.
    assert_eq!(rig.holds(appliance::layout::Slot::B), Some("2.0"));
    assert_eq!(rig.status()["last_attempt"]["outcome"], "pending");
}

#[test]
fn backup_and_restore_work_from_the_settings_page() {
    use common::archive::{Member, archive, manifest};
    let dev = Device::new("");
    let d = dev.start();
    let hostile = dev.dir.path().join("d3kos_backup_20261129_000001.tar.gz");
    let m = manifest(
        "d3kos_backup_20261129_000001",
        &[("../../etc/passwd", b"x")],
        &[],
    );
    std::fs::write(
        &hostile,
        archive(&m, &[Member::File("data/../../etc/passwd", b"x")]),
    )
    .unwrap();
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let code = dev.setup_code();
    let stdout = page_check(
        "backup.mjs",
        &[
            base.as_ref(),
            code.as_ref(),
            hostile.as_os_str(),
            shots.as_os_str(),
        ],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "14 passed, 0 failed"),
        "{stdout}"
    );
    // What the clicks did, on disk.
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.state().join("backup-settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        settings,
        serde_json::json!({"auto": "weekly", "keep": 5, "hour": 4})
    );
    let names: Vec<String> = std::fs::read_dir(dev.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(
        names.len(),
        4,
        "two made, two kept before restores: {names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("000001")), "{names:?}");
    assert!(!dev.dir.path().join("etc/passwd").exists());
}

#[test]
fn the_boat_log_and_the_export_queue_work_from_their_pages() {
    // An upload that cannot be reached: the port was free a moment ago and nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dev = Device::new(&format!(
        "export.retry_secs = [1, 8]\n[[export.upload]]\nname = \"office\"\nurl = \"http://{closed}/in\"\n"
    ));
    let d = dev.start();
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let code = dev.setup_code();
    let stdout = page_check(
        "boatlog.mjs",
        &[base.as_ref(), code.as_ref(), shots.as_os_str()],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "27 passed, 0 failed"),
        "{stdout}"
    );
    // What the clicks did, through the API a script would use.
    let log = common::request(d.addr, "GET", "/api/boatlog?limit=500", &[], b"").json();
    let texts: Vec<&str> = log["data"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        !texts.iter().any(|t| t.contains("שלום")),
        "the entries deleted on the page are gone: {texts:?}"
    );
    for theme in ["day", "night"] {
        assert!(
            texts.contains(&format!("Voice note, {theme} watch").as_str()),
            "{texts:?}"
        );
    }
    let status = common::request(d.addr, "GET", "/api/export/status", &[], b"").json();
    let finished = status["data"]["finished"].as_array().unwrap();
    assert_eq!(
        finished.len(),
        2,
        "one export to the device per theme: {status}"
    );
    assert!(
        finished.iter().all(|j| j["destination"] == "device"),
        "{status}"
    );
    assert_eq!(status["data"]["failed"], serde_json::json!([]), "{status}");
    assert_eq!(status["data"]["pending"], serde_json::json!([]), "{status}");
    let mut files: Vec<String> = std::fs::read_dir(dev.exports().join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut named: Vec<String> = finished
        .iter()
        .map(|j| j["file"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    assert_eq!(files, named);
}

#[test]
fn the_dashboard_and_navigation_pages_show_a_replayed_capture_at_1_hz() {
    let capture = repo().join("tests/fixture/n2k/helm.log");
    let expect = repo().join("tests/fixture/n2k/helm.json");
    let dev = Device::new(&format!("[n2k]\nreplay = \"{}\"\n", capture.display()));
    let d = dev.start();
    let base = format!("http://{}", d.addr);
    let shots = shots();
    let stdout = page_check(
        "engine.mjs",
        &[base.as_ref(), shots.as_os_str(), expect.as_os_str()],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "11 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn the_self_healing_page_and_the_dashboard_notices_work_signed_out_and_as_the_owner() {
    // A hot, throttled processor read from a fake /sys, and a watched partition with no
    // free space that cleaning cannot help (procfs has no blocks, and nothing the device
    // may clean lives on it): the last is escalated to the owner.
    let fake = tempfile::tempdir().unwrap();
    let root = fake.path();
    for (rel, text) in [
        ("sys/class/thermal/thermal_zone0/temp", "85123\n"),
        (
            "sys/devices/platform/soc/soc:firmware/get_throttled",
            "0x50005\n",
        ),
    ] {
        let f = root.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    std::os::unix::fs::symlink("/proc", root.join("data")).unwrap();
    let dev = Device::new("[n2k]\ninterface = \"\"\n");
    let rules = dev.dir.path().join("healing.toml");
    std::fs::write(
        &rules,
        "check_every_secs = 5\n[rules.unit_failed]\nunits = []\n[rules.disk_space]\nmounts = [\"/data\"]\n",
    )
    .unwrap();
    let mut config = std::fs::read_to_string(dev.config()).unwrap();
    config.push_str(&format!(
        "\n[healing]\nrules = \"{}\"\nprobe_root = \"{}\"\n",
        rules.display(),
        root.display()
    ));
    std::fs::write(dev.config(), config).unwrap();
    // The boat's clock is not the browser's: the page must show the device's zone.
    let d = dev.launch(&[], &[("TZ", "Pacific/Chatham")]);
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let code = dev.setup_code();
    let stdout = page_check(
        "healing.mjs",
        &[
            base.as_ref(),
            code.as_ref(),
            shots.as_os_str(),
            root.as_os_str(),
        ],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "20 passed, 0 failed"),
        "{stdout}"
    );
    // What the switch did, through the API a script would use.
    let r = common::request(d.addr, "GET", "/healing/rules", &[], b"").json();
    let enabled = |id: &str| {
        r["data"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap()["enabled"]
            .clone()
    };
    assert_eq!(enabled("cpu_temperature"), false, "{r}");
    assert_eq!(enabled("memory_pressure"), true, "{r}");
}

#[test]
fn the_helm_screen_shows_the_setup_code_and_its_keyboard_never_covers_the_field() {
    let dev = Device::new("");
    let d = dev.start();
    let shots = shots();
    let code = dev.setup_code();
    let stdout = page_check(
        "helm.mjs",
        &[
            d.addr.port().to_string().as_ref(),
            code.as_ref(),
            shots.as_os_str(),
        ],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "5 passed, 0 failed"),
        "{stdout}"
    );
    // The owner exists: the helm's first-use answer no longer carries a code.
    let r = common::get(&d, "/api/helm/first-use");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["data"]["owner_exists"], true, "{v}");
    assert!(v["data"]["setup_code"].is_null(), "{v}");
}

#[test]
fn the_setup_wizard_is_filled_in_on_the_helm_screen_and_finished_on_a_phone() {
    let dev = Device::new("");
    // A device that has used 9 of its 10 resets: the page's reset is the last one.
    std::fs::create_dir_all(dev.state()).unwrap();
    std::fs::write(
        dev.state().join("licence.json"),
        r#"{"installation_id":"0a1b2c3d4e5f6789","tier":0,"onboarding_resets_used":9}"#,
    )
    .unwrap();
    let d = dev.start();
    let shots = shots();
    let base = format!("http://{}", d.addr);
    let code = dev.setup_code();
    let stdout = page_check(
        "onboarding.mjs",
        &[base.as_ref(), code.as_ref(), shots.as_os_str()],
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "26 passed, 0 failed"),
        "{stdout}"
    );
    let mut pngs: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("onboarding-") && n.ends_with(".png"))
        .collect();
    pngs.sort();
    // Every step at both sizes, the printout, and the reset's confirmation and refusal.
    assert!(pngs.len() >= 45, "{pngs:?}");
    for p in &pngs {
        println!("screenshot: {}", shots.join(p).display());
    }
    // The code the page showed, read back by a QR decoder.
    let svg = std::fs::read_to_string(shots.join("pairing.svg")).unwrap();
    let want = std::fs::read_to_string(shots.join("pairing-url.txt")).unwrap();
    assert_eq!(common::qr::read(&svg), want);
    assert!(want.contains("id=0a1b2c3d4e5f6789&"), "{want}");
    // What the clicks left on the device: the last reset counted in the licence, the answers
    // given after it kept through the refused one.
    let licence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.state().join("licence.json")).unwrap()).unwrap();
    assert_eq!(licence["onboarding_resets_used"], 10);
    let db = rusqlite_rows(&dev.state().join("onboarding.db"));
    assert_eq!(db, ["step 2, 1 answers, finished no"]);
}

/// The wizard's progress as the database holds it.
fn rusqlite_rows(path: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    c.prepare(
        "SELECT 'step ' || step || ', ' || (SELECT count(*) FROM answer) || ' answers, finished ' \
         || CASE WHEN finished_at IS NULL THEN 'no' ELSE 'yes' END FROM progress",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
