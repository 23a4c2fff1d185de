//! `manifest.json`, the first member of every backup: what the backup is, where it came
//! from, and the size and sha256 of every file in it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Corruption;

/// The archive format this software writes and the newest it reads.
pub const FORMAT: u32 = 1;
/// The first member of every archive.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The second member: what the archive is, for a person who finds it on a USB stick.
pub const README_NAME: &str = "README.txt";
/// Every file of the state folder lies under this folder in the archive.
pub const DATA_DIR: &str = "data";
/// A manifest larger than this is not one this software wrote.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Why the backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The owner asked for it (web page or `d3kosd backup create`).
    Manual,
    /// The daily or weekly schedule.
    Scheduled,
    /// The data a restore replaced, kept automatically.
    PreRestore,
    /// The data before an update the owner asked for in the web page, kept automatically.
    PreUpdate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The backup's id: `d3kos_backup_YYYYMMDD_HHMMSS`.
    pub name: String,
    /// RFC 3339 UTC.
    pub created: String,
    pub created_unix: i64,
    pub kind: Kind,
    pub d3kos_version: String,
    /// The device the backup was made on; a restore never takes it over.
    pub installation_id: String,
    pub tier: u8,
    /// Files per kind of data: databases, licence, configuration, manuals, boatlog,
    /// onboarding, other.
    pub items: BTreeMap<String, u64>,
    /// The sum of every file's size: what a restore writes.
    pub total_bytes: u64,
    pub dirs: Vec<DirEntry>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirEntry {
    /// Relative to the state folder, `/`-separated.
    pub path: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the state folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub mode: u32,
    pub mtime: i64,
}

impl Manifest {
    /// Reads a manifest, refusing one from a newer format before looking at anything else
    /// (a newer format may mean anything), then checking that every path is one a restore
    /// may write and that the sizes add up.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Corruption> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| Corruption::BadManifest(e.to_string()))?;
        if head.format > FORMAT {
            return Err(Corruption::NewerFormat {
                found: head.format,
                supported: FORMAT,
            });
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Corruption::BadManifest(e.to_string()))?;
        let mut seen = BTreeSet::new();
        for path in m
            .dirs
            .iter()
            .map(|d| &d.path)
            .chain(m.files.iter().map(|f| &f.path))
        {
            check_path(path)?;
            check_reserved(path)?;
            if !seen.insert(path.as_str()) {
                return Err(Corruption::Duplicate { path: path.clone() });
            }
        }
        for mode in m
            .dirs
            .iter()
            .map(|d| d.mode)
            .chain(m.files.iter().map(|f| f.mode))
        {
            if mode & !0o777 != 0 {
                return Err(Corruption::BadManifest(format!(
                    "mode {mode:o} has bits beyond rwx (setuid, setgid or sticky)"
                )));
            }
        }
        for f in &m.files {
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Corruption::BadManifest(format!(
                    "{}: `{}` is not a sha256",
                    f.path, f.sha256
                )));
            }
        }
        let sum = m.files.iter().try_fold(0u64, |a, f| a.checked_add(f.size));
        if sum != Some(m.total_bytes) {
            return Err(Corruption::BadManifest(format!(
                "total_bytes {} is not the sum of the file sizes",
                m.total_bytes
            )));
        }
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        v.push(b'\n');
        v
    }

    pub fn file_count(&self) -> u64 {
        self.files.len() as u64
    }
}

