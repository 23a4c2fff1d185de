//! NMEA 2000 end to end: `d3kosd n2k decode` against canboat's own analyzer output on
//! real captures, bad input counted and skipped, and a daemon replaying a capture — its
//! Signal K stream read over a real WebSocket, and an oil-pressure drop raising an alarm.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Device, get};
use serde_json::{Value, json};

/// The real captures (canboat's samples, tests/fixture/n2k/README.md).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixture/n2k")
        .join(name)
}

/// Runs `d3kosd n2k decode` on `file`; returns stdout and stderr.
fn decode(file: &std::path::Path, si: bool) -> (String, String) {
    let mut c = Command::new(common::BIN);
    c.args(["n2k", "decode"]).arg(file);
    if si {
        c.arg("--si");
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: {stderr}", file.display());
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn without_timestamps(text: &str) -> Vec<String> {
    text.lines()
        .map(
            |l| match (l.find(r#""timestamp":""#), l.find(r#"","prio""#)) {
                (Some(a), Some(b)) => format!("{}{}", &l[..a], &l[b + 3..]),
                _ => l.to_owned(),
            },
        )
        .collect()
}

#[test]
fn decoding_equals_canboats_analyzer_line_for_line() {
    for name in ["candump-fast.txt", "candumpSample2.txt", "pgn127489.txt"] {
        for si in [false, true] {
            let (ours, _) = decode(&fixture(name), si);
            let expected_name = format!("expected/{name}{}.json", if si { ".si" } else { "" });
            let expected = std::fs::read_to_string(fixture(&expected_name)).unwrap();
            // candump's default format has no timestamps: canboat stamped those lines
            // with the time it ran, so they are compared without.
            let (a, b) = if name == "candumpSample2.txt" {
                (without_timestamps(&ours), without_timestamps(&expected))
            } else {
                (
                    ours.lines().map(str::to_owned).collect(),
                    expected.lines().map(str::to_owned).collect(),
                )
            };
            assert_eq!(a.len(), b.len(), "{expected_name}: line count");
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x, y, "{expected_name} line {}", i + 1);
            }
        }
    }
}

#[test]
fn fast_packets_of_two_interleaved_engines_reassemble_and_the_incomplete_last_is_dropped() {
    let (ours, stderr) = decode(&fixture("candump-fast.txt"), true);
    let instances: Vec<i64> = ours
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v["fields"]["Instance"]["value"].as_i64().unwrap())
        .collect();
    assert_eq!(
        instances,
        vec![0, 1, 0, 1, 0],
        "the sixth series never finished"
    );
    assert!(stderr.contains("(1 incomplete)"), "{stderr}");
}

#[test]
fn every_record_of_every_capture_decodes() {
    // (file, messages printed, lines skipped): susteranna has two zero-length lines,
    // which canboat skips too.
    for (name, messages, skipped) in [
        ("candumpSample3.txt", 1_874, 0),
        ("susteranna-actisense-serial.raw", 10_293, 2),
        ("dirona-actisense-serial.raw", 40_000, 0),
    ] {
        for si in [false, true] {
            let (out, stderr) = decode(&fixture(name), si);
            assert_eq!(out.lines().count(), messages + 1, "{name}: {stderr}");
            assert!(
                stderr.contains(&format!("{skipped} lines skipped, 0 messages undecodable")),
                "{name}: {stderr}"
            );
            for l in out.lines() {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {l}"));
            }
        }
    }
}

