//! The real d3kosd on a loopback port, called over HTTP: every endpoint's answers and
//! errors, the owner setup race, restarts and corrupt state.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    BIN, Device, assert_error, assert_ok, create_owner, eventually, get, request, stranger, write,
    write_from,
};
use serde_json::{Value, json};

#[test]
fn read_endpoints_answer_from_real_state() {
    let dev = Device::new("");
    let d = dev.start();
    let info = assert_ok(&get(&d, "/license/info"));
    let id = info["installation_id"].as_str().unwrap();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(info["tier"], 0);
    assert_eq!(info["onboarding_resets"]["limit"], 10);
    assert_eq!(info["features"]["voice"], false);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(dev.state().join("licence.json")).unwrap())
            .unwrap();
    assert_eq!(
        stored["installation_id"], id,
        "the answer is the stored licence"
    );
    assert_eq!(assert_ok(&get(&d, "/tier/status")), info);
    assert_eq!(assert_ok(&get(&d, "/api/license")), info);

    // The release the image's build manifest names, in /api/version and in every answer's
    // envelope (regression: the envelope named the daemon's crate version, 0.1.0).
    let v = assert_ok(&get(&d, "/api/version"));
    assert_eq!(v["version"], "7.3.0.1");
    assert_eq!(v["board"], "rpi4");
    assert_eq!(v["version_txt"], "d3kOS 7.3.0.1\n");
    let envelope: Value = get(&d, "/api/version").json();
    assert_eq!(envelope["version"], "7.3.0.1", "{envelope}");

    // Health comes from the first sample, taken at start.
    let deadline = Instant::now() + Duration::from_secs(10);
    let h = loop {
        let h = assert_ok(&get(&d, "/api/health"));
        if h["sampled_at"].as_str().is_some_and(|s| !s.is_empty()) || Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        h["memory"]["total_bytes"],
        total_kib * 1024,
        "memory is this machine's"
    );
    assert!(h["uptime_seconds"].as_u64().unwrap() > 0);
    assert!(
        h["disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["mount"] == "/"),
        "{h}"
    );
    assert_eq!(h["services"][0]["name"], "d3kosd.service");
    assert!(h["cpu"]["cores"].as_u64().unwrap() >= 1);

    let s = assert_ok(&get(&d, "/api/session"));
    assert_eq!(
        s,
        json!({"owner_exists": false, "authenticated": false, "username": null})
    );
}

#[test]
fn pages_are_served_with_a_strict_policy_and_no_open_cors() {
    let d = Device::new("").start();
    for (path, mime) in [
        ("/", "text/html"),
        ("/settings.html", "text/html"),
        ("/boatlog.html", "text/html"),
        ("/dashboard.html", "text/html"),
        ("/app.css", "text/css"),
        ("/app.js", "text/javascript"),
    ] {
        let r = get(&d, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(mime),
            "{path}"
        );
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{path}: no CORS"
        );
    }
    assert!(String::from_utf8_lossy(&get(&d, "/settings.html").body).contains("<html lang=\"en\""));
    assert_error(&get(&d, "/no/such/page"), 404, "not_found");
    let pre = request(
        d.addr,
        "OPTIONS",
        "/api/license",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        b"",
    );
    assert_eq!(
        pre.header("access-control-allow-origin"),
        None,
        "no CORS pre-flight grant"
    );
}

