//! /etc/passwd, group, shadow and gshadow: the appliance's system user, and every account
//! locked so that no password exists until the owner sets one.

use super::{CustomiseError, read_text};
use crate::rootfs::{Entry, Tree};

/// The system user as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Debian's range for dynamically allocated system ids (Debian Policy 9.2.2).
const SYSTEM_IDS: std::ops::RangeInclusive<u32> = 100..=999;

fn table(tree: &Tree, path: &str) -> Result<Vec<Vec<String>>, CustomiseError> {
    let text = read_text(tree, path)?.ok_or_else(|| CustomiseError::Accounts {
        path: path.to_owned(),
        reason: "missing: the base has no accounts database".into(),
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect())
}

fn put(tree: &mut Tree, path: &str, rows: &[Vec<String>], mode: u32, gid: u32, mtime: i64) {
    let mut text = rows
        .iter()
        .map(|r| r.join(":"))
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    let mut e = Entry::file(text.into_bytes(), mode, mtime);
    e.gid = gid;
    tree.insert(path.as_bytes(), e);
}

fn shadow_gid(tree: &Tree) -> Result<u32, CustomiseError> {
    Ok(table(tree, "etc/group")?
        .iter()
        .find(|r| r[0] == "shadow")
        .and_then(|r| r.get(2)?.parse().ok())
        .unwrap_or(0))
}

/// Creates `name` as a locked system user with a group of its own, unless it exists.
pub fn ensure_system_user(
    tree: &mut Tree,
    name: &str,
    gecos: &str,
    epoch: i64,
) -> Result<Account, CustomiseError> {
    let mut passwd = table(tree, "etc/passwd")?;
    let mut group = table(tree, "etc/group")?;
    let num = |r: &Vec<String>, i: usize, path: &str| -> Result<u32, CustomiseError> {
        r.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| CustomiseError::Accounts {
                path: path.to_owned(),
                reason: format!("line for `{}` is malformed", r[0]),
            })
    };
    if let Some(r) = passwd.iter().find(|r| r[0] == name) {
        return Ok(Account {
            name: name.to_owned(),
            uid: num(r, 2, "etc/passwd")?,
            gid: num(r, 3, "etc/passwd")?,
        });
    }
    let used_uids: Vec<u32> = passwd
        .iter()
        .filter_map(|r| r.get(2)?.parse().ok())
        .collect();
    let used_gids: Vec<u32> = group
        .iter()
        .filter_map(|r| r.get(2)?.parse().ok())
        .collect();
    let gid = match group.iter().find(|r| r[0] == name) {
        Some(r) => num(r, 2, "etc/group")?,
        None => {
            // The same number for user and group where it is free in both, as adduser does.
            let gid = SYSTEM_IDS
                .clone()
                .find(|i| !used_uids.contains(i) && !used_gids.contains(i))
                .ok_or_else(|| CustomiseError::Accounts {
                    path: "etc/group".into(),
                    reason: "no free system group id".into(),
                })?;
            group.push(vec![
                name.into(),
                "x".into(),
                gid.to_string(),
                String::new(),
            ]);
            gid
        }
    };
    let uid = if !used_uids.contains(&gid) {
        gid
    } else {
        SYSTEM_IDS
            .clone()
            .find(|i| !used_uids.contains(i))
            .ok_or_else(|| CustomiseError::Accounts {
                path: "etc/passwd".into(),
                reason: "no free system user id".into(),
            })?
    };
    passwd.push(vec![
        name.into(),
        "x".into(),
        uid.to_string(),
        gid.to_string(),
        gecos.into(),
        format!("/var/lib/{name}"),
        "/usr/sbin/nologin".into(),
    ]);
    let shadow_gid = shadow_gid(tree)?;
    let mut shadow = table(tree, "etc/shadow")?;
    if !shadow.iter().any(|r| r[0] == name) {
        let days = (epoch / 86_400).to_string();
        shadow.push(
            [name, "!*", &days, "", "", "", "", "", ""]
                .map(str::to_owned)
                .to_vec(),
        );
    }
    let mut gshadow = table(tree, "etc/gshadow").unwrap_or_default();
    if !gshadow.iter().any(|r| r[0] == name) {
        gshadow.push([name, "!", "", ""].map(str::to_owned).to_vec());
    }
    put(tree, "etc/passwd", &passwd, 0o644, 0, epoch);
    put(tree, "etc/group", &group, 0o644, 0, epoch);
    put(tree, "etc/shadow", &shadow, 0o640, shadow_gid, epoch);
    put(tree, "etc/gshadow", &gshadow, 0o640, shadow_gid, epoch);
    Ok(Account {
        name: name.to_owned(),
        uid,
        gid,
    })
}