/// A path a restore may write: relative, `/`-separated, no empty, `.` or `..` component,
/// no NUL, at most 4096 bytes.
pub fn check_path(path: &str) -> Result<(), Corruption> {
    let why = if path.is_empty() {
        Some("it is empty")
    } else if path.starts_with('/') {
        Some("it is absolute")
    } else if path.len() > 4096 {
        Some("it is longer than 4096 bytes")
    } else if path.contains('\0') {
        Some("it holds a NUL byte")
    } else if path.split('/').any(|c| c == "..") {
        Some("it climbs out with `..`")
    } else if path.split('/').any(|c| c.is_empty() || c == ".") {
        Some("it has an empty or `.` component")
    } else {
        None
    };
    match why {
        Some(why) => Err(Corruption::UnsafePath {
            path: path.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Why `path` of the state folder is the device's own and never part of a backup's data,
/// if it is: taken from an archive, such a file could forge the device's bookkeeping (a
/// restore marker, the name of a pre-restore backup) or who may sign in.
pub fn reserved(path: &str) -> Option<&'static str> {
    let first = path.split('/').next().unwrap_or("");
    if first == "accounts.json" || first.starts_with("accounts.json.") {
        return Some("who may sign in is never taken from a backup");
    }
    let names = path.split('/');
    for name in names {
        if name.starts_with(".d3kos-") {
            return Some("names starting with .d3kos- are the device's own bookkeeping");
        }
        if name.starts_with(".tmp") {
            return Some("names starting with .tmp are the device's work in progress");
        }
    }
    None
}

/// Refuses a path [`reserved`] for the device.
pub fn check_reserved(path: &str) -> Result<(), Corruption> {
    match reserved(path) {
        Some(why) => Err(Corruption::Reserved {
            path: path.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// The mode a restored file gets: read and write for the daemon, read for its group and
/// others only where the original allowed it; never execute, never anything else. An
/// archive cannot make a file the daemon itself cannot read or replace.
pub fn file_mode(listed: u32) -> u32 {
    0o600 | (listed & 0o044)
}

/// The mode a restored folder gets: everything for the daemon, read and enter for its
/// group and others only where the original allowed either.
pub fn dir_mode(listed: u32) -> u32 {
    let group = if listed & 0o050 != 0 { 0o050 } else { 0 };
    let other = if listed & 0o005 != 0 { 0o005 } else { 0 };
    0o700 | group | other
}

/// The kind of data a file of the state folder is, for the manifest's item counts.
pub fn item_kind(path: &str, is_database: bool) -> &'static str {
    if is_database {
        return "databases";
    }
    match path.split('/').next().unwrap_or("") {
        "licence.json" => "licence",
        "config" => "configuration",
        "manuals" => "manuals",
        "boatlog" => "boatlog",
        "onboarding" => "onboarding",
        "databases" => "databases",
        _ => "other",
    }
}

/// `README.txt` of a backup.
pub fn readme(m: &Manifest) -> String {
    let items: String = m
        .items
        .iter()
        .map(|(k, v)| format!("  {k}: {v}\n"))
        .collect();
    format!(
        "d3kOS backup {name}\n\
         \n\
         Made {created} by d3kOS {version} on installation {id} ({kind:?}).\n\
         \n\
         It holds the boat's data as it was then: databases, configuration, uploaded manuals,\n\
         the boat log, the onboarding answers and the licence file. Owner passwords are not\n\
         in it.\n\
         \n\
         Files ({files}, {bytes} bytes):\n{items}\
         \n\
         To restore it, open Settings > Backup & Restore on the helm computer, upload this\n\
         file if it is not listed there, and choose Restore. The data it replaces is kept as\n\
         a backup of its own first. With a shell: d3kosd backup restore {name}\n\
         \n\
         To check a copy: sha256sum -c {name}.tar.gz.sha256\n\
         manifest.json lists the size and sha256 of every file under data/.\n",
        name = m.name,
        created = m.created,
        version = m.d3kos_version,
        id = m.installation_id,
        kind = m.kind,
        files = m.files.len(),
        bytes = m.total_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_named_with_the_reason() {
        for (p, why) in [
            ("../etc/passwd", "climbs out"),
            ("a/../../b", "climbs out"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty"),
            ("./a", "`.`"),
            ("", "empty"),
        ] {
            let e = check_path(p).unwrap_err().to_string();
            assert!(e.contains(why), "{p}: {e}");
        }
        check_path("boatlog/2026/log.db").unwrap();
        check_path("manuals/..hidden").unwrap();
    }

    #[test]
    fn the_devices_own_names_are_reserved() {
        for (p, why) in [
            (".d3kos-packed", ".d3kos-"),
            ("boatlog/.d3kos-restore.json", ".d3kos-"),
            (".tmpA1b2", ".tmp"),
            ("manuals/.tmp-upload", ".tmp"),
            ("accounts.json", "sign in"),
            ("accounts.json.corrupt-1", "sign in"),
        ] {
            let e = check_reserved(p).unwrap_err().to_string();
            assert!(e.contains(why), "{p}: {e}");
        }
        for ok in [
            "boatlog/accounts.json",
            "manuals/d3kos-manual.pdf",
            "config/.hidden",
        ] {
            check_reserved(ok).unwrap();
        }
    }

    #[test]
    fn restored_modes_are_normalised_never_taken_as_they_come() {
        assert_eq!(file_mode(0o000), 0o600);
        assert_eq!(file_mode(0o777), 0o644);
        assert_eq!(file_mode(0o640), 0o640);
        assert_eq!(file_mode(0o7755), 0o644);
        assert_eq!(dir_mode(0o000), 0o700);
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o750), 0o750);
        assert_eq!(dir_mode(0o777), 0o755);
        assert_eq!(dir_mode(0o711), 0o755);
    }

    #[test]
    fn a_newer_format_is_refused_before_anything_else() {
        let e = Manifest::parse(br#"{"format": 99, "whatever": true}"#).unwrap_err();
        assert!(
            matches!(
                e,
                Corruption::NewerFormat {
                    found: 99,
                    supported: FORMAT
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("newer d3kOS"), "{e}");
    }
}
