//! The archive shapes of the attack review, through the real `d3kosd backup` command and
//! HTTP API, each named after what it broke: the device's own names inside an archive,
//! bytes after the gzip stream, endless padding, modes that locked the daemon out of its
//! own data, ids dated far ahead, and what a backup writes under any umask.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::archive::{
    Member, archive, archive_with, archives, cli, created_id, fill, manifest, ok, place, refused,
    text,
};
use common::{Device, assert_error, assert_ok, bin, create_owner, request};

fn id(i: u32) -> String {
    format!("d3kos_backup_20261129_0001{i:02}")
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn an_archive_carrying_the_devices_own_names_is_refused() {
    let dev = Device::new("");
    fill(&dev.state(), 2);
    // The pre-restore marker naming an existing backup once made the next restore drop the
    // data it replaced; a marker that was not an id made every start panic.
    let forged = b"d3kos_backup_xxxxxxxxxxxxxx\xc3\xa9";
    for (i, name) in [
        ".d3kos-packed",
        ".d3kos-restore.json",
        "accounts.json",
        "boatlog/.tmp-upload",
    ]
    .into_iter()
    .enumerate()
    {
        let m = manifest(&id(i as u32), &[(name, forged)], &[]);
        let member = format!("data/{name}");
        refused(
            &dev,
            &id(i as u32),
            &archive(&m, &[Member::File(&member, forged)]),
            "a name the device keeps for itself",
        );
    }
    // Also when the manifest does not list it.
    let m = manifest(&id(9), &[], &[]);
    refused(
        &dev,
        &id(9),
        &archive(&m, &[Member::File("data/.d3kos-packed", forged)]),
        "a name the device keeps for itself",
    );
    // The device still starts and lists its backups.
    ok(&dev, &["list"]);
}

#[test]
fn bytes_after_the_gzip_stream_and_endless_padding_are_refused() {
    let dev = Device::new("");
    fill(&dev.state(), 2);
    let m = manifest(&id(1), &[("a.txt", b"a")], &[]);
    let members = [Member::File("data/a.txt", b"a")];
    refused(
        &dev,
        &id(1),
        &archive_with(&m, &members, 1024, b"appended after the trailer"),
        "bytes follow the end of its gzip stream",
    );
    let mut second = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut second, b"a second gzip member").unwrap();
    refused(
        &dev,
        &id(1),
        &archive_with(&m, &members, 1024, &second.finish().unwrap()),
        "bytes follow the end of its gzip stream",
    );
    refused(
        &dev,
        &id(1),
        &archive_with(&m, &members, 2 << 20, b""),
        "bytes of padding follow the end of the archive",
    );
    // GNU tar pads the last record to 10 KiB: that is a backup.
    place(&dev, &id(2), &archive_with(&m, &members, 10 * 1024, b""));
    ok(&dev, &["verify", &id(2)]);
}

#[test]
fn modes_in_an_archive_are_normalised_and_never_lock_the_daemon_out() {
    let dev = Device::new("");
    fill(&dev.state(), 2);
    let mut m = manifest(
        &id(1),
        &[("locked/secret.txt", b"s"), ("open.txt", b"o")],
        &["locked"],
    );
    m["files"][0]["mode"] = 0.into();
    m["files"][1]["mode"] = 0o777.into();
    m["dirs"][0]["mode"] = 0o600.into();
    let bytes = archive(
        &m,
        &[
            Member::DirMode("data/locked/", 0o600),
            Member::Mode("data/locked/secret.txt", b"s", 0),
            Member::Mode("data/open.txt", b"o", 0o777),
        ],
    );
    place(&dev, &id(1), &bytes);
    ok(&dev, &["restore", &id(1)]);
    let state = dev.state();
    assert_eq!(mode(&state.join("locked")), 0o700);
    assert_eq!(mode(&state.join("locked/secret.txt")), 0o600);
    assert_eq!(mode(&state.join("open.txt")), 0o644, "never executable");
    // Every later create and restore works, of a good backup too.
    let made = created_id(&ok(&dev, &["create"]));
    ok(&dev, &["restore", &made]);
    assert_eq!(
        std::fs::read(dev.state().join("locked/secret.txt")).unwrap(),
        b"s"
    );
}

#[test]
fn a_device_left_with_unreadable_files_heals_them_on_the_next_backup() {
    let dev = Device::new("");
    let state = dev.state();
    fill(&state, 2);
    // What restores before normalised modes could leave behind.
    std::fs::set_permissions(
        state.join("config/boat.json"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(
        state.join("onboarding"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let made = created_id(&ok(&dev, &["create"]));
    assert_eq!(mode(&state.join("config/boat.json")), 0o600);
    assert_eq!(mode(&state.join("onboarding")), 0o700);
    ok(&dev, &["verify", &made]);
    ok(&dev, &["restore", &made]);
    assert_eq!(
        std::fs::read(state.join("onboarding/answers.json")).unwrap(),
        br#"{"hull":"monohull"}"#
    );
}

#[test]
fn an_upload_dated_far_ahead_is_refused_and_retention_ignores_such_ids() {
    let dev = Device::new("");
    fill(&dev.state(), 2);
    let far = "d3kos_backup_99991231_235959";
    let m = manifest(far, &[("a.txt", b"a")], &[]);
    let bytes = archive(&m, &[Member::File("data/a.txt", b"a")]);
    {
        let d = dev.start();
        let cookie = create_owner(&dev, &d);
        let origin = format!("http://{}", d.addr);
        let r = request(
            d.addr,
            "POST",
            "/api/backup/upload",
            &[
                ("Content-Type", "application/gzip"),
                ("Origin", &origin),
                ("Cookie", &cookie),
            ],
            &bytes,
        );
        assert_error(&r, 422, "backup_invalid");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("dated 9999-12-31T23:59:59Z"), "{message}");
        let listed = request(
            d.addr,
            "GET",
            "/api/backup/list",
            &[("Cookie", &cookie)],
            b"",
        );
        assert!(assert_ok(&listed)["backups"].as_array().unwrap().is_empty());
    }
    // One put in the folder by hand neither ranks as the newest nor is deleted.
    place(&dev, far, &bytes);
    std::fs::write(
        dev.state().join("backup-settings.json"),
        r#"{"auto":"off","keep":1,"hour":3}"#,
    )
    .unwrap();
    let first = created_id(&ok(&dev, &["create"]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = created_id(&ok(&dev, &["create"]));
    let left = archives(&dev.backups());
    assert!(
        left.contains(&format!("{second}.tar.gz")),
        "the newest real backup is kept: {left:?}"
    );
    assert!(
        !left.contains(&format!("{first}.tar.gz")),
        "keep 1: {left:?}"
    );
    assert!(left.contains(&format!("{far}.tar.gz")), "{left:?}");
}

#[test]
fn archives_and_folders_are_0640_and_0750_whatever_the_umask() {
    for umask in ["000", "022", "077"] {
        let dev = Device::new("");
        fill(&dev.state(), 1);
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(bin())
            .arg("--config")
            .arg(dev.config())
            .args(["backup", "create"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let made = created_id(&text(&o));
        let b = dev.backups();
        assert_eq!(mode(&b), 0o750, "umask {umask}: the folder");
        assert_eq!(
            mode(&b.join(format!("{made}.tar.gz"))),
            0o640,
            "umask {umask}: the archive"
        );
        assert_eq!(
            mode(&b.join(format!("{made}.tar.gz.sha256"))),
            0o640,
            "umask {umask}: its checksum"
        );
        let o = cli(&dev, &["verify", &made], &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
}
