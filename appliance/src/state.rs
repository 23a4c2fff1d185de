//! State files on the data partition: written atomically (temporary file, fsync, rename,
//! fsync of the folder), and never silently replaced when they cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} could not be read ({reason}); it was moved aside to {}", path.display(), moved_to.display())]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
}

/// Whether `e` says the disk is full. The temporary file's errors come wrapped with its
/// path, so the OS error number is not on the outside: the kind is.
pub fn is_full(e: &StateError) -> bool {
    match e {
        StateError::Io { source, .. } => io_full(source),
        StateError::Corrupt { .. } => false,
    }
}

/// Whether an I/O error says the disk is full (ENOSPC), bare or wrapped.
pub fn io_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull
}

/// Writes `bytes` to `path` so that a power cut leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomic_mode(path, bytes, None)
}

/// [`write_atomic`], the file given `mode` before it takes the name (`None`: 0600, or
/// nothing on a file system without modes).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("state serializes");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON state file. `Ok(None)` when it does not exist. When it exists but cannot be
/// parsed it is renamed to `NAME.corrupt-UNIXTIME` (kept for inspection and recovery) and
/// the error says so; the caller decides how to go on and must report it.
pub fn load<T: DeserializeOwned>(path: &Path, now: u64) -> Result<Option<T>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let mut moved = path.as_os_str().to_owned();
            moved.push(format!(".corrupt-{now}"));
            let moved_to = PathBuf::from(moved);
            std::fs::rename(path, &moved_to).map_err(|source| StateError::Io {
                path: path.to_owned(),
                source,
            })?;
            Err(StateError::Corrupt {
                path: path.to_owned(),
                moved_to,
                reason: e.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        assert_eq!(load::<Vec<u32>>(&p, 1).unwrap(), None);
        save(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(load::<Vec<u32>>(&p, 1).unwrap(), Some(vec![1, 2]));
        std::fs::write(&p, b"{ half a fi").unwrap();
        let e = load::<Vec<u32>>(&p, 42).unwrap_err();
        assert!(matches!(e, StateError::Corrupt { .. }));
        assert!(!p.exists());
        assert_eq!(
            std::fs::read(dir.path().join("x.json.corrupt-42")).unwrap(),
            b"{ half a fi"
        );
    }
}
