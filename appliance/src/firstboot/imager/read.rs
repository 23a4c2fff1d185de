//! Reading what Raspberry Pi Imager wrote to the config partition: its cloud-init
//! `user-data` (`#cloud-config`), netplan v2 `network-config` and `meta-data`, into the
//! subset d3kOS applies. Every key outside that subset is listed, never run; a bad value
//! is a problem for its own setting and the rest still applies.

use serde::{Deserialize, Serialize};
use yaml_rust2::{Yaml, YamlLoader};

/// What the owner asked for in Imager, as d3kOS applies it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customisation {
    /// `meta-data`'s `instance-id`: a new one is a new customisation.
    pub instance_id: Option<String>,
    pub hostname: Option<String>,
    pub timezone: Option<String>,
    pub keyboard: Option<Keyboard>,
    pub user: Option<User>,
    /// Whether sshd accepts passwords (`ssh_pwauth`); `None`: as the image ships.
    pub ssh_pwauth: Option<bool>,
    pub wifi: Option<Wifi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyboard {
    pub model: String,
    pub layout: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// A crypt(3) hash (yescrypt `$y$`, sha512crypt `$6$`, …); `None`: no password login.
    pub password_hash: Option<String>,
    pub ssh_keys: Vec<String>,
    /// `sudo: ALL=(ALL) NOPASSWD:ALL`: sudo without a password. Either way the user is in
    /// the `sudo` group.
    pub passwordless_sudo: bool,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wifi {
    /// ISO 3166 country whose radio rules apply (`regulatory-domain`).
    pub country: Option<String>,
    pub networks: Vec<Network>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// The SSID's bytes (1 to 32).
    pub ssid: Vec<u8>,
    pub secret: Secret,
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Secret {
    Open,
    /// 8 to 63 printable ASCII characters.
    Passphrase(String),
    /// The 256-bit key Imager derives from the passphrase, as 64 hex digits.
    Psk(String),
}

/// What was not applied, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Keys read but not applied: `user-data: runcmd (d3kOS runs no commands from the card)`.
    pub ignored: Vec<String>,
    /// Values refused: `network-config: wifis.wlan0.access-points: "x…": an SSID is at most
    /// 32 bytes; this network is left out`.
    pub problems: Vec<String>,
}

/// The files, as read from the partition; `None` where a file is absent.
#[derive(Debug, Default)]
pub struct Files {
    pub user_data: Option<String>,
    pub network_config: Option<String>,
    pub meta_data: Option<String>,
}

/// Reads all three files into one customisation and what was left out.
pub fn read(files: &Files) -> (Customisation, Report) {
    let mut c = Customisation::default();
    let mut r = Report::default();
    if let Some(text) = &files.meta_data {
        meta_data(text, &mut c, &mut r);
    }
    if let Some(text) = &files.user_data {
        user_data(text, &mut c, &mut r);
    }
    if let Some(text) = &files.network_config {
        network_config(text, &mut c, &mut r);
    }
    (c, r)
}

/// The one YAML document of `file`, or what is wrong with it.
fn document(file: &str, text: &str, r: &mut Report) -> Option<Yaml> {
    match YamlLoader::load_from_str(text) {
        Ok(mut docs) if docs.len() <= 1 => match docs.pop() {
            Some(Yaml::Hash(h)) => Some(Yaml::Hash(h)),
            None | Some(Yaml::Null) => None,
            Some(_) => {
                r.problems.push(format!(
                    "{file}: not a YAML mapping of settings; nothing in it was applied"
                ));
                None
            }
        },
        Ok(_) => {
            r.problems.push(format!(
                "{file}: more than one YAML document; nothing in it was applied"
            ));
            None
        }
        Err(e) => {
            r.problems
                .push(format!("{file}: not YAML ({e}); nothing in it was applied"));
            None
        }
    }
}

fn meta_data(text: &str, c: &mut Customisation, r: &mut Report) {
    let Some(doc) = document("meta-data", text, r) else {
        return;
    };
    for (k, v) in entries(&doc) {
        match k.as_str() {
            "instance-id" => match scalar(v) {
                Some(id) if !id.is_empty() => c.instance_id = Some(id),
                _ => r.problems.push("meta-data: instance-id: not a text".into()),
            },
            other => r.ignored.push(format!("meta-data: {other}")),
        }
    }
}

fn user_data(text: &str, c: &mut Customisation, r: &mut Report) {
    if !text.starts_with("#cloud-config") {
        r.problems.push(
            "user-data: does not begin with `#cloud-config`, so it is not Imager's settings; \
             nothing in it was applied"
                .into(),
        );
        return;
    }
    let Some(doc) = document("user-data", text, r) else {
        return;
    };
    for (k, v) in entries(&doc) {
        let why_not = match k.as_str() {
            "hostname" => {
                match scalar(v).filter(|h| valid_hostname(h)) {
                    Some(h) => c.hostname = Some(h.to_ascii_lowercase()),
                    None => r.problems.push(format!(
                        "user-data: hostname: {} is not a host name (1 to 63 letters, digits \
                         and inner hyphens); the device keeps its name",
                        show(v)
                    )),
                }
                continue;
            }
            "timezone" => {
                match scalar(v) {
                    Some(z) if jiff::tz::TimeZone::get(&z).is_ok() => c.timezone = Some(z),
                    _ => r.problems.push(format!(
                        "user-data: timezone: {} is not a zone this system knows",
                        show(v)
                    )),
                }
                continue;
            }
            "keyboard" => {
                keyboard(v, c, r);
                continue;
            }
            "user" => {
                c.user = user("user", v, r);
                continue;
            }
            "users" => {
                users(v, c, r);
                continue;
            }
            "ssh_pwauth" => {
                match v {
                    Yaml::Boolean(b) => c.ssh_pwauth = Some(*b),
                    _ => r.problems.push(format!(
                        "user-data: ssh_pwauth: {} is not true or false",
                        show(v)
                    )),
                }
                continue;
            }
            // What d3kOS does anyway: /etc/hosts follows the host name, and the
            // resolver is systemd-networkd's.
            "manage_etc_hosts" | "manage_resolv_conf" => continue,
            "packages" | "apt" | "package_update" | "package_upgrade" => {
                "d3kOS installs no packages at first boot; updates come as signed system images"
            }
            "runcmd" | "bootcmd" | "write_files" => "d3kOS runs no commands or files from the card",
            "rpi" => "the interfaces are set by the image (the CAN HAT's overlay)",
            "chpasswd" | "lock_passwd" => "only the user's own settings are read",
            _ => "not a setting d3kOS applies",
        };
        r.ignored.push(format!("user-data: {k} ({why_not})"));
    }
}

fn keyboard(v: &Yaml, c: &mut Customisation, r: &mut Report) {
    let layout = scalar(&v["layout"]);
    let model = scalar(&v["model"]).unwrap_or_else(|| "pc105".into());
    let fine = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | ','))
    };
    match layout {
        Some(layout) if fine(&layout) && fine(&model) => {
            c.keyboard = Some(Keyboard { model, layout });
        }
        _ => r.problems.push(format!(
            "user-data: keyboard: {} is not an XKB model and layout; the keyboard stays US",
            show(v)
        )),
    }
}

