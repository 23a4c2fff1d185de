//! A real d3kosd on a loopback port with its own state folder, and a plain HTTP/1.1 client.
#![allow(dead_code)]

pub mod archive;
pub mod qr;
pub mod slots;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_d3kosd");

/// The d3kosd under test: this build's, or the one `D3KOS_TEST_BIN` names (the abuse
/// suite runs the release build, and an older build to compare with).
pub fn bin() -> String {
    std::env::var("D3KOS_TEST_BIN").unwrap_or_else(|_| BIN.to_owned())
}

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Device {
    pub dir: tempfile::TempDir,
}

impl Device {
    pub fn new(extra_config: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("version.txt"), "d3kOS 7.3.0.1\n").unwrap();
        std::fs::write(
            etc.join("build-manifest.json"),
            r#"{"name":"d3kOS","version":"7.3.0.1","build_date":"2026-11-29T00:00:00Z","board":"rpi4"}"#,
        )
        .unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nbackup_dir = \"{}\"\nexport.dir = \"{}\"\netc_dir = \"{}\"\nsetup_code_file = \"{}\"\nunits = [\"d3kosd.service\"]\n{extra_config}",
            dir.path().join("state").display(),
            dir.path().join("backups").display(),
            dir.path().join("exports").display(),
            etc.display(),
            dir.path()
                .join("config-partition/d3kos-setup-code.txt")
                .display(),
        );
        std::fs::write(dir.path().join("appliance.toml"), config).unwrap();
        Device { dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    pub fn exports(&self) -> PathBuf {
        self.dir.path().join("exports")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("appliance.toml")
    }

    pub fn setup_code(&self) -> String {
        let text = std::fs::read_to_string(
            self.dir
                .path()
                .join("config-partition/d3kos-setup-code.txt"),
        )
        .unwrap();
        text.split_whitespace()
            .find(|w| w.len() == 9 && w.as_bytes()[4] == b'-')
            .unwrap()
            .to_owned()
    }

    pub fn start(&self) -> Daemon {
        self.launch(&[], &[])
    }

    /// Starts the daemon ([`bin`]) under `wrap` (a command that execs the rest, like
    /// `prlimit --nofile=1024`) with `env` added.
    pub fn launch(&self, wrap: &[&str], env: &[(&str, &str)]) -> Daemon {
        let bin = bin();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let mut child = cmd
            .arg("--config")
            .arg(self.dir.path().join("appliance.toml"))
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
                }
                log2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("d3kosd did not start: {}", log.lock().unwrap()));
        Daemon { child, addr, log }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Waits until `done` holds, for at most `within`; `what` says in the failure what never
/// happened.
pub fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.2 and up are
/// clients on the boat's network to the daemon; 127.0.0.1 is the helm screen).
/// A connection not made within five seconds is an error (a server whose backlog is full
/// never answers the handshake).
pub fn connect_from(from: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let within = Duration::from_secs(5);
    let Some(ip) = from else {
        return TcpStream::connect_timeout(&addr, within);
    };
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(ip, 0).into())?;
    s.connect_timeout(&addr.into(), within)?;
    Ok(s.into())
}

/// A client on the boat's network, not the helm screen.
pub fn stranger(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n.max(2)])
}

/// A plain HTTP/1.1 exchange: what a browser or curl would send, nothing hidden.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    request_from(None, addr, method, path, headers, body)
}

/// [`request`] from the loopback address `from`.
pub fn request_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = connect_from(from, addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    // The address the client dialled, unless the test names another host.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let r = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if r.header("transfer-encoding") == Some("chunked") {
        body = dechunk(&body);
    }
    Reply { body, ..r }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

pub fn get(d: &Daemon, path: &str) -> Reply {
    request(d.addr, "GET", path, &[], b"")
}

/// A write as the device's own page sends it.
pub fn write(d: &Daemon, method: &str, path: &str, cookie: Option<&str>, body: &Value) -> Reply {
    write_from(None, d, method, path, cookie, body)
}

/// [`write`] from a client at `from`.
pub fn write_from(
    from: Option<std::net::IpAddr>,
    d: &Daemon,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &Value,
) -> Reply {
    let origin = format!("http://{}", d.addr);
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Origin", origin.as_str()),
    ];
    let c;
    if let Some(cookie) = cookie {
        c = cookie.to_owned();
        h.push(("Cookie", &c));
    }
    request_from(from, d.addr, method, path, &h, body.to_string().as_bytes())
}

pub fn assert_ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["success"], true);
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(v["version"].is_string());
    v["data"].clone()
}

pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], code);
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
}

/// Creates the owner and returns the session cookie.
pub fn create_owner(dev: &Device, d: &Daemon) -> String {
    let r = write(
        d,
        "POST",
        "/api/setup/owner",
        None,
        &json!({"setup_code": dev.setup_code(), "username": "skipper", "password": "harbour lights"}),
    );
    assert_eq!(assert_ok(&r)["username"], "skipper");
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// Signs the owner [`create_owner`] made in again (sessions end when the daemon stops) and
/// returns the session cookie.
pub fn sign_in(d: &Daemon) -> String {
    let r = write(
        d,
        "POST",
        "/api/session",
        None,
        &json!({"username": "skipper", "password": "harbour lights"}),
    );
    assert_ok(&r);
    r.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