#[test]
fn garbage_wrong_lengths_wild_fast_packets_and_truncated_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.log");
    std::fs::write(
        &bad,
        "(1.000) can0 09F8017F#E8AC5119BEAB6DD5\n\
         this is not candump\n\
         (1.001) can0 09F8017F#E8AC5119BEAB6DD5AABB\n\
         (1.002) can0 123#0011\n\
         (1.003) can0 09F20101#00FF0102030405\n\
         (1.004) can0 09F20101#01FF0102030405FF\n\
         (1.005) can0 09F8017F#E8AC51\n\
         (1.006) can0 09F8\n\
         \u{1}\u{2}\u{3}\n\
         (1.007) can0 09F8017F#E8AC5119BEAB6DD5\n",
    )
    .unwrap();
    let (out, stderr) = decode(&bad, false);
    let lines: Vec<&str> = out.lines().collect();
    // Two whole position frames and the 3-byte one (its fields cut short).
    assert_eq!(lines.len(), 1 + 3, "{out}\n{stderr}");
    assert!(
        stderr.contains("5 lines skipped") && stderr.contains("2 fast packets dropped"),
        "{stderr}"
    );
    let plain = dir.path().join("bad.csv");
    std::fs::write(
        &plain,
        "2022-09-23T11:05:05.383Z,2,127489,236,255,26,00,28,00,ff,ff,bb,71,57,03,00,00,e0,b0,05,00,ff,ff,ff,ff,ff,20,00,00,00,7e,ff\n\
         2022-09-23T11:05:05.383Z,2,127489,236,255,26,00,28,00\n\
         2022-09-23T11:05:05.383Z,2,127489\n\
         2022-09-23T11:05:05.383Z,9,127489,236,255,1,00\n",
    )
    .unwrap();
    let (out, stderr) = decode(&plain, false);
    assert_eq!(out.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("3 lines skipped"), "{stderr}");
}

/// A candump `-l` line for `pgn` from `src`.
fn frame_line(t: f64, pgn: u32, src: u8, data: &[u8]) -> String {
    let pf = (pgn >> 8) & 0xFF;
    let ps = if pf < 240 { 255 } else { pgn & 0xFF };
    let id = (2u32 << 26) | (((pgn >> 16) & 1) << 24) | (pf << 16) | (ps << 8) | u32::from(src);
    let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
    format!("({t:.6}) can0 {id:08X}#{hex}\n")
}

/// Engine Parameters, Dynamic for `instance` as a fast packet with counter `seq`.
fn engine_dynamic(t: f64, instance: u8, seq: u8, oil_pa: u32, coolant_k: f64) -> String {
    let mut m = vec![instance];
    m.extend(((oil_pa / 100) as u16).to_le_bytes());
    m.extend(0xFFFFu16.to_le_bytes());
    m.extend(((coolant_k * 100.0).round() as u16).to_le_bytes());
    m.extend(1410i16.to_le_bytes());
    m.extend(125i16.to_le_bytes());
    m.extend(3_600_000u32.to_le_bytes());
    m.extend([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7F, 0x7F]);
    assert_eq!(m.len(), 26);
    let mut out = String::new();
    let mut first = vec![seq << 5, 26];
    first.extend(&m[..6]);
    out.push_str(&frame_line(t, 127_489, 1, &first));
    for (n, chunk) in m[6..].chunks(7).enumerate() {
        let mut f = vec![(seq << 5) | (n as u8 + 1)];
        f.extend(chunk);
        f.resize(8, 0xFF);
        out.push_str(&frame_line(t + 0.001 * (n + 1) as f64, 127_489, 1, &f));
    }
    out
}

/// Engine Parameters, Rapid Update.
fn engine_rapid(t: f64, instance: u8, rpm: f64) -> String {
    let mut d = vec![instance];
    d.extend(((rpm * 4.0) as u16).to_le_bytes());
    d.extend([0xFF, 0xFF, 0x7F, 0xFF, 0xFF]);
    frame_line(t, 127_488, 1, &d)
}

/// Oil pressure along the test capture: steady, then hovering on -2σ, then a drop.
fn oil_at(t: f64) -> u32 {
    match t {
        t if t < 6.0 => 350_000,
        t if t < 14.0 => {
            if ((t / 0.7) as u64).is_multiple_of(2) {
                339_900
            } else {
                340_100
            }
        }
        _ => 250_000,
    }
}

