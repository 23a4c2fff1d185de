//! Restoring a backup: unpack and check it beside the live data, keep what stays with the
//! device, stop the services that hold the data, swap the two folders in one
//! `renameat2(RENAME_EXCHANGE)`, start the services, and pack the replaced data into a
//! pre-restore backup. A power cut at any point leaves the old data or the new, never a
//! mix; [`recover`] finishes or undoes what was cut off.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::create::{PACKED_MARKER, RESTORE_MARKER};
use super::read::{self, Sink};
use super::{
    BackupError, BackupId, Kind, Limits, Lock, Manifest, Paths, Progress, space, sync_dir,
};
use crate::crashpoint;
use crate::licence::Licence;

/// Kept from the running device whatever the backup holds.
const ACCOUNTS: &str = "accounts.json";
/// Room left over on top of what a restore writes.
const MARGIN: u64 = 16 << 20;

/// Written into the staging folder before anything is unpacked; it travels with the new
/// data through the swap and is removed when the restore is done.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    backup: String,
    units: Vec<String>,
    started: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub id: BackupId,
    pub files: u64,
    pub total_bytes: u64,
    /// The backup the replaced data was kept in.
    pub pre_restore: Option<BackupId>,
    /// What went wrong after the data was swapped in (a service that did not start, the
    /// pre-restore backup not written); the restore itself stands.
    pub problems: Vec<String>,
}

/// Restores backup `id` from `paths` over the state folder, stopping and starting `units`
/// around the swap; the replaced data is kept as a backup in `home` (the device's own
/// backup folder, also when the backup came from a USB drive). The caller keeps other
/// writers of the state folder out meanwhile.
pub fn restore(
    paths: &Paths,
    home: &Paths,
    id: &BackupId,
    limits: &Limits,
    units: &[String],
    now: i64,
    progress: &Progress,
) -> Result<Restored, BackupError> {
    // The device's own folder guards the staging and replaced data and takes the
    // pre-restore backup; a USB drive's folder, held too, keeps the archive from being
    // deleted while it is read.
    let lock = Lock::take(home)?;
    let _source = if paths.backup_dir == home.backup_dir {
        None
    } else {
        Some(Lock::take(paths)?)
    };
    let archive = super::existing(paths, id)?;
    let expected =
        read::sidecar(&paths.sidecar(id), id).map_err(|reason| BackupError::Corrupt {
            id: id.to_string(),
            reason,
        })?;
    std::fs::create_dir_all(&paths.state_dir).map_err(BackupError::io(&paths.state_dir))?;
    let staging = paths.staging();
    if staging.exists() || paths.previous().exists() {
        // Left by a restore that was cut off; recover() deals with it first.
        return Err(BackupError::Busy);
    }
    let marker = Marker {
        backup: id.to_string(),
        units: units.to_vec(),
        started: crate::time::rfc3339(now),
    };
    let manifest = match stage(paths, id, &archive, &expected, limits, &marker, progress) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(paths.staging_tmp());
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if let Err(e) = crate::systemd::change_units("stop", units) {
        let _ = std::fs::remove_dir_all(&staging);
        // Some may have stopped before one failed.
        let _ = crate::systemd::change_units("start", units);
        return Err(BackupError::Systemd(format!("{e}; nothing was changed")));
    }
    crashpoint::reached("restore: services stopped");
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &staging,
        rustix::fs::CWD,
        &paths.state_dir,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        let _ = crate::systemd::change_units("start", units);
        BackupError::Io {
            path: paths.state_dir.clone(),
            source: e.into(),
        }
    })?;
    sync_parent(&paths.state_dir)?;
    crashpoint::reached("restore: swapped");
    let mut problems = Vec::new();
    settle(paths)?;
    if let Err(e) = crate::systemd::change_units("start", units) {
        problems.push(e);
    }
    let pre_restore = match pack_previous(home, now) {
        Ok(id) => id,
        Err(e) => {
            problems.push(format!(
                "the replaced data is kept in {} but could not be packed into a backup: {e}",
                paths.previous().display()
            ));
            None
        }
    };
    drop(lock);
    Ok(Restored {
        id: id.clone(),
        files: manifest.file_count(),
        total_bytes: manifest.total_bytes,
        pre_restore,
        problems,
    })
}

