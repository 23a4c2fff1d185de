//! The export queue through a real d3kosd: jobs made, run, listed, downloaded, retried and
//! deleted; refusals that queue nothing; and a job killed at each of its steps that runs
//! again after the restart, written once.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn generate(d: &Daemon, cookie: &str, body: Value) -> Reply {
    write(d, "POST", "/export/generate", Some(cookie), &body)
}

fn status(d: &Daemon) -> Value {
    assert_ok(&get(d, "/export/status"))
}

/// The job `id` once it has finished (done or failed).
fn finished(d: &Daemon, id: i64) -> Value {
    let mut job = Value::Null;
    eventually(
        &format!("export {id} finished"),
        Duration::from_secs(20),
        || {
            let s = status(d);
            job = ["finished", "failed"]
                .iter()
                .flat_map(|k| s[*k].as_array().unwrap().clone())
                .find(|j| j["id"] == id)
                .unwrap_or(Value::Null);
            !job.is_null()
        },
    );
    job
}

/// A device with an owner and three log entries, the daemon stopped.
fn device_with_log(extra: &str) -> Device {
    let dev = Device::new(extra);
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    for t in ["Cast off", "Reefed, wind 25 kn", "=1+1 is not a formula"] {
        assert_ok(&write(
            &d,
            "POST",
            "/api/boatlog",
            Some(&cookie),
            &json!({ "text": t }),
        ));
    }
    dev
}

fn files(dev: &Device) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dev.exports().join("files"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn texts(csv: &[u8]) -> Vec<String> {
    csv::Reader::from_reader(csv.strip_prefix("\u{feff}".as_bytes()).unwrap())
        .records()
        .map(|r| r.unwrap()[6].to_owned())
        .collect()
}

#[test]
fn a_boatlog_export_kept_on_the_device_is_listed_and_downloaded() {
    let dev = device_with_log("");
    let d = dev.start();
    let cookie = sign_in(&d);
    let job = assert_ok(&generate(&d, &cookie, json!({"what": "boatlog_csv"})));
    assert_eq!(job["destination"], "device");
    let id = job["id"].as_i64().unwrap();
    let done = finished(&d, id);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["attempts"], 1);
    let name = done["file"].as_str().unwrap().to_owned();
    assert!(name.starts_with("d3kos-boatlog-") && name.ends_with(&format!("-job{id}.csv")));
    assert!(done["duration_ms"].as_i64().unwrap() >= 0);
    let url = done["download"].as_str().unwrap();
    assert_eq!(request(d.addr, "GET", url, &[], b"").status, 401);
    let r = request(d.addr, "GET", url, &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(done["bytes"].as_u64().unwrap(), r.body.len() as u64);
    assert_eq!(
        texts(&r.body),
        ["Cast off", "Reefed, wind 25 kn", "'=1+1 is not a formula"]
    );
    assert_eq!(files(&dev), [name]);
    // The seed's path and ours answer the same.
    assert_eq!(
        assert_ok(&get(&d, "/api/export/status"))["finished"],
        status(&d)["finished"]
    );
    // Deleting the job deletes the device's copy.
    assert_ok(&write(
        &d,
        "DELETE",
        &format!("/api/export/{id}"),
        Some(&cookie),
        &json!({}),
    ));
    assert!(files(&dev).is_empty());
    assert!(status(&d)["finished"].as_array().unwrap().is_empty());
}

#[test]
fn unknown_destinations_addresses_and_ranges_are_refused_and_nothing_is_queued() {
    let dev = device_with_log(
        "[[export.upload]]\nname = \"office\"\nurl = \"https://marina.example/drop/\"\n",
    );
    let d = dev.start();
    let cookie = sign_in(&d);
    let cases = [
        (
            json!({"what": "boatlog_csv", "destination": "cloud"}),
            400,
            "bad_request",
        ),
        (
            json!({"what": "boatlog_csv", "destination": "https://evil.example/x"}),
            400,
            "bad_request",
        ),
        (
            json!({"what": "boatlog_csv", "destination": "upload:nope"}),
            400,
            "bad_request",
        ),
        (
            json!({"what": "boatlog_csv", "destination": "usb:1234-ABCD"}),
            404,
            "not_found",
        ),
        (json!({"what": "engine_history"}), 400, "bad_request"),
        (
            json!({"what": "boatlog_csv", "from": "2026-07-02", "to": "2026-07-01"}),
            400,
            "bad_request",
        ),
        (
            json!({"what": "boatlog_csv", "from": "soon"}),
            400,
            "bad_request",
        ),
        (
            json!({"what": "boatlog_csv", "from": "2999-01-01"}),
            400,
            "bad_request",
        ),
        (json!({"what": "backup"}), 400, "bad_request"),
        (
            json!({"what": "backup", "id": "d3kos_backup_20260101_120000"}),
            404,
            "not_found",
        ),
        (
            json!({"what": "backup", "id": "../../etc/passwd"}),
            400,
            "bad_id",
        ),
        (
            json!({"what": "boatlog_csv", "url": "https://evil.example"}),
            400,
            "bad_json",
        ),
    ];
    for (body, status_code, code) in cases {
        let r = generate(&d, &cookie, body.clone());
        assert_eq!(
            r.status,
            status_code,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["code"], code, "{body}");
    }
    let r = write(
        &d,
        "POST",
        "/export/generate",
        None,
        &json!({"what": "boatlog_csv"}),
    );
    assert_eq!(r.status, 401);
    let s = status(&d);
    for k in ["pending", "failed", "finished"] {
        assert!(s[k].as_array().unwrap().is_empty(), "{s}");
    }
    assert!(s["running"].is_null());
    let dests = assert_ok(&request(
        d.addr,
        "GET",
        "/api/export/destinations",
        &[("Cookie", &cookie)],
        b"",
    ));
    let ids: Vec<&str> = dests
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["device", "upload:office"]);
}

