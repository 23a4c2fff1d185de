//! The setup Wi-Fi: the access point a new device opens so that a phone or laptop can reach
//! it before the boat's own network is set up. Its name and per-device passphrase are made
//! once and kept on the data partition; `ap` decides whether the radio runs it.

pub mod ap;
pub mod cli;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the credentials live, under the data partition's mount point. Outside the state
/// folder on purpose: they belong to this device, so restoring another boat's backup must
/// not bring that boat's passphrase along.
pub const FILE: &str = "d3kos/setup-wifi.json";

/// The access point's address; its clients get addresses from the same /24 by DHCP.
/// 10.42.0.0/24 is what Linux hotspots commonly use, so it rarely meets a marina's network.
pub const ADDRESS: &str = "10.42.0.1";

/// Passphrase letters: lower case and digits without the ones people mix up (0/o, 1/l/i),
/// so it can be read off a screen and typed on a phone.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

#[derive(Debug, thiserror::Error)]
pub enum WifiError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("no randomness for the setup Wi-Fi's passphrase: {0}")]
    Random(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// The setup Wi-Fi of this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupWifi {
    /// `d3kOS-XXXX`, XXXX from the installation id: two boats side by side tell theirs apart.
    pub ssid: String,
    /// WPA2 pre-shared passphrase, 19 characters (about 79 bits).
    pub passphrase: String,
    /// The owner turned it on in settings: it runs even with the boat's Wi-Fi set up.
    #[serde(default)]
    pub owner_on: bool,
}

impl SetupWifi {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// The credentials kept under `data_dir`; `Ok(None)` before the appliance made them.
    pub fn load(data_dir: &Path) -> Result<Option<SetupWifi>, WifiError> {
        let path = Self::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(WifiError::Io { path, source }),
        };
        let w: SetupWifi = serde_json::from_slice(&bytes).map_err(|e| WifiError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        w.check()
            .map_err(|reason| WifiError::Invalid { path, reason })?;
        Ok(Some(w))
    }

    /// The kept credentials, or new ones made for `installation_id` and kept. A file that
    /// cannot be used is replaced, and the returned problem says so: a device must always
    /// be reachable on first use.
    pub fn load_or_make(
        data_dir: &Path,
        installation_id: &str,
    ) -> Result<(SetupWifi, Option<String>), WifiError> {
        let problem = match Self::load(data_dir) {
            Ok(Some(w)) => return Ok((w, None)),
            Ok(None) => None,
            Err(e @ WifiError::Invalid { .. }) => Some(format!(
                "setup Wi-Fi: {e}; a new passphrase was made (the config partition has it)"
            )),
            Err(e) => return Err(e),
        };
        let w = SetupWifi {
            ssid: ssid_for(installation_id),
            passphrase: new_passphrase()?,
            owner_on: false,
        };
        w.save(data_dir)?;
        Ok((w, problem))
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), WifiError> {
        crate::state::save(&Self::path(data_dir), self)?;
        Ok(())
    }

    /// What hostapd would refuse: an SSID of 1–32 bytes, a WPA passphrase of 8–63
    /// printable ASCII characters (IEEE 802.11i-2004, H.4.1).
    fn check(&self) -> Result<(), String> {
        if self.ssid.is_empty() || self.ssid.len() > 32 || self.ssid.chars().any(char::is_control) {
            return Err(format!("`{}` is not a usable network name", self.ssid));
        }
        let n = self.passphrase.len();
        if !(8..=63).contains(&n) || !self.passphrase.bytes().all(|b| (32..127).contains(&b)) {
            return Err("the passphrase is not 8 to 63 printable ASCII characters".into());
        }
        Ok(())
    }

    /// The text phones read from a QR code to join (the `WIFI:` form Android and iOS
    /// cameras understand; `\`, `;`, `,`, `"` and `:` are escaped with a backslash).
    pub fn join_uri(&self) -> String {
        format!(
            "WIFI:T:WPA;S:{};P:{};;",
            escape(&self.ssid),
            escape(&self.passphrase)
        )
    }

    /// The file on the config partition, for any computer that reads the card.
    pub fn card_text(&self) -> String {
        format!(
            "d3kOS setup Wi-Fi\n\
             \n\
             Network:    {ssid}\n\
             Passphrase: {pass}\n\
             \n\
             Join this network from a phone, tablet or laptop, then open http://d3kos.local\n\
             (or http://{ADDRESS}). A phone's camera can join by the QR code in\n\
             d3kos-setup-wifi.svg instead of typing.\n\
             \n\
             The setup Wi-Fi is on while the boat's own Wi-Fi is not set up. The owner can\n\
             turn it on again in Settings.\n\
             \n\
             {uri}\n",
            ssid = self.ssid,
            pass = self.passphrase,
            uri = self.join_uri(),
        )
    }

