//! The boat log: `/api/boatlog` (pages, add, delete), recordings, and the CSV export.
//! Reading follows the live-data rule; writing is the owner's.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body, Data, Params, Segment};
use crate::boatlog::{Boatlog, BoatlogError, Cursor, Entry, Kind, NewEntry, Query as LogQuery};
use crate::http::{Owner, Reader, Shared};

pub fn routes(max_audio_bytes: u64) -> Router<Shared> {
    Router::new()
        .route("/api/boatlog", get(list).post(add))
        .route("/api/boatlog/export.csv", get(export_csv))
        .route("/api/boatlog/{id}", get(one).delete(remove))
        .route(
            "/api/boatlog/{id}/audio",
            get(audio)
                .put(set_audio)
                .layer(DefaultBodyLimit::max(max_audio_bytes as usize + 1)),
        )
}

/// The HTTP answer for each boat log error; messages never name the device's files.
pub fn api_error(e: BoatlogError) -> ApiError {
    match e {
        BoatlogError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", m),
        BoatlogError::NotFound { .. } | BoatlogError::NoAudio { .. } => {
            ApiError::not_found(format!("{e}."))
        }
        BoatlogError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("{e}."))
        }
        BoatlogError::Full => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "no_space",
            "The data partition is full: the entry was not written. Delete old backups or \
             exports to make room.",
        ),
        BoatlogError::Db(crate::db::DbError::Newer { found, known, .. }) => {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "newer_data",
                format!(
                    "The boat log was written by a newer d3kOS (schema {found}; this version \
                     knows up to {known}) and is left untouched. Update d3kOS, or restore a \
                     backup made by this version."
                ),
            );
            err.detail = Some(e.to_string());
            err
        }
        e => ApiError::internal(format!("boat log: {e}")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BoatlogError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::api::blocking("boat log", f, api_error).await
}

/// An entry as the web UI shows it: UTC and the boat's local time.
#[derive(Serialize)]
pub struct View {
    #[serde(flatten)]
    entry: Entry,
    time: String,
    local_time: String,
    utc_offset: String,
}

fn view(entry: Entry, tz: &jiff::tz::TimeZone) -> View {
    let local = crate::timezone::local(entry.at, tz);
    View {
        time: crate::timezone::utc(entry.at),
        local_time: local.time,
        utc_offset: local.offset,
        entry,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListParams {
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

/// A time range from the request: `from` and `to` as dates (the boat's days, `to`
/// included) or RFC 3339 times; `from` before `to`.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
    tz: &jiff::tz::TimeZone,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = from
        .filter(|s| !s.is_empty())
        .map(|s| crate::timezone::parse_moment(s, tz))
        .transpose()
        .map_err(|m| ApiError::bad_request(format!("from: {m}.")))?;
    let to = to
        .filter(|s| !s.is_empty())
        .map(|s| crate::timezone::parse_end(s, tz))
        .transpose()
        .map_err(|m| ApiError::bad_request(format!("to: {m}.")))?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::bad_request(
            "from must come before to: nothing lies in that range.",
        ));
    }
    Ok((from, to))
}

#[derive(Serialize)]
struct PageAnswer {
    entries: Vec<View>,
    next: Option<String>,
    time_zone: String,
}

async fn list(
    State(s): State<Shared>,
    _reader: Reader,
    Params(p): Params<ListParams>,
) -> Result<Data<PageAnswer>, ApiError> {
    let tz = crate::timezone::boat();
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), &tz)?;
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            Kind::parse(k).ok_or_else(|| {
                ApiError::bad_request(format!("`{k}` is not a kind: use text, voice or auto."))
            })
        })
        .transpose()?;
    let before = p
        .before
        .as_deref()
        .map(Cursor::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("{e}.")))?;
    let q = LogQuery {
        from,
        to,
        kind,
        before,
        limit: p.limit.unwrap_or(50),
    };
    let log = s.boatlog.clone();
    let page = blocking(move || log.page(&q)).await?;
    Ok(Data(PageAnswer {
        entries: page.entries.into_iter().map(|e| view(e, &tz)).collect(),
        next: page.next,
        time_zone: crate::timezone::name(&tz),
    }))
}

