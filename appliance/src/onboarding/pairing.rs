//! The pairing code for the d3kOS phone app: `d3kos://pair?id=…&version=…&tier=…&boat=…`.
//! It names the installation and holds nothing secret: pairing still asks for the owner.

/// The pairing URL; `boat` is left out when the boat has no name.
pub fn url(installation_id: &str, version: &str, tier: u8, boat: Option<&str>) -> String {
    let mut u = format!(
        "d3kos://pair?id={}&version={}&tier={tier}",
        encode(installation_id),
        encode(version)
    );
    if let Some(b) = boat.filter(|b| !b.is_empty()) {
        u.push_str("&boat=");
        u.push_str(&encode(b));
    }
    u
}

/// Percent-encoding of everything but RFC 3986's unreserved characters, as UTF-8.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_installation_and_encodes_the_boat() {
        assert_eq!(
            url("a3f7c91e8d2b4f60", "0.1.0", 3, Some("Sea Otter & Co/ÆR")),
            "d3kos://pair?id=a3f7c91e8d2b4f60&version=0.1.0&tier=3&boat=Sea%20Otter%20%26%20Co%2F%C3%86R"
        );
        assert_eq!(
            url("a3f7c91e8d2b4f60", "0.1.0", 0, None),
            "d3kos://pair?id=a3f7c91e8d2b4f60&version=0.1.0&tier=0"
        );
    }

    #[test]
    fn the_code_reads_back_as_the_url() {
        let u = url("00112233aabbccdd", "0.1.0", 0, Some("Ørn"));
        assert_eq!(crate::qr::reader::read(&crate::qr::svg(&u)), u);
    }
}