/// Unpacks and checks the archive into the staging folder, with the device's own
/// installation id and accounts put in; returns the manifest.
fn stage(
    paths: &Paths,
    id: &BackupId,
    archive: &Path,
    expected: &str,
    limits: &Limits,
    marker: &Marker,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    let tmp = paths.staging_tmp();
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(BackupError::io(&tmp))?;
    // It becomes the state folder.
    super::set_mode(&tmp, super::DIR_MODE)?;
    crate::state::save(&tmp.join(RESTORE_MARKER), marker)?;
    let staging = paths.staging();
    std::fs::rename(&tmp, &staging).map_err(BackupError::io(&staging))?;
    sync_parent(&staging)?;
    crashpoint::reached("restore: staging made");
    if space::device(&staging)? != space::device(&paths.state_dir)? {
        return Err(BackupError::NotOneFileSystem {
            state: paths.state_dir.clone(),
            staging,
        });
    }
    let mut sink = Extract {
        root: staging.clone(),
        live: paths.state_dir.clone(),
        dir_modes: Vec::new(),
        progress,
    };
    let (manifest, _) = read::read(archive, id, Some(expected), limits, &mut sink)?;
    // Folder modes last: a read-only folder must first be filled.
    for (dir, mode) in sink.dir_modes.iter().rev() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(*mode))
            .map_err(BackupError::io(dir))?;
    }
    carry_over(&paths.state_dir, &staging)?;
    super::adopt(&staging, &paths.state_dir)?;
    let f = File::open(&staging).map_err(BackupError::io(&staging))?;
    rustix::fs::syncfs(&f).map_err(|e| BackupError::Io {
        path: staging.clone(),
        source: e.into(),
    })?;
    crashpoint::reached("restore: unpacked and checked");
    Ok(manifest)
}

/// What stays with the device: its installation id (never taken from a backup), the
/// onboarding resets it has used, and the owner accounts.
fn carry_over(live: &Path, staged: &Path) -> Result<(), BackupError> {
    let live_licence: Option<Licence> = crate::state::load(&Licence::path(live), 0)?;
    if let Some(live_licence) = live_licence {
        let staged_path = Licence::path(staged);
        let restored: Option<Licence> = crate::state::load(&staged_path, 0).ok().flatten();
        let licence = match restored {
            Some(l) => Licence {
                installation_id: live_licence.installation_id.clone(),
                onboarding_resets_used: l
                    .onboarding_resets_used
                    .max(live_licence.onboarding_resets_used),
                ..l
            },
            None => live_licence,
        };
        // A licence.json that does not parse was moved aside by load(); the device's
        // own takes its place.
        crate::state::save(&staged_path, &licence)?;
    }
    let accounts = live.join(ACCOUNTS);
    let staged_accounts = staged.join(ACCOUNTS);
    // Backups never hold accounts, but an archive from elsewhere might: who may sign in is
    // never taken from one.
    match std::fs::remove_file(&staged_accounts) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io(&staged_accounts)(e)),
    }
    match std::fs::read(&accounts) {
        Ok(bytes) => {
            crate::state::write_atomic(&staged_accounts, &bytes)?;
            let mode = std::fs::metadata(&accounts)
                .map_err(BackupError::io(&accounts))?
                .permissions();
            std::fs::set_permissions(&staged_accounts, mode)
                .map_err(BackupError::io(&staged_accounts))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io(&accounts)(e)),
    }
    Ok(())
}

/// After the swap: the marker leaves the live data, and the replaced data moves to
/// `.previous` to be packed.
fn settle(paths: &Paths) -> Result<(), BackupError> {
    let marker = paths.state_dir.join(RESTORE_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io(&marker)(e)),
    }
    sync_dir(&paths.state_dir)?;
    crashpoint::reached("restore: marker removed");
    let staging = paths.staging();
    if staging.exists() {
        let previous = paths.previous();
        std::fs::rename(&staging, &previous).map_err(BackupError::io(&previous))?;
        sync_parent(&previous)?;
        crashpoint::reached("restore: replaced data set aside");
    }
    Ok(())
}

/// Packs the data a restore replaced into a pre-restore backup, then removes it. The id is
/// chosen and written down first, so a pack cut off and done again makes one backup, not
/// two. An archive already under the written id counts as that pack only if it is the
/// pre-restore backup of that name: the replaced data is never removed on the word of a
/// file alone.
fn pack_previous(paths: &Paths, now: i64) -> Result<Option<BackupId>, BackupError> {
    let previous = paths.previous();
    if !previous.exists() {
        return Ok(None);
    }
    let packed = previous.join(PACKED_MARKER);
    let chosen = std::fs::read_to_string(&packed)
        .ok()
        .and_then(|name| BackupId::parse(name.trim()).ok())
        .filter(|id| {
            let archive = paths.archive(id);
            !archive.exists()
                || read::manifest_of(&archive)
                    .is_ok_and(|m| m.kind == Kind::PreRestore && m.name == id.as_str())
        });
    let id = match chosen {
        Some(id) => id,
        None => {
            let id = super::create::free_id(paths, now);
            crate::state::write_atomic(&packed, id.as_str().as_bytes())?;
            id
        }
    };
    if !paths.archive(&id).exists() {
        super::create::write(
            paths,
            &previous,
            Kind::PreRestore,
            now,
            &id,
            &Progress::default(),
        )?;
        crashpoint::reached("restore: replaced data packed");
    }
    std::fs::remove_dir_all(&previous).map_err(BackupError::io(&previous))?;
    sync_parent(&previous)?;
    Ok(Some(id))
}

