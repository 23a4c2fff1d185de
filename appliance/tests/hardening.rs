//! The attack review's findings against the real d3kosd, each as a test named after what
//! broke: connections that never closed, a server any crowd of sockets could fill, a
//! SIGTERM that waited on its clients, a Host any page could use, a restore that kept
//! everyone from signing in, internal details in answers, tokens that could not be
//! revoked. Clients on 127.0.0.2 and up stand for the boat's network; 127.0.0.1 is the
//! helm screen.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Daemon, Device, assert_error, assert_ok, connect_from, create_owner, eventually, get, request,
    request_from, stranger, write,
};
use serde_json::json;

/// Every timeout at one second.
const QUICK: &str = "[server]\nheader_timeout_secs = 1\nbody_timeout_secs = 1\n\
                     write_timeout_secs = 1\nstop_timeout_secs = 1\n";

/// Reads until the server closes the connection; `None` if it is still open after
/// `wait`. Returns what was read.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

#[test]
fn idle_and_slow_sockets_are_closed_by_the_server() {
    let dev = Device::new(QUICK);
    let d = dev.start();
    let mut idle = connect_from(Some(stranger(66)), d.addr).unwrap();
    // Slowloris: a request head that never ends, a byte at a time.
    let mut slow = connect_from(Some(stranger(67)), d.addr).unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: d3kos.local\r\n")
        .unwrap();
    let mut trickle = slow.try_clone().unwrap();
    let dripping = std::thread::spawn(move || {
        for _ in 0..50 {
            if trickle.write_all(b"X").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // A kept-alive connection after one answer.
    let mut kept = connect_from(Some(stranger(68)), d.addr).unwrap();
    kept.write_all(b"GET /api/health HTTP/1.1\r\nHost: d3kos.local\r\n\r\n")
        .unwrap();
    for (name, s) in [
        ("idle", &mut idle),
        ("slow", &mut slow),
        ("kept-alive", &mut kept),
    ] {
        let read = closed_by_server(s, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("the {name} socket is still open"));
        if name == "kept-alive" {
            assert!(read.starts_with(b"HTTP/1.1 200"), "answered first");
        }
    }
    dripping.join().unwrap();
    assert_ok(&get(&d, "/api/health"));
}

/// Opens a socket from `from` and tells whether the server took it: a refused one is
/// answered 503 and closed at once, an admitted one stays open and silent.
fn admitted(d: &Daemon, from: u8) -> (bool, TcpStream) {
    let mut s = connect_from(Some(stranger(from)), d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {
            let text = String::from_utf8_lossy(&buf);
            assert!(
                text.starts_with("HTTP/1.1 503") && text.contains("too_many_connections"),
                "{text}"
            );
            (false, s)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => (false, s),
        Err(_) => (true, s),
    }
}

#[test]
fn a_crowd_of_sockets_is_capped_and_the_helm_still_answers() {
    let dev = Device::new(
        "[server]\nmax_connections = 16\nmax_connections_per_client = 8\nhelm_connections = 4\n",
    );
    let d = dev.start();
    let mut held = Vec::new();
    for _ in 0..8 {
        let (ok, s) = admitted(&d, 66);
        assert!(ok, "one client's first eight");
        held.push(s);
    }
    assert!(!admitted(&d, 66).0, "the ninth from one client is refused");
    for n in 67..75 {
        let (ok, s) = admitted(&d, n);
        assert!(ok, "other clients, up to the network's cap");
        held.push(s);
    }
    assert!(!admitted(&d, 75).0, "beyond the network's cap");
    // The helm screen has its own room.
    assert_ok(&get(&d, "/api/health"));
    // A place given back is taken again.
    drop(held.pop());
    eventually(
        "the freed place was not given back",
        Duration::from_secs(10),
        || {
            std::panic::catch_unwind(|| {
                request_from(Some(stranger(75)), d.addr, "GET", "/api/health", &[], b"").status
            })
            .ok()
                == Some(200)
        },
    );
}

#[test]
fn a_body_that_stops_or_drips_is_answered_408() {
    let dev = Device::new(QUICK);
    let d = dev.start();
    let mut s = connect_from(Some(stranger(66)), d.addr).unwrap();
    s.write_all(
        b"POST /api/session HTTP/1.1\r\nHost: d3kos.local\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\"",
    )
    .unwrap();
    let got = closed_by_server(&mut s, Duration::from_secs(15)).expect("closed");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains(r#""code":"timeout""#),
        "{text}"
    );
    // A body that drips in never pauses a whole second, but must arrive by the deadline.
    let mut s = connect_from(Some(stranger(67)), d.addr).unwrap();
    s.write_all(
        b"POST /api/session HTTP/1.1\r\nHost: d3kos.local\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n",
    )
    .unwrap();
    let mut drip = s.try_clone().unwrap();
    let dripping = std::thread::spawn(move || {
        for _ in 0..100 {
            if drip.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let got = closed_by_server(&mut s, Duration::from_secs(15)).expect("closed");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains(r#""code":"timeout""#),
        "{text}"
    );
    dripping.join().unwrap();
}

#[test]
fn an_answer_the_client_never_reads_is_given_up() {
    let dev = Device::new(QUICK);
    let d = dev.start();
    let one = get(&d, "/app.js").body.len();
    let n = 3000;
    let s = connect_from(Some(stranger(66)), d.addr).unwrap();
    let mut w = s.try_clone().unwrap();
    // Pipelined requests whose answers add up to far more than the socket buffers hold.
    let writer = std::thread::spawn(move || {
        let req = b"GET /app.js HTTP/1.1\r\nHost: d3kos.local\r\n\r\n";
        for _ in 0..n {
            if w.write_all(req).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(4));
    let mut s = s;
    let got = closed_by_server(&mut s, Duration::from_secs(30)).expect("closed");
    writer.join().unwrap();
    assert!(
        got.len() < n * one / 2,
        "the server gave up after {} of {} bytes",
        got.len(),
        n * one
    );
}

fn wait_exit(d: &mut Daemon, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_within_the_deadline_whatever_clients_do() {
    let dev = Device::new(
        "[server]\nheader_timeout_secs = 60\nbody_timeout_secs = 60\nstop_timeout_secs = 1\n",
    );
    let mut d = dev.start();
    let mut clients = Vec::new();
    for n in 0..20 {
        clients.push(connect_from(Some(stranger(66 + n)), d.addr).unwrap());
    }
    let mut slow = connect_from(Some(stranger(90)), d.addr).unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: d3kos.local\r\nX-A: ")
        .unwrap();
    let mut body = connect_from(Some(stranger(91)), d.addr).unwrap();
    body.write_all(
        b"POST /api/session HTTP/1.1\r\nHost: d3kos.local\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
    )
    .unwrap();
    clients.extend([slow, body]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(d.child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut d, Duration::from_secs(20))
        .expect("d3kosd still runs 20 s after SIGTERM while clients hold connections");
    assert!(status.success(), "{status}");
    let log = d.log.lock().unwrap().clone();
    assert!(log.contains("stopped"), "{log}");
    for c in &mut clients {
        assert!(
            closed_by_server(c, Duration::from_secs(5)).is_some(),
            "every connection is closed"
        );
    }
}

#[test]
fn a_rebound_host_name_gets_421_before_any_handler() {
    let dev = Device::new("[server]\nhost_names = [\"helm.sea-otter.boat\"]\n");
    let d = dev.start();
    let port = d.addr.port();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        "d3kos.local.evil.example".to_owned(),
        "192.0.2.1".to_owned(),
    ] {
        let r = request(d.addr, "GET", "/api/health", &[("Host", &host)], b"");
        assert_error(&r, 421, "misdirected");
        let r = request(
            d.addr,
            "POST",
            "/api/setup/owner",
            &[
                ("Host", &host),
                ("Content-Type", "application/json"),
                ("Origin", &format!("http://{host}")),
            ],
            br#"{"setup_code":"AAAA-BBBB","username":"x","password":"yyyyyyyyyy"}"#,
        );
        assert_error(&r, 421, "misdirected");
    }
    for host in [
        "d3kos.local".to_owned(),
        format!("localhost:{port}"),
        "helm.sea-otter.boat".to_owned(),
        format!("127.0.0.1:{port}"),
    ] {
        let r = request(d.addr, "GET", "/api/health", &[("Host", &host)], b"");
        assert_ok(&r);
    }
    // An absolute request target names the host too.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(b"GET http://evil.example/api/health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
}

#[test]
fn tokens_are_listed_and_revoked() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    let mut made = Vec::new();
    for name in ["chart plotter", "logger"] {
        let t = assert_ok(&write(
            &d,
            "POST",
            "/api/tokens",
            Some(&cookie),
            &json!({ "name": name }),
        ));
        made.push((
            t["id"].as_str().unwrap().to_owned(),
            t["token"].as_str().unwrap().to_owned(),
        ));
    }
    let bearer = |t: &str| format!("Bearer {t}");
    let listed = request(
        d.addr,
        "GET",
        "/api/tokens",
        &[("Authorization", &bearer(&made[1].1))],
        b"",
    );
    let listed = assert_ok(&listed);
    let text = listed.to_string();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2, "{text}");
    assert!(
        !text.contains(&made[0].1) && !text.contains(&made[1].1),
        "no token is shown again: {text}"
    );
    assert_ok(&write(
        &d,
        "DELETE",
        &format!("/api/tokens/{}", made[0].0),
        Some(&cookie),
        &json!({}),
    ));
    let r = request(
        d.addr,
        "GET",
        "/api/tokens",
        &[("Authorization", &bearer(&made[0].1))],
        b"",
    );
    assert_error(&r, 401, "unauthorized");
    let r = request(
        d.addr,
        "GET",
        "/api/tokens",
        &[("Authorization", &bearer(&made[1].1))],
        b"",
    );
    assert_eq!(assert_ok(&r)["tokens"].as_array().unwrap().len(), 1);
    assert_error(
        &write(
            &d,
            "DELETE",
            "/api/tokens/nosuchtoken",
            Some(&cookie),
            &json!({}),
        ),
        404,
        "not_found",
    );
    assert_error(
        &write(
            &d,
            "DELETE",
            &format!("/api/tokens/{}", made[1].0),
            None,
            &json!({}),
        ),
        401,
        "unauthorized",
    );
}

#[test]
fn a_restore_keeps_no_one_from_signing_in() {
    let dev = Device::new("");
    let hold = dev.dir.path().join("hold");
    let hold_s = hold.to_str().unwrap().to_owned();
    let d = dev.launch(
        &[],
        &[
            ("D3KOS_HOLD_AT", "restore: unpacked and checked"),
            ("D3KOS_HOLD_FILE", &hold_s),
        ],
    );
    let cookie = create_owner(&dev, &d);
    let id = assert_ok(&write(
        &d,
        "POST",
        "/api/backup/create",
        Some(&cookie),
        &json!({}),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let restoring = std::thread::scope(|s| {
        let restore = s.spawn(|| {
            write(
                &d,
                "POST",
                "/api/backup/restore",
                Some(&cookie),
                &json!({ "id": id }),
            )
        });
        eventually(
            "the restore never reached its hold",
            Duration::from_secs(30),
            || hold.exists(),
        );
        // Mid-restore: reading and signing in answer; writes to the state folder wait.
        let status = assert_ok(&request(
            d.addr,
            "GET",
            "/api/session",
            &[("Cookie", &cookie)],
            b"",
        ));
        assert_eq!(status["authenticated"], true);
        assert_ok(&write(
            &d,
            "POST",
            "/api/session",
            None,
            &json!({"username": "skipper", "password": "harbour lights"}),
        ));
        assert_ok(&get(&d, "/license/info"));
        assert_error(
            &write(
                &d,
                "PUT",
                "/api/license",
                Some(&cookie),
                &json!({"tier": 2}),
            ),
            409,
            "conflict",
        );
        assert_error(
            &write(
                &d,
                "POST",
                "/api/tokens",
                Some(&cookie),
                &json!({"name": "x"}),
            ),
            409,
            "conflict",
        );
        std::fs::remove_file(&hold).unwrap();
        restore.join().unwrap()
    });
    assert_eq!(assert_ok(&restoring)["id"], id);
    assert_eq!(assert_ok(&get(&d, "/license/info"))["tier"], 0);
}

#[test]
fn an_internal_error_answers_with_a_request_id_and_no_path_or_panic_text() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    // The licence file cannot be replaced: a directory with something in it stands there.
    let licence = dev.state().join("licence.json");
    std::fs::remove_file(&licence).unwrap();
    std::fs::create_dir_all(licence.join("in the way")).unwrap();
    let r = write(
        &d,
        "PUT",
        "/api/license",
        Some(&cookie),
        &json!({"tier": 2}),
    );
    assert_error(&r, 500, "internal");
    let v = r.json();
    let id = v["error"]["request_id"].as_str().unwrap();
    assert_eq!(r.header("x-request-id"), Some(id));
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains(dev.dir.path().to_str().unwrap()) && !text.contains("licence.json"),
        "{text}"
    );
    // The daemon's log reaches the test through a pipe and a reader thread: under load the
    // line can arrive a moment after the answer.
    eventually(
        &format!(
            "the details are in the log under the request id {id}: {}",
            d.log.lock().unwrap()
        ),
        Duration::from_secs(10),
        || {
            d.log
                .lock()
                .unwrap()
                .lines()
                .any(|l| l.contains(id) && l.contains("licence.json"))
        },
    );
}

#[test]
fn an_id_with_a_multibyte_character_at_byte_15_answers_400() {
    let dev = Device::new("");
    let d = dev.start();
    let cookie = create_owner(&dev, &d);
    for path in [
        "/api/backup/d3kos_backup_xxxxxxxxxxxxxx%C3%A9",
        "/api/backup/d3kos_backup_xxxxxxxxxxxxxx%C3%A9/download",
    ] {
        let method = if path.ends_with("download") {
            "GET"
        } else {
            "DELETE"
        };
        let r = write(&d, method, path, Some(&cookie), &json!({}));
        assert_error(&r, 400, "bad_id");
    }
    let r = write(
        &d,
        "POST",
        "/api/backup/verify",
        Some(&cookie),
        &json!({"id": "d3kos_backup_xxxxxxxxxxxxxx\u{e9}"}),
    );
    assert_error(&r, 400, "bad_id");
}
