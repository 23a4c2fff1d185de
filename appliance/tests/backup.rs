//! Backup and restore through the real `d3kosd backup` command and HTTP API: the round
//! trip, hostile archives, SIGKILL at every step of create and restore, retention and the
//! schedule on a clock the test moves.

mod common;

use std::process::Command;

use common::Device;
use common::archive::{
    INSTALLATION, Member, archive, archives, cli, copy_tree, created_id, digest, fill, integrity,
    manifest, ok, place, refused, rows, text,
};

fn without(
    mut d: std::collections::BTreeMap<String, String>,
    keys: &[&str],
) -> Vec<(String, String)> {
    for k in keys {
        d.remove(*k);
    }
    d.into_iter().collect()
}

#[test]
fn round_trip_restores_the_backup_point_and_keeps_the_device_identity() {
    let dev = Device::new("");
    let state = dev.state();
    fill(&state, 20);
    let at_backup = digest(&state);
    let logged = rows(&state.join("boatlog/boatlog.db"));
    assert_eq!(logged.len(), 500);

    let out = ok(&dev, &["create"]);
    let id = created_id(&out);
    let archive = dev.backups().join(format!("{id}.tar.gz"));

    // The field's own tools read it: sha256sum -c, and tar lists manifest.json first.
    let sum = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{id}.tar.gz.sha256"))
        .current_dir(dev.backups())
        .output()
        .unwrap();
    assert!(sum.status.success(), "{}", text(&sum));
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let names = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(&names[..2], &["manifest.json", "README.txt"]);
    assert!(names.contains(&"data/boatlog/boatlog.db"), "{names:?}");
    assert!(names.contains(&"data/manuals/empty folder/"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("accounts.json") || n.ends_with("-wal")),
        "no accounts or WAL: {names:?}"
    );
    let m: serde_json::Value = serde_json::from_slice(
        &Command::new("tar")
            .args(["xzOf"])
            .arg(&archive)
            .arg("manifest.json")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(m["name"], id.as_str());
    assert_eq!(m["installation_id"], INSTALLATION);
    assert_eq!(m["tier"], 2);
    assert_eq!(m["items"]["databases"], 1);
    assert_eq!(m["items"]["manuals"], 2);
    assert_eq!(m["items"]["licence"], 1);
    // The database went in through SQLite: the snapshot holds the rows still in the WAL.
    let tmp = tempfile::tempdir().unwrap();
    let x = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", text(&x));
    let snapshot = tmp.path().join("data/boatlog/boatlog.db");
    assert_eq!(rows(&snapshot), logged);

    // The boat moves on: new log rows, a changed file, a new one, a deleted one; and this
    // is now another device (a new card), with its own installation id and owner.
    let db = rusqlite::Connection::open(state.join("boatlog/boatlog.db")).unwrap();
    db.execute(
        "INSERT INTO entries (at, text) VALUES ('2026-12-01', 'after')",
        (),
    )
    .unwrap();
    drop(db);
    std::fs::write(state.join("config/boat.json"), b"{\"name\":\"renamed\"}").unwrap();
    std::fs::write(state.join("manuals/new.pdf"), b"new").unwrap();
    std::fs::remove_file(state.join("boatlog/notes/003.txt")).unwrap();
    let device_licence =
        r#"{"installation_id":"fedcba9876543210","tier":0,"onboarding_resets_used":4}"#;
    std::fs::write(state.join("licence.json"), device_licence).unwrap();
    std::fs::write(state.join("accounts.json"), b"{\"owner\":\"new card\"}").unwrap();
    let before_restore = digest(&state);

    let out = ok(&dev, &["restore", &id]);
    assert!(out.contains(&format!("restored {id}")), "{out}");
    let pre = out
        .lines()
        .find_map(|l| l.strip_prefix("the data it replaced is kept as backup "))
        .unwrap_or_else(|| panic!("no pre-restore backup: {out}"))
        .trim()
        .to_owned();

    let restored = digest(&state);
    assert_eq!(
        without(restored.clone(), &["licence.json", "accounts.json"]),
        without(at_backup, &["licence.json", "accounts.json"]),
        "the data is the backup point's"
    );
    assert_eq!(
        std::fs::read(state.join("boatlog/boatlog.db")).unwrap(),
        std::fs::read(&snapshot).unwrap(),
        "the database is the snapshot, byte for byte"
    );
    assert_eq!(integrity(&state.join("boatlog/boatlog.db")), "ok");
    let licence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("licence.json")).unwrap()).unwrap();
    assert_eq!(
        licence["installation_id"], "fedcba9876543210",
        "the device's id stays"
    );
    assert_eq!(licence["tier"], 2, "the tier comes from the backup");
    assert_eq!(
        licence["onboarding_resets_used"], 4,
        "resets used never go down"
    );
    assert_eq!(
        std::fs::read(state.join("accounts.json")).unwrap(),
        b"{\"owner\":\"new card\"}",
        "who can sign in never comes from a backup"
    );
    for leftover in ["state.restore", "state.restore.tmp", "state.previous"] {
        assert!(!dev.dir.path().join(leftover).exists(), "{leftover} left");
    }

    // The replaced data is a backup of its own, and restoring it goes back exactly.
    let listed: serde_json::Value = serde_json::from_str(
        &ok(&dev, &["list", "--json"])
            .lines()
            .filter(|l| !l.starts_with("note:"))
            .collect::<String>(),
    )
    .unwrap();
    let pre_entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == pre.as_str())
        .unwrap();
    assert_eq!(pre_entry["kind"], "pre-restore");
    assert_eq!(pre_entry["verified"], true);
    ok(&dev, &["verify", &pre]);
    ok(&dev, &["restore", &pre]);
    assert_eq!(
        without(digest(&state), &["licence.json"]),
        without(before_restore, &["licence.json"])
    );
    assert!(restored.len() > 10, "{restored:?}");
}

