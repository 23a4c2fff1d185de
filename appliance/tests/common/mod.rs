//! A real d3kosd on a loopback port with its own state folder, and a plain HTTP/1.1 client.
#![allow(dead_code)]

pub mod archive;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_d3kosd");

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
        std::fs::write(etc.join("version.txt"), "d3kOS 0.1.0\n").unwrap();
        std::fs::write(
            etc.join("build-manifest.json"),
            r#"{"name":"d3kOS","version":"0.1.0","build_date":"2026-11-29T00:00:00Z","board":"rpi4"}"#,
        )
        .unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nbackup_dir = \"{}\"\netc_dir = \"{}\"\nsetup_code_file = \"{}\"\nunits = [\"d3kosd.service\"]\n{extra_config}",
            dir.path().join("state").display(),
            dir.path().join("backups").display(),
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
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(self.dir.path().join("appliance.toml"))
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

/// A plain HTTP/1.1 exchange: what a browser or curl would send, nothing hidden.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
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
