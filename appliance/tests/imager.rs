//! Raspberry Pi Imager's customisation through the real `d3kosd firstboot imager`, on a
//! scratch system root with the real `useradd` and `usermod`: what Imager 2.x writes is
//! applied, the secrets leave the config partition, a second run (the next boot, or a
//! boot cut short) changes nothing, and bad files are reported without stopping the rest.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Device, assert_ok, get};

use serde_json::Value;

const HASH: &str = "$6$d3kosfixture$Qb1yvW9nN0iKfJ5dA3uY7cZ2rT8sL6mP4xE1oH9gV0jB5nC7aD2fK8lM3qS6tU1wX4yZ9eR0iO7pA2sD5fG8h";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv5sFqU3mJw4e0b5m9Cq1X2l8W6eYc1pQnZx0aH1bKk skipper@laptop";
const PSK: &str = "0f6e3c1b5d2a4e8f9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f";

struct Card {
    _dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    root: PathBuf,
}

/// A config partition with Imager's three files, an empty data partition, and a system
/// root with the accounts a Debian base has.
fn card(user_data: &str, network_config: &str, instance: &str) -> Card {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let data = dir.path().join("data");
    let root = dir.path().join("root");
    for d in [&config, &data, &root.join("etc"), &root.join("home")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let etc = root.join("etc");
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\nd3kos:x:999:999::/var/lib/d3kos:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("shadow"),
        "root:*:20000:0:99999:7:::\nd3kos:!*:20000::::::\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nsudo:x:27:\nd3kos:x:999:\n").unwrap();
    std::fs::write(etc.join("gshadow"), "root:*::\nsudo:*::\nd3kos:!::\n").unwrap();
    std::fs::write(
        etc.join("hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\td3kos\n",
    )
    .unwrap();
    std::fs::write(config.join("user-data"), user_data).unwrap();
    std::fs::write(config.join("network-config"), network_config).unwrap();
    std::fs::write(
        config.join("meta-data"),
        format!("instance-id: {instance}\n"),
    )
    .unwrap();
    Card {
        _dir: dir,
        config,
        data,
        root,
    }
}

fn imager(c: &Card) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_d3kosd"))
        .args(["firstboot", "imager", "--config"])
        .arg(&c.config)
        .arg("--data")
        .arg(&c.data)
        .arg("--root")
        .arg(&c.root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn imager2_user_data() -> String {
    format!(
        "#cloud-config\nmanage_resolv_conf: false\n\nhostname: sailfish\nmanage_etc_hosts: true\n\
         packages:\n- avahi-daemon\n\ntimezone: Europe/Berlin\nkeyboard:\n  model: pc105\n  \
         layout: \"de\"\nuser:\n  name: skipper\n  shell: /bin/bash\n  lock_passwd: false\n  \
         passwd: \"{HASH}\"\n  ssh_authorized_keys:\n    - \"{KEY}\"\n  sudo: ALL=(ALL) NOPASSWD:ALL\n\n\
         ssh_pwauth: false\n\nruncmd:\n  - [ systemctl, enable, --now, ssh ]\n"
    )
}

fn imager2_network() -> String {
    format!(
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n  wifis:\n    wlan0:\n      \
         dhcp4: true\n      regulatory-domain: \"DE\"\n      access-points:\n        \"Marina Guest\":\n          \
         password: \"{PSK}\"\n      optional: true\n"
    )
}

fn lines_of(p: &Path, name: &str) -> usize {
    read(p)
        .lines()
        .filter(|l| l.starts_with(&format!("{name}:")))
        .count()
}

#[test]
fn what_imager_2_writes_is_applied_once_and_its_secrets_leave_the_card() {
    let c = card(&imager2_user_data(), &imager2_network(), "rpi-imager-1");
    let said = imager(&c);
    assert!(
        said.contains("imager: applied host name sailfish; user skipper"),
        "{said}"
    );
    let etc = c.root.join("etc");
    assert_eq!(read(&etc.join("hostname")), "sailfish\n");
    assert!(read(&etc.join("hosts")).contains("127.0.1.1\tsailfish\n"));
    let passwd = read(&etc.join("passwd"));
    let line = passwd.lines().find(|l| l.starts_with("skipper:")).unwrap();
    assert!(line.ends_with(":/home/skipper:/bin/bash"), "{line}");
    let shadow = read(&etc.join("shadow"));
    assert!(shadow.contains(&format!("skipper:{HASH}:")), "{shadow}");
    assert!(read(&etc.join("group")).contains("sudo:x:27:skipper"));
    let keys = c.root.join("home/skipper/.ssh/authorized_keys");
    assert_eq!(read(&keys), format!("{KEY}\n"));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&keys).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    let uid: u32 = line.split(':').nth(2).unwrap().parse().unwrap();
    assert_eq!(meta.uid(), uid, "the key file is the user's");
    assert!(read(&etc.join("sudoers.d/010_skipper-nopasswd")).contains("NOPASSWD:ALL"));
    assert!(
        read(&etc.join("ssh/sshd_config.d/10-imager.conf")).contains("PasswordAuthentication no")
    );
    let wpa = etc.join("wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(read(&wpa).contains(&format!("psk={PSK}")));
    assert!(read(&wpa).contains("country=DE"));
    assert_eq!(std::fs::metadata(&wpa).unwrap().mode() & 0o777, 0o600);
    assert!(read(&etc.join("default/keyboard")).contains("XKBLAYOUT=\"de\""));

    // The secrets are off the card; the rest is still there to read.
    let user_data = read(&c.config.join("user-data"));
    let network = read(&c.config.join("network-config"));
    // Overwritten where they lay: the files keep their sizes, the keys their empty values.
    let valued = |t: &str, key: &str| {
        t.lines().any(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|v| !v.trim().is_empty())
        })
    };
    assert!(
        !user_data.contains(HASH) && !valued(&user_data, "passwd:"),
        "{user_data}"
    );
    assert!(
        !network.contains(PSK) && !valued(&network, "password:"),
        "{network}"
    );
    assert_eq!(user_data.len(), imager2_user_data().len());
    assert_eq!(network.len(), imager2_network().len());
    assert!(user_data.starts_with("#cloud-config\n") && user_data.contains("hostname: sailfish"));

    // The public summary has no secret; the record is root's alone.
    let summary: Value =
        serde_json::from_str(&read(&c.data.join("d3kos/imager/settings.json"))).unwrap();
    assert_eq!(summary["hostname"], "sailfish");
    assert_eq!(summary["user"], "skipper");
    assert_eq!(
        summary["wifi_networks"],
        serde_json::json!(["Marina Guest"])
    );
    assert_eq!(summary["problems"], serde_json::json!([]));
    let ignored = summary["ignored"].to_string();
    assert!(
        ignored.contains("packages") && ignored.contains("runcmd"),
        "{ignored}"
    );
    assert!(!summary.to_string().contains(HASH) && !summary.to_string().contains(PSK));
    let record = c.data.join("d3kos/imager/record.json");
    assert_eq!(std::fs::metadata(&record).unwrap().mode() & 0o777, 0o600);

    // The next boot, and a boot of the other slot after a cut: the same record, applied
    // again, makes nothing twice.
    imager(&c);
    assert_eq!(lines_of(&etc.join("passwd"), "skipper"), 1);
    assert_eq!(lines_of(&etc.join("shadow"), "skipper"), 1);
    assert_eq!(read(&keys), format!("{KEY}\n"));
    assert_eq!(
        read(&c.config.join("user-data")),
        user_data,
        "nothing left to wipe"
    );
}

