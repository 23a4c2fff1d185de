//! The export queue: `/export/status` and `/export/generate` (the seed's paths), the same
//! under `/api/export/…`, and retry, delete, destinations and download. The status follows
//! the live-data rule; everything that changes the queue is the owner's.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body, Data, Segment};
use crate::backup::{self, BackupId, media};
use crate::export::worker::Exports;
use crate::export::{Destination, ExportError, Job, State as JobState, What};
use crate::http::{Owner, Reader, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/export/status", get(status))
        .route("/api/export/status", get(status))
        .route("/export/generate", post(generate))
        .route("/api/export/generate", post(generate))
        .route("/api/export/destinations", get(destinations))
        .route("/api/export/{id}", delete(remove))
        .route("/api/export/{id}/retry", post(retry))
        .route("/api/export/{id}/download", get(download))
}

pub fn api_error(e: ExportError) -> ApiError {
    let message = e.sentence();
    match e {
        ExportError::NoJob { .. } => ApiError::not_found(message),
        ExportError::NoDrive { .. } => ApiError::not_found(message),
        ExportError::Invalid(_) => ApiError::bad_request(message),
        ExportError::NotPending { .. }
        | ExportError::NotRetryable { .. }
        | ExportError::Running { .. }
        | ExportError::ReadOnlyDrive { .. } => ApiError::conflict(message),
        // A full USB drive is named in the message; a full data partition gets the one answer
        // every endpoint gives for it.
        ExportError::Full { .. } => {
            ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "no_space", message)
        }
        e if e.is_full() => ApiError::no_space(),
        e => ApiError::internal(format!("export: {e}")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::api::blocking("export", f, api_error).await
}

/// A job as the status shows it.
#[derive(Serialize)]
struct View {
    #[serde(flatten)]
    job: Job,
    /// Bytes written so far, while it runs.
    progress_bytes: Option<u64>,
    duration_ms: Option<i64>,
    /// Where to fetch it, when it was kept on the device.
    download: Option<String>,
}

fn view(job: Job, exports: &Exports) -> View {
    let download = (job.state == JobState::Done && job.destination == Destination::Device)
        .then(|| format!("/api/export/{}/download", job.id));
    View {
        progress_bytes: exports.progress.of(job.id),
        duration_ms: job.started.zip(job.finished).map(|(s, f)| f - s),
        download,
        job,
    }
}

#[derive(Serialize)]
struct Status {
    pending: Vec<View>,
    running: Option<View>,
    failed: Vec<View>,
    /// The last 100 finished, newest first.
    finished: Vec<View>,
    retry_secs: Vec<u64>,
}

async fn status(State(s): State<Shared>, _reader: Reader) -> Result<Data<Status>, ApiError> {
    let ex = s.exports.clone();
    let status = blocking(move || {
        let now = ex.queue.snapshot()?;
        let views = |jobs: Vec<Job>| jobs.into_iter().map(|j| view(j, &ex)).collect();
        Ok(Status {
            pending: views(now.pending),
            running: now.running.map(|j| view(j, &ex)),
            failed: views(now.failed),
            finished: views(now.done),
            retry_secs: ex.retry_secs.clone(),
        })
    })
    .await?;
    Ok(Data(status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// `boatlog_csv`, `engine_csv` or `backup`.
    pub what: String,
    /// For the CSV kinds: the first day (or time), none for the first entry.
    pub from: Option<String>,
    /// For the CSV kinds: the last day (included) or time, none for now.
    pub to: Option<String>,
    /// For `backup`: the backup's id.
    pub id: Option<String>,
    /// `device` (the default), `usb:UUID` or `upload:NAME`.
    pub destination: Option<String>,
}

async fn generate(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<Generate>,
) -> Result<Data<View>, ApiError> {
    let to = Destination::parse(req.destination.as_deref().unwrap_or("device"))
        .map_err(|m| ApiError::bad_request(format!("{m}.")))?;
    let now = crate::time::unix_now_ms();
    let what = match req.what.as_str() {
        kind @ ("boatlog_csv" | "engine_csv") => {
            if req.id.is_some() {
                return Err(ApiError::bad_request(
                    "A CSV export takes from and to, not id.",
                ));
            }
            let tz = crate::timezone::boat();
            let (from, to) = super::boatlog::range(req.from.as_deref(), req.to.as_deref(), &tz)?;
            if from.is_some_and(|f| f >= to.unwrap_or(now)) {
                return Err(ApiError::bad_request(
                    "from is after now: there is nothing to export yet.",
                ));
            }
            let to = to.unwrap_or(now).min(now.saturating_add(1));
            if kind == "engine_csv" {
                What::EngineCsv { from, to }
            } else {
                What::BoatlogCsv { from, to }
            }
        }
        "backup" => {
            if req.from.is_some() || req.to.is_some() {
                return Err(ApiError::bad_request(
                    "A backup export takes id, not from and to.",
                ));
            }
            let id = req
                .id
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("A backup export needs the backup's id."))?;
            let id = BackupId::parse(id).map_err(super::backup::api_error)?;
            backup::existing(&crate::backup::Paths::of(&s.config), &id)
                .map_err(super::backup::api_error)?;
            What::Backup {
                id: id.as_str().to_owned(),
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "`{other}` cannot be exported: use boatlog_csv, engine_csv or backup."
            )));
        }
    };
    let _writing = s.writing()?;
    let ex = s.exports.clone();
    let job = blocking(move || {
        let job = ex.add(what, to, now)?;
        Ok(view(job, &ex))
    })
    .await?;
    Ok(Data(job))
}