#[test]
fn hostile_archives_are_refused_and_change_nothing() {
    let dev = Device::new("[backup]\nmax_restore_bytes = 1073741824\n");
    fill(&dev.state(), 3);
    let passwd = b"root:x:0:0::/root:/bin/sh\n";
    let n = |i: u32| format!("d3kos_backup_20261129_0000{i:02}");

    let m = manifest(&n(1), &[("../../etc/passwd", passwd)], &[]);
    refused(
        &dev,
        &n(1),
        &archive(&m, &[Member::File("data/../../etc/passwd", passwd)]),
        "climbs out with `..`",
    );

    let m = manifest(&n(2), &[("x", passwd)], &[]);
    refused(
        &dev,
        &n(2),
        &archive(&m, &[Member::File("/etc/passwd", passwd)]),
        "it is absolute",
    );

    let m = manifest(&n(3), &[("etc/passwd", passwd)], &[]);
    refused(
        &dev,
        &n(3),
        &archive(
            &m,
            &[
                Member::Symlink("data/etc", "/etc"),
                Member::File("data/etc/passwd", passwd),
            ],
        ),
        "a symbolic link at `etc`",
    );

    let m = manifest(&n(4), &[], &[]);
    refused(
        &dev,
        &n(4),
        &archive(&m, &[Member::HardLink("data/passwd", "/etc/passwd")]),
        "a hard link at `passwd`",
    );

    let m = manifest(&n(5), &[], &[]);
    refused(
        &dev,
        &n(5),
        &archive(&m, &[Member::CharDevice("data/null")]),
        "a character device at `null`",
    );

    let m = manifest(&n(6), &[("config/boat.json", b"{\"good\":1}")], &[]);
    refused(
        &dev,
        &n(6),
        &archive(
            &m,
            &[Member::File("data/config/boat.json", b"{\"evil\":1}")],
        ),
        "`config/boat.json` has sha256",
    );

    let m = manifest(&n(7), &[("a.txt", b"a"), ("b.txt", b"b")], &[]);
    refused(
        &dev,
        &n(7),
        &archive(&m, &[Member::File("data/a.txt", b"a")]),
        "lists `b.txt`, which the archive does not hold",
    );

    let m = manifest(&n(8), &[("a.txt", b"aaaa")], &[]);
    let whole = archive(&m, &[Member::File("data/a.txt", b"aaaa")]);
    refused(
        &dev,
        &n(8),
        &whole[..whole.len() - 20],
        "not a complete gzip file",
    );

    // A member whose header claims 10 GB while the manifest says 4 bytes: refused at its
    // header, before its body is read.
    refused(
        &dev,
        &n(9),
        &archive(&m, &[Member::Claims("data/a.txt", 10 << 30, &[0u8; 4096])]),
        "`a.txt` is 10737418240 bytes in the archive but 4 in the manifest",
    );
    // And one whose manifest admits 10 GB: over this device's limit.
    let mut big = manifest(&n(10), &[("a.txt", b"aaaa")], &[]);
    big["files"][0]["size"] = (10u64 << 30).into();
    big["total_bytes"] = (10u64 << 30).into();
    refused(
        &dev,
        &n(10),
        &archive(
            &big,
            &[Member::Claims("data/a.txt", 10 << 30, &[0u8; 4096])],
        ),
        "unpacks to 10737418240 bytes, more than the 1073741824",
    );

    let m = manifest(&n(11), &[("tool", b"#!/bin/sh\n")], &[]);
    refused(
        &dev,
        &n(11),
        &archive(&m, &[Member::Mode("data/tool", b"#!/bin/sh\n", 0o4755)]),
        "setuid",
    );

    let mut newer = manifest(&n(12), &[], &[]);
    newer["format"] = 2.into();
    refused(&dev, &n(12), &archive(&newer, &[]), "made by a newer d3kOS");

    let m = manifest(&n(13), &[("a.txt", b"a")], &[]);
    let mut bytes = archive(&m, &[Member::File("data/a.txt", b"a")]);
    place(&dev, &n(13), &bytes);
    bytes[100] ^= 1;
    std::fs::write(dev.backups().join(format!("{}.tar.gz", n(13))), &bytes).unwrap();
    let o = cli(&dev, &["restore", &n(13)], &[]);
    assert!(text(&o).contains("its checksum file says"), "{}", text(&o));

    // Backups are named by id: a missing id, and paths in every form.
    let o = cli(&dev, &["restore", "d3kos_backup_20200101_000000"], &[]);
    assert!(
        !o.status.success() && text(&o).contains("there is no backup d3kos_backup_20200101_000000"),
        "{}",
        text(&o)
    );
    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "d3kos_backup_20261129_000013.tar.gz",
        "../backups/d3kos_backup_20261129_000013",
    ] {
        let o = cli(&dev, &["restore", path], &[]);
        assert!(
            !o.status.success() && text(&o).contains("never by a path"),
            "{path}: {}",
            text(&o)
        );
    }
}

