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
    assert!(pngs.len() >= 6, "a screenshot per page and theme: {pngs:?}");
    for p in &pngs {
        println!("screenshot: {}", p.display());
    }
    assert!(
        stdout.lines().any(|l| l.trim() == "6 passed, 0 failed"),
        "{stdout}"
    );
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
