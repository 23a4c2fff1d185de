//! The boat log through a real d3kosd: entries, pages, recordings, refusals, and the CSV
//! export read back by the csv crate, by Python's csv module and by LibreOffice.

mod common;

use std::process::Command;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn add(d: &Daemon, cookie: &str, body: Value) -> Reply {
    write(d, "POST", "/api/boatlog", Some(cookie), &body)
}

fn csv_of(d: &Daemon, query: &str) -> Reply {
    get(d, &format!("/api/boatlog/export.csv{query}"))
}

/// Rows as the csv crate reads them, BOM removed.
fn rows(body: &[u8]) -> Vec<Vec<String>> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).expect("a BOM");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// What a spreadsheet cell shows for a text that was written: OWASP's leading quote
/// before a formula start.
fn shown(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

#[test]
fn entries_are_written_paged_filtered_and_deleted_by_the_owner_only() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let r = write(
        &d,
        "POST",
        "/api/boatlog",
        None,
        &json!({"text": "no one signed in"}),
    );
    assert_error(&r, 401, "unauthorized");
    let first = assert_ok(&add(
        &d,
        &cookie,
        json!({"text": "Left the marina", "latitude": 54.32, "longitude": 10.14, "engine_hours": 1234.5}),
    ));
    assert_eq!(first["kind"], "text");
    assert_eq!(first["author"], "skipper");
    assert_eq!(first["latitude"], 54.32);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(first["local_time"].is_string() && first["utc_offset"].is_string());
    for i in 0..6 {
        assert_ok(&add(&d, &cookie, json!({"text": format!("watch {i}")})));
    }
    let voice = assert_ok(&add(
        &d,
        &cookie,
        json!({"text": "Anchor down in the bay", "kind": "voice"}),
    ));
    assert_error(
        &add(&d, &cookie, json!({"text": "pretend", "kind": "auto"})),
        400,
        "bad_request",
    );
    // Pages of three, newest first, every entry once.
    let mut seen = Vec::new();
    let mut path = "/api/boatlog?limit=3".to_owned();
    loop {
        let page = assert_ok(&get(&d, &path));
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["text"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(n) => path = format!("/api/boatlog?limit=3&before={n}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[0], "Anchor down in the bay");
    assert_eq!(seen[7], "Left the marina");
    let voices = assert_ok(&get(&d, "/api/boatlog?kind=voice"));
    assert_eq!(voices["entries"].as_array().unwrap().len(), 1);
    // Deleting is the owner's.
    let id = voice["id"].as_i64().unwrap();
    let r = request(d.addr, "DELETE", &format!("/api/boatlog/{id}"), &[], b"");
    assert_eq!(r.status, 401);
    assert_ok(&write(
        &d,
        "DELETE",
        &format!("/api/boatlog/{id}"),
        Some(&cookie),
        &json!({}),
    ));
    assert_error(&get(&d, &format!("/api/boatlog/{id}")), 404, "not_found");
    assert_error(
        &write(
            &d,
            "DELETE",
            &format!("/api/boatlog/{id}"),
            Some(&cookie),
            &json!({}),
        ),
        404,
        "not_found",
    );
}

#[test]
fn reading_needs_the_owner_when_live_data_is_not_public() {
    let dev = Device::new("[features]\npublic_live_data = false\n");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    assert_ok(&add(&d, &cookie, json!({"text": "private"})));
    assert_eq!(get(&d, "/api/boatlog").status, 401);
    assert_eq!(csv_of(&d, "").status, 401);
    let r = request(d.addr, "GET", "/api/boatlog", &[("Cookie", &cookie)], b"");
    assert_eq!(assert_ok(&r)["entries"][0]["text"], "private");
}

#[test]
fn nul_huge_and_malformed_entries_and_bad_ranges_are_refused_and_change_nothing() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    assert_ok(&add(&d, &cookie, json!({"text": "kept"})));
    let r = add(&d, &cookie, json!({"text": "a\u{0}b"}));
    assert_error(&r, 400, "invalid");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NUL")
    );
    // Ten megabytes of text: refused before it is read whole.
    let huge = json!({"text": "x".repeat(10 << 20)});
    assert_error(&add(&d, &cookie, huge), 413, "too_large");
    assert_error(
        &add(&d, &cookie, json!({"text": "x".repeat(10_001)})),
        400,
        "invalid",
    );
    assert_error(&add(&d, &cookie, json!({"text": " "})), 400, "invalid");
    assert_error(
        &add(&d, &cookie, json!({"text": "x", "colour": "red"})),
        400,
        "bad_json",
    );
    assert_error(
        &add(
            &d,
            &cookie,
            json!({"text": "x", "latitude": 95.0, "longitude": 0.0}),
        ),
        400,
        "invalid",
    );
    for q in [
        "?from=yesterday",
        "?from=2026-07-02&to=2026-07-01",
        "?to=2026-02-30",
        "?from=2026-07-01T12:00:00Z&to=2026-07-01T12:00:00Z",
        "?kind=shouting",
        "?before=nonsense",
        "?limit=many",
        "?page=2",
    ] {
        let r = get(&d, &format!("/api/boatlog{q}"));
        assert_error(&r, 400, "bad_request");
    }
    assert_error(
        &csv_of(&d, "?from=2026-07-02&to=2026-07-01"),
        400,
        "bad_request",
    );
    let page = assert_ok(&get(&d, "/api/boatlog"));
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
}

#[test]
fn a_recording_is_kept_with_its_voice_entry_size_limited_and_served_back() {
    let dev = Device::new("[boatlog]\nmax_audio_bytes = 4096\n");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let voice = assert_ok(&add(
        &d,
        &cookie,
        json!({"text": "Man overboard drill", "kind": "voice"}),
    ));
    let id = voice["id"].as_i64().unwrap();
    let path = format!("/api/boatlog/{id}/audio");
    let origin = format!("http://{}", d.addr);
    let put = |ty: &str, body: &[u8]| {
        request(
            d.addr,
            "PUT",
            &path,
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("Content-Type", ty),
            ],
            body,
        )
    };
    let audio: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    assert_error(
        &put("text/html", b"<script>alert(1)</script>"),
        400,
        "invalid",
    );
    assert_error(&put("audio/webm", &[0; 4097]), 413, "too_large");
    assert_eq!(get(&d, &path).status, 404);
    let e = assert_ok(&put("audio/webm;codecs=opus", &audio));
    assert_eq!(e["has_audio"], true);
    let r = get(&d, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("audio/webm"));
    assert_eq!(r.body, audio);
}