/// Every step the crash log records for `args`, by a run that is not stopped.
fn steps(dev: &Device, args: &[&str]) -> Vec<String> {
    let log = dev.dir.path().join("crash.log");
    let _ = std::fs::remove_file(&log);
    let o = cli(dev, args, &[("D3KOS_CRASH_LOG", log.to_str().unwrap())]);
    assert!(o.status.success(), "{}", text(&o));
    let steps: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::remove_file(&log).unwrap();
    steps
}

fn killed_at(dev: &Device, args: &[&str], step: usize) {
    let o = cli(dev, args, &[("D3KOS_CRASH_AT", &step.to_string())]);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(9),
        "step {step}: not killed: {}",
        text(&o)
    );
}

#[test]
fn sigkill_at_every_step_of_a_create_leaves_no_half_backup() {
    let dev = Device::new("");
    fill(&dev.state(), 120);
    let state = digest(&dev.state());
    let all = steps(&dev, &["create"]);
    eprintln!("create: killed at each of {} steps", all.len());
    assert!(all.len() >= 100, "{} steps", all.len());
    let first = archives(&dev.backups());
    assert_eq!(first.len(), 2);
    for step in 1..=all.len() {
        killed_at(&dev, &["create"], step);
        assert_eq!(
            digest(&dev.state()),
            state,
            "step {step}: a create changed the data"
        );
        // The next start reports and removes what the kill left.
        let listed = ok(&dev, &["list", "--json"]);
        let leftovers: Vec<String> = std::fs::read_dir(dev.backups())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "step {step} ({}): {leftovers:?}",
            all[step - 1]
        );
        let now: Vec<String> = archives(&dev.backups());
        let new: Vec<&String> = now.iter().filter(|n| !first.contains(n)).collect();
        match new.len() {
            0 => assert!(
                step < all.len() || listed.contains("note:"),
                "step {step}: {listed}"
            ),
            2 => {
                // Finished before the kill: it must be whole.
                let id = new[0].trim_end_matches(".tar.gz");
                ok(&dev, &["verify", id]);
                ok(&dev, &["delete", id]);
            }
            _ => panic!("step {step} ({}): half a backup: {new:?}", all[step - 1]),
        }
    }
}