    /// Writes the text file and the QR code beside it (`NAME.txt`, `NAME.svg`), each only when
    /// its content changed: the FAT partition is written as little as possible.
    pub fn write_card(&self, text_file: &Path) -> Result<(), WifiError> {
        let svg = text_file.with_extension("svg");
        for (path, bytes) in [
            (text_file, self.card_text().into_bytes()),
            (svg.as_path(), crate::qr::svg(&self.join_uri()).into_bytes()),
        ] {
            if std::fs::read(path).is_ok_and(|old| old == bytes) {
                continue;
            }
            // No mode: the FAT partition has none, and refuses a chmod.
            crate::state::write_atomic(path, &bytes)?;
        }
        Ok(())
    }
}

/// `d3kOS-` and the first four digits of the installation id, upper case.
pub fn ssid_for(installation_id: &str) -> String {
    let tail: String = installation_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<String>()
        .to_ascii_uppercase();
    format!("d3kOS-{tail}")
}

/// Four groups of four letters from [`ALPHABET`], joined by dashes.
pub fn new_passphrase() -> Result<String, WifiError> {
    let mut letters = Vec::with_capacity(16);
    let mut b = [0u8; 32];
    while letters.len() < 16 {
        getrandom::fill(&mut b).map_err(|e| WifiError::Random(e.to_string()))?;
        // Bytes past the last whole multiple of the alphabet are dropped, so every letter
        // is equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        letters.extend(
            b.iter()
                .filter(|&&x| (x as usize) < limit)
                .map(|&x| ALPHABET[x as usize % ALPHABET.len()] as char),
        );
    }
    Ok(letters[..16]
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ';' | ',' | '"' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_name_comes_from_the_installation_id() {
        assert_eq!(ssid_for("a1b2c3d4e5f60718"), "d3kOS-A1B2");
    }

    #[test]
    fn passphrases_are_four_groups_of_unambiguous_letters_and_differ() {
        let a = new_passphrase().unwrap();
        let b = new_passphrase().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19, "{a}");
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 4, "{a}");
        for g in groups {
            assert_eq!(g.len(), 4, "{a}");
            assert!(g.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
        }
    }

    #[test]
    fn the_join_text_escapes_what_the_wifi_form_reserves() {
        let w = SetupWifi {
            ssid: "d3kOS-AB12".into(),
            passphrase: "abcd-efgh-jkmn-pqrs".into(),
            owner_on: false,
        };
        assert_eq!(
            w.join_uri(),
            "WIFI:T:WPA;S:d3kOS-AB12;P:abcd-efgh-jkmn-pqrs;;"
        );
        let odd = SetupWifi {
            ssid: r#"a;b,c"d:e\f"#.into(),
            ..w
        };
        assert_eq!(
            odd.join_uri(),
            r#"WIFI:T:WPA;S:a\;b\,c\"d\:e\\f;P:abcd-efgh-jkmn-pqrs;;"#
        );
    }

    #[test]
    fn credentials_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, p) = SetupWifi::load_or_make(dir.path(), "00ff00ff00ff00ff").unwrap();
        assert!(p.is_none());
        assert_eq!(a.ssid, "d3kOS-00FF");
        let (b, _) = SetupWifi::load_or_make(dir.path(), "1111222233334444").unwrap();
        assert_eq!(a, b, "a second start keeps the first credentials");
    }

    #[test]
    fn an_unusable_file_is_replaced_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = SetupWifi::path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{"ssid":"d3kOS-0000","passphrase":"short"}"#).unwrap();
        let (w, p) = SetupWifi::load_or_make(dir.path(), "abcdabcdabcdabcd").unwrap();
        assert!(p.unwrap().contains("8 to 63"));
        assert_eq!(w.ssid, "d3kOS-ABCD");
        assert_eq!(SetupWifi::load(dir.path()).unwrap(), Some(w));
    }

    #[test]
    fn the_card_files_are_written_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("d3kos-setup-wifi.txt");
        let w = SetupWifi {
            ssid: "d3kOS-AB12".into(),
            passphrase: "abcd-efgh-jkmn-pqrs".into(),
            owner_on: false,
        };
        w.write_card(&txt).unwrap();
        let text = std::fs::read_to_string(&txt).unwrap();
        assert!(text.contains("Network:    d3kOS-AB12\n"), "{text}");
        assert!(text.contains("Passphrase: abcd-efgh-jkmn-pqrs\n"), "{text}");
        let svg = std::fs::read_to_string(dir.path().join("d3kos-setup-wifi.svg")).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        let before = std::fs::metadata(&txt).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        w.write_card(&txt).unwrap();
        assert_eq!(std::fs::metadata(&txt).unwrap().modified().unwrap(), before);
    }
}
