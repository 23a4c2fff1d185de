//! A/B updates through the real `d3kosd update` on file-backed slots: install, try, commit,
//! roll back, refusals that write nothing, and a power cut at every step.
//!
//! The test plays the firmware: at each power-on it reads autoboot.txt and the harness's
//! one-time flag from the config folder as the boot test's harness does, boots the slot they
//! name (the kernel command line's root= and, for a try, the try parameter), and first
//! checks that slot holds one whole release, byte for byte.

mod common;

use std::path::Path;
use std::process::Command;

use appliance::layout::Slot;
use common::BIN;
use common::slots::{
    BOOT_PARTITION, Helper, Rig, SYSTEM_PARTITION, bootable_release, bundle_of, key, release,
};
use serde_json::json;

#[test]
fn a_bundle_is_installed_tried_committed_and_a_failing_one_goes_back() {
    let key = key();
    let (v1, v2, v3) = (release("1.0", 1), release("2.0", 10), release("3.0", 20));
    let mut rig = Rig::new(&v1, &key);
    rig.releases.extend([v2.clone(), v3.clone()]);
    assert_eq!(rig.settle()["verdict"], "steady");

    let b2 = rig.write_bundle("v2.d3kb", &bundle_of(&v2, "qemu-amd64", &key));
    let checked = rig.ok(&["check", &b2]);
    assert!(
        checked.contains("d3kOS 2.0 for qemu-amd64") && checked.contains("slot B"),
        "{checked}"
    );
    let said = rig.ok(&["install", &b2, "--no-reboot"]);
    assert!(said.contains("into slot B"), "{said}");
    assert_eq!(rig.holds(Slot::B), Some("2.0"));
    assert_eq!(
        rig.committed(),
        Slot::A,
        "nothing is committed before the try"
    );
    let s = rig.status();
    assert_eq!(s["last_attempt"]["outcome"], "pending", "{s}");
    assert_eq!(s["b"]["state"], "installed", "{s}");

    // The try: healthy, committed.
    assert_eq!(rig.power_on(), (Slot::B, true, "2.0"));
    let v = rig.settle();
    assert_eq!(
        v,
        json!({"verdict": "committed", "slot": "b", "version": "2.0"})
    );
    assert_eq!(rig.committed(), Slot::B);
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    assert_eq!(rig.settle()["verdict"], "steady");
    let s = rig.status();
    assert_eq!(
        (s["running"].clone(), s["committed"].clone()),
        (json!("b"), json!("b"))
    );
    assert_eq!(s["a"]["version"], "1.0");
    assert_eq!(s["a"]["state"], "good", "{s}");
    assert_eq!(s["b"]["state"], "good", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "committed", "{s}");
    // The appliance shows the same.
    let device = common::Device::new(&format!(
        "update_device = \"{}\"\n",
        rig.path("device.json").display()
    ));
    let daemon = device.start();
    let r = common::get(&daemon, "/api/update/status");
    let shown = r.json();
    assert_eq!(r.status, 200, "{shown}");
    assert_eq!(shown["data"], s, "{shown}");

    // v3 goes to slot a; its system is not healthy in time: rolled back, v2 runs on. The
    // try cannot reach the boat log; v2 notes the rollback when it runs again.
    let b3 = rig.write_bundle("v3.d3kb", &bundle_of(&v3, "qemu-amd64", &key));
    rig.ok(&["install", &b3, "--no-reboot"]);
    assert_eq!(rig.holds(Slot::A), Some("3.0"));
    rig.log_lost.set(true);
    assert_eq!(rig.power_on(), (Slot::A, true, "3.0"));
    rig.log_lost.set(false);
    std::fs::write(
        rig.path("state/health.db"),
        b"not a database at all, 32 bytes!",
    )
    .unwrap();
    let v = rig.settle();
    assert_eq!(v["verdict"], "rolled-back", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("health.db"), "{v}");
    assert_eq!(rig.committed(), Slot::B);
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    assert_eq!(rig.settle()["verdict"], "steady");
    let s = rig.status();
    assert_eq!(s["a"]["state"], "bad", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "rolled-back", "{s}");
    assert_eq!(s["last_attempt"]["version"], "3.0", "{s}");

    // A try that never comes up (it hangs; the watchdog restarts into the default).
    let db = rusqlite::Connection::open(rig.path("state/health2.db")).unwrap();
    db.execute_batch("CREATE TABLE t (x);").unwrap();
    std::fs::rename(rig.path("state/health2.db"), rig.path("state/health.db")).unwrap();
    rig.ok(&["install", &b3, "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::A, true, "3.0"));
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    let v = rig.settle();
    assert_eq!(
        v,
        json!({"verdict": "never-came-up", "slot": "a", "version": "3.0"})
    );

    // Back to the release that ran before: slot a now holds v3 (bad), so nothing to go back
    // to; v1 is gone. Installing v1 again over it is an older version: forced.
    let said = rig.refused(&["switch", "--no-reboot"]);
    assert!(said.contains("nothing to go back to"), "{said}");
    let b1 = rig.write_bundle("v1.d3kb", &bundle_of(&v1, "qemu-amd64", &key));
    let said = rig.refused(&["install", &b1, "--no-reboot"]);
    assert!(said.contains("not newer than the running 2.0"), "{said}");
    rig.ok(&["install", &b1, "--force", "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::A, true, "1.0"));
    assert_eq!(rig.settle()["verdict"], "committed");
    // And the switch back to v2, tried then committed.
    assert_eq!(rig.power_on(), (Slot::A, false, "1.0"));
    rig.ok(&["switch", "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::B, true, "2.0"));
    assert_eq!(rig.settle()["verdict"], "committed");
    assert_eq!(rig.committed(), Slot::B);
    // A second verdict in the same boot changes and notes nothing.
    assert_eq!(rig.settle()["verdict"], "steady");

    // Each install, commit, rollback and switch is in the boat log once, in order.
    let log = rusqlite::Connection::open(rig.path("state/boatlog.db")).unwrap();
    let mut q = log
        .prepare("SELECT text FROM entry WHERE kind = 'auto' AND at > 0 ORDER BY id")
        .unwrap();
    let entries: Vec<String> = q
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: &[&[&str]] = &[
        &["d3kOS 2.0 installed into slot B", "running 1.0"],
        &[
            "2.0 came up healthy in slot B and is committed",
            "1.0 stays in slot A",
        ],
        &["d3kOS 3.0 installed into slot A"],
        &["3.0 in slot A was not kept", "health.db", "2.0 runs"],
        &["d3kOS 3.0 installed into slot A"],
        &["3.0 in slot A was not kept", "did not come up"],
        &["d3kOS 1.0 installed into slot A"],
        &["1.0 came up healthy in slot A"],
        &["going back to 2.0 in slot B"],
        &["2.0 came up healthy in slot B", "1.0 stays in slot A"],
    ];
    assert_eq!(entries.len(), expected.len(), "{entries:#?}");
    for (e, words) in entries.iter().zip(expected) {
        for w in *words {
            assert!(e.contains(w), "{e:?} lacks {w:?}: {entries:#?}");
        }
    }
}

#[test]
fn bad_bundles_are_refused_with_nothing_written() {
    let key = key();
    let (v1, v2) = (release("1.0", 1), release("2.0", 10));
    let rig = Rig::new(&v1, &key);
    rig.settle();
    let good = bundle_of(&v2, "qemu-amd64", &key);
    let m_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let mut flipped_payload = good.clone();
    let last = good.len() - 3;
    flipped_payload[last] ^= 0x10;
    let mut flipped_manifest = good.clone();
    flipped_manifest[16 + m_len / 2] ^= 0x01;
    let mut cases = vec![
        (
            "another key",
            bundle_of(&v2, "qemu-amd64", &self::key()),
            "does not trust",
        ),
        ("a flipped payload byte", flipped_payload, "damaged"),
        ("a flipped manifest byte", flipped_manifest, "altered"),
        ("cut short", good[..good.len() / 2].to_vec(), "ends early"),
        (
            "another board",
            bundle_of(&v2, "rpi4", &key),
            "this system is d3kOS/qemu-amd64",
        ),
        (
            "an older version",
            bundle_of(&release("0.9", 5), "qemu-amd64", &key),
            "not newer",
        ),
        (
            "not a bundle",
            b"GIF89a and the rest of a picture".to_vec(),
            "not a d3kOS update bundle",
        ),
    ];
    cases.push((
        "the same version",
        bundle_of(&v1, "qemu-amd64", &key),
        "not newer",
    ));
    let before = rig.snapshot();
    for (what, bytes, says) in cases {
        let path = rig.write_bundle("bad.d3kb", &bytes);
        for verb in ["check", "install"] {
            let said =
                rig.refused(&[verb, &path, "--no-reboot"][..if verb == "check" { 2 } else { 3 }]);
            assert!(said.contains(says), "{what} ({verb}): {said}");
            assert!(
                rig.snapshot() == before,
                "{what} ({verb}) changed the device"
            );
        }
    }
    // From standard input, the payload's damage is found block by block: the slot is then
    // marked as being written (not bootable), nothing is tried, the committed slot runs.
    let mut flipped = good.clone();
    let at = good.len() - 3;
    flipped[at] ^= 0x10;
    let out = Command::new(BIN)
        .args(["update", "install", "-", "--no-reboot", "--device"])
        .arg(rig.path("device.json"))
        .stdin(std::fs::File::open(rig.write_bundle("f.d3kb", &flipped)).unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("damaged"), "{said}");
    assert!(!rig.path("config/tryboot").exists());
    assert_eq!(rig.status()["b"]["state"], "writing");
    assert_eq!(rig.power_on(), (Slot::A, false, "1.0"));
}

/// A factory restore copies the running release into the other slot (its boot partition
/// naming that slot's system), tried and committed like an install; a power cut at any of
/// its steps leaves a committed slot that boots, and the restore run again completes.
#[test]
fn a_factory_restore_copies_the_running_release_and_survives_a_cut_at_any_step() {
    let key = key();
    let v1 = bootable_release("1.0", 40);
    let damaged = |rig: &Rig| {
        // Slot b holds what a failed update left: nothing whole.
        let (boot, system) = rig.slot_files(Slot::B);
        std::fs::write(boot, vec![0x5a; BOOT_PARTITION as usize]).unwrap();
        std::fs::write(system, vec![0x5a; SYSTEM_PARTITION as usize]).unwrap();
    };
    let args = ["factory-restore", "--no-reboot"];

    let rig = Rig::new(&v1, &key);
    damaged(&rig);
    assert_eq!(rig.holds(Slot::B), None);
    let out = rig.ok(&args);
    assert!(out.contains("1.0 copied into slot B"), "{out}");
    assert_eq!(rig.holds(Slot::B), Some("1.0"), "slot b is not a whole 1.0");
    let (_, system_b) = rig.slot_files(Slot::B);
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&system_b)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
    let s = rig.status();
    assert_eq!(s["b"]["state"], "installed", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "pending", "{s}");
    assert_eq!(rig.power_on(), (Slot::B, true, "1.0"));
    assert_eq!(rig.settle()["verdict"], "committed");
    assert_eq!(rig.power_on(), (Slot::B, false, "1.0"));
    let log: String = rusqlite::Connection::open(rig.path("state/boatlog.db"))
        .unwrap()
        .query_row(
            "SELECT group_concat(text, '|') FROM entry WHERE kind = 'auto'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        log.contains("Factory restore: 1.0 copied from slot A into slot B"),
        "{log}"
    );

    // A boot partition that does not name its system partition is refused, nothing written.
    let rig = Rig::new(&v1, &key);
    damaged(&rig);
    let (boot_a, _) = rig.slot_files(Slot::A);
    std::fs::write(&boot_a, vec![1u8; BOOT_PARTITION as usize]).unwrap();
    let before = rig.snapshot();
    let e = rig.refused(&args);
    assert!(e.contains("does not name its system partition"), "{e}");
    assert!(
        rig.snapshot() == before,
        "a refused restore wrote something"
    );

    // A power cut at each step.
    let probe = Rig::new(&v1, &key);
    damaged(&probe);
    let steps = points(&probe, &args, &probe.path("restore.log"));
    assert!(
        steps.contains(&"restore: running system frozen".to_owned()),
        "{steps:?}"
    );
    for n in 1..=steps.len() as u64 {
        let rig = Rig::new(&v1, &key);
        damaged(&rig);
        assert!(cut_at(&rig, &args, n), "step {n} was not reached");
        rig.power_on();
        rig.settle();
        let (running, _, _) = rig.power_on();
        rig.settle();
        assert_eq!(running, rig.committed(), "step {n}");
        assert!(rig.holds(rig.committed()).is_some(), "step {n}");
        if rig.holds(Slot::B).is_none() || rig.committed() == Slot::A {
            rig.ok(&args);
            rig.power_on();
            rig.settle();
        }
        assert_eq!(rig.power_on(), (Slot::B, false, "1.0"), "step {n}");
    }
    eprintln!("{} power cuts in a factory restore", steps.len());
}

/// Runs `args` with the crash point `n` armed; whether it was cut there.
fn cut_at(rig: &Rig, args: &[&str], n: u64) -> bool {
    let out = rig.d3kosd(args, &[("D3KOS_CRASH_AT", n.to_string())]);
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

fn points(rig: &Rig, args: &[&str], log: &Path) -> Vec<String> {
    let out = rig.d3kosd(args, &[("D3KOS_CRASH_LOG", log.display().to_string())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect()
}

/// A power cut at every step of an install and of the verdict after its try, in both
/// directions: after each, the firmware boots a slot that holds a whole release, the next
/// verdict leaves a committed slot that holds one, and the update, run again, completes.
#[test]
fn a_power_cut_at_any_step_leaves_a_committed_bootable_slot() {
    let key = key();
    let (v1, v2, v3) = (release("1.0", 1), release("2.0", 10), release("3.0", 20));
    let mut cuts = 0;
    for (from, to, slot) in [(&v1, &v2, Slot::B), (&v2, &v3, Slot::A)] {
        // A device shipped with v1 that runs `from`, knowing all three releases.
        let running_from = || {
            let mut rig = Rig::new(&v1, &key);
            rig.releases = vec![v1.clone(), v2.clone(), v3.clone()];
            if from.version == "2.0" {
                let b = rig.write_bundle("b.d3kb", &bundle_of(&v2, "qemu-amd64", &key));
                rig.ok(&["install", &b, "--no-reboot"]);
                rig.power_on();
                rig.settle();
            }
            rig
        };
        // Count the steps on a rig of its own.
        let probe = running_from();
        let bundle = bundle_of(to, "qemu-amd64", &key);
        let b = probe.write_bundle("u.d3kb", &bundle);
        let install = points(
            &probe,
            &["install", &b, "--no-reboot"],
            &probe.path("install.log"),
        );
        assert!(
            install
                .iter()
                .filter(|p| *p == "update: block written")
                .count()
                > 100
        );
        probe.power_on();
        let settle = points(
            &probe,
            &["settle", "--no-reboot"],
            &probe.path("settle.log"),
        );
        assert!(
            settle.contains(&"update: autoboot commits".to_owned()),
            "{settle:?}"
        );

        for (phase, steps) in [("install", install.len()), ("settle", settle.len())] {
            for n in 1..=steps as u64 {
                let rig = running_from();
                let b = rig.write_bundle("u.d3kb", &bundle);
                if phase == "settle" {
                    rig.ok(&["install", &b, "--no-reboot"]);
                    rig.power_on();
                }
                let args: &[&str] = if phase == "install" {
                    &["install", &b, "--no-reboot"]
                } else {
                    &["settle", "--no-reboot"]
                };
                assert!(cut_at(&rig, args, n), "{phase} step {n} was not reached");
                cuts += 1;
                // Power on (the firmware checks the slot holds a whole release), the verdict,
                // and again: the committed slot holds one.
                rig.power_on();
                rig.settle();
                let (running, _, version) = rig.power_on();
                rig.settle();
                assert_eq!(running, rig.committed(), "{phase} {n}");
                assert!(rig.holds(rig.committed()).is_some(), "{phase} {n}");
                // The update, run again if it did not finish, completes.
                if version != to.version {
                    rig.ok(&["install", &b, "--no-reboot"]);
                    rig.power_on();
                    rig.settle();
                }
                assert_eq!(
                    rig.power_on(),
                    (slot, false, to.version),
                    "{phase} step {n}"
                );
            }
        }
    }
    eprintln!("{cuts} power cuts, each followed by two power-ons and a finished update");
    assert!(cuts >= 200, "only {cuts} cuts");
}

fn upload(d: &common::Daemon, cookie: Option<&str>, query: &str, bytes: &[u8]) -> common::Reply {
    let origin = format!("http://{}", d.addr);
    let mut h = vec![
        ("Content-Type", "application/octet-stream"),
        ("Origin", origin.as_str()),
    ];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    common::request(
        d.addr,
        "POST",
        &format!("/api/update/install{query}"),
        &h,
        bytes,
    )
}

#[test]
fn the_owner_installs_from_the_web_page_after_a_backup_and_a_refused_bundle_writes_nothing() {
    let key = key();
    let (v1, v2) = (release("1.0", 1), release("2.0", 10));
    let mut rig = Rig::new(&v1, &key);
    rig.releases.push(v2.clone());
    rig.settle();
    let mut helper = Helper::start(&rig);
    let device = common::Device::new(&format!(
        "update_device = \"{}\"\nupdate_helper = \"{}\"\n",
        rig.path("device.json").display(),
        helper.socket.display()
    ));
    let d = device.start();
    let good = bundle_of(&v2, "qemu-amd64", &key);

    // Only the owner.
    common::assert_error(&upload(&d, None, "", &good), 401, "unauthorized");
    let cookie = common::create_owner(&device, &d);

    // Signed by a key the device does not trust: refused at its first bytes, nothing
    // written; the backup taken first is kept all the same.
    let before = rig.snapshot();
    let r = upload(
        &d,
        Some(&cookie),
        "",
        &bundle_of(&v2, "qemu-amd64", &self::key()),
    );
    common::assert_error(&r, 422, "bundle_refused");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not trust")
    );
    assert!(
        rig.snapshot() == before,
        "a refused bundle changed the device"
    );
    // A URL the device cannot fetch, and one that is not http(s).
    let r = common::write(
        &d,
        "POST",
        "/api/update/install",
        Some(&cookie),
        &json!({"url": "http://127.0.0.1:9/d3kOS-2.0.d3kb"}),
    );
    common::assert_error(&r, 422, "bundle_refused");
    let r = common::write(
        &d,
        "POST",
        "/api/update/install",
        Some(&cookie),
        &json!({"url": "file:///etc/passwd"}),
    );
    common::assert_error(&r, 400, "bad_request");
    assert!(
        rig.snapshot() == before,
        "a refused request changed the device"
    );

    // Going back with nothing to go back to, and a switch for someone else: refused, nothing
    // written.
    let r = common::write(&d, "POST", "/api/update/switch", None, &json!({}));
    common::assert_error(&r, 401, "unauthorized");
    let r = common::write(&d, "POST", "/api/update/switch", Some(&cookie), &json!({}));
    common::assert_error(&r, 422, "refused");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing to go back to"),
        "{:?}",
        r.json()
    );
    assert!(
        rig.snapshot() == before,
        "a refused switch changed the device"
    );

    // The bundle itself: a backup of the data first, then written, tried at the next start.
    let r = upload(&d, Some(&cookie), "", &good);
    let done = common::assert_ok(&r);
    assert_eq!(
        (&done["version"], &done["slot"], &done["restarting"]),
        (&json!("2.0"), &json!("b"), &json!(true)),
        "{done}"
    );
    assert_eq!(rig.holds(Slot::B), Some("2.0"));
    let backup = done["backup"].as_str().unwrap().to_owned();
    let listed = common::assert_ok(&common::request(
        d.addr,
        "GET",
        "/api/backup/list",
        &[("Cookie", &cookie)],
        b"",
    ));
    let kept = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == backup.as_str())
        .unwrap_or_else(|| panic!("{backup} is not listed: {listed}"));
    assert_eq!(kept["kind"], "pre-update", "{kept}");
    let s = common::assert_ok(&common::get(&d, "/api/update/status"));
    assert_eq!(s["last_attempt"]["outcome"], "pending", "{s}");
    assert!(s.get("installing").is_none(), "{s}");

    // 2.0 tried and committed; the owner goes back to 1.0 from the web page.
    rig.power_on();
    rig.settle();
    let r = common::write(&d, "POST", "/api/update/switch", Some(&cookie), &json!({}));
    let back = common::assert_ok(&r);
    assert_eq!(
        (&back["version"], &back["slot"], &back["restarting"]),
        (&json!("1.0"), &json!("a"), &json!(true)),
        "{back}"
    );
    assert_eq!(rig.power_on(), (Slot::A, true, "1.0"));
    // The helper gone: said plainly.
    helper.child.kill().unwrap();
    helper.child.wait().unwrap();
    std::fs::remove_file(&helper.socket).unwrap();
    let r = upload(&d, Some(&cookie), "", &good);
    common::assert_error(&r, 503, "update_unavailable");
}
