//! The boat's time zone through a real d3kosd: the zone for positions all over the globe
//! (`d3kosd timezone at`), and the daemon's choice among its sources — a replayed GPS
//! fix, a geolocation service (a loopback server that answers, one that never answers,
//! one that answers garbage), UTC — with the owner's override over all of them, kept
//! across a restart.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// What `d3kosd timezone at LAT LON` prints: (zone, offset, land or sea), or the exit
/// status and stderr.
fn at(lat: &str, lon: &str) -> Result<(String, String, String), (i32, String)> {
    let out = Command::new(bin())
        .args(["timezone", "at", lat, lon])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.len(), 3, "{text}");
    Ok((words[0].into(), words[1].into(), words[2].into()))
}

/// Positions whose zone nobody disputes, far enough (over a kilometre) from any border for
/// the boundary data's simplification (at most about 111 m) not to matter.
#[rustfmt::skip]
const PLACES: &[(f64, f64, &str, &str)] = &[
    // Cities.
    (52.52, 13.405, "Europe/Berlin", "Berlin"),
    (51.5074, -0.1278, "Europe/London", "London"),
    (40.7128, -74.006, "America/New_York", "New York"),
    (35.6762, 139.6503, "Asia/Tokyo", "Tokyo"),
    (-33.8688, 151.2093, "Australia/Sydney", "Sydney"),
    (-33.9249, 18.4241, "Africa/Johannesburg", "Cape Town"),
    (-22.9068, -43.1729, "America/Sao_Paulo", "Rio de Janeiro"),
    (21.3069, -157.8583, "Pacific/Honolulu", "Honolulu"),
    (-36.8485, 174.7633, "Pacific/Auckland", "Auckland"),
    (19.076, 72.8777, "Asia/Kolkata", "Mumbai (+05:30)"),
    (47.5615, -52.7126, "America/St_Johns", "St. John's (-03:30)"),
    (27.7172, 85.324, "Asia/Kathmandu", "Kathmandu (+05:45)"),
    (33.4484, -112.074, "America/Phoenix", "Phoenix (no summer time)"),
    (64.1466, -21.9426, "Atlantic/Reykjavik", "Reykjavík"),
    (1.3521, 103.8198, "Asia/Singapore", "Singapore"),
    (78.2232, 15.6267, "Arctic/Longyearbyen", "Longyearbyen, Svalbard"),
    // A point in each ocean: the nautical zone of the longitude.
    (30.0, -40.0, "Etc/GMT+3", "North Atlantic"),
    (-30.0, -15.0, "Etc/GMT+1", "South Atlantic"),
    (30.0, -140.0, "Etc/GMT+9", "North Pacific, east"),
    (20.0, 160.0, "Etc/GMT-11", "North Pacific, west"),
    (-40.0, -120.0, "Etc/GMT+8", "South Pacific"),
    (-20.0, 80.0, "Etc/GMT-5", "Indian Ocean"),
    (-60.0, 90.0, "Etc/GMT-6", "Southern Ocean"),
    (86.0, 30.0, "Etc/GMT-2", "Arctic Ocean"),
    // The date line, both sides, at sea and on the islands that moved across it.
    (0.0, 179.5, "Etc/GMT-12", "date line, west side"),
    (0.0, -179.5, "Etc/GMT+12", "date line, east side"),
    (-18.1416, 178.4419, "Pacific/Fiji", "Suva, Fiji"),
    (-13.8333, -171.7667, "Pacific/Apia", "Apia, Samoa (+13 east of the line)"),
    (1.87, -157.43, "Pacific/Kiritimati", "Kiritimati (+14)"),
    (-43.95, -176.56, "Pacific/Chatham", "Chatham Islands (+12:45)"),
    // The poles.
    (90.0, 0.0, "Etc/GMT", "North Pole"),
    (-90.0, 0.0, "Antarctica/McMurdo", "South Pole (Amundsen-Scott keeps NZ time)"),
    // Lakes.
    (-2.2, 33.0, "Africa/Dar_es_Salaam", "Lake Victoria, Tanzanian part"),
    (46.85, 17.75, "Europe/Budapest", "Lake Balaton"),
    // Either side of a river border.
    (52.342, 14.54, "Europe/Berlin", "Frankfurt (Oder)"),
    (52.351, 14.57, "Europe/Warsaw", "Słubice, across the Oder"),
    (42.35, -83.1, "America/Detroit", "Detroit"),
    (42.28, -83.0, "America/Toronto", "Windsor, across the Detroit River"),
    (31.7619, -106.485, "America/Denver", "El Paso"),
    (31.6904, -106.4245, "America/Ciudad_Juarez", "Ciudad Juárez, across the Rio Grande"),
    // Harbours on a border.
    (48.5818, 7.7509, "Europe/Paris", "Strasbourg"),
    (48.5722, 7.8156, "Europe/Berlin", "Kehl, across the Rhine"),
    (32.5149, -117.0382, "America/Tijuana", "Tijuana"),
    (32.7157, -117.1611, "America/Los_Angeles", "San Diego"),
    (36.1408, -5.3536, "Europe/Gibraltar", "Gibraltar"),
    (36.1681, -5.3476, "Europe/Madrid", "La Línea de la Concepción"),
];