/// 30 s of one engine at 1,800 rpm and 80 °C whose oil pressure follows `oil_at`, plus
/// a position and a heading once a second.
fn engine_capture() -> String {
    let mut s = String::new();
    let mut seq = 0u8;
    for step in 0..300 {
        let t = 1_000.0 + f64::from(step) * 0.1;
        let rel = t - 1_000.0;
        s.push_str(&engine_rapid(t, 0, 1_800.0));
        if step % 3 == 0 {
            s.push_str(&engine_dynamic(t + 0.01, 0, seq, oil_at(rel), 353.15));
            seq = (seq + 1) % 8;
        }
        if step % 10 == 0 {
            let mut p = (424_783_080i32).to_le_bytes().to_vec();
            p.extend((-714_232_898i32).to_le_bytes());
            s.push_str(&frame_line(t + 0.05, 129_025, 3, &p));
            // Heading 90° true: 1.5708 rad in 0.0001 rad.
            let mut h = vec![0u8];
            h.extend(15_708u16.to_le_bytes());
            h.extend([0xFF, 0x7F, 0xFF, 0x7F, 0xFC]);
            s.push_str(&frame_line(t + 0.06, 127_250, 4, &h));
        }
    }
    s
}

struct Stream {
    ws: tungstenite::WebSocket<TcpStream>,
}

impl Stream {
    fn open(addr: std::net::SocketAddr, query: &str) -> (Stream, Value) {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let url = format!("ws://{addr}/signalk/v1/stream?{query}");
        let (ws, _) = tungstenite::client(url.as_str(), tcp).unwrap();
        let mut s = Stream { ws };
        let hello = s.next(Duration::from_secs(5)).expect("a hello");
        (s, hello)
    }

    fn send(&mut self, v: Value) {
        self.ws
            .send(tungstenite::Message::Text(v.to_string().into()))
            .unwrap();
    }

    /// The next JSON message within `within`.
    fn next(&mut self, within: Duration) -> Option<Value> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(&t).unwrap());
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("stream: {e}"),
            }
        }
        None
    }
}

