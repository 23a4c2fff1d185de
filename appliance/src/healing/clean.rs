//! Freeing space from the known-safe targets only: exports beyond their retention, backups
//! beyond `keep` (never the newest good one), the journal beyond its size and apt's
//! package cache. Never the boat's data, never anything it does not know.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::backup;
use crate::export::worker::Exports;

/// Where the targets are.
pub struct Targets {
    pub exports: Arc<Exports>,
    pub backups: backup::Paths,
    pub limits: backup::Limits,
    /// The journal's folder and apt's cache, on the device; the root-run unit cleans them.
    pub journal_dir: PathBuf,
    pub apt_cache_dir: PathBuf,
}

/// An export file not named by any job, untouched this long, is beyond retention (a job
/// running now writes its file under its own name, listed in the queue).
const ORPHAN_AGE: Duration = Duration::from_secs(3_600);

/// What one cleaning did, target by target.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cleaned {
    pub lines: Vec<String>,
}

/// Whether `path` (or, when it is not there yet, its nearest folder that is) is on the
/// same file system as `mount`.
fn on(path: &Path, mount: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(mount) else {
        return false;
    };
    path.ancestors()
        .find_map(|p| std::fs::metadata(p).ok())
        .is_some_and(|a| a.dev() == m.dev())
}

/// The files under `dir`, and their bytes.
fn size_of(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Exports beyond retention: finished jobs beyond the queue's history, and files in the
/// exports folder that no job names.
pub fn exports(ex: &Exports, now: std::time::SystemTime) -> Result<(usize, u64), String> {
    let mut files = 0;
    let mut bytes = 0;
    let dir = &ex.sources.files;
    let before = size_of(dir);
    for old in ex.queue.trim().map_err(|e| e.to_string())? {
        ex.forget_file(&old);
        files += 1;
    }
    let snap = ex.queue.snapshot().map_err(|e| e.to_string())?;
    let named: std::collections::BTreeSet<String> = snap
        .pending
        .iter()
        .chain(snap.running.iter())
        .chain(snap.failed.iter())
        .chain(snap.done.iter())
        .filter_map(|j| j.file.clone())
        .flat_map(|f| [format!("{f}.sha256"), f])
        .collect();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else { continue };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= ORPHAN_AGE);
            if meta.is_file()
                && old
                && !named.contains(&name)
                && std::fs::remove_file(e.path()).is_ok()
            {
                files += 1;
            }
        }
    }
    bytes += before.saturating_sub(size_of(dir));
    Ok((files, bytes))
}

/// Backups beyond the owner's `keep`, oldest first, never the newest that verifies.
pub fn backups(
    paths: &backup::Paths,
    limits: &backup::Limits,
    now: i64,
) -> Result<(usize, u64), String> {
    let _lock = backup::Lock::take(paths).map_err(|e| e.to_string())?;
    let keep = backup::Settings::load(paths).keep;
    let before = size_of(&paths.backup_dir);
    let gone = backup::retain(paths, keep, limits, now).map_err(|e| e.to_string())?;
    Ok((
        gone.len(),
        before.saturating_sub(size_of(&paths.backup_dir)),
    ))
}

/// The root-run unit that vacuums the journal to `keep_mib` and empties apt's cache
/// (rootfs-overlay/usr/lib/systemd/system/d3kos-clean@.service).
pub fn system_unit(keep_mib: u64) -> String {
    format!("d3kos-clean@{keep_mib}.service")
}

/// Cleans what lives on `mount` of the known-safe targets.
pub async fn clean(t: &Targets, mount: &Path, journal_keep_mib: u64) -> Cleaned {
    let mut out = Cleaned::default();
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
    if on(&t.exports.sources.files, mount) {
        let ex = t.exports.clone();
        let r = tokio::task::spawn_blocking(move || exports(&ex, std::time::SystemTime::now()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        out.lines.push(match r {
            Ok((n, b)) => format!("exports beyond retention: {n} removed, {} freed", mib(b)),
            Err(e) => format!("exports beyond retention: not cleaned: {e}"),
        });
    }
    if on(&t.backups.backup_dir, mount) {
        let (paths, limits) = (t.backups.clone(), t.limits);
        let now = crate::time::unix_now();
        let r = tokio::task::spawn_blocking(move || backups(&paths, &limits, now))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        out.lines.push(match r {
            Ok((n, b)) => format!("backups beyond keep: {n} removed, {} freed", mib(b)),
            Err(e) => format!("backups beyond keep: not cleaned: {e}"),
        });
    }
    if on(&t.journal_dir, mount) || on(&t.apt_cache_dir, mount) {
        let before = size_of(&t.journal_dir) + size_of(&t.apt_cache_dir);
        let unit = system_unit(journal_keep_mib);
        let r =
            crate::systemd::job(crate::systemd::Job::Start, &unit, Duration::from_secs(60)).await;
        let after = size_of(&t.journal_dir) + size_of(&t.apt_cache_dir);
        out.lines.push(match r {
            Ok(()) => format!(
                "journal beyond {journal_keep_mib} MiB and apt's cache: {} freed",
                mib(before.saturating_sub(after))
            ),
            Err(e) => format!("journal and apt's cache: not cleaned: {e}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_unit_carries_the_journal_size() {
        assert_eq!(system_unit(16), "d3kos-clean@16.service");
    }
}