#[test]
fn sigkill_at_every_step_of_a_restore_leaves_old_or_new_data() {
    let dev = Device::new("");
    let state = dev.state();
    fill(&state, 110);
    let id = created_id(&ok(&dev, &["create"]));
    // What the boat has now, and what a finished restore gives.
    std::fs::write(state.join("config/boat.json"), b"{\"changed\":true}").unwrap();
    for i in 0..40 {
        std::fs::remove_file(state.join(format!("boatlog/notes/{i:03}.txt"))).unwrap();
    }
    let pristine = dev.dir.path().join("pristine");
    copy_tree(&state, &pristine);
    let old = digest(&state);
    let reset = || {
        std::fs::remove_dir_all(&state).unwrap();
        copy_tree(&pristine, &state);
        for name in archives(&dev.backups()) {
            if !name.starts_with(&id) {
                std::fs::remove_file(dev.backups().join(name)).unwrap();
            }
        }
    };
    let all = steps(&dev, &["restore", &id]);
    let new = digest(&state);
    assert_ne!(old, new);
    assert!(all.len() >= 100, "{} steps", all.len());
    eprintln!("restore: killed at each of {} steps", all.len());
    let mut saw = (0, 0);
    for step in 1..=all.len() {
        reset();
        killed_at(&dev, &["restore", &id], step);
        let after_kill = digest(&state);
        let is_new = if after_kill == old {
            false
        } else if after_kill == new {
            true
        } else {
            panic!(
                "step {step} ({}): the data is a mix of old and new",
                all[step - 1]
            );
        };
        let said = ok(&dev, &["list"]);
        assert!(
            said.contains("note:"),
            "step {step}: the next start said nothing: {said}"
        );
        assert_eq!(
            digest(&state),
            after_kill,
            "step {step}: recovery changed the data"
        );
        assert!(!state.join(".d3kos-restore.json").exists());
        for leftover in ["state.restore", "state.restore.tmp", "state.previous"] {
            assert!(
                !dev.dir.path().join(leftover).exists(),
                "step {step}: {leftover} left"
            );
        }
        if is_new {
            saw.1 += 1;
            // The data it replaced is kept, whole.
            let pre: Vec<String> = archives(&dev.backups())
                .into_iter()
                .filter(|n| !n.starts_with(&id) && n.ends_with(".tar.gz"))
                .collect();
            assert_eq!(pre.len(), 1, "step {step}: {pre:?}");
            ok(&dev, &["verify", pre[0].trim_end_matches(".tar.gz")]);
        } else {
            saw.0 += 1;
        }
    }
    assert!(saw.0 > 0 && saw.1 > 0, "old {} new {}", saw.0, saw.1);
    eprintln!(
        "restore: old data after {} kills, new data after {}",
        saw.0, saw.1
    );
}