/// Imager 1.8's and 2.0.0–2.0.10's `users:` list: its first user entry (`default`, the
/// distribution's own user, has none here).
fn users(v: &Yaml, c: &mut Customisation, r: &mut Report) {
    let Yaml::Array(list) = v else {
        r.problems
            .push("user-data: users: not a list; no user was made".into());
        return;
    };
    let mut made = false;
    for entry in list {
        match entry {
            Yaml::String(s) if s == "default" => {}
            Yaml::Hash(_) if !made => {
                c.user = user("users", entry, r);
                made = true;
            }
            Yaml::Hash(_) => r.problems.push(format!(
                "user-data: users: {}: only one user is made; this one was not",
                show(&entry["name"])
            )),
            other => r
                .problems
                .push(format!("user-data: users: {} is not a user", show(other))),
        }
    }
}

fn user(key: &str, v: &Yaml, r: &mut Report) -> Option<User> {
    let Some(name) = scalar(&v["name"]).filter(|n| valid_user_name(n)) else {
        r.problems.push(format!(
            "user-data: {key}.name: {} is not a user name (a lower-case letter, then up to 31 \
             lower-case letters, digits, `_` or `-`); no user was made",
            show(&v["name"])
        ));
        return None;
    };
    if RESERVED_USERS.contains(&name.as_str()) {
        r.problems.push(format!(
            "user-data: {key}.name: `{name}` is one of the system's own accounts; choose another \
             name in Imager; no user was made"
        ));
        return None;
    }
    let mut password_hash = None;
    match &v["passwd"] {
        Yaml::BadValue | Yaml::Null => {}
        h => match scalar(h) {
            Some(h) if is_crypt_hash(&h) => password_hash = Some(h),
            _ => r.problems.push(format!(
                "user-data: {key}.passwd: not a password hash (Imager writes yescrypt or \
                 sha-crypt); {name} gets no password"
            )),
        },
    }
    if v["lock_passwd"].as_bool() == Some(true) {
        password_hash = None;
    }
    let mut ssh_keys = Vec::new();
    let keys = match &v["ssh_authorized_keys"] {
        Yaml::BadValue => &v["ssh-authorized-keys"],
        k => k,
    };
    match keys {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::Array(list) => {
            for k in list {
                match scalar(k).map(|k| k.trim().to_owned()) {
                    Some(k) if is_ssh_key(&k) => ssh_keys.push(k),
                    _ => r.problems.push(format!(
                        "user-data: {key}.ssh_authorized_keys: {} is not an SSH public key; it \
                         was left out",
                        show(k)
                    )),
                }
            }
        }
        other => r.problems.push(format!(
            "user-data: {key}.ssh_authorized_keys: {} is not a list of keys",
            show(other)
        )),
    }
    if password_hash.is_none() && ssh_keys.is_empty() {
        r.problems.push(format!(
            "user-data: {key}: {name} has neither a password hash nor an SSH key, so nobody \
             could ever log in as it; no user was made"
        ));
        return None;
    }
    let passwordless_sudo = match &v["sudo"] {
        Yaml::String(s) => s.contains("NOPASSWD"),
        Yaml::Array(rules) => rules
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains("NOPASSWD"))),
        _ => false,
    };
    let shell = match scalar(&v["shell"]) {
        None => "/bin/bash".to_owned(),
        Some(s) if SHELLS.contains(&s.as_str()) => s,
        Some(s) => {
            r.problems.push(format!(
                "user-data: {key}.shell: {s} is not a shell on d3kOS; /bin/bash is used"
            ));
            "/bin/bash".to_owned()
        }
    };
    for (k, _) in entries(v) {
        if !USER_KEYS.contains(&k.as_str()) {
            r.ignored.push(format!("user-data: {key}.{k}"));
        }
    }
    Some(User {
        name,
        password_hash,
        ssh_keys,
        passwordless_sudo,
        shell,
    })
}