#[test]
fn a_cut_before_the_wipe_is_finished_by_the_next_boot_and_a_new_customisation_replaces_it() {
    let c = card(&imager2_user_data(), &imager2_network(), "rpi-imager-1");
    imager(&c);
    // As if the boot was cut after the record and before the wipe: the secrets are back.
    std::fs::write(c.config.join("user-data"), imager2_user_data()).unwrap();
    imager(&c);
    assert!(!read(&c.config.join("user-data")).contains(HASH));
    assert_eq!(lines_of(&c.root.join("etc/passwd"), "skipper"), 1);

    // The card written again with Imager: a new instance, another host name, no password.
    let again = imager2_user_data().replace("sailfish", "seabird").replace(
        &format!("  lock_passwd: false\n  passwd: \"{HASH}\"\n"),
        "  lock_passwd: true\n",
    );
    std::fs::write(c.config.join("user-data"), again).unwrap();
    std::fs::write(c.config.join("meta-data"), "instance-id: rpi-imager-2\n").unwrap();
    imager(&c);
    assert_eq!(read(&c.root.join("etc/hostname")), "seabird\n");
    let shadow = read(&c.root.join("etc/shadow"));
    assert!(
        shadow.contains("skipper:!:"),
        "the old password is gone: {shadow}"
    );
}

