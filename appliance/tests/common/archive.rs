//! What the backup tests share: a boat's data, the real `d3kosd backup` command, tree
//! digests, and archives put together by hand (including hostile ones).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use super::Device;

pub const INSTALLATION: &str = "0123456789abcdef";

/// A boat's data: licence, accounts, configuration, onboarding answers, manuals, a boat
/// log database in WAL mode and `small` little files (each a step of a create or restore).
pub fn fill(state: &Path, small: usize) {
    std::fs::create_dir_all(state).unwrap();
    write(
        state,
        "licence.json",
        format!(r#"{{"installation_id":"{INSTALLATION}","tier":2,"onboarding_resets_used":1}}"#)
            .as_bytes(),
        0o600,
    );
    write(
        state,
        "accounts.json",
        br#"{"owner":"on this device"}"#,
        0o600,
    );
    write(
        state,
        "config/boat.json",
        br#"{"name":"Sea Otter","engines":2}"#,
        0o640,
    );
    write(
        state,
        "onboarding/answers.json",
        br#"{"hull":"monohull"}"#,
        0o640,
    );
    let manual: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    write(state, "manuals/engine manual.pdf", &manual, 0o644);
    write(state, "manuals/empty.txt", b"", 0o644);
    std::fs::create_dir_all(state.join("manuals/empty folder")).unwrap();
    for i in 0..small {
        write(
            state,
            &format!("boatlog/notes/{i:03}.txt"),
            format!("watch {i}: wind SW 12 kn, all well\n").as_bytes(),
            0o644,
        );
    }
    let db = rusqlite::Connection::open(state.join("boatlog/boatlog.db")).unwrap();
    db.pragma_update(None, "journal_mode", "wal").unwrap();
    db.execute_batch(
        "CREATE TABLE entries (id INTEGER PRIMARY KEY, at TEXT, text TEXT);
         PRAGMA wal_autocheckpoint = 0;",
    )
    .unwrap();
    for i in 0..500 {
        db.execute(
            "INSERT INTO entries (at, text) VALUES (?1, ?2)",
            (format!("2026-11-{:02}", 1 + i % 28), format!("entry {i}")),
        )
        .unwrap();
    }
    // The WAL still holds the rows: a file copy of boatlog.db alone would lose them.
    std::mem::forget(db);
}

pub fn write(root: &Path, rel: &str, bytes: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file and folder under `dir` with its mode and sha256, without the restore's own
/// bookkeeping; databases by their rows, since SQLite may fold a WAL into the file.
pub fn digest(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".d3kos-restore.json" || name.ends_with("-wal") || name.ends_with("-shm") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(rel, format!("dir {mode:o}"));
            walk(root, &p, out);
        } else if name.ends_with(".db") {
            out.insert(rel, format!("db {mode:o} {}", rows(&p).join("|")));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.insert(
                rel,
                format!("file {mode:o} {}", hex::encode(Sha256::digest(&bytes))),
            );
        }
    }
}

