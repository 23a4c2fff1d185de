//! Build-time clean-up: what a freshly bootstrapped system holds that must not ship in every
//! copy of the image (identity, logs, caches, history).

use crate::rootfs::{Entry, Kind, Tree};

/// Folders whose content is removed (the folders stay: packages expect them).
const EMPTIED: &[&str] = &[
    "tmp",
    "var/tmp",
    "var/log",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
];

/// Files removed wherever they are.
const REMOVED: &[&str] = &[
    "root/.bash_history",
    "root/.lesshst",
    "root/.wget-hsts",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/credential.secret",
    "var/lib/systemd/random-seed",
    "etc/ssh/ssh_host_ecdsa_key",
    "etc/ssh/ssh_host_ecdsa_key.pub",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_rsa_key.pub",
    "etc/resolv.conf",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/cache/ldconfig/aux-cache",
];

/// Returns what was removed, in order.
pub fn clean(tree: &mut Tree) -> Vec<String> {
    let mut gone = Vec::new();
    for dir in EMPTIED {
        for path in tree.below(dir.as_bytes()) {
            // apt and debconf keep folders below these that packages create at install.
            if tree.get(&path).is_some_and(|e| matches!(e.kind, Kind::Dir)) {
                continue;
            }
            if tree.remove(&path) {
                gone.push(String::from_utf8_lossy(&path).into_owned());
            }
        }
    }
    for path in REMOVED {
        if tree.get(path.as_bytes()).is_some() && tree.remove(path.as_bytes()) {
            gone.push((*path).to_owned());
        }
    }
    for (home, _) in tree
        .entries()
        .filter(|(p, e)| {
            p.starts_with(b"home/")
                && p.iter().filter(|&&b| b == b'/').count() == 1
                && matches!(e.kind, Kind::Dir)
        })
        .map(|(p, e)| (p.to_vec(), e.clone()))
        .collect::<Vec<_>>()
    {
        let h = [home.as_slice(), b"/.bash_history"].concat();
        if tree.remove(&h) {
            gone.push(String::from_utf8_lossy(&h).into_owned());
        }
    }
    // An empty machine-id is "not yet set up": systemd generates one on the first boot and
    // runs its first-boot units (machine-id(5)). A missing file would need a writable /etc
    // that early.
    tree.insert(b"etc/machine-id", Entry::file(Vec::new(), 0o444, 0));
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_logs_and_caches_are_gone_but_their_folders_stay() {
        let mut t = Tree::new();
        for p in [
            "etc/machine-id",
            "etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/sshd_config",
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease",
            "var/cache/apt/pkgcache.bin",
            "tmp/leftover",
            "root/.bash_history",
            "home/skipper/.bash_history",
            "home/skipper/notes.txt",
        ] {
            t.insert(p.as_bytes(), Entry::file(b"x".to_vec(), 0o644, 0));
        }
        t.insert(b"var/lib/apt/lists/partial", Entry::dir(0o700));
        let gone = clean(&mut t);
        for p in [
            "etc/ssh/ssh_host_ed25519_key",
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "var/cache/apt/pkgcache.bin",
            "tmp/leftover",
            "root/.bash_history",
            "home/skipper/.bash_history",
        ] {
            assert!(t.get(p.as_bytes()).is_none(), "{p} left");
            assert!(gone.iter().any(|g| g == p), "{p} not reported");
        }
        for p in [
            "etc/ssh/sshd_config",
            "home/skipper/notes.txt",
            "var/log",
            "var/log/apt",
            "var/lib/apt/lists/partial",
            "tmp",
        ] {
            assert!(t.get(p.as_bytes()).is_some(), "{p} removed");
        }
        assert_eq!(t.read(b"etc/machine-id").unwrap().unwrap(), b"");
        assert_eq!(t.get(b"etc/machine-id").unwrap().mode, 0o444);
    }
}