/// A one-request upload server answering `status`; returns what it received.
fn upload_once(
    status: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<(String, Vec<u8>)>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let mut s = s.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tx.send((line.trim().to_owned(), body));
        }
    });
    (addr, rx)
}

#[test]
fn an_upload_counts_only_on_2xx_and_a_failed_job_can_be_retried_and_deleted() {
    let (ok, got) = upload_once("201 Created");
    let (bad, _) = upload_once("500 Internal Server Error");
    let dev = device_with_log(&format!(
        "export.retry_secs = [1]\n[[export.upload]]\nname = \"office\"\nurl = \"http://{ok}/logs/\"\n\
         [[export.upload]]\nname = \"broken\"\nurl = \"http://{bad}/in\"\nmethod = \"POST\"\n"
    ));
    let d = dev.start();
    let cookie = sign_in(&d);
    let id = assert_ok(&generate(
        &d,
        &cookie,
        json!({"what": "boatlog_csv", "destination": "upload:office"}),
    ))["id"]
        .as_i64()
        .unwrap();
    let job = finished(&d, id);
    assert_eq!(job["state"], "done", "{job}");
    let (line, body) = got.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        line,
        format!("PUT /logs/{} HTTP/1.1", job["file"].as_str().unwrap())
    );
    assert_eq!(texts(&body).len(), 3);
    assert!(
        job["download"].is_null(),
        "an upload is not kept on the device"
    );
    assert!(files(&dev).is_empty());

    let id = assert_ok(&generate(
        &d,
        &cookie,
        json!({"what": "boatlog_csv", "destination": "upload:broken"}),
    ))["id"]
        .as_i64()
        .unwrap();
    let job = finished(&d, id);
    assert_eq!(
        (job["state"].as_str(), job["attempts"].as_u64()),
        (Some("failed"), Some(2)),
        "{job}"
    );
    assert!(job["error"].as_str().unwrap().contains("500"), "{job}");
    let retried = assert_ok(&write(
        &d,
        "POST",
        &format!("/api/export/{id}/retry"),
        Some(&cookie),
        &json!({}),
    ));
    assert_eq!(retried["attempts"], 0);
    let job = finished(&d, id);
    assert_eq!(job["attempts"], 2);
    assert_error(
        &write(
            &d,
            "POST",
            &format!("/api/export/{}/retry", id + 100),
            Some(&cookie),
            &json!({}),
        ),
        404,
        "not_found",
    );
    assert_ok(&write(
        &d,
        "DELETE",
        &format!("/api/export/{id}"),
        Some(&cookie),
        &json!({}),
    ));
    assert!(status(&d)["failed"].as_array().unwrap().is_empty());
}

#[test]
fn an_export_killed_at_each_step_runs_again_after_restart_and_is_written_once() {
    // Which steps an export passes, in order.
    let dev = device_with_log("");
    let log = dev.dir.path().join("crash.log");
    let d = dev.launch(&[], &[("D3KOS_CRASH_LOG", log.to_str().unwrap())]);
    let cookie = sign_in(&d);
    let id = assert_ok(&generate(&d, &cookie, json!({"what": "boatlog_csv"})))["id"]
        .as_i64()
        .unwrap();
    finished(&d, id);
    drop(d);
    let steps: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(
        steps,
        [
            "export: claimed",
            "export: written",
            "export: delivered",
            "export: recorded"
        ]
    );
    for (n, step) in steps.iter().enumerate() {
        let n = n + 1;
        let dev = device_with_log("");
        let mut d = dev.launch(&[], &[("D3KOS_CRASH_AT", &n.to_string())]);
        let cookie = sign_in(&d);
        // The worker may claim the job, and be killed there, before the reply is written:
        // then the request gets no answer at all, which is this test's point, not a fault.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            generate(&d, &cookie, json!({"what": "boatlog_csv"}))
        }));
        let mut exit = None;
        eventually(
            &format!("killed at {step}"),
            Duration::from_secs(20),
            || {
                exit = d.child.try_wait().unwrap();
                exit.is_some()
            },
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit.unwrap().signal(), Some(9), "killed at {step}");
        let d = dev.start();
        let s = status(&d);
        let jobs: Vec<Value> = ["pending", "failed", "finished"]
            .iter()
            .flat_map(|k| s[*k].as_array().unwrap().clone())
            .chain(s["running"].as_object().map(|_| s["running"].clone()))
            .collect();
        assert_eq!(jobs.len(), 1, "after a kill at {step}: {s}");
        let id = jobs[0]["id"].as_i64().unwrap();
        let job = finished(&d, id);
        assert_eq!(job["state"], "done", "after a kill at {step}: {job}");
        let attempts = if step == "export: recorded" { 1 } else { 2 };
        assert_eq!(job["attempts"], attempts, "after a kill at {step}: {job}");
        let name = job["file"].as_str().unwrap().to_owned();
        assert_eq!(
            files(&dev),
            std::slice::from_ref(&name),
            "after a kill at {step}"
        );
        let body = std::fs::read(dev.exports().join("files").join(&name)).unwrap();
        assert_eq!(texts(&body).len(), 3, "after a kill at {step}");
        assert_eq!(job["bytes"].as_u64(), Some(body.len() as u64));
    }
}