async fn one(
    State(s): State<Shared>,
    _reader: Reader,
    Segment(id): Segment<i64>,
) -> Result<Data<View>, ApiError> {
    let log = s.boatlog.clone();
    let e = blocking(move || log.get(id)).await?;
    Ok(Data(view(e, &crate::timezone::boat())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddEntry {
    pub text: String,
    /// `text` (the default) or `voice`; the appliance writes `auto` entries itself.
    pub kind: Option<Kind>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub engine_hours: Option<f64>,
}

async fn add(
    State(s): State<Shared>,
    Owner(user): Owner,
    Body(req): Body<AddEntry>,
) -> Result<Data<View>, ApiError> {
    if req.kind == Some(Kind::Auto) {
        return Err(ApiError::bad_request(
            "auto entries are written by the helm computer itself: use text or voice.",
        ));
    }
    let _writing = s.writing()?;
    let e = NewEntry {
        at: crate::time::unix_now_ms(),
        kind: req.kind,
        text: req.text,
        author: user,
        latitude: req.latitude,
        longitude: req.longitude,
        engine_hours: req.engine_hours,
    };
    let log = s.boatlog.clone();
    let entry = blocking(move || log.add(&e)).await?;
    Ok(Data(view(entry, &crate::timezone::boat())))
}

async fn remove(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<i64>,
) -> Result<Data<serde_json::Value>, ApiError> {
    let _writing = s.writing()?;
    let log = s.boatlog.clone();
    blocking(move || log.delete(id)).await?;
    Ok(Data(serde_json::json!({ "deleted": id })))
}

async fn set_audio(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<i64>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Data<View>, ApiError> {
    let limit = s.config.boatlog.max_audio_bytes;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            api_error(BoatlogError::TooLarge {
                size: limit + 1,
                limit,
            })
        } else {
            ApiError::bad_request(format!("The recording did not arrive: {}", r.body_text()))
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let _writing = s.writing()?;
    let log = s.boatlog.clone();
    let entry = blocking(move || {
        log.set_audio(id, &content_type, &body, limit)?;
        log.get(id)
    })
    .await?;
    Ok(Data(view(entry, &crate::timezone::boat())))
}

async fn audio(
    State(s): State<Shared>,
    _reader: Reader,
    Segment(id): Segment<i64>,
) -> Result<Response, ApiError> {
    let log = s.boatlog.clone();
    let (content_type, data) = blocking(move || log.audio(id)).await?;
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    Ok(r)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportParams {
    from: Option<String>,
    to: Option<String>,
}

/// A writer whose bytes become the chunks of a streamed answer. Waits while the client is
/// behind, so a large log takes no more memory than a few pages.
struct Chunks(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// CSV downloads running at once. Each holds a blocking thread while its client reads, and
/// the daemon has 16 of those for everything: a few slow downloads from the network must
/// never leave none for the helm.
static DOWNLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Streams the boat log as CSV. Bad ranges and an unreadable log answer in JSON before the
/// first byte; a failure after it cuts the answer short, so a broken file is never taken
/// for a whole one.
async fn export_csv(
    State(s): State<Shared>,
    _reader: Reader,
    Params(p): Params<ExportParams>,
) -> Result<Response, ApiError> {
    let tz = crate::timezone::boat();
    let (from, to) = range(p.from.as_deref(), p.to.as_deref(), &tz)?;
    let permit = DOWNLOADS.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Two boat log downloads are running; try again when one has finished.",
        )
        .retry_after(Some(5))
    })?;
    let log: Boatlog = s.boatlog.clone();
    {
        let log = log.clone();
        blocking(move || log.open().map(drop)).await?;
    }
    let name = format!(
        "d3kos-boatlog-{}.csv",
        crate::timezone::local(crate::time::unix_now_ms(), &tz)
            .time
            .get(..10)
            .unwrap_or("export")
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut out = Chunks(tx.clone());
        if let Err(e) = crate::boatlog::csv::export(
            &log,
            from.unwrap_or(i64::MIN),
            to.unwrap_or(i64::MAX),
            &tz,
            &mut out,
        ) {
            log::warn!("boat log CSV: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .expect("a file name of digits and dashes"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
