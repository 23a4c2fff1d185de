//! The setup Wi-Fi in the boot test: mac80211_hwsim's two virtual radios in the guest, the
//! appliance's access point on the first, and on the second a phone (its own network
//! namespace) that joins with the passphrase read from the config partition
//! (tests/fixture/setup-wifi/probe.sh).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::boot::{Guest, http};
use crate::repo;
use crate::table::Partition;

/// Loads the virtual radios and starts the phone.
pub const CMDLINE: &str =
    " modules_load=mac80211_hwsim systemd.wants=d3kos-test-setup-wifi.service";

const SAYS: &str = "setup-wifi probe: ";

/// Puts the phone's script and unit on system slot `system`.
pub fn plant(disk: &Path, system: &Partition, work: &Path) {
    let fixture = repo().join("tests/fixture/setup-wifi");
    let cmds = work.join("debugfs-setup-wifi.cmds");
    std::fs::write(
        &cmds,
        format!(
            "write {} /etc/d3kos/test-setup-wifi.sh\n\
             write {} /etc/systemd/system/d3kos-test-setup-wifi.service\n",
            fixture.join("probe.sh").display(),
            fixture.join("d3kos-test-setup-wifi.service").display(),
        ),
    )
    .unwrap();
    crate::debugfs_write(disk, system, &cmds);
}

/// The phone's findings, once it is done: `what: finding` lines.
fn findings(guest: &Guest) -> Vec<String> {
    let t = Instant::now();
    loop {
        let console = guest.console();
        let lines: Vec<String> = console
            .lines()
            .filter_map(|l| l.split_once(SAYS).map(|(_, f)| f.trim().to_owned()))
            .collect();
        if lines.iter().any(|l| l == "done") {
            eprintln!(
                "setup Wi-Fi, as the phone saw it:\n  {}",
                lines.join("\n  ")
            );
            return lines;
        }
        assert!(
            t.elapsed() < Duration::from_secs(420),
            "the phone did not finish: {lines:#?}\n{}",
            guest.console_tail()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn finding<'a>(lines: &'a [String], what: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| {
            let rest = l.strip_prefix(what)?;
            rest.strip_prefix(": ").or_else(|| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("the phone said nothing about `{what}`: {lines:#?}"))
}

/// A card nobody set up: the access point runs with the name and passphrase the card
/// carries; a wrong passphrase does not join; the right one does and the phone reaches
/// http://d3kos.local and its owner setup page, and a phone's online check is sent there.
/// The owner (signed in with `jar`) reads the same name and passphrase from the API.
pub fn access_point_inside(guest: &Guest, jar: &Path) {
    let lines = findings(guest);
    let ap = finding(&lines, "access point");
    assert!(ap.contains("type AP"), "{ap}");
    let card = finding(&lines, "card");
    let ssid = card
        .strip_prefix("network ")
        .and_then(|r| r.split(',').next())
        .unwrap();
    assert!(
        ssid.starts_with("d3kOS-") && ssid.len() == 10,
        "the card names {ssid}"
    );
    assert!(ap.contains(&format!("ssid {ssid}")), "the air says {ap}");
    assert!(card.ends_with("passphrase of 19 characters"), "{card}");
    assert_eq!(finding(&lines, "access point address"), "10.42.0.1/24");
    assert!(
        guest
            .console()
            .contains(&format!("setup Wi-Fi {ssid} is on at http://10.42.0.1")),
        "the boot's screen does not show the setup Wi-Fi: {}",
        guest.console_tail()
    );
    let (status, body) = http(guest.port, "GET", "/api/setup/wifi", None, Some(jar)).unwrap();
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["data"]["ssid"], ssid, "{api}");
    assert_eq!(api["data"]["access_point"], "active", "{api}");
    assert_eq!(
        api["data"]["passphrase"].as_str().unwrap().len(),
        19,
        "{api}"
    );
    assert_eq!(finding(&lines, "wrong passphrase"), "not joined");
    assert_eq!(finding(&lines, "right passphrase"), "joined");
    let address = finding(&lines, "dhcp: address");
    assert!(
        address.starts_with("10.42.0.") && address.ends_with("/24"),
        "{address}"
    );
    assert_eq!(finding(&lines, "dhcp: dns"), "10.42.0.1");
    assert_eq!(finding(&lines, "d3kos.local resolves to"), "10.42.0.1");
    let page = finding(&lines, "GET http://d3kos.local/settings.html");
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 "),
        "{page}"
    );
    assert!(page.ends_with("setup form yes"), "{page}");
    let portal = finding(
        &lines,
        "GET http://connectivitycheck.gstatic.com/generate_204",
    );
    assert!(
        portal.starts_with("HTTP/1.") && portal.contains(" 302 "),
        "{portal}"
    );
    assert!(
        portal.contains("location http://d3kos.local/settings.html"),
        "{portal}"
    );
}

/// A card whose Imager customisation set up the boat's Wi-Fi: the radio stays the boat's
/// client and no access point opens.
pub fn client_kept_inside(guest: &Guest) {
    let lines = findings(guest);
    let said = finding(&lines, "access point");
    assert_eq!(said, "off; boat wifi client: active");
    let console = guest.console();
    assert!(
        console.contains("setup Wi-Fi is off: the boat's own Wi-Fi is set up"),
        "the boot does not say why: {}",
        guest.console_tail()
    );
}