pub fn rows(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut st = c
        .prepare("SELECT id, at, text FROM entries ORDER BY id")
        .unwrap();
    st.query_map([], |r| {
        Ok(format!(
            "{}:{}:{}",
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

pub fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// `d3kosd --config … backup ARGS` with extra environment.
pub fn cli(dev: &Device, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(super::bin())
        .arg("--config")
        .arg(dev.config())
        .arg("backup")
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a command that must succeed; returns what it printed.
pub fn ok(dev: &Device, args: &[&str]) -> String {
    let o = cli(dev, args, &[]);
    assert!(o.status.success(), "backup {args:?}: {}", text(&o));
    text(&o)
}

/// The id in `created ID (…)`.
pub fn created_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("created "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id in: {out}"))
        .to_owned()
}

pub fn archives(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
        std::fs::set_permissions(&target, meta.permissions()).unwrap();
    }
}

/// One member of a hand-made archive.
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
    /// A header that claims `size` bytes, followed by only the bytes given.
    Claims(&'a str, u64, &'a [u8]),
    Mode(&'a str, &'a [u8], u32),
    DirMode(&'a str, u32),
}

/// A manifest for `files` (path, bytes) as d3kosd writes one.
pub fn manifest(name: &str, files: &[(&str, &[u8])], dirs: &[&str]) -> serde_json::Value {
    let entries: Vec<_> = files
        .iter()
        .map(|(p, b)| {
            serde_json::json!({
                "path": p, "size": b.len(), "sha256": hex::encode(Sha256::digest(b)),
                "mode": 0o644, "mtime": 1_795_910_400
            })
        })
        .collect();
    let dirs: Vec<_> = dirs
        .iter()
        .map(|d| serde_json::json!({"path": d, "mode": 0o755}))
        .collect();
    serde_json::json!({
        "format": 1, "name": name, "created": "2026-11-29T00:00:00Z",
        "created_unix": 1_795_910_400, "kind": "manual", "d3kos_version": "0.1.0",
        "installation_id": "aaaaaaaaaaaaaaaa", "tier": 3, "items": {"other": files.len()},
        "total_bytes": files.iter().map(|(_, b)| b.len() as u64).sum::<u64>(),
        "dirs": dirs, "files": entries
    })
}

/// A gzip'd tar of `members` after `manifest`, with raw headers so that names a
/// well-behaved writer refuses (`../x`, `/etc/x`) can be written.
pub fn archive(manifest: &serde_json::Value, members: &[Member<'_>]) -> Vec<u8> {
    archive_with(manifest, members, 1024, b"")
}

/// [`archive`] with `zeros` bytes after the last member (1024 are the tar end marker) and
/// `after` appended to the gzip file.
pub fn archive_with(
    manifest: &serde_json::Value,
    members: &[Member<'_>],
    zeros: usize,
    after: &[u8],
) -> Vec<u8> {
    let mut tar = Vec::new();
    let m = serde_json::to_vec(manifest).unwrap();
    push(
        &mut tar,
        "manifest.json",
        tar::EntryType::Regular,
        &m,
        m.len() as u64,
        0o644,
        "",
    );
    for member in members {
        match member {
            Member::File(p, b) => push(
                &mut tar,
                p,
                tar::EntryType::Regular,
                b,
                b.len() as u64,
                0o644,
                "",
            ),
            Member::Mode(p, b, mode) => push(
                &mut tar,
                p,
                tar::EntryType::Regular,
                b,
                b.len() as u64,
                *mode,
                "",
            ),
            Member::Dir(p) => push(&mut tar, p, tar::EntryType::Directory, b"", 0, 0o755, ""),
            Member::DirMode(p, mode) => {
                push(&mut tar, p, tar::EntryType::Directory, b"", 0, *mode, "");
            }
            Member::Symlink(p, to) => push(&mut tar, p, tar::EntryType::Symlink, b"", 0, 0o777, to),
            Member::HardLink(p, to) => push(&mut tar, p, tar::EntryType::Link, b"", 0, 0o644, to),
            Member::CharDevice(p) => push(&mut tar, p, tar::EntryType::Char, b"", 0, 0o644, ""),
            Member::Claims(p, size, b) => {
                push(&mut tar, p, tar::EntryType::Regular, b, *size, 0o644, "");
            }
        }
    }
    tar.resize(tar.len() + zeros, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut out = gz.finish().unwrap();
    out.extend_from_slice(after);
    out
}

fn push(
    tar: &mut Vec<u8>,
    name: &str,
    kind: tar::EntryType,
    body: &[u8],
    size: u64,
    mode: u32,
    link: &str,
) {
    let mut h = tar::Header::new_gnu();
    {
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_795_910_400);
    if kind == tar::EntryType::Char {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(body);
    let pad = (512 - body.len() % 512) % 512;
    tar.extend_from_slice(&vec![0u8; pad]);
}

/// Puts `bytes` in the backup folder as backup `id`, with a checksum file that matches.
pub fn place(dev: &Device, id: &str, bytes: &[u8]) -> PathBuf {
    let dir = dev.backups();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{id}.tar.gz"));
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(
        dir.join(format!("{id}.tar.gz.sha256")),
        format!("{}  {id}.tar.gz\n", hex::encode(Sha256::digest(bytes))),
    )
    .unwrap();
    path
}

/// A hostile or damaged archive placed as a backup: refused by restore and by upload,
/// with `message` in the error, and nothing changed.
pub fn refused(dev: &Device, id: &str, bytes: &[u8], message: &str) {
    let state_before = digest(&dev.state());
    place(dev, id, bytes);
    let backups_before = archives(&dev.backups());
    let o = cli(dev, &["restore", id], &[]);
    let said = text(&o);
    assert!(!o.status.success(), "{id} was restored: {said}");
    assert!(
        said.contains(message),
        "{id}: expected `{message}` in: {said}"
    );
    assert_eq!(digest(&dev.state()), state_before, "{id}: the data changed");
    assert_eq!(
        archives(&dev.backups()),
        backups_before,
        "{id}: the backups changed"
    );
    for leftover in ["state.restore", "state.restore.tmp", "state.previous"] {
        assert!(
            !dev.dir.path().join(leftover).exists(),
            "{id}: {leftover} left"
        );
    }
    let o = cli(dev, &["verify", id], &[]);
    assert!(
        !o.status.success() && text(&o).contains(message),
        "{id}: {}",
        text(&o)
    );
    std::fs::remove_file(dev.backups().join(format!("{id}.tar.gz"))).unwrap();
    std::fs::remove_file(dev.backups().join(format!("{id}.tar.gz.sha256"))).unwrap();
}
