//! Free space and sizes on the file systems backups are written to and restored on.

use std::path::Path;

use super::BackupError;

/// Bytes an unprivileged writer may still use on the file system holding `path`.
pub fn available(path: &Path) -> Result<u64, BackupError> {
    let s = rustix::fs::statvfs(path).map_err(|e| BackupError::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Refuses early, before anything is written, when `needed` bytes do not fit.
pub fn ensure(path: &Path, needed: u64) -> Result<(), BackupError> {
    let available = available(path)?;
    if needed > available {
        return Err(BackupError::NoSpace {
            path: path.to_owned(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The device id of the file system holding `path`.
pub fn device(path: &Path) -> Result<u64, BackupError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.dev())
        .map_err(BackupError::io(path))
}

/// The bytes of every regular file under `dir` (0 when it does not exist).
pub fn tree_size(dir: &Path) -> Result<u64, BackupError> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io(&d)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(BackupError::io(&d))?;
            let t = entry.file_type().map_err(BackupError::io(&d))?;
            if t.is_dir() {
                stack.push(entry.path());
            } else if t.is_file() {
                total += entry.metadata().map_err(BackupError::io(&d))?.len();
            }
        }
    }
    Ok(total)
}
