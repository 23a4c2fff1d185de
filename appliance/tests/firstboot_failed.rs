//! A first boot that could not finish, as the owner meets it: the failure page answers
//! every request with what is wrong and what to do, and stops on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::request;

#[test]
fn the_failure_page_says_what_is_wrong_and_what_to_do_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("firstboot-failed.json");
    std::fs::write(
        &report,
        r#"{"step":"grow","error":"the card holds 4.0 GB (4000000000 bytes) but d3kOS needs 6.4 GB (6442450944 bytes): use a card of 8 GB or more","advice":"Nothing on this card was changed. Write d3kOS with Raspberry Pi Imager onto a card of the size named above or larger, and start the boat computer from that card."}"#,
    )
    .unwrap();
    let mut child = page(&report).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("first boot failed (grow)"), "{line}");
    let port: u16 = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line}"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    for path in ["/", "/settings.html", "/dashboard.html"] {
        let page = request(addr, "GET", path, &[], b"");
        assert_eq!(page.status, 503, "{path}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let html = String::from_utf8(page.body).unwrap();
        assert!(
            html.contains("d3kOS could not finish its first start"),
            "{html}"
        );
        assert!(html.contains("use a card of 8 GB or more"), "{html}");
        assert!(html.contains("Nothing on this card was changed."), "{html}");
    }
    let health = request(addr, "GET", "/api/health", &[], b"");
    assert_eq!(health.status, 503);
    let v = health.json();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "first_boot_failed", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use a card of 8 GB"),
        "{v}"
    );

    sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn without_a_report_there_is_nothing_to_show_and_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = page(&dir.path().join("none.json")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none.json"), "{err}");
}

/// `d3kosd firstboot failed-page` on a free port, showing `report`.
fn page(report: &std::path::Path) -> Command {
    let mut c = Command::new(common::bin());
    c.args([
        "firstboot",
        "failed-page",
        "--listen",
        "127.0.0.1:0",
        "--report",
    ])
    .arg(report);
    c
}

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}