#[test]
fn writes_need_the_owner_and_this_origin() {
    let dev = Device::new("");
    let d = dev.start();
    // Unauthenticated write.
    assert_error(
        &write(&d, "PUT", "/api/license", None, &json!({"tier": 2})),
        401,
        "unauthorized",
    );
    // From another origin, even before authentication is looked at.
    let evil = request(
        d.addr,
        "PUT",
        "/api/license",
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/json"),
        ],
        br#"{"tier":2}"#,
    );
    assert_error(&evil, 403, "forbidden");
    let cookie = create_owner(&dev, &d);
    let cross = request(
        d.addr,
        "PUT",
        "/api/license",
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/json"),
            ("Cookie", &cookie),
        ],
        br#"{"tier":2}"#,
    );
    assert_error(&cross, 403, "forbidden");
    // Malformed JSON, unknown fields, a body too large.
    let bad = request(
        d.addr,
        "PUT",
        "/api/license",
        &[("Content-Type", "application/json"), ("Cookie", &cookie)],
        b"{\"tier\": ",
    );
    assert_error(&bad, 400, "bad_json");
    assert_error(
        &write(
            &d,
            "PUT",
            "/api/license",
            Some(&cookie),
            &json!({"tier": 2, "x": 1}),
        ),
        400,
        "bad_json",
    );
    assert_error(
        &write(
            &d,
            "PUT",
            "/api/license",
            Some(&cookie),
            &json!({"tier": 9}),
        ),
        400,
        "bad_request",
    );
    // A malformed id in the path or a malformed query parameter answers in the envelope
    // too, not in axum's plain text.
    for (method, path) in [
        ("GET", "/api/boatlog/not-a-number"),
        ("DELETE", "/api/export/twelve"),
        ("GET", "/api/boatlog?limit=many"),
        (
            "GET",
            "/api/engine/history?engine=0&metric=rpm&minutes=soon",
        ),
    ] {
        let origin = format!("http://{}", d.addr);
        let r = request(
            d.addr,
            method,
            path,
            &[("Cookie", &cookie), ("Origin", &origin)],
            b"",
        );
        assert_error(&r, 400, "bad_request");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("is not valid"),
            "{method} {path}: {message}"
        );
    }
    let huge = json!({"username": "x".repeat(200_000), "password": "y"});
    assert_error(
        &write(&d, "POST", "/api/session", None, &huge),
        413,
        "too_large",
    );
    assert_eq!(
        assert_ok(&get(&d, "/license/info"))["tier"],
        0,
        "refused writes changed nothing"
    );
    // The owner's write from the device's own page.
    let info = assert_ok(&write(
        &d,
        "PUT",
        "/api/license",
        Some(&cookie),
        &json!({"tier": 2}),
    ));
    assert_eq!(info["tier"], 2);
    assert_eq!(
        info["onboarding_resets"]["limit"], 9999,
        "tier 2 allows all the counter shows"
    );
    // A script with an API token sends no Origin.
    let t = assert_ok(&write(
        &d,
        "POST",
        "/api/tokens",
        Some(&cookie),
        &json!({"name": "backup-script"}),
    ));
    let bearer = format!("Bearer {}", t["token"].as_str().unwrap());
    let r = request(
        d.addr,
        "PUT",
        "/api/license",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"tier":3}"#,
    );
    assert_eq!(assert_ok(&r)["tier"], 3);
    let wrong = request(
        d.addr,
        "PUT",
        "/api/license",
        &[
            ("Authorization", "Bearer 00"),
            ("Content-Type", "application/json"),
        ],
        br#"{"tier":1}"#,
    );
    assert_error(&wrong, 401, "unauthorized");
    // The token's script asks who it is as the page does (regression: /api/session read
    // only the cookie and said "not signed in").
    let who = request(
        d.addr,
        "GET",
        "/api/session",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    let who = assert_ok(&who);
    assert_eq!(who["authenticated"], true, "{who}");
    assert!(who["username"].is_string(), "{who}");
    let nobody = assert_ok(&request(
        d.addr,
        "GET",
        "/api/session",
        &[("Authorization", "Bearer 00")],
        b"",
    ));
    assert_eq!(nobody["authenticated"], false, "{nobody}");
    // Signing out ends the session.
    assert_ok(&write(
        &d,
        "DELETE",
        "/api/session",
        Some(&cookie),
        &json!({}),
    ));
    assert_error(
        &write(
            &d,
            "PUT",
            "/api/license",
            Some(&cookie),
            &json!({"tier": 1}),
        ),
        401,
        "unauthorized",
    );
    assert_error(
        &write(
            &d,
            "POST",
            "/api/session",
            None,
            &json!({"username": "skipper", "password": "wrong password"}),
        ),
        401,
        "bad_credentials",
    );
}

#[test]
fn only_one_visitor_can_create_the_owner() {
    let dev = Device::new("");
    let d = dev.start();
    assert_error(
        &write_from(
            Some(stranger(66)),
            &d,
            "POST",
            "/api/setup/owner",
            None,
            &json!({"setup_code": "AAAA-BBBB", "username": "thief", "password": "marina wifi"}),
        ),
        403,
        "wrong_code",
    );
    let code = dev.setup_code();
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let code = code.clone();
                let d = &d;
                s.spawn(move || write(d, "POST", "/api/setup/owner", None, &json!({"setup_code": code, "username": format!("racer{i}"), "password": "first come first"})).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&s| s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&s| s == 409).count(),
        3,
        "{results:?}"
    );
    assert!(
        !dev.dir
            .path()
            .join("config-partition/d3kos-setup-code.txt")
            .exists(),
        "the used code is gone"
    );
    assert_error(
        &write(
            &d,
            "POST",
            "/api/setup/owner",
            None,
            &json!({"setup_code": code, "username": "late", "password": "too late now"}),
        ),
        409,
        "conflict",
    );
}