#[test]
fn a_boatlog_from_a_newer_version_is_refused_by_name_and_left_untouched() {
    let dev = Device::new("");
    std::fs::create_dir_all(dev.state()).unwrap();
    let db = dev.state().join("boatlog.db");
    let o = Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA journal_mode=WAL; CREATE TABLE future (x); PRAGMA user_version = 99;")
        .output()
        .expect("sqlite3");
    assert!(o.status.success(), "{o:?}");
    let before = std::fs::read(&db).unwrap();
    let d = dev.start();
    let r = get(&d, "/api/boatlog");
    assert_error(&r, 503, "newer_data");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("newer d3kOS") && !message.contains('/'),
        "{message}"
    );
    eventually(
        "/api/health names the boat log's problem",
        std::time::Duration::from_secs(10),
        || {
            get(&d, "/api/health").json()["data"]["problems"]
                .to_string()
                .contains("boat log")
        },
    );
    drop(d);
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn backups_and_restores_are_written_in_the_log_by_the_appliance() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let auto = || {
        let page = assert_ok(&get(&d, "/api/boatlog?kind=auto"));
        assert!(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["author"] == "d3kOS")
        );
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let made = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/create",
        Some(&cookie),
        &json!({}),
    ));
    let id = made["id"].as_str().unwrap().to_owned();
    let texts = auto();
    assert!(
        texts[0].starts_with(&format!("Backup {id} made (")),
        "{texts:?}"
    );
    let restored = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/restore",
        Some(&cookie),
        &json!({"id": id}),
    ));
    // The restored log is the backup's, taken before its own entry, and then the restore's.
    let texts = auto();
    assert_eq!(
        texts,
        [format!(
            "Backup {id} restored; the data it replaced was kept as backup {}.",
            restored["pre_restore"].as_str().unwrap()
        )]
    );
}

#[test]
fn the_csv_is_rfc_4180_with_a_bom_a_dated_name_and_local_and_utc_times() {
    let dev = Device::new("");
    let d = dev.launch(&[], &[("TZ", "America/St_Johns")]);
    let cookie = create_owner(&dev, &d);
    assert_ok(&add(
        &d,
        &cookie,
        json!({"text": "Fog, \"thick\"\r\nvisibility 50 m", "latitude": -41.29, "longitude": 174.78}),
    ));
    let r = csv_of(&d, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment; filename=\"d3kos-boatlog-20") && cd.ends_with(".csv\""),
        "{cd}"
    );
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(text.ends_with("\r\n"));
    assert!(
        text.contains("\"Fog, \"\"thick\"\"\r\nvisibility 50 m\""),
        "{text}"
    );
    let rows = rows(&r.body);
    assert_eq!(
        rows[0],
        [
            "id",
            "local_time",
            "utc_offset",
            "utc_time",
            "kind",
            "author",
            "text",
            "latitude",
            "longitude",
            "engine_hours"
        ]
    );
    let row = &rows[1];
    assert_eq!(row[2], "-03:30", "Newfoundland in November");
    assert_eq!(row[7], "-41.29", "a negative number is never neutralised");
    assert_eq!(row[6], "Fog, \"thick\"\r\nvisibility 50 m");
}