#[test]
fn positions_all_over_the_globe_have_their_expected_zones() {
    assert!(PLACES.len() >= 30);
    let mut wrong = Vec::new();
    for &(lat, lon, zone, what) in PLACES {
        let (found, offset, area) =
            at(&lat.to_string(), &lon.to_string()).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        if found != zone {
            wrong.push(format!("{what} ({lat}, {lon}): {found}, expected {zone}"));
        }
        let sea = zone.starts_with("Etc/");
        assert_eq!(area, if sea { "sea" } else { "land" }, "{what}");
        assert!(
            offset.len() == 6 && (offset.starts_with('+') || offset.starts_with('-')),
            "{what}: {offset}"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nautical zones by their offsets, the Etc sign inverted.
    assert_eq!(at("30", "-40").unwrap().1, "-03:00");
    assert_eq!(at("0", "179.5").unwrap().1, "+12:00");
    assert_eq!(at("0", "-179.5").unwrap().1, "-12:00");
    assert_eq!(at("-43.95", "-176.56").unwrap().1.len(), 6);
}

#[test]
fn a_position_off_the_globe_or_not_a_number_is_refused_with_a_clear_error() {
    for (lat, lon, says) in [
        ("91", "0", "latitude 91 is not on Earth"),
        ("-90.5", "10", "latitude -90.5 is not on Earth"),
        ("10", "180.5", "longitude 180.5 is not on Earth"),
        ("NaN", "0", "latitude NaN is not on Earth"),
        ("north", "0", "invalid value 'north'"),
        ("52.5", "13,4", "invalid value '13,4'"),
    ] {
        let (code, stderr) = at(lat, lon).expect_err(lat);
        assert_ne!(code, 0);
        assert!(stderr.contains(says), "{lat} {lon}: {stderr}");
    }
    let out = Command::new(bin())
        .args(["timezone", "at", "52.5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// How the stand-in geolocation service behaves.
#[derive(Clone, Copy)]
enum Service {
    Answers(&'static str),
    NeverAnswers,
    Garbage,
}

/// A geolocation service on a loopback port; counts the questions it was asked.
fn geolocation_service(how: Service) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            assert!(head.starts_with(b"GET /json "), "{head:?}");
            count.fetch_add(1, Ordering::SeqCst);
            let body = match how {
                Service::NeverAnswers => {
                    held.push(s);
                    continue;
                }
                Service::Answers(zone) => format!(r#"{{"status":"success","timezone":"{zone}"}}"#),
                Service::Garbage => "<html><body>Too many requests</body></html>".into(),
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, asked)
}

/// A device that asks `service` and whose NMEA 2000 comes from `replay` (none: no bus).
fn device(service: Option<SocketAddr>, replay: Option<&str>) -> Device {
    let mut config = String::from("[timezone]\ncheck_secs = 1\ngeolocation_timeout_secs = 1\n");
    if let Some(addr) = service {
        config.push_str(&format!("geolocation_url = \"http://{addr}/json\"\n"));
    }
    match replay {
        Some(name) => config.push_str(&format!(
            "[n2k]\nreplay = \"{}/../tests/fixture/n2k/{name}\"\n",
            env!("CARGO_MANIFEST_DIR")
        )),
        None => config.push_str("[n2k]\ninterface = \"\"\n"),
    }
    Device::new(&config)
}

fn zone(d: &Daemon) -> Value {
    assert_ok(&get(d, "/api/timezone"))
}

fn wait_for_source(d: &Daemon, source: &str) -> Value {
    let mut last = Value::Null;
    eventually(
        &format!("the source never became {source}"),
        Duration::from_secs(20),
        || {
            last = zone(d);
            last["source"] == source
        },
    );
    last
}

fn wait_for_log(d: &Daemon, text: &str) {
    eventually(
        &format!("the log never said `{text}`: {}", d.log.lock().unwrap()),
        Duration::from_secs(20),
        || d.log.lock().unwrap().contains(text),
    );
}

/// The offset in the answer agrees with its seconds and with the zone now.
fn assert_offset(z: &Value) {
    let secs = z["offset_seconds"].as_i64().unwrap();
    let sign = if secs < 0 { '-' } else { '+' };
    let text = format!("{sign}{:02}:{:02}", secs.abs() / 3600, secs.abs() / 60 % 60);
    assert_eq!(z["offset"], text.as_str(), "{z}");
}

#[test]
fn without_a_fix_the_geolocation_service_decides() {
    let (service, asked) = geolocation_service(Service::Answers("Europe/Berlin"));
    let dev = device(Some(service), None);
    // Not this host's zone: the answer, not the system, must be what the device shows.
    let d = dev.launch(&[], &[("TZ", "America/St_Johns")]);
    let z = wait_for_source(&d, "internet");
    assert_eq!(z["zone"], "Europe/Berlin");
    assert!(
        z["offset_seconds"] == 3600 || z["offset_seconds"] == 7200,
        "{z}"
    );
    assert_offset(&z);
    assert_eq!(z["override"], Value::Null);
    assert_eq!(z["position"], Value::Null);
    assert!(z["decided_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "asked once an hour, not every check"
    );
    // The appliance's own local times follow the decision.
    let cookie = create_owner(&dev, &d);
    let log = request(
        d.addr,
        "GET",
        "/api/boatlog?limit=1",
        &[("Cookie", cookie.as_str())],
        b"",
    );
    assert_eq!(assert_ok(&log)["time_zone"], "Europe/Berlin");
    // Kept in the state folder.
    let kept: Value =
        serde_json::from_slice(&std::fs::read(dev.state().join("timezone.json")).unwrap()).unwrap();
    assert_eq!(kept["automatic"]["zone"], "Europe/Berlin");
    assert_eq!(kept["automatic"]["source"], "internet");
}

#[test]
fn a_service_that_never_answers_leaves_utc_after_its_time_limit() {
    let (service, asked) = geolocation_service(Service::NeverAnswers);
    let dev = device(Some(service), None);
    let d = dev.start();
    wait_for_log(&d, "the geolocation service did not answer within 1 s");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let z = zone(&d);
    assert_eq!(z["source"], "default", "{z}");
    assert_eq!(z["zone"], "UTC");
    assert_eq!(z["offset"], "+00:00");
    assert_eq!(z["offset_seconds"], 0);
    assert!(
        d.log
            .lock()
            .unwrap()
            .contains("the zone stays UTC (nothing decided yet)")
    );
}

#[test]
fn a_service_that_answers_garbage_leaves_utc_and_says_why() {
    let (service, _) = geolocation_service(Service::Garbage);
    let dev = device(Some(service), None);
    let d = dev.start();
    wait_for_log(&d, "the geolocation service's answer is not JSON");
    assert!(d.log.lock().unwrap().contains("Too many requests"));
    let z = zone(&d);
    assert_eq!(
        (z["source"].as_str(), z["zone"].as_str()),
        (Some("default"), Some("UTC"))
    );
    // A service naming a zone no tz database has is refused the same way.
    let (service, _) = geolocation_service(Service::Answers("Atlantis/Poseidonia"));
    let dev = device(Some(service), None);
    let d = dev.start();
    wait_for_log(&d, "answered `Atlantis/Poseidonia`, which is not a zone");
    assert_eq!(zone(&d)["source"], "default");
}

#[test]
fn a_gps_fix_wins_over_the_internet_and_the_override_wins_over_both() {
    let (service, _) = geolocation_service(Service::Answers("Europe/Berlin"));
    // helm.log: a boat off Boston, a fix a second.
    let dev = device(Some(service), Some("helm.log"));
    let d = dev.start();
    let z = wait_for_source(&d, "gps");
    assert_eq!(z["zone"], "America/New_York", "{z}");
    // The daemon's own executable looked it up, in a helper process.
    let log = d.log.lock().unwrap().clone();
    assert!(!log.contains("lookup helper failed"), "{log}");
    let near = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-7;
    assert!(near(&z["position"]["latitude"], 42.478308), "{z}");
    assert!(near(&z["position"]["longitude"], -71.4232898), "{z}");
    assert_eq!(z["pending"], Value::Null);
    assert_offset(&z);
    let cookie = create_owner(&dev, &d);

    // The owner's zone wins at once, and holds while the fixes keep coming.
    let set = |body: Value| write(&d, "PUT", "/api/timezone", Some(&cookie), &body);
    let z = assert_ok(&set(json!({"zone": "Pacific/Auckland"})));
    assert_eq!(z["source"], "manual");
    assert_eq!(z["zone"], "Pacific/Auckland");
    assert_eq!(z["override"], "Pacific/Auckland");
    assert_eq!(z["position"], Value::Null);
    std::thread::sleep(Duration::from_secs(3));
    let z = zone(&d);
    assert_eq!(
        (z["source"].as_str(), z["zone"].as_str()),
        (Some("manual"), Some("Pacific/Auckland"))
    );
    assert!(
        z["offset_seconds"] == 12 * 3600 || z["offset_seconds"] == 13 * 3600,
        "{z}"
    );
    let log = request(
        d.addr,
        "GET",
        "/api/boatlog?limit=1",
        &[("Cookie", cookie.as_str())],
        b"",
    );
    assert_eq!(assert_ok(&log)["time_zone"], "Pacific/Auckland");

    // Kept across a restart.
    let decided_at = z["decided_at"].clone();
    drop(d);
    let d = dev.start();
    let z = zone(&d);
    assert_eq!(z["source"], "manual");
    assert_eq!(z["zone"], "Pacific/Auckland");
    assert_eq!(z["decided_at"], decided_at);

    // Cleared, the GPS decides again, at once: it was kept too.
    let cookie = sign_in(&d);
    let set = |body: Value| write(&d, "PUT", "/api/timezone", Some(&cookie), &body);
    let z = assert_ok(&set(json!({"zone": null})));
    assert_eq!(z["source"], "gps", "{z}");
    assert_eq!(z["zone"], "America/New_York");
    assert_eq!(z["override"], Value::Null);
    // A name in another case is the tz database's name.
    let z = assert_ok(&set(json!({"zone": "europe/lisbon"})));
    assert_eq!(z["zone"], "Europe/Lisbon");
}

#[test]
fn a_bad_override_is_refused_and_changes_nothing() {
    let dev = device(None, None);
    let d = dev.start();
    let before = zone(&d);
    assert_eq!(before["source"], "default");
    // Reading is open like the other live data; changing is the owner's.
    let r = write(
        &d,
        "PUT",
        "/api/timezone",
        None,
        &json!({"zone": "Europe/Berlin"}),
    );
    assert_error(&r, 401, "unauthorized");
    let cookie = create_owner(&dev, &d);
    let put = |body: &[u8]| {
        let origin = format!("http://{}", d.addr);
        request(
            d.addr,
            "PUT",
            "/api/timezone",
            &[
                ("Content-Type", "application/json"),
                ("Origin", origin.as_str()),
                ("Cookie", cookie.as_str()),
            ],
            body,
        )
    };
    for (body, code) in [
        (&br#"{"zone": "Mars/Olympus_Mons"}"#[..], "bad_request"),
        (br#"{"zone": "../../etc/passwd"}"#, "bad_request"),
        (br#"{"zone": ""}"#, "bad_request"),
        (br#"{"zone": 2}"#, "bad_request"),
        (br#"{"zone": ["Europe/Berlin"]}"#, "bad_request"),
        (br#"{}"#, "bad_json"),
        (br#"{"zone": "Europe/Berlin", "also": 1}"#, "bad_json"),
        (br#"{"zone": "Europe/Berl"#, "bad_json"),
        (b"Europe/Berlin", "bad_json"),
    ] {
        let r = put(body);
        assert_error(&r, 400, code);
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        if code == "bad_request" {
            assert!(message.contains("Nothing was changed"), "{message}");
        }
    }
    let r = put(br#"{"zone": "Mars/Olympus_Mons"}"#);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`Mars/Olympus_Mons` is not a time zone this device knows"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let after = zone(&d);
    assert_eq!(after["source"], "default");
    assert_eq!(after["decided_at"], before["decided_at"]);
    assert!(!dev.state().join("timezone.json").exists());
}
