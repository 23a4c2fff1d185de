//! Backup & Restore: `/api/backup/…`. Backups are named by id only; every route is the
//! owner's; one create, restore, verify or upload runs at a time and reports its progress.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body, Data, Params, Segment};
use crate::backup::jobs::{JobGuard, Jobs};
use crate::backup::{
    self, BackupError, BackupId, Kind, LastResult, Listed, Paths, Progress, Settings, media,
};
use crate::http::{Owner, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/backup/list", get(list))
        .route("/api/backup/destinations", get(destinations))
        .route("/api/backup/status", get(status))
        .route("/api/backup/create", post(create))
        .route("/api/backup/verify", post(verify))
        .route("/api/backup/restore", post(restore))
        .route("/api/backup/settings", get(settings).put(set_settings))
        .route("/api/backup/{id}", delete(remove))
        .route("/api/backup/{id}/download", get(download))
        .route(
            "/api/backup/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
}

/// Takes the daemon's one backup job slot, or says what holds it.
fn start<'a>(
    jobs: &'a Jobs,
    what: &'static str,
) -> Result<(JobGuard<'a>, std::sync::Arc<Progress>), ApiError> {
    jobs.begin(what).map_err(|running| {
        ApiError::conflict(format!(
            "A backup {} is running; try again when it has finished.",
            running.what
        ))
    })
}

/// The HTTP answer for each backup error. Messages name backups by id and archive members
/// by their path inside the archive, never a path on the device.
pub fn api_error(e: BackupError) -> ApiError {
    let message = format!("{e}.");
    match e {
        BackupError::BadId { .. } => ApiError::new(StatusCode::BAD_REQUEST, "bad_id", message),
        BackupError::NotFound { .. } => ApiError::not_found(message),
        BackupError::Corrupt { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "backup_invalid", message)
        }
        BackupError::Busy | BackupError::Exists { .. } => ApiError::conflict(message),
        BackupError::Changed { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "changed",
            "A file changed while it was being backed up: nothing was kept. Try again.",
        ),
        BackupError::NoSpace {
            needed, available, ..
        } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "no_space",
            format!(
                "{available} bytes are free where the backup goes but {needed} are needed: \
                 nothing was changed. Delete old backups or exports to make room."
            ),
        ),
        BackupError::Full { .. } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "no_space",
            "The disk filled up while the backup was written: nothing was changed. Delete old \
             backups or exports to make room.",
        ),
        e => ApiError::internal(format!("backup: {e}")),
    }
}

/// Where a request's backups are: `data` (the default, this device's data partition) or
/// `usb:UUID`, a USB drive that is plugged in now.
#[derive(Deserialize, Default)]
struct Where {
    destination: Option<String>,
}