#[test]
fn retention_keeps_exactly_n_and_never_the_last_good_one() {
    use appliance::backup::{self, Limits, Paths, Settings, schedule};
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        state_dir: dir.path().join("state"),
        backup_dir: dir.path().join("backups"),
    };
    fill(&paths.state_dir, 2);
    let limits = Limits {
        max_total_bytes: 1 << 30,
    };
    let settings = Settings {
        auto: schedule::Auto::Daily,
        keep: 4,
        hour: 3,
    };
    // A month of a clock that moves ten minutes per look, starting on a Sunday at 00:00 UTC.
    let start = 1_795_910_400;
    let mut made = Vec::new();
    let mut now = start;
    while now < start + 30 * 86_400 {
        if let Some(r) = schedule::tick(&paths, &settings, &limits, now, &jiff::tz::TimeZone::UTC) {
            made.push((now, r.unwrap().id));
        }
        now += 600;
    }
    // The first look starts the count; then one backup each day at the first look at or
    // after 03:00.
    assert_eq!(made.len(), 30, "{made:?}");
    for (i, (at, id)) in made.iter().enumerate() {
        assert_eq!((at - start) % 86_400, 3 * 3600, "{id}");
        assert_eq!((at - start) / 86_400, i as i64);
    }
    let listed = backup::list(&paths).unwrap();
    assert_eq!(listed.len(), 4, "exactly keep");
    let newest: Vec<_> = made
        .iter()
        .rev()
        .take(4)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        listed.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        newest
    );
    assert!(
        listed
            .iter()
            .all(|b| b.kind == backup::Kind::Scheduled && b.verified == Some(true))
    );
    let last = backup::last_result(&paths).unwrap();
    assert!(last.ok && last.id.as_ref() == Some(&newest[0]));

    // The three newest are damaged: retention keeps the newest good one beyond `keep`.
    for b in &listed[..3] {
        let p = paths.archive(&b.id);
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        assert!(backup::verify(&paths, &b.id, &limits, &Default::default()).is_err());
    }
    let good = listed[3].id.clone();
    // A check reports its progress: all of the data, read once.
    let progress = backup::Progress::default();
    let m = backup::verify(&paths, &good, &limits, &progress).unwrap();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(progress.total.load(Relaxed), m.total_bytes);
    assert_eq!(progress.done.load(Relaxed), m.total_bytes);
    // Turned off, the schedule makes nothing; a manual backup fails verification later.
    let off = Settings {
        auto: schedule::Auto::Off,
        ..settings
    };
    assert!(
        schedule::tick(
            &paths,
            &off,
            &limits,
            now + 86_400,
            &jiff::tz::TimeZone::UTC
        )
        .is_none()
    );
    let extra = backup::create::create(
        &paths,
        backup::Kind::Manual,
        now + 2 * 86_400,
        &Default::default(),
    )
    .unwrap();
    let p = paths.archive(&extra.id);
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&p, bytes).unwrap();
    let deleted = backup::retain(&paths, 4, &limits, now + 2 * 86_400).unwrap();
    assert!(deleted.is_empty(), "{deleted:?}");
    let _ = backup::verify(&paths, &extra.id, &limits, &Default::default());
    let deleted = backup::retain(&paths, 3, &limits, now + 2 * 86_400).unwrap();
    let left: Vec<_> = backup::list(&paths)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert!(
        left.contains(&good),
        "the newest good backup was deleted: {deleted:?}"
    );
    assert_eq!(left.len(), 4, "three newest plus the good one: {left:?}");
}

#[test]
fn a_full_disk_refuses_a_backup_and_leaves_nothing() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dev = Device::new("");
    fill(&dev.state(), 2);
    let backups = dev.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&backups)
        .output()
        .unwrap();
    assert!(mount.status.success(), "{}", text(&mount));
    let o = cli(&dev, &["create"], &[]);
    let said = text(&o);
    let left = archives(&backups);
    let tmp: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    let _ = Command::new("umount").arg(&backups).status();
    assert!(!o.status.success(), "{said}");
    assert!(
        said.contains("bytes free but") && said.contains("delete old backups"),
        "{said}"
    );
    assert!(left.is_empty() && tmp.is_empty(), "{left:?} {tmp:?}");
}

/// A request as the device's own page sends it.
fn call(
    d: &common::Daemon,
    method: &str,
    path: &str,
    cookie: &str,
    content_type: &str,
    body: &[u8],
) -> common::Reply {
    let origin = format!("http://{}", d.addr);
    common::request(
        d.addr,
        method,
        path,
        &[
            ("Content-Type", content_type),
            ("Origin", &origin),
            ("Cookie", cookie),
        ],
        body,
    )
}