/// Texts with every awkward character the crew's keyboards and phones produce.
fn awkward() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\"".to_owned()),
        Just(",".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\t".to_owned()),
        Just("=".to_owned()),
        Just("+".to_owned()),
        Just("-".to_owned()),
        Just("@".to_owned()),
        Just("'".to_owned()),
        Just(";".to_owned()),
        Just("⚓".to_owned()),
        Just("🌊🐋".to_owned()),
        Just("مرحبا".to_owned()),
        Just("שלום".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("é".to_owned()),
        Just(" ".to_owned()),
        "[a-zA-Z0-9]{1,6}",
    ];
    proptest::collection::vec(pieces, 1..12)
        .prop_map(|p| p.concat())
        .prop_filter("an entry has some text", |s| !s.trim().is_empty())
}

#[test]
fn every_awkward_text_comes_back_the_same_from_csv_python_and_libreoffice() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let written = std::cell::RefCell::new(Vec::<String>::new());
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 48,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&proptest::collection::vec(awkward(), 1..4), |texts| {
            for t in &texts {
                assert_ok(&add(&d, &cookie, json!({ "text": t })));
            }
            written.borrow_mut().extend(texts);
            let rows = rows(&csv_of(&d, "").body);
            let got: Vec<&str> = rows[1..].iter().map(|r| r[6].as_str()).collect();
            let want: Vec<String> = written.borrow().iter().map(|t| shown(t)).collect();
            prop_assert_eq!(got, want);
            prop_assert!(rows.iter().all(|r| r.len() == 10));
            Ok(())
        })
        .unwrap();
    let body = csv_of(&d, "").body;
    let file = dev.dir.path().join("boatlog.csv");
    std::fs::write(&file, &body).unwrap();
    let ours = rows(&body);
    // Python's csv module, reading the file as Excel's dialect with the BOM.
    let py = Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n\
             \x20   print(json.dumps(list(csv.reader(f))))",
        ])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let theirs: Vec<Vec<String>> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(theirs, ours);
    assert_eq!(ours.len(), written.borrow().len() + 1);
    libreoffice_reads_the_same_cells(&file, &ours);
}

/// LibreOffice opens the file as it is (UTF-8 by its BOM, comma-separated) and converts it
/// to xlsx; the converted sheet has the same number of filled cells.
fn libreoffice_reads_the_same_cells(file: &std::path::Path, rows: &[Vec<String>]) {
    if Command::new("soffice").arg("--version").output().is_err() {
        eprintln!("LibreOffice not checked: soffice is not installed");
        return;
    }
    let out = file.parent().unwrap().join("xlsx");
    let home = file.parent().unwrap().join("lo-home");
    let o = Command::new("soffice")
        .env("HOME", &home)
        .args([
            "--headless",
            "--norestore",
            "--convert-to",
            "xlsx",
            "--infilter=CSV:44,34,76,1,,0,false,true",
            "--outdir",
        ])
        .arg(&out)
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let xlsx = out.join("boatlog.xlsx");
    // An xlsx is a zip of XML; the sheet's <c> elements with a value are its filled cells.
    let py = Command::new("python3")
        .args([
            "-c",
            "import re, sys, zipfile\n\
             x = zipfile.ZipFile(sys.argv[1]).read('xl/worksheets/sheet1.xml').decode()\n\
             print(len(re.findall(r'<c [^>]*>(?:<f>[^<]*</f>)?<v>', x)))",
        ])
        .arg(&xlsx)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let cells: usize = String::from_utf8_lossy(&py.stdout).trim().parse().unwrap();
    let filled = rows.iter().flatten().filter(|c| !c.is_empty()).count();
    assert_eq!(cells, filled, "LibreOffice's cells against the CSV's");
}

#[test]
fn slow_csv_downloads_are_capped_and_never_hold_the_daemon() {
    use std::io::Write;
    let dev = Device::new("[boatlog]\nretention_days = [0, 0, 0, 0]\n");
    // Enough log that a download fills every buffer while its client does not read.
    std::fs::create_dir_all(dev.state()).unwrap();
    let log = appliance::boatlog::Boatlog::in_state(&dev.state());
    let entries: Vec<_> = (0..100_000)
        .map(|i| appliance::boatlog::NewEntry {
            at: 1_780_000_000_000 + i,
            text: format!("watch report {i}: wind SW 12 kn, sea slight, all well aboard"),
            author: "skipper".into(),
            ..Default::default()
        })
        .collect();
    log.add_many(&entries).unwrap();
    drop(log);
    let d = dev.start();
    let stalled: Vec<_> = (2..4)
        .map(|n| {
            let mut s = connect_from(Some(stranger(n)), d.addr).unwrap();
            write!(
                s,
                "GET /api/boatlog/export.csv HTTP/1.1\r\nHost: {}\r\n\r\n",
                d.addr
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = request_from(
        Some(stranger(5)),
        d.addr,
        "GET",
        "/api/boatlog/export.csv",
        &[],
        b"",
    );
    assert_error(&r, 503, "busy");
    assert_eq!(r.header("retry-after"), Some("5"));
    // Everything else still answers, and the newest page too.
    assert_ok(&get(&d, "/api/boatlog?limit=5"));
    drop(stalled);
    eventually(
        "a download runs again",
        std::time::Duration::from_secs(40),
        || csv_of(&d, "?from=2020-01-01&to=2020-01-02").status == 200,
    );
}
