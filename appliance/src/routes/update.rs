//! `/api/update/…`: which slot runs, which is committed, the release in each and the last
//! attempt (`status`, with the install in progress); an install the owner asks for
//! (`install`): a bundle uploaded or named by URL, after an automatic data backup; going
//! back to the previous version (`switch`); and a factory restore of the other slot from the
//! running release, after a data backup restore if asked (`factory-restore`). The root
//! helper writes; the appliance asks.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Data, Params};
use crate::backup::{self, BackupId, Kind, LastResult};
use crate::http::{Owner, Reader, Shared};
use crate::update::UpdateError;
use crate::update::client::{self, ClientError, Installed, Progress};
use crate::update::device::Device;
use crate::update::helper::{Action, Request};
use crate::update::status::{Status, status};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/update/status", get(get_status))
        .route(
            "/api/update/install",
            post(install).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/update/switch", post(switch))
        .route("/api/update/factory-restore", post(factory_restore))
}

fn api_error(e: UpdateError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "update_unavailable",
        format!("the update state cannot be read: {e}"),
    )
}

#[derive(Serialize)]
struct StatusAnswer {
    #[serde(flatten)]
    status: Status,
    /// The install running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    installing: Option<Progress>,
}

async fn get_status(
    State(s): State<Shared>,
    _reader: Reader,
) -> Result<Data<StatusAnswer>, ApiError> {
    let described = s.config.update_device.clone();
    let st = crate::api::blocking(
        "update status",
        move || {
            let d = match described {
                Some(p) => Device::load(&p)?,
                None => Device::discover()?,
            };
            status(&d)
        },
        api_error,
    )
    .await?;
    Ok(Data(StatusAnswer {
        status: st,
        installing: s.update.current(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InstallQuery {
    /// Install a release that is not newer than the running one (going back).
    #[serde(default)]
    force: bool,
}

/// The JSON form: the bundle is downloaded by the device.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FromUrl {
    url: String,
}

#[derive(Serialize)]
struct InstallAnswer {
    #[serde(flatten)]
    installed: Installed,
    /// The automatic backup of the data taken first.
    backup: BackupId,
    /// The device restarts into the new release to try it.
    restarting: bool,
}

/// The longest JSON request taken.
const JSON_MAX: usize = 16 * 1024;

/// The update job slot, or 409 saying what holds it.
fn take_slot(s: &Shared) -> Result<client::Guard<'_>, ApiError> {
    client::start(&s.update).map_err(|running| {
        ApiError::conflict(format!(
            "An update is being installed ({}, since {}); wait for it to finish.",
            running.phase,
            crate::time::rfc3339(running.started_at)
        ))
    })
}

fn client_error(e: ClientError) -> ApiError {
    let message = format!("{e}");
    match e {
        ClientError::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "update_unavailable",
            message,
        ),
        ClientError::Refused { pending: true, .. } => ApiError::conflict(message),
        ClientError::Refused { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bundle_refused", message)
        }
        ClientError::Upload(_) => ApiError::bad_request(format!(
            "{message}. The running system was not touched; upload the bundle again."
        )),
        ClientError::Failed(_) | ClientError::Gone(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "update_failed",
            format!("{message}. The running system was not touched."),
        ),
    }
}

/// `POST /api/update/install[?force=true]`: the bundle as the body
/// (`application/octet-stream`), or `{"url": "https://…"}` as JSON. The owner's only.
async fn install(
    State(s): State<Shared>,
    _owner: Owner,
    Params(q): Params<InstallQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Data<InstallAnswer>, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let guard = take_slot(&s)?;
    let (url, upload) = if json {
        let bytes = axum::body::to_bytes(body, JSON_MAX)
            .await
            .map_err(|_| ApiError::bad_request("the request is not JSON of at most 16 KiB"))?;
        let req: FromUrl = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the request: {e}")))?;
        if !(req.url.starts_with("https://") || req.url.starts_with("http://")) {
            return Err(ApiError::bad_request(format!(
                "`{}` is not an http(s) URL",
                req.url
            )));
        }
        (Some(req.url), None)
    } else {
        (None, Some(body.into_data_stream()))
    };

    // The data first: whatever the update does, the boat's records are in a backup.
    let backup = pre_update_backup(&s).await?;
    client::set(&guard, "installing", 0, 0);
    let installed = client::install(
        &s.config.update_helper,
        &Request {
            action: Action::Install,
            force: q.force,
            url,
            reboot: true,
        },
        upload,
        &guard,
        "installing",
    )
    .await
    .map_err(client_error)?;
    Ok(Data(InstallAnswer {
        installed,
        backup,
        restarting: true,
    }))
}

#[derive(Serialize)]
struct Restarting {
    #[serde(flatten)]
    done: Installed,
    /// The data backup restored first.
    #[serde(skip_serializing_if = "Option::is_none")]
    restored: Option<BackupId>,
    restarting: bool,
}

/// Asks the helper for `action` (no bundle), the job slot held as for an install.
async fn ask(
    s: &Shared,
    action: Action,
    phase: &'static str,
    before: Option<BackupId>,
) -> Result<Data<Restarting>, ApiError> {
    let guard = take_slot(s)?;
    let restored = match before {
        Some(id) => {
            client::set(&guard, "restoring-backup", 0, 0);
            Some(super::backup::restore_backup(s, None, id).await?.id)
        }
        None => None,
    };
    client::set(&guard, phase, 0, 0);
    let done = client::install(
        &s.config.update_helper,
        &Request {
            action,
            force: false,
            url: None,
            reboot: true,
        },
        None::<futures_util::stream::Empty<Result<Vec<u8>, std::io::Error>>>,
        &guard,
        phase,
    )
    .await
    .map_err(|e| match e {
        ClientError::Refused {
            message,
            pending: false,
        } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message),
        e => client_error(e),
    })?;
    Ok(Data(Restarting {
        done,
        restored,
        restarting: true,
    }))
}

/// `POST /api/update/switch`: back to the release in the other slot, which must have run
/// healthy before; tried once, then committed. The owner's only.
async fn switch(State(s): State<Shared>, _owner: Owner) -> Result<Data<Restarting>, ApiError> {
    ask(&s, Action::Switch, "switching", None).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FactoryRestore {
    /// A data backup to restore first.
    #[serde(default)]
    backup: Option<String>,
}

/// `POST /api/update/factory-restore {"backup": ID?}`: the running release copied into the
/// other slot, tried once, then committed; with `backup`, that data backup is restored
/// first (the data it replaces kept as a backup). The owner's only.
async fn factory_restore(
    State(s): State<Shared>,
    _owner: Owner,
    body: axum::body::Bytes,
) -> Result<Data<Restarting>, ApiError> {
    let req: FactoryRestore = if body.is_empty() {
        FactoryRestore::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the request: {e}")))?
    };
    let backup = req
        .backup
        .as_deref()
        .map(BackupId::parse)
        .transpose()
        .map_err(super::backup::api_error)?;
    ask(&s, Action::FactoryRestore, "copying", backup).await
}

/// The automatic backup before an update, in the backup job slot like any other.
async fn pre_update_backup(s: &Shared) -> Result<BackupId, ApiError> {
    let (_job, progress) = s.backup_jobs.begin("create").map_err(|running| {
        ApiError::conflict(format!(
            "A backup {} is running; try the update again when it has finished.",
            running.what
        ))
    })?;
    let home = backup::Paths::of(&s.config);
    let limits = backup::Limits::of(&s.config.backup);
    let boatlog = s.boatlog.clone();
    crate::api::blocking(
        "pre-update backup",
        move || {
            let now = crate::time::unix_now();
            let result = backup::create::create(&home, Kind::PreUpdate, now, &progress);
            let last = LastResult::of(&result, Kind::PreUpdate, now);
            backup::record_result(&home, &last);
            backup::log_result(&boatlog, &last);
            let created = result?;
            let keep = backup::Settings::load(&home).keep;
            if let Err(e) = backup::retain(&home, keep, &limits, now) {
                log::warn!("backup retention: {e}");
            }
            Ok(created.id)
        },
        |e| {
            let api = super::backup::api_error(e);
            ApiError {
                message: format!(
                    "The automatic backup before the update failed, so nothing was installed: {}",
                    api.message
                ),
                ..api
            }
        },
    )
    .await
}