const USER_KEYS: [&str; 8] = [
    "name",
    "passwd",
    "lock_passwd",
    "ssh_authorized_keys",
    "ssh-authorized-keys",
    "sudo",
    "shell",
    "groups",
];

/// Accounts the image has or the system needs, never taken over by Imager's user.
const RESERVED_USERS: [&str; 14] = [
    "root",
    "d3kos",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "nobody",
    "sshd",
    "messagebus",
];

const SHELLS: [&str; 4] = ["/bin/bash", "/bin/sh", "/usr/bin/bash", "/usr/bin/sh"];

fn network_config(text: &str, c: &mut Customisation, r: &mut Report) {
    let Some(doc) = document("network-config", text, r) else {
        return;
    };
    // Imager writes netplan v2 under `network:`; cloud-init also takes it bare.
    let net = match &doc["network"] {
        Yaml::BadValue => &doc,
        n => n,
    };
    if net["version"].as_i64() != Some(2) {
        r.problems.push(
            "network-config: not netplan version 2 (`network: {version: 2}`); no network was set"
                .into(),
        );
        return;
    }
    for (k, v) in entries(net) {
        match k.as_str() {
            "version" => {}
            // The wired port takes DHCP (v4 and v6) whatever the file says.
            "ethernets" => {
                for (iface, _) in entries(v) {
                    if iface != "eth0" {
                        r.ignored.push(format!(
                            "network-config: ethernets.{iface} (every wired port uses DHCP)"
                        ));
                    }
                }
            }
            "wifis" => wifis(v, c, r),
            other => r.ignored.push(format!("network-config: {other}")),
        }
    }
}