/// Every (path, value) in a delta, with its update's `$source` and timestamp.
fn values(delta: &Value) -> Vec<(String, Value, String, String)> {
    let mut out = vec![];
    for u in delta["updates"].as_array().into_iter().flatten() {
        for v in u["values"].as_array().into_iter().flatten() {
            out.push((
                v["path"].as_str().unwrap().to_owned(),
                v["value"].clone(),
                u["$source"].as_str().unwrap_or_default().to_owned(),
                u["timestamp"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

fn replaying(capture: &str) -> (Device, PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("capture.log");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(capture.as_bytes())
        .unwrap();
    let dev = Device::new(&format!("[n2k]\nreplay = \"{}\"\n", path.display()));
    (dev, path)
}

#[test]
fn a_signal_k_client_subscribes_receives_the_captures_values_and_unsubscribes() {
    let (dev, _) = replaying(&std::fs::read_to_string(fixture("candump-fast.txt")).unwrap());
    let d = dev.start();
    // Discovery, as KIP reads it.
    let disc = get(&d, "/signalk").json();
    assert_eq!(disc["endpoints"]["v1"]["version"], json!("1.7.0"));
    assert!(
        disc["endpoints"]["v1"]["signalk-ws"]
            .as_str()
            .unwrap()
            .ends_with("/signalk/v1/stream")
    );
    assert_eq!(disc["server"]["id"], json!("d3kos"));
    // What canboat reads from the capture, in SI: every value each engine reported.
    let expected = std::fs::read_to_string(fixture("expected/candump-fast.txt.si.json")).unwrap();
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in expected.lines().skip(1) {
        let v: Value = serde_json::from_str(l).unwrap();
        let f = &v["fields"];
        let engine = if f["Instance"]["value"] == json!(0) {
            "port"
        } else {
            "starboard"
        };
        for (field, path, scale) in [
            ("Oil pressure", "oilPressure", 1.0),
            ("Temperature", "temperature", 1.0),
            ("Alternator Potential", "alternatorVoltage", 1.0),
            ("Fuel Rate", "fuel.rate", 1.0 / 3_600_000.0),
        ] {
            let x = f[field].as_f64().unwrap() * scale;
            seen.entry(format!("propulsion.{engine}.{path}"))
                .or_default()
                .insert(format!("{x:.6e}"));
        }
    }

    let (mut s, hello) = Stream::open(d.addr, "subscribe=none");
    let me = hello["self"].as_str().unwrap().to_owned();
    assert!(me.starts_with("vessels.urn:mrn:signalk:uuid:"), "{hello}");
    assert_eq!(hello["version"], json!("1.7.0"));
    assert!(hello["roles"].as_array().unwrap().contains(&json!("main")));
    assert!(
        s.next(Duration::from_millis(1500)).is_none(),
        "subscribe=none sends nothing"
    );

    s.send(
        json!({"context": "vessels.self", "subscribe": [{"path": "propulsion.*", "period": 500}]}),
    );
    let mut checked: BTreeSet<String> = BTreeSet::new();
    let mut deltas = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while checked.len() < seen.len() && Instant::now() < end {
        let Some(delta) = s.next(Duration::from_secs(2)) else {
            continue;
        };
        deltas += 1;
        assert_eq!(
            delta["context"].as_str(),
            Some(me.as_str()),
            "context is the hello's self"
        );
        for (path, value, source, at) in values(&delta) {
            assert!(path.starts_with("propulsion."), "{path}");
            assert_eq!(source, "replay.1", "{delta}");
            assert!(at.ends_with('Z'), "{delta}");
            if let Some(allowed) = seen.get(&path) {
                let got = format!("{:.6e}", value.as_f64().unwrap());
                assert!(
                    allowed.contains(&got),
                    "{path} = {got}, capture has {allowed:?}"
                );
                checked.insert(path);
            }
        }
    }
    assert_eq!(
        checked.len(),
        seen.len(),
        "saw {checked:?} in {deltas} deltas"
    );

    s.send(json!({"context": "vessels.self", "unsubscribe": [{"path": "*"}]}));
    // One delta may already be on its way.
    let _ = s.next(Duration::from_millis(300));
    assert!(
        s.next(Duration::from_secs(2)).is_none(),
        "unsubscribed: nothing more"
    );

    // sendMeta=all: the units come with the first value of each path.
    let (mut m, _) = Stream::open(d.addr, "subscribe=self&sendMeta=all");
    let first = m.next(Duration::from_secs(5)).expect("a delta");
    let meta = &first["updates"][0]["meta"];
    assert!(meta.as_array().is_some_and(|a| !a.is_empty()), "{first}");
    // The full model holds the same paths, with their source.
    let full = get(&d, "/signalk/v1/api/vessels/self").json();
    assert_eq!(
        full["propulsion"]["starboard"]["oilPressure"]["$source"],
        json!("replay.1")
    );
    assert_eq!(
        get(
            &d,
            "/signalk/v1/api/vessels/self/propulsion/port/oilPressure"
        )
        .json()["meta"]["units"],
        json!("Pa")
    );
}

#[test]
fn an_oil_pressure_drop_raises_critical_within_two_seconds_and_a_value_on_a_line_does_not_flap() {
    let (dev, _) = replaying(&engine_capture());
    // A baseline recorded before: oil at cruise 350 kPa ± 5 kPa.
    {
        let d = dev.start();
        common::eventually(
            "the engine history is made",
            Duration::from_secs(10),
            || dev.state().join("engine.db").exists(),
        );
        drop(d);
        let db = rusqlite::Connection::open(dev.state().join("engine.db")).unwrap();
        db.execute(
            "INSERT INTO baseline (engine, band, metric, n, mean, stddev, recorded_ms)
             VALUES ('port', 'cruise', 'oilPressure', 1800, 350000.0, 5000.0, 0)",
            [],
        )
        .unwrap();
    }
    let d = dev.start();
    let (mut s, _) = Stream::open(d.addr, "subscribe=none");
    s.send(json!({"context": "vessels.self", "subscribe": [
        {"path": "notifications.*", "policy": "instant"},
        {"path": "propulsion.port.oilPressure", "policy": "instant"},
    ]}));
    let mut states: Vec<(String, Instant, String)> = vec![];
    let mut drop_seen: Option<(Instant, String)> = None;
    let end = Instant::now() + Duration::from_secs(28);
    while Instant::now() < end && !states.iter().any(|s| s.0 == "alarm") {
        let Some(delta) = s.next(Duration::from_secs(1)) else {
            continue;
        };
        let now = Instant::now();
        for (path, value, _, at) in values(&delta) {
            if path == "propulsion.port.oilPressure"
                && value == json!(250_000.0)
                && drop_seen.is_none()
            {
                drop_seen = Some((now, at.clone()));
            }
            if path == "notifications.propulsion.port.oilPressure" {
                let state = value["state"].as_str().unwrap().to_owned();
                if states.last().map(|s| &s.0) != Some(&state) {
                    states.push((state, now, at));
                }
            }
        }
    }
    let names: Vec<&str> = states.iter().map(|s| s.0.as_str()).collect();
    // Hovering on -2σ (±0.02σ) for 8 s: the level rises to WARNING (perhaps through INFO)
    // and never falls back, then the drop is an alarm.
    let rank = |s: &str| {
        ["normal", "alert", "warn", "alarm"]
            .iter()
            .position(|x| *x == s)
    };
    assert!(
        names.windows(2).all(|w| rank(w[0]) < rank(w[1])) && names.contains(&"warn"),
        "no flapping: {names:?}"
    );
    assert_eq!(names.last(), Some(&"alarm"), "{names:?}");
    let (seen_at, drop_stamp) = drop_seen.expect("the drop reached the stream");
    let alarm = states.last().unwrap();
    let waited = alarm.1.duration_since(seen_at);
    let stamp = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let by_stamps = stamp(&alarm.2) - stamp(&drop_stamp);
    println!(
        "CRITICAL {waited:?} after the drop reached the client; {by_stamps} ms by the daemon's stamps"
    );
    assert!(
        waited < Duration::from_secs(2) && by_stamps < 2_000,
        "{waited:?} / {by_stamps} ms"
    );
    let current = get(&d, "/api/engine/current").json();
    let port = &current["data"]["engines"][0];
    assert_eq!(port["id"], json!("port"));
    assert_eq!(port["band"], json!("cruise"));
    let oil = port["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == json!("oilPressure"))
        .unwrap();
    assert_eq!(oil["level"], json!("critical"), "{current}");
    assert!(oil["sigma"].as_f64().unwrap() < -3.0, "{oil}");
    let alerts = current["data"]["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["level"] == json!("critical")
            && a["message"]
                .as_str()
                .unwrap()
                .contains("below its baseline at cruise")),
        "{alerts:?}"
    );
    let events = get(&d, "/api/engine/events").json();
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&["started"]) && kinds.contains(&"anomaly"),
        "{kinds:?}"
    );
    // The anomaly events reached the healing rules: reported with what to check, never
    // acted on, and open while the alert is.
    common::eventually(
        "the healing rules report the oil pressure",
        Duration::from_secs(5),
        || {
            let h = get(&d, "/healing/history?rule=engine").json();
            h["data"]["records"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["outcome"] == json!("reported"))
        },
    );
    let h = get(&d, "/healing/history?rule=engine").json();
    let records = h["data"]["records"].as_array().unwrap();
    let reported = records
        .iter()
        .find(|r| r["outcome"] == json!("reported") && r["subject"] == json!("port oilPressure"))
        .unwrap_or_else(|| panic!("{records:?}"));
    let advice: Vec<&str> = reported["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        advice[0].starts_with("Likely cause: low oil level")
            && advice.iter().any(|a| a.contains("dipstick")),
        "{advice:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["action"].is_null() || r["action"] == json!("report")),
        "an engine is never acted on: {records:?}"
    );
    // The navigation values came through too.
    let full = get(&d, "/signalk/v1/api/vessels/self").json();
    assert_eq!(
        full["navigation"]["position"]["value"]["latitude"],
        json!(42.478308)
    );
    // 15,708 × 0.0001 rad as sent, not π/2.
    assert_eq!(
        full["navigation"]["headingTrue"]["value"].to_string(),
        "1.5708"
    );
}

#[test]
fn a_missing_bus_is_a_health_problem_and_the_daemon_goes_on() {
    // No such interface on this machine: as a Pi whose HAT is not fitted.
    let dev = Device::new("[n2k]\ninterface = \"d3kos-none0\"\n");
    let d = dev.start();
    common::eventually("the bus reported down", Duration::from_secs(15), || {
        let h = get(&d, "/api/health").json();
        h["data"]["problems"].as_array().is_some_and(|p| {
            p.iter().any(|p| {
                p.as_str()
                    .unwrap_or("")
                    .contains("NMEA 2000: d3kos-none0 is down")
            })
        })
    });
    let s = get(&d, "/api/n2k/status").json();
    assert_eq!(s["data"]["up"], json!(false), "{s}");
    assert_eq!(s["data"]["outages"], json!(1), "{s}");
    assert!(
        s["data"]["down_reason"]
            .as_str()
            .unwrap()
            .contains("no such interface"),
        "{s}"
    );
    // Everything else still answers.
    assert_eq!(get(&d, "/api/engine/current").status, 200);
    assert_eq!(get(&d, "/signalk").status, 200);
}

#[test]
fn engine_history_is_an_export_kind_and_bad_requests_are_refused() {
    let (dev, _) = replaying(&std::fs::read_to_string(fixture("helm.log")).unwrap());
    let d = dev.start();
    let cookie = common::create_owner(&dev, &d);
    let c = Some(cookie.as_str());
    // The owner starts a baseline; a second one while it records is a conflict; the
    // minutes must be 10 to 60.
    let r = common::write(
        &d,
        "POST",
        "/api/engine/benchmark/start",
        c,
        &json!({"minutes": 5}),
    );
    common::assert_error(&r, 400, "bad_request");
    let r = common::write(&d, "POST", "/api/engine/benchmark/start", None, &json!({}));
    assert_eq!(r.status, 401, "only the owner records a baseline");
    let r = common::write(&d, "POST", "/api/engine/benchmark/start", c, &json!({}));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["data"]["state"], json!("recording"));
    let r = common::write(
        &d,
        "POST",
        "/api/engine/benchmark/start",
        c,
        &json!({"minutes": 10}),
    );
    common::assert_error(&r, 409, "conflict");
    let r = common::write(&d, "DELETE", "/api/engine/benchmark", c, &json!({}));
    assert_eq!(r.json()["data"]["state"], json!("none"));
    let r = get(&d, "/api/engine/history?engine=port&metric=nonsense");
    common::assert_error(&r, 400, "bad_request");
    // History is written every 30 s; then it exports.
    common::eventually("history written", Duration::from_secs(45), || {
        get(
            &d,
            "/api/engine/history?engine=port&metric=revolutions&minutes=5",
        )
        .json()["data"]["points"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    });
    let r = common::write(
        &d,
        "POST",
        "/api/export/generate",
        c,
        &json!({"what": "engine_csv"}),
    );
    let job = common::assert_ok(&r);
    let id = job["id"].as_i64().unwrap();
    common::eventually("the export finished", Duration::from_secs(20), || {
        get(&d, "/export/status").json()["data"]["finished"]
            .as_array()
            .is_some_and(|f| f.iter().any(|j| j["id"] == json!(id)))
    });
    let csv = common::request(
        d.addr,
        "GET",
        &format!("/api/export/{id}/download"),
        &[("Cookie", cookie.as_str())],
        b"",
    );
    assert_eq!(csv.status, 200);
    let text = String::from_utf8_lossy(&csv.body).into_owned();
    assert!(
        text.starts_with("time_utc,engine,metric,unit,value,min,max,step_s\r\n"),
        "{text}"
    );
    assert!(
        text.contains(",port,revolutions,Hz,30,30,30,1\r\n"),
        "{text}"
    );
}