async fn retry(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<i64>,
) -> Result<Data<View>, ApiError> {
    let _writing = s.writing()?;
    let ex = s.exports.clone();
    let job = blocking(move || {
        let job = ex.queue.retry(id, crate::time::unix_now_ms())?;
        ex.wake.notify_one();
        Ok(view(job, &ex))
    })
    .await?;
    Ok(Data(job))
}

async fn remove(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<i64>,
) -> Result<Data<serde_json::Value>, ApiError> {
    let _writing = s.writing()?;
    let ex = s.exports.clone();
    blocking(move || {
        let job = ex.queue.remove(id)?;
        ex.forget_file(&job);
        Ok(())
    })
    .await?;
    Ok(Data(serde_json::json!({ "deleted": id })))
}

#[derive(Serialize)]
struct Choice {
    id: String,
    name: String,
    free_bytes: Option<u64>,
}

async fn destinations(
    State(s): State<Shared>,
    _owner: Owner,
) -> Result<Data<Vec<Choice>>, ApiError> {
    let ex = s.exports.clone();
    let choices = blocking(move || {
        let src = &ex.sources;
        let mut out = vec![Choice {
            id: "device".into(),
            name: "This device (download from here)".into(),
            free_bytes: backup::space_available(src.files.parent().unwrap_or(&src.files)),
        }];
        for m in media::removable(&src.media) {
            if m.writable() {
                out.push(Choice {
                    id: format!("usb:{}", m.uuid),
                    name: format!("USB drive {} ({})", m.uuid, m.fs),
                    free_bytes: backup::space_available(&m.mount),
                });
            }
        }
        for u in &src.uploads {
            out.push(Choice {
                id: format!("upload:{}", u.name),
                name: format!("Upload: {}", u.name),
                free_bytes: None,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Data(choices))
}

/// Streams an export kept on the device.
async fn download(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<i64>,
) -> Result<Response, ApiError> {
    let ex = s.exports.clone();
    let (job, path) = blocking(move || {
        let job = ex.queue.get(id)?;
        let path = job
            .file
            .as_ref()
            .filter(|_| job.state == JobState::Done && job.destination == Destination::Device)
            .map(|f| ex.sources.files.join(f));
        Ok((job, path))
    })
    .await?;
    let path = path.ok_or_else(|| {
        ApiError::not_found(format!(
            "Export {id} is not kept on this device: it went to {} or has not finished.",
            job.destination
        ))
    })?;
    let name = job.file.unwrap_or_default();
    let content_type = match job.what {
        What::BoatlogCsv { .. } | What::EngineCsv { .. } => "text/csv; charset=utf-8",
        What::Backup { .. } => "application/gzip",
    };
    crate::http::download::file(&path, content_type, &name)
        .await
        .map_err(|_| {
            ApiError::not_found(format!(
                "The file of export {id} is no longer on the device."
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{owned_app, send};
    use super::*;

    /// Regression: retrying or deleting an export wrote the queue in the state folder while
    /// a restore was swapping it; only a new export waited for the restore.
    #[tokio::test]
    async fn a_restore_in_progress_refuses_every_change_to_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (s, app, bearer) = owned_app(dir.path()).await;
        let (status, body) = send(
            &app,
            "POST",
            "/api/export/generate",
            &bearer,
            r#"{"what":"boatlog_csv"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]["id"]
            .as_i64()
            .unwrap();
        let restore = s.writes.clone().write_owned().await;
        for (method, path, body) in [
            (
                "POST",
                "/api/export/generate".to_owned(),
                r#"{"what":"boatlog_csv"}"#,
            ),
            ("POST", format!("/api/export/{id}/retry"), ""),
            ("DELETE", format!("/api/export/{id}"), ""),
        ] {
            let (status, answer) = send(&app, method, &path, &bearer, body).await;
            assert_eq!(status, 409, "{method} {path}: {answer}");
            assert!(answer.contains("A restore is putting"), "{answer}");
        }
        drop(restore);
        let (status, body) = send(&app, "DELETE", &format!("/api/export/{id}"), &bearer, "").await;
        assert_eq!(status, 200, "after the restore: {body}");
    }

    fn status(e: ExportError) -> (u16, String) {
        let e = api_error(e);
        (e.status.as_u16(), e.code.to_owned())
    }

    /// Regression: a full disk under an export answered 500.
    #[test]
    fn a_full_disk_or_drive_answers_507() {
        let no_space = (507, "no_space".to_owned());
        let enospc = || std::io::Error::from_raw_os_error(28);
        assert_eq!(
            status(ExportError::Full {
                where_: "the USB drive 1234-ABCD".into(),
                written: 4096,
            }),
            no_space
        );
        assert_eq!(
            status(ExportError::Io {
                path: "/data/exports/boatlog.csv".into(),
                source: enospc(),
            }),
            no_space
        );
        let sqlite_full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(
            status(ExportError::Queue {
                path: "/data/state/exports.db".into(),
                source: sqlite_full,
            }),
            no_space
        );
        // Other faults stay faults.
        assert_eq!(
            status(ExportError::Io {
                path: "/data/exports/boatlog.csv".into(),
                source: std::io::Error::from_raw_os_error(5),
            })
            .0,
            500
        );
    }
}