fn wifis(v: &Yaml, c: &mut Customisation, r: &mut Report) {
    for (iface, w) in entries(v) {
        if iface != "wlan0" {
            r.ignored.push(format!(
                "network-config: wifis.{iface} (only wlan0 is set up)"
            ));
            continue;
        }
        let mut wifi = Wifi {
            country: None,
            networks: Vec::new(),
        };
        match scalar(&w["regulatory-domain"]) {
            None => {}
            Some(cc) if cc.len() == 2 && cc.chars().all(|ch| ch.is_ascii_alphanumeric()) => {
                wifi.country = Some(cc.to_ascii_uppercase());
            }
            Some(cc) => r.problems.push(format!(
                "network-config: wifis.wlan0.regulatory-domain: `{cc}` is not a two-letter \
                 country code; the radio keeps the world-wide rules"
            )),
        }
        for (ssid, ap) in entries(&w["access-points"]) {
            let bytes = ssid_bytes(&ssid);
            let at = format!("network-config: wifis.wlan0.access-points.{ssid:?}");
            if bytes.is_empty() || bytes.len() > 32 {
                r.problems.push(format!(
                    "{at}: an SSID is 1 to 32 bytes, this one is {}; the network was left out",
                    bytes.len()
                ));
                continue;
            }
            let open = scalar(&ap["auth"]["key-management"]).as_deref() == Some("none");
            let secret = match scalar(&ap["password"]).or_else(|| scalar(&ap["auth"]["password"])) {
                // Imager marks an open network so; a missing key is a key taken away
                // (by d3kOS, once applied) or never given.
                None if open => Secret::Open,
                None => {
                    r.problems.push(format!(
                        "{at}: no password, and not marked open (`auth: {{key-management: \
                         none}}`); the network was left out"
                    ));
                    continue;
                }
                Some(p) if p.len() == 64 && p.chars().all(|ch| ch.is_ascii_hexdigit()) => {
                    Secret::Psk(p.to_ascii_lowercase())
                }
                Some(p)
                    if (8..=63).contains(&p.len()) && p.bytes().all(|b| (32..127).contains(&b)) =>
                {
                    Secret::Passphrase(p)
                }
                Some(p) => {
                    r.problems.push(format!(
                        "{at}.password: a WPA passphrase is 8 to 63 printable ASCII characters \
                         (or a 64-digit hex key), this one has {}; the network was left out",
                        p.chars().count()
                    ));
                    continue;
                }
            };
            wifi.networks.push(Network {
                ssid: bytes,
                secret,
                hidden: ap["hidden"].as_bool() == Some(true),
            });
        }
        for (k, _) in entries(w) {
            if ![
                "dhcp4",
                "dhcp6",
                "optional",
                "regulatory-domain",
                "access-points",
            ]
            .contains(&k.as_str())
            {
                r.ignored
                    .push(format!("network-config: wifis.wlan0.{k} (Wi-Fi uses DHCP)"));
            }
        }
        c.wifi = Some(wifi);
    }
}

/// An SSID's bytes. Imager writes bytes outside printable ASCII as `\xHH` escapes, which
/// YAML reads as the characters U+0000–U+00FF; such a name is taken byte for byte, any
/// other as UTF-8.
fn ssid_bytes(ssid: &str) -> Vec<u8> {
    if ssid.chars().all(|ch| (ch as u32) <= 0xFF) {
        ssid.chars().map(|ch| ch as u32 as u8).collect()
    } else {
        ssid.as_bytes().to_vec()
    }
}

fn valid_hostname(h: &str) -> bool {
    let b = h.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn valid_user_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

/// A crypt(3) hash as shadow keeps it: `$id$…`, with none of shadow's separators in it.
fn is_crypt_hash(h: &str) -> bool {
    let mut parts = h.split('$');
    parts.next() == Some("")
        && parts
            .next()
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric()))
        && h.split('$').count() >= 4
        && h.bytes().all(|c| c.is_ascii_graphic() && c != b':')
}