/// Finishes or undoes a restore that was cut off (see the module documentation); one line
/// per thing done.
pub fn recover(paths: &Paths, _limits: &Limits) -> Vec<String> {
    let mut said = Vec::new();
    let tmp = paths.staging_tmp();
    let staging = paths.staging();
    let previous = paths.previous();
    let live_marker = paths.state_dir.join(RESTORE_MARKER);
    if !(tmp.exists() || staging.exists() || previous.exists() || live_marker.exists()) {
        return said;
    }
    let Ok(_lock) = Lock::take(paths) else {
        // Another process is restoring right now; what it left is its own.
        return said;
    };
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
        said.push(
            "removed the staging folder of a restore that was cut off before it began".into(),
        );
    }
    let marker_of = |dir: &Path| -> Option<Marker> {
        crate::state::load(&dir.join(RESTORE_MARKER), 0)
            .ok()
            .flatten()
    };
    if let Some(m) = marker_of(&paths.state_dir) {
        // Cut off after the swap: the restored data is live.
        match settle(paths) {
            Ok(()) => said.push(format!(
                "finished the restore of {} that was cut off after its data was swapped in",
                m.backup
            )),
            Err(e) => said.push(format!("could not finish the restore of {}: {e}", m.backup)),
        }
        if let Err(e) = crate::systemd::change_units("start", &m.units) {
            said.push(e);
        }
    } else if staging.exists() {
        match marker_of(&staging) {
            Some(m) => {
                // Cut off before the swap: nothing live was changed.
                let _ = std::fs::remove_dir_all(&staging);
                said.push(format!(
                    "a restore of {} was cut off before it changed anything; the data is as it was",
                    m.backup
                ));
                if let Err(e) = crate::systemd::change_units("start", &m.units) {
                    said.push(e);
                }
            }
            None => {
                // Cut off after the marker left the live data: this is the replaced data.
                if let Err(e) = settle(paths) {
                    said.push(format!("could not set the replaced data aside: {e}"));
                }
            }
        }
    }
    match pack_previous(paths, crate::time::unix_now()) {
        Ok(Some(id)) => said.push(format!("kept the data a restore replaced as backup {id}")),
        Ok(None) => {}
        Err(e) => said.push(format!(
            "the data a restore replaced is still in {} and could not be packed: {e}",
            previous.display()
        )),
    }
    said
}

/// Unpacks into the staging folder. Paths were checked by the reader; files are created
/// new, never through an existing name, and only folders this sink made lie on the way.
struct Extract<'a> {
    root: PathBuf,
    live: PathBuf,
    dir_modes: Vec<(PathBuf, u32)>,
    progress: &'a Progress,
}

impl Sink for Extract<'_> {
    fn begin(&mut self, m: &Manifest) -> Result<(), BackupError> {
        // The unpacked data, and the pre-restore backup of what it replaces.
        let needed =
            m.total_bytes + 4096 * m.dirs.len() as u64 + space::tree_size(&self.live)? + MARGIN;
        space::ensure(&self.root, needed)?;
        self.progress.start(m.total_bytes);
        Ok(())
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError> {
        let dir = self.root.join(path);
        std::fs::create_dir_all(&dir).map_err(BackupError::io(&dir))?;
        self.dir_modes.push((dir, mode));
        Ok(())
    }

    fn file(
        &mut self,
        path: &str,
        mode: u32,
        mtime: i64,
        data: &mut dyn Read,
    ) -> Result<(), BackupError> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(BackupError::io(parent))?;
        }
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&target)
            .map_err(BackupError::io(&target))?;
        read::copy_member(data, &mut f, &target, Some(self.progress))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(BackupError::io(&target))?;
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
        f.set_modified(when).map_err(BackupError::io(&target))?;
        crashpoint::reached("restore: file unpacked");
        Ok(())
    }
}

fn sync_parent(path: &Path) -> Result<(), BackupError> {
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_marker_naming_another_backup_never_discards_the_replaced_data() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_dir: dir.path().join("state"),
            backup_dir: dir.path().join("backups"),
        };
        std::fs::create_dir_all(paths.state_dir.join("boatlog")).unwrap();
        std::fs::write(paths.state_dir.join("boatlog/log.txt"), "an older day").unwrap();
        let t0 = 1_795_941_000;
        let other =
            super::super::create::create(&paths, Kind::Manual, t0, &Progress::default()).unwrap();
        // The data a restore replaced, with a marker that names the unrelated backup (as an
        // archive could once carry one in).
        let previous = paths.previous();
        std::fs::create_dir_all(previous.join("boatlog")).unwrap();
        std::fs::write(previous.join("boatlog/log.txt"), "what was replaced").unwrap();
        std::fs::write(previous.join(PACKED_MARKER), other.id.as_str()).unwrap();
        let packed = pack_previous(&paths, t0 + 60).unwrap().unwrap();
        assert_ne!(
            packed, other.id,
            "the unrelated backup is not taken for the pack"
        );
        assert!(!previous.exists());
        let m = read::manifest_of(&paths.archive(&packed)).unwrap();
        assert_eq!(m.kind, Kind::PreRestore);
        assert!(m.files.iter().any(|f| f.path == "boatlog/log.txt"));
        let limits = Limits {
            max_total_bytes: 1 << 30,
        };
        for id in [&packed, &other.id] {
            super::super::verify(&paths, id, &limits, &Progress::default()).unwrap();
        }
    }
}