/// Every account whose password field would let someone in (empty, or a hash the base or
/// an overlay brought) is locked: the owner sets the first password on the device.
pub fn lock_all(tree: &mut Tree, epoch: i64) -> Result<Vec<String>, CustomiseError> {
    let mut shadow = table(tree, "etc/shadow")?;
    let mut locked = Vec::new();
    for r in &mut shadow {
        let Some(pw) = r.get_mut(1) else { continue };
        if !(pw.starts_with('!') || pw.starts_with('*')) {
            *pw = "!*".into();
            locked.push(r[0].clone());
        }
    }
    if !locked.is_empty() {
        let gid = shadow_gid(tree)?;
        put(tree, "etc/shadow", &shadow, 0o640, gid, epoch);
    }
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Tree {
        let mut t = Tree::new();
        let f = |s: &str| Entry::file(s.as_bytes().to_vec(), 0o644, 0);
        t.insert(
            b"etc/passwd",
            f("root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nsystemd-network:x:100:100::/:/usr/sbin/nologin\n"),
        );
        t.insert(
            b"etc/group",
            f("root:x:0:\nshadow:x:42:\nsystemd-network:x:100:\n"),
        );
        t.insert(b"etc/shadow", f("root::20000:0:99999:7:::\n_apt:*:20000:0:99999:7:::\nsystemd-network:!*:20000::::::\n"));
        t.insert(b"etc/gshadow", f("root:*::\nshadow:*::\n"));
        t
    }

    #[test]
    fn system_user_takes_the_first_free_id_and_ships_locked() {
        let mut t = base();
        let a = ensure_system_user(&mut t, "d3kos", "d3kOS appliance", 86_400 * 20_786).unwrap();
        assert_eq!((a.uid, a.gid), (101, 101));
        let passwd = String::from_utf8(t.read(b"etc/passwd").unwrap().unwrap()).unwrap();
        assert!(
            passwd.ends_with("d3kos:x:101:101:d3kOS appliance:/var/lib/d3kos:/usr/sbin/nologin\n")
        );
        let shadow = String::from_utf8(t.read(b"etc/shadow").unwrap().unwrap()).unwrap();
        assert!(shadow.contains("\nd3kos:!*:20786::::::\n"), "{shadow}");
        assert_eq!(t.get(b"etc/shadow").unwrap().mode, 0o640);
        assert_eq!(t.get(b"etc/shadow").unwrap().gid, 42);
        // Running again changes nothing.
        let again = ensure_system_user(&mut t, "d3kos", "d3kOS appliance", 0).unwrap();
        assert_eq!(again, a);
        let passwd2 = String::from_utf8(t.read(b"etc/passwd").unwrap().unwrap()).unwrap();
        assert_eq!(passwd, passwd2);
    }

    #[test]
    fn an_empty_root_password_is_locked() {
        let mut t = base();
        let locked = lock_all(&mut t, 0).unwrap();
        assert_eq!(locked, vec!["root".to_owned()]);
        let shadow = String::from_utf8(t.read(b"etc/shadow").unwrap().unwrap()).unwrap();
        assert!(shadow.starts_with("root:!*:20000:"), "{shadow}");
        assert!(shadow.contains("_apt:*:"));
    }

    #[test]
    fn a_base_without_accounts_is_refused() {
        let mut t = Tree::new();
        let e = ensure_system_user(&mut t, "d3kos", "x", 0).unwrap_err();
        assert!(e.to_string().contains("etc/passwd: missing"), "{e}");
    }
}