/// `TYPE BASE64 [COMMENT]` with a key type sshd knows.
fn is_ssh_key(k: &str) -> bool {
    let mut words = k.split_whitespace();
    let kind = words.next().unwrap_or("");
    let body = words.next().unwrap_or("");
    let known = kind.starts_with("ssh-")
        || kind.starts_with("ecdsa-sha2-")
        || kind.starts_with("sk-ssh-")
        || kind.starts_with("sk-ecdsa-");
    known
        && body.len() >= 16
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        && !k.contains('\n')
}

/// A mapping's entries with text keys; anything else gives none.
fn entries(v: &Yaml) -> Vec<(String, &Yaml)> {
    match v {
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| scalar(k).map(|k| (k, v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A scalar as text (`DE`, `42`, `true`).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value as it reads in a message, cut short.
fn show(v: &Yaml) -> String {
    let text = match v {
        Yaml::BadValue => return "nothing".into(),
        Yaml::Null => return "null".into(),
        v => scalar(v).map_or_else(|| "a list or mapping".into(), |s| format!("`{s}`")),
    };
    if text.chars().count() > 40 {
        format!("{}…`", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$6$d3kos$AGp0V9sZt1u4lKpHv5yq6Pjz8Ckcp0bmtm8a5kqTTtVYdbJ7cm3Xq.p4M7dL0GgvPMH9kdS7gtlZg2vKuzr5c/";
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv5sFqU3mJw4e0b5m9Cq1X2l8W6eYc1pQnZx0aH1bKk skipper@laptop";

    fn imager2_user_data() -> String {
        format!(
            "#cloud-config\nmanage_resolv_conf: false\n\nhostname: Sailfish\nmanage_etc_hosts: true\n\
             packages:\n- avahi-daemon\n\napt:\n  preserve_sources_list: true\n  conf: |\n    \
             Acquire {{\n      Check-Date \"false\";\n    }};\n\ntimezone: Europe/Berlin\n\
             keyboard:\n  model: pc105\n  layout: \"de\"\nuser:\n  name: skipper\n  shell: /bin/bash\n  \
             lock_passwd: false\n  passwd: \"{HASH}\"\n  ssh_authorized_keys:\n    - \"{KEY}\"\n  \
             sudo: ALL=(ALL) NOPASSWD:ALL\n\nssh_pwauth: false\n\nruncmd:\n  - [ systemctl, enable, --now, ssh ]\n"
        )
    }

    const NETWORK: &str = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      \
         dhcp6: true\n      optional: true\n  wifis:\n    wlan0:\n      dhcp4: true\n      \
         regulatory-domain: \"DE\"\n      access-points:\n        \"Marina Guest\":\n          \
         password: \"0f6e3c1b5d2a4e8f9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f\"\n      \
         optional: true\n";

    #[test]
    fn what_imager_2_writes_is_read_and_the_rest_listed() {
        let (c, r) = read(&Files {
            user_data: Some(imager2_user_data()),
            network_config: Some(NETWORK.into()),
            meta_data: Some("instance-id: rpi-imager-1764590000000\n".into()),
        });
        assert_eq!(c.instance_id.as_deref(), Some("rpi-imager-1764590000000"));
        assert_eq!(c.hostname.as_deref(), Some("sailfish"));
        assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            c.keyboard,
            Some(Keyboard {
                model: "pc105".into(),
                layout: "de".into()
            })
        );
        let u = c.user.unwrap();
        assert_eq!(u.name, "skipper");
        assert_eq!(u.password_hash.as_deref(), Some(HASH));
        assert_eq!(u.ssh_keys, vec![KEY.to_owned()]);
        assert!(u.passwordless_sudo);
        assert_eq!(c.ssh_pwauth, Some(false));
        let w = c.wifi.unwrap();
        assert_eq!(w.country.as_deref(), Some("DE"));
        assert_eq!(w.networks.len(), 1);
        assert_eq!(w.networks[0].ssid, b"Marina Guest");
        assert!(matches!(&w.networks[0].secret, Secret::Psk(p) if p.starts_with("0f6e")));
        assert_eq!(r.problems, Vec::<String>::new());
        for key in ["packages", "apt", "runcmd"] {
            assert!(
                r.ignored
                    .iter()
                    .any(|i| i.starts_with(&format!("user-data: {key} ("))),
                "{key} is listed: {:?}",
                r.ignored
            );
        }
    }

    #[test]
    fn imager_1_8s_users_list_is_read_too() {
        let text = format!(
            "#cloud-config\nhostname: deckhand\nusers:\n- default\n- name: mate\n  groups: users,adm,dialout\n  \
             shell: /bin/bash\n  lock_passwd: false\n  passwd: {HASH}\n  sudo: ALL=(ALL) NOPASSWD:ALL\n"
        );
        let (c, r) = read(&Files {
            user_data: Some(text),
            ..Files::default()
        });
        let u = c.user.unwrap();
        assert_eq!(
            (u.name.as_str(), u.password_hash.as_deref()),
            ("mate", Some(HASH))
        );
        assert!(u.ssh_keys.is_empty() && u.passwordless_sudo);
        assert_eq!(r.problems, Vec::<String>::new());
    }

    #[test]
    fn bad_values_are_reported_and_the_rest_still_read() {
        let text =
            "#cloud-config\nhostname: good-name\nuser:\n  name: skipper\n  lock_passwd: false\n";
        let network = "network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        \
             \"123456789012345678901234567890123\":\n          password: \"long enough passphrase\"\n        \
             \"Short\":\n          password: \"seven77\"\n        \"Fine\":\n          \
             password: \"eight888\"\n        \"Open\":\n          auth:\n            key-management: none\n";
        let (c, r) = read(&Files {
            user_data: Some(text.into()),
            network_config: Some(network.into()),
            meta_data: None,
        });
        assert_eq!(c.hostname.as_deref(), Some("good-name"));
        assert_eq!(c.user, None);
        let all = r.problems.join("\n");
        assert!(
            all.contains("neither a password hash nor an SSH key"),
            "{all}"
        );
        assert!(
            all.contains("an SSID is 1 to 32 bytes, this one is 33"),
            "{all}"
        );
        assert!(all.contains("this one has 7"), "{all}");
        let nets = c.wifi.unwrap().networks;
        assert_eq!(nets.len(), 2, "{nets:?}");
        assert_eq!(nets[0].secret, Secret::Passphrase("eight888".into()));
        assert_eq!(nets[1].secret, Secret::Open);
    }

    #[test]
    fn a_file_that_is_not_yaml_or_not_cloud_config_changes_nothing() {
        let (c, r) = read(&Files {
            user_data: Some("#cloud-config\nhostname: [unclosed\n".into()),
            network_config: Some("network: {version: 2\n".into()),
            meta_data: None,
        });
        assert_eq!(c, Customisation::default());
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].starts_with("user-data: not YAML"));
        let (c, r) = read(&Files {
            user_data: Some("#!/bin/sh\nrm -rf /\n".into()),
            ..Files::default()
        });
        assert_eq!(c, Customisation::default());
        assert!(r.problems[0].contains("does not begin with `#cloud-config`"));
    }

    #[test]
    fn the_systems_own_accounts_and_odd_names_are_refused() {
        for name in ["root", "d3kos", "Skipper", "1mate", "a b"] {
            let text = format!("#cloud-config\nuser:\n  name: \"{name}\"\n  passwd: \"{HASH}\"\n");
            let (c, r) = read(&Files {
                user_data: Some(text),
                ..Files::default()
            });
            assert_eq!(c.user, None, "{name}");
            assert_eq!(r.problems.len(), 1, "{name}: {:?}", r.problems);
        }
        let text = "#cloud-config\nuser:\n  name: mate\n  passwd: plain-text\n  ssh_authorized_keys: [\"not a key\"]\n";
        let (c, r) = read(&Files {
            user_data: Some(text.into()),
            ..Files::default()
        });
        assert_eq!(c.user, None);
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    }

    #[test]
    fn escaped_ssid_bytes_are_kept_byte_for_byte() {
        // Imager writes "Café" as "Caf\xC3\xA9".
        assert_eq!(ssid_bytes("Caf\u{c3}\u{a9}"), "Café".as_bytes());
        assert_eq!(ssid_bytes("船"), "船".as_bytes());
    }
}
