//! Taking the secrets out of Imager's files once they are applied: the user's password
//! hash and the Wi-Fi keys leave the FAT partition, which any computer can read; the
//! rest stays, so the owner can still see what was asked for.

use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// `text` with the value of every `passwd:` and `password:` key (and the lines of a value
/// that continues below its key) overwritten by spaces. The file keeps its size to the byte
/// and can be overwritten where it lies: on FAT that leaves no copy of a secret in freed
/// clusters and changes no allocation a power cut could leave half written. The keys stay
/// (their values are now empty), so a line a cut left half overwritten is found by its key
/// and blanked again. `None` when there is nothing to blank, or when the blanked text is not
/// YAML free of secrets (a flow mapping `{passwd: …}`, say), which [`without_secrets`] then
/// rewrites whole.
pub fn blanked(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    // The column of the secret key whose value continues on the lines below it.
    let mut within: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent = body.len() - body.trim_start().len();
        if within.is_some_and(|col| !body.trim().is_empty() && indent <= col) {
            within = None;
        }
        let from = match secret_key(body) {
            Some((col, value)) => {
                within.get_or_insert(col);
                Some(value)
            }
            None => within.map(|_| indent),
        };
        match from {
            Some(at) if body[at..].bytes().any(|b| b != b' ') => {
                changed = true;
                out.extend_from_slice(&body.as_bytes()[..at]);
                out.extend(std::iter::repeat_n(b' ', body.len() - at));
                out.extend_from_slice(ending.as_bytes());
            }
            _ => out.extend_from_slice(line.as_bytes()),
        }
    }
    if !changed {
        return None;
    }
    let blank = String::from_utf8(out).ok()?;
    let docs = YamlLoader::load_from_str(&blank).ok()?;
    if docs.iter().any(holds_secret) {
        return None;
    }
    Some(blank)
}

/// Where a `passwd` or `password` key starts on `line` (plain or quoted, on its own or as a
/// list item's first key) and where its value starts, after the colon.
fn secret_key(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim_start();
    let mut col = line.len() - rest.len();
    let mut rest = rest;
    if let Some(item) = rest.strip_prefix('-') {
        let after = item.trim_start();
        if after.len() == item.len() {
            return None;
        }
        col += 1 + (item.len() - after.len());
        rest = after;
    }
    for key in ["passwd", "password"] {
        for quoted in [key.to_owned(), format!("\"{key}\""), format!("'{key}'")] {
            if let Some(after) = rest.strip_prefix(quoted.as_str()) {
                let gap = after.len() - after.trim_start().len();
                if after[gap..].starts_with(':') {
                    return Some((col, col + quoted.len() + gap + 1));
                }
            }
        }
    }
    None
}

/// Whether a `passwd` or `password` key anywhere in `v` still has a value.
fn holds_secret(v: &Yaml) -> bool {
    match v {
        Yaml::Hash(h) => h.iter().any(|(k, child)| {
            (matches!(k.as_str(), Some("passwd" | "password")) && !child.is_null())
                || holds_secret(child)
        }),
        Yaml::Array(items) => items.iter().any(holds_secret),
        _ => false,
    }
}

/// `text` without its secrets, or `None` when it holds none (or is not YAML, and so was
/// never applied).
pub fn without_secrets(text: &str) -> Option<String> {
    let mut docs = YamlLoader::load_from_str(text).ok()?;
    let mut doc = docs.pop()?;
    // Keys left with empty values (by [`blanked`]) hold nothing to remove.
    if !docs.is_empty() || !holds_secret(&doc) {
        return None;
    }
    remove(&mut doc);
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

    #[test]
    fn blanking_keeps_every_byte_count_and_every_other_line() {
        let user_data = "#cloud-config\r\nhostname: sailfish\r\nuser:\r\n  name: skipper\r\n  \
                         passwd: \"$6$salt$0123456789abcdef\"\r\n  lock_passwd: false\r\n\
                         users:\n- passwd: $y$j9T$x$y\n  name: mate\n- name: cook\n  password: >-\n    \
                         folded secret\n    more of it\n  shell: /bin/sh\n";
        let out = blanked(user_data).unwrap();
        assert_eq!(out.len(), user_data.len(), "{out}");
        assert_eq!(out.lines().count(), user_data.lines().count(), "{out}");
        for gone in ["$6$", "$y$", "folded", "more of it"] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        for kept in [
            "#cloud-config\r\n",
            "hostname: sailfish\r\n",
            "  lock_passwd: false\r\n",
            "  name: mate\n",
            "  shell: /bin/sh\n",
        ] {
            assert!(out.contains(kept), "{kept:?} lost from {out}");
        }
        // Still the same YAML, the secrets empty: the list keeps both items and their keys.
        let doc = &YamlLoader::load_from_str(&out).unwrap()[0];
        assert!(doc["user"]["passwd"].is_null(), "{out}");
        assert_eq!(doc["user"]["name"].as_str(), Some("skipper"));
        assert_eq!(doc["users"][0]["name"].as_str(), Some("mate"));
        assert_eq!(doc["users"][1]["shell"].as_str(), Some("/bin/sh"));
        assert!(!holds_secret(doc));
        assert_eq!(blanked(&out), None, "nothing left to blank");
    }

    #[test]
    fn a_line_half_overwritten_by_a_cut_is_blanked_again() {
        let whole =
            "#cloud-config\nuser:\n  name: skipper\n  passwd: \"$6$salt$0123456789abcdef\"\n";
        let done = blanked(whole).unwrap();
        // The cut came in the middle of the line: its start new, its end old.
        let at = whole.find("$6$").unwrap() + 5;
        let half = format!("{}{}", &done[..at], &whole[at..]);
        assert!(half.contains("0123"), "{half}");
        assert_eq!(blanked(&half).unwrap(), done);
    }

    #[test]
    fn shapes_lines_cannot_blank_are_left_to_the_rewrite() {
        let flow = "user: {name: skipper, passwd: \"$6$s$h\"}\n";
        assert_eq!(blanked(flow), None);
        assert!(!without_secrets(flow).unwrap().contains("$6$"));
        assert_eq!(blanked("hostname: sailfish\n"), None);
        assert_eq!(blanked("not: [yaml\npasswd: x\n"), None);
    }
}