fn json_call(
    d: &common::Daemon,
    method: &str,
    path: &str,
    cookie: &str,
    body: serde_json::Value,
) -> common::Reply {
    call(
        d,
        method,
        path,
        cookie,
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn answer(r: &common::Reply, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    if status == 200 {
        v["data"].clone()
    } else {
        v["error"].clone()
    }
}

#[test]
fn the_http_api_works_by_id_only() {
    let dev = Device::new("[backup]\nmax_upload_bytes = 20000000\n");
    fill(&dev.state(), 5);
    let d = dev.start();
    let r = json_call(&d, "POST", "/api/backup/create", "", serde_json::json!({}));
    assert_eq!(answer(&r, 401)["code"], "unauthorized");
    let r = json_call(
        &d,
        "POST",
        "/api/setup/owner",
        "",
        serde_json::json!({"setup_code": dev.setup_code(), "username": "skipper", "password": "harbour lights"}),
    );
    answer(&r, 200);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let c = cookie.as_str();

    let created = answer(
        &call(&d, "POST", "/api/backup/create", c, "application/json", b""),
        200,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(dev.backups().join(format!("{id}.tar.gz")))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    // The fixture's files, the licence, the daemon's own boat log, engine history, setup
    // wizard answers and vessel id (accounts stay out).
    assert_eq!(created["files"], 15, "{listing}");
    for kept in [
        "data/boatlog.db\n",
        "data/engine.db\n",
        "data/onboarding.db\n",
        "data/vessel-uuid\n",
    ] {
        assert!(listing.contains(kept), "{kept}: {listing}");
    }
    let list = answer(&call(&d, "GET", "/api/backup/list", c, "", b""), 200);
    assert_eq!(list["backups"][0]["id"], id.as_str());
    assert_eq!(list["backups"][0]["verified"], true);
    assert_eq!(list["last"]["ok"], true);
    assert!(list["free_bytes"].as_u64().unwrap() > 0);

    // Download gives the file itself; upload takes it back after a delete.
    let down = call(&d, "GET", &format!("/api/backup/{id}/download"), c, "", b"");
    assert_eq!(down.status, 200);
    assert_eq!(
        down.body,
        std::fs::read(dev.backups().join(format!("{id}.tar.gz"))).unwrap()
    );
    assert!(
        down.header("content-disposition")
            .unwrap()
            .contains(&format!("{id}.tar.gz"))
    );
    answer(
        &call(&d, "DELETE", &format!("/api/backup/{id}"), c, "", b""),
        200,
    );
    assert!(
        answer(&call(&d, "GET", "/api/backup/list", c, "", b""), 200)["backups"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let up = answer(
        &call(
            &d,
            "POST",
            "/api/backup/upload",
            c,
            "application/gzip",
            &down.body,
        ),
        200,
    );
    assert_eq!(up["id"], id.as_str());
    assert_eq!(
        answer(
            &call(
                &d,
                "POST",
                "/api/backup/upload",
                c,
                "application/gzip",
                &down.body
            ),
            409
        )["code"],
        "conflict"
    );
    let m = manifest("d3kos_backup_20261129_000001", &[("a", b"a")], &[]);
    let hostile = archive(&m, &[Member::Symlink("data/a", "/etc/shadow")]);
    let e = answer(
        &call(
            &d,
            "POST",
            "/api/backup/upload",
            c,
            "application/gzip",
            &hostile,
        ),
        422,
    );
    assert_eq!(e["code"], "backup_invalid");
    assert!(
        e["message"].as_str().unwrap().contains("symbolic link"),
        "{e}"
    );
    let huge = vec![0u8; 20_000_001];
    assert_eq!(
        answer(
            &call(
                &d,
                "POST",
                "/api/backup/upload",
                c,
                "application/gzip",
                &huge
            ),
            413
        )["code"],
        "too_large"
    );
    let names = archives(&dev.backups());
    assert_eq!(
        names.len(),
        2,
        "only the good upload and its checksum: {names:?}"
    );

    // Ids, never paths.
    for bad in ["../../etc/passwd", "/etc/passwd", "x"] {
        for path in ["/api/backup/restore", "/api/backup/verify"] {
            let r = json_call(&d, "POST", path, c, serde_json::json!({"id": bad}));
            assert_eq!(answer(&r, 400)["code"], "bad_id", "{path} {bad}");
        }
    }
    let e = answer(
        &call(
            &d,
            "GET",
            "/api/backup/..%2F..%2Fetc%2Fpasswd/download",
            c,
            "",
            b"",
        ),
        400,
    );
    assert_eq!(e["code"], "bad_id");
    let e = answer(
        &json_call(
            &d,
            "POST",
            "/api/backup/restore",
            c,
            serde_json::json!({"id": "d3kos_backup_20200101_000000"}),
        ),
        404,
    );
    assert_eq!(e["code"], "not_found");
    answer(
        &json_call(
            &d,
            "POST",
            "/api/backup/verify",
            c,
            serde_json::json!({"id": id}),
        ),
        200,
    );

    // Restore through the daemon: the tier comes back, the installation id stays.
    let before = answer(&call(&d, "GET", "/api/license", c, "", b""), 200);
    answer(
        &json_call(&d, "PUT", "/api/license", c, serde_json::json!({"tier": 3})),
        200,
    );
    let r = answer(
        &json_call(
            &d,
            "POST",
            "/api/backup/restore",
            c,
            serde_json::json!({"id": id}),
        ),
        200,
    );
    assert!(r["pre_restore"].is_string(), "{r}");
    let after = answer(&call(&d, "GET", "/api/license", c, "", b""), 200);
    assert_eq!(after["tier"], 2);
    assert_eq!(after["installation_id"], before["installation_id"]);
    // The owner is still signed in: accounts are the device's.
    answer(&call(&d, "GET", "/api/backup/status", c, "", b""), 200);

    let e = answer(
        &json_call(
            &d,
            "PUT",
            "/api/backup/settings",
            c,
            serde_json::json!({"auto": "hourly", "keep": 3, "hour": 1}),
        ),
        400,
    );
    assert_eq!(e["code"], "bad_json");
    let e = answer(
        &json_call(
            &d,
            "PUT",
            "/api/backup/settings",
            c,
            serde_json::json!({"auto": "daily", "keep": 0, "hour": 1}),
        ),
        400,
    );
    assert!(e["message"].as_str().unwrap().contains("1 to 100"), "{e}");
    let s = answer(
        &json_call(
            &d,
            "PUT",
            "/api/backup/settings",
            c,
            serde_json::json!({"auto": "weekly", "keep": 3, "hour": 1}),
        ),
        200,
    );
    assert_eq!(s["auto"], "weekly");
}

#[test]
fn a_root_shell_leaves_the_daemon_files_it_can_write() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    // The device: state and backups belong to the daemon's user, not root.
    let dev = Device::new("");
    fill(&dev.state(), 3);
    std::fs::create_dir_all(dev.backups()).unwrap();
    let daemon = 65_534;
    for dir in [dev.state(), dev.backups()] {
        let o = Command::new("chown")
            .arg("-R")
            .arg(format!("{daemon}:{daemon}"))
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let id = created_id(&ok(&dev, &["create"]));
    ok(&dev, &["restore", &id]);
    let mut wrong = Vec::new();
    for dir in [dev.state(), dev.backups()] {
        let mut stack = vec![dir];
        while let Some(p) = stack.pop() {
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.uid() != daemon || m.gid() != daemon {
                wrong.push(format!("{} {}:{}", p.display(), m.uid(), m.gid()));
            }
            if m.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
    assert!(wrong.is_empty(), "left to root: {wrong:#?}");
}

#[test]
fn a_restore_from_another_folder_waits_for_the_devices_own_lock() {
    use appliance::backup::{self, BackupError, BackupId, Kind, Limits, Lock, Paths};
    let dir = tempfile::tempdir().unwrap();
    let home = Paths {
        state_dir: dir.path().join("state"),
        backup_dir: dir.path().join("backups"),
    };
    fill(&home.state_dir, 2);
    // A backup on a second folder, as on a USB drive.
    let stick = Paths {
        state_dir: home.state_dir.clone(),
        backup_dir: dir.path().join("stick/d3kos-backups"),
    };
    let made =
        backup::create::create(&stick, Kind::Manual, 1_795_910_400, &Default::default()).unwrap();
    let limits = Limits {
        max_total_bytes: 1 << 30,
    };
    let before = digest(&home.state_dir);
    let held = Lock::take(&home).unwrap();
    let id: BackupId = made.id.clone();
    let r = backup::restore::restore(
        &stick,
        &home,
        &id,
        &limits,
        &[],
        1_795_910_500,
        &Default::default(),
    );
    assert!(matches!(r, Err(BackupError::Busy)), "{r:?}");
    assert_eq!(digest(&home.state_dir), before);
    drop(held);
    let r = backup::restore::restore(
        &stick,
        &home,
        &id,
        &limits,
        &[],
        1_795_910_500,
        &Default::default(),
    )
    .unwrap();
    // The replaced data is kept on the device, not on the drive.
    let pre = r.pre_restore.unwrap();
    assert!(home.archive(&pre).is_file());
    assert!(!stick.archive(&pre).exists());
}
