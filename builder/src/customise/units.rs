//! Enabling systemd units as `systemctl enable` would: the symlinks their `[Install]` section
//! asks for, made in the tree (systemd.unit(5), "[Install] Section Options").

use super::{CustomiseError, read_text};
use crate::rootfs::{Entry, Kind, Tree};

/// Where packages and the overlay put unit files (merged /usr).
const UNIT_DIRS: &[&str] = &[
    "etc/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
];

fn find(tree: &Tree, unit: &str) -> Option<(String, String)> {
    UNIT_DIRS.iter().find_map(|d| {
        let path = format!("{d}/{unit}");
        match tree.get(path.as_bytes())?.kind {
            Kind::File { .. } | Kind::HardLink(_) => {
                let shown = if d.starts_with("lib/") {
                    format!("usr/{d}")
                } else {
                    (*d).to_owned()
                };
                Some((path, format!("/{shown}/{unit}")))
            }
            _ => None,
        }
    })
}

/// The `[Install]` keys of a unit file.
fn install_section(text: &str) -> Vec<(String, String)> {
    let mut in_install = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        } else if in_install
            && !line.starts_with('#')
            && !line.starts_with(';')
            && let Some((k, v)) = line.split_once('=')
        {
            for word in v.split_whitespace() {
                out.push((k.trim().to_owned(), word.to_owned()));
            }
        }
    }
    out
}

/// Enables each unit (and the units its `Also=` names); returns every unit enabled.
pub fn enable(tree: &mut Tree, units: &[String]) -> Result<Vec<String>, CustomiseError> {
    let mut todo: Vec<String> = units.to_vec();
    let mut done: Vec<String> = Vec::new();
    while let Some(unit) = todo.pop() {
        if done.contains(&unit) {
            continue;
        }
        let fail = |reason: String| CustomiseError::Unit {
            unit: unit.clone(),
            reason,
        };
        if unit.contains("@.") {
            return Err(fail(
                "a template unit needs an instance name, like getty@tty1.service".into(),
            ));
        }
        let (path, target) = find(tree, &unit)
            .ok_or_else(|| fail(format!("no unit file in {}", UNIT_DIRS.join(", "))))?;
        let text = read_text(tree, &path)?.unwrap_or_default();
        let keys = install_section(&text);
        if keys.is_empty() {
            return Err(fail("it has no [Install] section".into()));
        }
        for (k, v) in keys {
            let link = match k.as_str() {
                "WantedBy" => format!("etc/systemd/system/{v}.wants/{unit}"),
                "RequiredBy" => format!("etc/systemd/system/{v}.requires/{unit}"),
                "UpheldBy" => format!("etc/systemd/system/{v}.upholds/{unit}"),
                "Alias" => format!("etc/systemd/system/{v}"),
                "Also" => {
                    todo.push(v);
                    continue;
                }
                _ => continue,
            };
            let mut e = Entry::dir(0o777);
            e.kind = Kind::Symlink(target.clone().into_bytes());
            tree.insert(link.as_bytes(), e);
        }
        done.push(unit);
    }
    done.sort();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_by_alias_and_also_become_links() {
        let mut t = Tree::new();
        t.insert(
            b"usr/lib/systemd/system/d3kosd.service",
            Entry::file(
                b"[Unit]\nDescription=x\n[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\nAlias=helm.service\nAlso=d3kos-grow.service\n".to_vec(),
                0o644,
                0,
            ),
        );
        t.insert(
            b"lib/systemd/system/d3kos-grow.service",
            Entry::file(
                b"[Install]\nWantedBy=local-fs-pre.target sysinit.target\n".to_vec(),
                0o644,
                0,
            ),
        );
        let done = enable(&mut t, &["d3kosd.service".into()]).unwrap();
        assert_eq!(
            done,
            vec!["d3kos-grow.service".to_owned(), "d3kosd.service".to_owned()]
        );
        let link = |p: &str| match &t.get(p.as_bytes()).unwrap_or_else(|| panic!("{p}")).kind {
            Kind::Symlink(target) => String::from_utf8(target.clone()).unwrap(),
            k => panic!("{p}: {k:?}"),
        };
        assert_eq!(
            link("etc/systemd/system/multi-user.target.wants/d3kosd.service"),
            "/usr/lib/systemd/system/d3kosd.service"
        );
        assert_eq!(
            link("etc/systemd/system/helm.service"),
            "/usr/lib/systemd/system/d3kosd.service"
        );
        assert_eq!(
            link("etc/systemd/system/sysinit.target.wants/d3kos-grow.service"),
            "/usr/lib/systemd/system/d3kos-grow.service"
        );
        assert_eq!(
            link("etc/systemd/system/local-fs-pre.target.wants/d3kos-grow.service"),
            "/usr/lib/systemd/system/d3kos-grow.service"
        );
    }

    #[test]
    fn a_missing_unit_or_one_without_install_is_refused() {
        let mut t = Tree::new();
        let e = enable(&mut t, &["nope.service".into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot enable nope.service: no unit file"),
            "{e}"
        );
        t.insert(
            b"usr/lib/systemd/system/static.service",
            Entry::file(b"[Service]\nExecStart=/x\n".to_vec(), 0o644, 0),
        );
        let e = enable(&mut t, &["static.service".into()]).unwrap_err();
        assert!(e.to_string().contains("no [Install] section"), "{e}");
    }
}