/// `write`: the request writes there (create, delete), so the drive must take writes.
fn paths_for(s: &Shared, destination: Option<&str>, write: bool) -> Result<Paths, ApiError> {
    let home = crate::backup::Paths::of(&s.config);
    match destination {
        None | Some("data") => Ok(home),
        Some(d) => {
            let uuid = d.strip_prefix("usb:").ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{d}` is not a destination: use `data` or `usb:UUID` from /api/backup/destinations."
                ))
            })?;
            let roots = media::Roots::system(&s.config.backup.media_dir);
            let medium = media::find(&roots, uuid).ok_or_else(|| {
                ApiError::not_found(format!(
                    "No USB drive with id {uuid} is plugged in. Plug it in, wait a few seconds and try again."
                ))
            })?;
            if write && !medium.writable() {
                return Err(ApiError::conflict(format!(
                    "The USB drive {uuid} cannot be written by the helm computer: it is \
                     read-only, or formatted (ext4, for example) with owners that leave d3kOS \
                     out. Use a drive formatted FAT32 or exFAT."
                )));
            }
            Ok(home.on(&medium))
        }
    }
}

#[derive(Serialize)]
struct Destination {
    id: String,
    name: String,
    free_bytes: Option<u64>,
    read_only: bool,
}

async fn destinations(
    State(s): State<Shared>,
    _owner: Owner,
) -> Result<Data<serde_json::Value>, ApiError> {
    let home = s.config.backup_dir.clone();
    let roots = media::Roots::system(&s.config.backup.media_dir);
    let list = blocking(move || {
        let mut out = vec![Destination {
            id: "data".into(),
            name: "This device (data partition)".into(),
            free_bytes: backup::space_available(&home),
            read_only: false,
        }];
        out.extend(media::removable(&roots).into_iter().map(|m| Destination {
            id: format!("usb:{}", m.uuid),
            name: format!("USB drive {} ({})", m.uuid, m.fs),
            free_bytes: backup::space_available(&m.mount),
            read_only: m.read_only,
        }));
        Ok(out)
    })
    .await?;
    Ok(Data(serde_json::json!({ "destinations": list })))
}

/// Runs blocking backup work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::api::blocking("backup", f, api_error).await
}

#[derive(Serialize)]
struct ListAnswer {
    backups: Vec<Listed>,
    last: Option<LastResult>,
    settings: Settings,
    running: Option<RunningAnswer>,
    free_bytes: Option<u64>,
}

#[derive(Serialize)]
struct RunningAnswer {
    what: &'static str,
    done_bytes: u64,
    total_bytes: u64,
}

fn running(s: &Shared) -> Option<RunningAnswer> {
    use std::sync::atomic::Ordering::Relaxed;
    s.backup_jobs.current().map(|r| RunningAnswer {
        what: r.what,
        done_bytes: r.progress.done.load(Relaxed),
        total_bytes: r.progress.total.load(Relaxed),
    })
}

async fn list(
    State(s): State<Shared>,
    _owner: Owner,
    Params(at): Params<Where>,
) -> Result<Data<ListAnswer>, ApiError> {
    let paths = paths_for(&s, at.destination.as_deref(), false)?;
    let home = crate::backup::Paths::of(&s.config);
    let (backups, last, settings, free_bytes) = blocking(move || {
        let free = backup::space_available(&paths.backup_dir);
        Ok((
            backup::list(&paths)?,
            backup::last_result(&home),
            Settings::load(&home),
            free,
        ))
    })
    .await?;
    Ok(Data(ListAnswer {
        backups,
        last,
        settings,
        running: running(&s),
        free_bytes,
    }))
}

#[derive(Serialize)]
struct StatusAnswer {
    running: Option<RunningAnswer>,
    last: Option<LastResult>,
}

async fn status(State(s): State<Shared>, _owner: Owner) -> Data<StatusAnswer> {
    Data(StatusAnswer {
        running: running(&s),
        last: backup::last_result(&crate::backup::Paths::of(&s.config)),
    })
}

#[derive(Serialize)]
struct CreatedAnswer {
    id: BackupId,
    size: u64,
    sha256: String,
    files: u64,
    total_bytes: u64,
    deleted: Vec<BackupId>,
}

async fn create(
    State(s): State<Shared>,
    _owner: Owner,
    Params(at): Params<Where>,
) -> Result<Data<CreatedAnswer>, ApiError> {
    let paths = paths_for(&s, at.destination.as_deref(), true)?;
    let (_job, progress) = start(&s.backup_jobs, "create")?;
    let home = crate::backup::Paths::of(&s.config);
    let limits = crate::backup::Limits::of(&s.config.backup);
    let boatlog = s.boatlog.clone();
    let answer = blocking(move || {
        let now = crate::time::unix_now();
        let result = backup::create::create(&paths, Kind::Manual, now, &progress);
        let last = LastResult::of(&result, Kind::Manual, now);
        backup::record_result(&home, &last);
        backup::log_result(&boatlog, &last);
        let c = result?;
        let keep = Settings::load(&home).keep;
        let deleted = backup::retain(&paths, keep, &limits, now).unwrap_or_else(|e| {
            log::warn!("backup retention: {e}");
            Vec::new()
        });
        Ok(CreatedAnswer {
            files: c.manifest.file_count(),
            total_bytes: c.manifest.total_bytes,
            id: c.id,
            size: c.size,
            sha256: c.sha256,
            deleted,
        })
    })
    .await?;
    Ok(Data(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ById {
    pub id: String,
    pub destination: Option<String>,
}

#[derive(Serialize)]
struct Verified {
    id: BackupId,
    verified: bool,
    files: u64,
    total_bytes: u64,
}

async fn verify(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<ById>,
) -> Result<Data<Verified>, ApiError> {
    let id = BackupId::parse(&req.id).map_err(api_error)?;
    let paths = paths_for(&s, req.destination.as_deref(), false)?;
    let (_job, progress) = start(&s.backup_jobs, "verify")?;
    let limits = crate::backup::Limits::of(&s.config.backup);
    let m = blocking({
        let id = id.clone();
        move || backup::verify(&paths, &id, &limits, &progress)
    })
    .await?;
    Ok(Data(Verified {
        id,
        verified: true,
        files: m.file_count(),
        total_bytes: m.total_bytes,
    }))
}

async fn restore(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<ById>,
) -> Result<Data<backup::restore::Restored>, ApiError> {
    let id = BackupId::parse(&req.id).map_err(api_error)?;
    Ok(Data(
        restore_backup(&s, req.destination.as_deref(), id).await?,
    ))
}

/// Restores backup `id` (from the device, or from `destination`) over the state folder, and
/// has the running appliance take up what it brought; the boat log says so.
pub(super) async fn restore_backup(
    s: &Shared,
    destination: Option<&str>,
    id: BackupId,
) -> Result<backup::restore::Restored, ApiError> {
    let paths = paths_for(s, destination, false)?;
    let (_job, progress) = start(&s.backup_jobs, "restore")?;
    // The daemon's own writers of the state folder wait until the swap is done; signing in
    // and reading do not.
    let writes = s.writes.clone().write_owned().await;
    let state = s.clone();
    blocking(move || {
        let _writes = writes;
        let home = crate::backup::Paths::of(&state.config);
        let limits = crate::backup::Limits::of(&state.config.backup);
        let now = crate::time::unix_now();
        let r = backup::restore::restore(
            &paths,
            &home,
            &id,
            &limits,
            &state.config.backup.stop_units,
            now,
            &progress,
        )?;
        match crate::licence::Licence::load_or_create(
            &state.config.state_dir,
            state.config.tier,
            now.max(0) as u64,
        ) {
            Ok((l, _)) => *state.licence.blocking_lock() = l,
            Err(e) => log::error!("the restored licence could not be read: {e}"),
        }
        state.timezone.reload(crate::time::unix_now_ms());
        state.apply_engine_limits();
        let keep = Settings::load(&home).keep;
        if let Err(e) = backup::retain(&home, keep, &limits, now) {
            log::warn!("backup retention: {e}");
        }
        state.boatlog.auto(
            crate::time::unix_now_ms(),
            match &r.pre_restore {
                Some(pre) => format!(
                    "Backup {} restored; the data it replaced was kept as backup {pre}.",
                    r.id
                ),
                None => format!("Backup {} restored.", r.id),
            },
        );
        Ok(r)
    })
    .await
}

async fn remove(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<String>,
    Params(at): Params<Where>,
) -> Result<Data<serde_json::Value>, ApiError> {
    let id = BackupId::parse(&id).map_err(api_error)?;
    let paths = paths_for(&s, at.destination.as_deref(), true)?;
    blocking({
        let id = id.clone();
        move || backup::delete(&paths, &id)
    })
    .await?;
    Ok(Data(serde_json::json!({ "deleted": id })))
}

async fn settings(State(s): State<Shared>, _owner: Owner) -> Data<Settings> {
    Data(Settings::load(&crate::backup::Paths::of(&s.config)))
}

async fn set_settings(
    State(s): State<Shared>,
    _owner: Owner,
    Body(new): Body<Settings>,
) -> Result<Data<Settings>, ApiError> {
    new.check().map_err(ApiError::bad_request)?;
    let _writing = s.writing()?;
    new.save(&crate::backup::Paths::of(&s.config))
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Data(new))
}

/// Streams a backup to the owner's browser, so copies can be kept off the boat.
async fn download(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<String>,
    Params(at): Params<Where>,
) -> Result<Response, ApiError> {
    let id = BackupId::parse(&id).map_err(api_error)?;
    let paths = paths_for(&s, at.destination.as_deref(), false)?;
    let path = backup::existing(&paths, &id).map_err(api_error)?;
    crate::http::download::file(&path, "application/gzip", &format!("{id}.tar.gz"))
        .await
        .map_err(|e| api_error(BackupError::io(&path)(e)))
}

#[derive(Serialize)]
struct Uploaded {
    id: BackupId,
    size: u64,
    files: u64,
    total_bytes: u64,
}

/// Takes a backup file from the owner: streamed to a temporary file within the size limit,
/// checked whole like a restore would check it, and only then listed.
async fn upload(
    State(s): State<Shared>,
    _owner: Owner,
    body: axum::body::Body,
) -> Result<Data<Uploaded>, ApiError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let (_job, _) = start(&s.backup_jobs, "upload")?;
    let paths = crate::backup::Paths::of(&s.config);
    let limit = s.config.backup.max_upload_bytes;
    let tmp = backup::upload_path(&paths);
    let mut file = {
        let (paths, tmp) = (paths.clone(), tmp.clone());
        tokio::fs::File::from_std(blocking(move || backup::upload_file(&paths, &tmp)).await?)
    };
    let cleanup = |e: ApiError| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            cleanup(ApiError::bad_request(format!(
                "The upload broke off: {e}. Nothing was kept."
            )))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > limit {
            return Err(cleanup(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("A backup may be at most {limit} bytes. Nothing was kept."),
            )));
        }
        file.write_all(&data)
            .await
            .map_err(|e| cleanup(api_error(BackupError::io(&tmp)(e))))?;
    }
    file.sync_all()
        .await
        .map_err(|e| cleanup(api_error(BackupError::io(&tmp)(e))))?;
    drop(file);
    let limits = crate::backup::Limits::of(&s.config.backup);
    let tmp2 = tmp.clone();
    let now = crate::time::unix_now();
    let (id, m) = blocking(move || backup::accept_upload(&paths, &tmp2, &limits, now))
        .await
        .map_err(cleanup)?;
    Ok(Data(Uploaded {
        id,
        size,
        files: m.file_count(),
        total_bytes: m.total_bytes,
    }))
}