#[test]
fn bad_files_are_reported_and_the_rest_applied() {
    let user_data =
        "#cloud-config\nhostname: bad_name!\nuser:\n  name: skipper\n  lock_passwd: false\n";
    let network = "network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        \
         \"123456789012345678901234567890123\":\n          password: \"long enough passphrase\"\n        \
         \"Short\":\n          password: \"seven77\"\n        \"Harbour\":\n          \
         password: \"eight888\"\n";
    let c = card(user_data, network, "rpi-imager-3");
    let said = imager(&c);
    assert!(
        said.contains("imager: PROBLEM: user-data: hostname: `bad_name!`"),
        "{said}"
    );
    assert!(
        said.contains("neither a password hash nor an SSH key"),
        "{said}"
    );
    assert!(
        said.contains("an SSID is 1 to 32 bytes, this one is 33"),
        "{said}"
    );
    assert!(said.contains("this one has 7"), "{said}");
    // The good network is applied; no user, no host name change.
    let wpa = read(&c.root.join("etc/wpa_supplicant/wpa_supplicant-wlan0.conf"));
    assert!(
        wpa.contains("psk=\"eight888\"") && wpa.matches("network={").count() == 1,
        "{wpa}"
    );
    assert!(!c.root.join("etc/hostname").exists());
    assert_eq!(lines_of(&c.root.join("etc/passwd"), "skipper"), 0);
    let summary: Value =
        serde_json::from_str(&read(&c.data.join("d3kos/imager/settings.json"))).unwrap();
    assert_eq!(
        summary["problems"].as_array().unwrap().len(),
        4,
        "{summary}"
    );

    // The appliance reports them in /api/health, where the helm screen and the owner see them.
    let dev = Device::new(&format!("data_dir = \"{}\"\n", c.data.display()));
    let d = dev.start();
    let health = assert_ok(&get(&d, "/api/health"));
    let problems = health["problems"].to_string();
    assert!(
        problems
            .contains("Raspberry Pi Imager settings: network-config: wifis.wlan0.access-points"),
        "{problems}"
    );
    drop(d);

    // user-data that is not YAML at all changes nothing, and says so.
    let c = card("#cloud-config\nhostname: [unclosed\n", "", "rpi-imager-4");
    let said = imager(&c);
    assert!(
        said.contains("imager: PROBLEM: user-data: not YAML"),
        "{said}"
    );
    assert!(!c.root.join("etc/hostname").exists());
    assert_eq!(
        read(&c.config.join("user-data")),
        "#cloud-config\nhostname: [unclosed\n"
    );
}

#[test]
fn imagers_time_zone_is_the_boats_until_something_decides() {
    let c = card(&imager2_user_data(), &imager2_network(), "rpi-imager-5");
    imager(&c);
    let dev = Device::new(&format!(
        "data_dir = \"{}\"\n[n2k]\ninterface = \"\"\n",
        c.data.display()
    ));
    let d = dev.start();
    let z = assert_ok(&get(&d, "/api/timezone"));
    assert_eq!(
        (z["zone"].as_str(), z["source"].as_str()),
        (Some("Europe/Berlin"), Some("imager")),
        "{z}"
    );
    assert!(
        z["offset"] == "+01:00" || z["offset"] == "+02:00",
        "Berlin's offset: {z}"
    );
}