#[test]
fn wrong_setup_codes_from_a_stranger_never_replace_the_code() {
    let dev = Device::new("");
    let d = dev.start();
    // The code as the helm screen shows it before the stranger starts guessing.
    let shown = dev.setup_code();
    let guess = json!({"setup_code": "AAAA-BBBB", "username": "thief", "password": "marina wifi"});
    let mut waited = false;
    for _ in 0..30 {
        let r = write_from(
            Some(stranger(66)),
            &d,
            "POST",
            "/api/setup/owner",
            None,
            &guess,
        );
        match r.status {
            403 => {}
            429 => waited = true,
            _ => panic!("{}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(waited, "the stranger is made to wait");
    assert_eq!(dev.setup_code(), shown, "the code on the card is unchanged");
    let r = write_from(
        Some(stranger(20)),
        &d,
        "POST",
        "/api/setup/owner",
        None,
        &json!({"setup_code": shown, "username": "skipper", "password": "harbour lights"}),
    );
    assert_eq!(assert_ok(&r)["username"], "skipper");
}

#[test]
fn state_survives_a_restart_and_sigterm_stops_cleanly() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let id = assert_ok(&get(&d, "/license/info"))["installation_id"].clone();
    assert_ok(&write(
        &d,
        "PUT",
        "/api/license",
        Some(&cookie),
        &json!({"tier": 1}),
    ));
    let pid = d.child.id();
    let d = {
        let mut d = d;
        assert!(
            Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = d.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "d3kosd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "clean exit: {status}");
        assert!(d.log.lock().unwrap().contains("stopped"));
        dev.start()
    };
    let info = assert_ok(&get(&d, "/license/info"));
    assert_eq!(info["installation_id"], id);
    assert_eq!(info["tier"], 1);
    assert_eq!(assert_ok(&get(&d, "/api/session"))["owner_exists"], true);
    let r = write(
        &d,
        "POST",
        "/api/session",
        None,
        &json!({"username": "skipper", "password": "harbour lights"}),
    );
    assert_eq!(assert_ok(&r)["username"], "skipper");
}

#[test]
fn corrupt_state_is_reported_moved_aside_and_not_silently_replaced() {
    let dev = Device::new("");
    std::fs::create_dir_all(dev.state()).unwrap();
    std::fs::write(
        dev.state().join("licence.json"),
        "{\"installation_id\": \"0a1b2c3d4e5f6789\", \"tier\": 2, \"onbo",
    )
    .unwrap();
    std::fs::write(dev.state().join("accounts.json"), "\u{0}\u{0}\u{0}").unwrap();
    let d = dev.start();
    let moved: Vec<String> = std::fs::read_dir(dev.state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(moved.len(), 2, "both files kept aside: {moved:?}");
    let kept = std::fs::read_to_string(
        dev.state()
            .join(moved.iter().find(|n| n.starts_with("licence")).unwrap()),
    )
    .unwrap();
    assert!(
        kept.contains("0a1b2c3d4e5f6789"),
        "the corrupt file's bytes are kept as they were"
    );
    assert_eq!(
        assert_ok(&get(&d, "/license/info"))["installation_id"],
        "0a1b2c3d4e5f6789",
        "the device keeps its identity"
    );
    let log = d.log.lock().unwrap().clone();
    assert!(
        log.contains("licence.json could not be read") && log.contains("moved aside"),
        "{log}"
    );
    eventually(
        "health does not report the two problems",
        Duration::from_secs(10),
        || {
            assert_ok(&get(&d, "/api/health"))["problems"]
                .as_array()
                .unwrap()
                .len()
                == 2
        },
    );
}

#[test]
fn live_data_can_require_sign_in() {
    let dev = Device::new("[features]\npublic_live_data = false\n");
    let d = dev.start();
    assert_error(&get(&d, "/api/health"), 401, "unauthorized");
    let cookie = create_owner(&dev, &d);
    let r = request(d.addr, "GET", "/api/health", &[("Cookie", &cookie)], b"");
    assert_ok(&r);
}

#[test]
fn a_bad_config_stops_the_daemon_with_the_key_named() {
    let dev = Device::new("colour = \"blue\"\n");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(dev.dir.path().join("appliance.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("appliance.toml:8") && err.contains("colour"),
        "{err}"
    );
}

#[test]
fn wrong_passwords_pause_only_the_address_they_come_from() {
    let dev = Device::new("");
    let d = dev.start();
    create_owner(&dev, &d);
    let guesser = Some(stranger(66));
    let wrong = json!({"username": "skipper", "password": "not the password"});
    for _ in 0..5 {
        assert_error(
            &write_from(guesser, &d, "POST", "/api/session", None, &wrong),
            401,
            "bad_credentials",
        );
    }
    let paused = write_from(guesser, &d, "POST", "/api/session", None, &wrong);
    assert_error(&paused, 429, "too_many_attempts");
    let wait: u64 = paused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let right = json!({"username": "skipper", "password": "harbour lights"});
    assert_error(
        &write_from(guesser, &d, "POST", "/api/session", None, &right),
        429,
        "too_many_attempts",
    );
    // The owner's phone on another address, and the helm screen, are not locked out.
    assert_ok(&write_from(
        Some(stranger(20)),
        &d,
        "POST",
        "/api/session",
        None,
        &right,
    ));
    assert_ok(&write(&d, "POST", "/api/session", None, &right));
}

#[test]
fn a_parallel_burst_of_guesses_is_checked_one_at_a_time() {
    let dev = Device::new("");
    let d = dev.start();
    create_owner(&dev, &d);
    let wrong = json!({"username": "skipper", "password": "not the password"});
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let d = &d;
        let wrong = &wrong;
        let all: Vec<_> = (0..40)
            .map(|_| {
                s.spawn(move || {
                    write_from(Some(stranger(66)), d, "POST", "/api/session", None, wrong).status
                })
            })
            .collect();
        all.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!(
        (1..=5).contains(&checked),
        "at most the free five are checked: {statuses:?}"
    );
    // The rest wait (429), or find the client's 32 connections taken (503).
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429 || s == 503).count(),
        40 - checked,
        "{statuses:?}"
    );
}
