//! Taking the secrets out of Imager's files once they are applied: the user's password
//! hash and the Wi-Fi keys leave the FAT partition, which any computer can read; the
//! rest stays, so the owner can still see what was asked for.

use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// `text` without its secrets, or `None` when it holds none (or is not YAML, and so was
/// never applied).
pub fn without_secrets(text: &str) -> Option<String> {
    let mut docs = YamlLoader::load_from_str(text).ok()?;
    let mut doc = docs.pop()?;
    if !docs.is_empty() || !remove(&mut doc) {
        return None;
    }
    let mut body = String::new();
    YamlEmitter::new(&mut body).dump(&doc).ok()?;
    // user-data must keep its first line, or it is no longer cloud-config.
    let header = if text.starts_with("#cloud-config") {
        "#cloud-config\n"
    } else {
        ""
    };
    Some(format!(
        "{header}# d3kOS applied these settings and then removed their secrets (the user's hash, \
         the Wi-Fi keys) from this file.\n{body}\n"
    ))
}

/// Removes every `passwd` and `password` key anywhere in `v`; whether any was there.
fn remove(v: &mut Yaml) -> bool {
    match v {
        Yaml::Hash(h) => {
            let before = h.len();
            h.retain(|k, _| !matches!(k.as_str(), Some("passwd" | "password")));
            let mut removed = h.len() != before;
            for (_, child) in h.iter_mut() {
                removed |= remove(child);
            }
            removed
        }
        Yaml::Array(items) => items.iter_mut().fold(false, |r, i| remove(i) | r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_keys_go_and_the_rest_stays_readable() {
        let user_data = "#cloud-config\nhostname: sailfish\nuser:\n  name: skipper\n  passwd: \"$6$s$h\"\n\
                         users:\n- default\n- name: mate\n  passwd: $y$j9T$x$y\n";
        let out = without_secrets(user_data).unwrap();
        assert!(out.starts_with("#cloud-config\n"), "{out}");
        assert!(!out.contains("passwd") && !out.contains("$6$"), "{out}");
        assert!(
            out.contains("hostname: sailfish") && out.contains("name: mate"),
            "{out}"
        );
        assert_eq!(without_secrets(&out), None, "nothing left to remove");

        let net = "network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        \
                   \"Marina Guest\":\n          password: \"abcdef0123\"\n";
        let out = without_secrets(net).unwrap();
        assert!(
            !out.contains("password") && !out.contains("abcdef"),
            "{out}"
        );
        assert!(out.contains("Marina Guest"), "{out}");
        assert_eq!(without_secrets("not: [yaml"), None);
    }
}
