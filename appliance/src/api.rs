//! The JSON envelope every endpoint answers with, and the errors it can carry.
//!
//! Success: `{"success":true,"data":…,"timestamp":…,"version":…}`.
//! Failure: `{"success":false,"error":{"code":…,"message":…,"request_id":…}}` with the
//! matching status. What went wrong inside the device (a path, an OS error, a panic) goes
//! to the log under the request id, never into the answer.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// RFC 3339 UTC of the current time.
pub fn now_rfc3339() -> String {
    crate::time::rfc3339(crate::time::unix_now())
}

/// A successful answer.
pub struct Data<T>(pub T);

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        let body = json!({
            "success": true,
            "data": self.0,
            "timestamp": now_rfc3339(),
            "version": crate::release::version(),
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// The id of one request: in its answer's `x-request-id`, in its error, and in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A fresh id: a number drawn when the daemon starts, then a count.
    pub fn next() -> RequestId {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU32, Ordering};
        static START: OnceLock<u32> = OnceLock::new();
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let start = START.get_or_init(|| {
            let mut b = [0u8; 4];
            // Without randomness the ids still count; they only repeat across restarts.
            let _ = getrandom::fill(&mut b);
            u32::from_le_bytes(b)
        });
        RequestId(format!(
            "{start:08x}{:08x}",
            COUNT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

tokio::task_local! {
    /// The request being answered, set by the request-id guard around every handler.
    pub static REQUEST_ID: RequestId;
}

fn current_request() -> Option<String> {
    REQUEST_ID.try_with(|id| id.0.clone()).ok()
}

/// A failed answer: a stable machine code, a message for a person, and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (429, 503).
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only.
    pub detail: Option<String>,
    /// Each wrong field of the request and what is wrong with it, for a form to show
    /// beside the field (`error.fields`).
    pub fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
            fields: Vec::new(),
        }
    }
    pub fn with_fields(mut self, fields: Vec<(String, String)>) -> Self {
        self.fields = fields;
        self
    }
    pub fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in first: this changes the device.",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// Something went wrong inside the device: `detail` goes to the log, the answer says
    /// only that, with the request id to find it by.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong inside the helm computer; it was logged.",
        );
        e.detail = Some(detail.into());
        e
    }
    /// 421: the request named a host this device is not.
    pub fn misdirected(host: &str, names: &[String]) -> Self {
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected",
            format!(
                "This device is not `{host}`: open it as {}, or by its address.",
                names.join(", ")
            ),
        )
    }
    pub fn storage(e: &crate::state::StateError) -> Self {
        if crate::state::is_full(e) {
            return Self::no_space();
        }
        Self::internal(format!("state: {e}"))
    }
    /// 507: the data partition is full.
    pub fn no_space() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "no_space",
            "The data partition is full: nothing was changed. Delete old backups or exports to make room.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request();
        if let Some(detail) = &self.detail {
            log::error!(
                "request {}: {detail}",
                request_id.as_deref().unwrap_or("(none)")
            );
        }
        let mut error =
            json!({ "code": self.code, "message": self.message, "request_id": request_id });
        if !self.fields.is_empty() {
            error["fields"] = self
                .fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let body = json!({ "success": false, "error": error });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

/// Runs `f` (file or database work) on the blocking threads, its error answered as `answer`
/// makes it; `what` names the task in the log if it dies.
pub async fn blocking<T: Send + 'static, E: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
    answer: fn(E) -> ApiError,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the {what} task stopped: {e}")))?
        .map_err(answer)
}

/// A JSON body whose problems (not JSON, wrong fields, too large) answer in the envelope.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A body that drips in, a byte now and then, never pauses long enough for the
        // connection's body timeout: the whole of it must arrive by the deadline.
        let deadline = req
            .extensions()
            .get::<BodyDeadline>()
            .map_or(std::time::Duration::from_secs(30), |d| d.0);
        match tokio::time::timeout(deadline, axum::Json::<T>::from_request(req, state)).await {
            Ok(Ok(axum::Json(v))) => Ok(Body(v)),
            Ok(Err(rejection)) => Err(rejection_error(rejection)),
            Err(_) => Err(body_timeout()),
        }
    }
}

/// Query parameters whose problems (a missing or malformed one) answer in the envelope.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Params(v))
            .map_err(|r| {
                ApiError::bad_request(format!("The query is not valid: {}", r.body_text()))
            })
    }
}

/// The path's parameters (an id, a name) whose problems answer in the envelope: an id that is
/// not a number is a bad request, not a plain-text answer.
pub struct Segment<T>(pub T);

impl<S, T> FromRequestParts<S> for Segment<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Segment(v)),
            // A route whose pattern does not give what its handler takes: the code's fault.
            Err(r) if r.status().is_server_error() => Err(ApiError::internal(format!(
                "path parameters: {}",
                r.body_text()
            ))),
            Err(r) => Err(ApiError::bad_request(format!(
                "The address is not valid: {}",
                r.body_text()
            ))),
        }
    }
}

/// How long a JSON body has to arrive whole (the server sets it on every request).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub std::time::Duration);

fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "The request body stopped arriving; send it again.",
    )
}

fn rejection_error(r: JsonRejection) -> ApiError {
    if timed_out(&r) {
        return body_timeout();
    }
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The request is larger than this endpoint accepts.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send JSON with Content-Type: application/json.",
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("The request body is not valid: {}", r.body_text()),
        ),
    }
}

/// Whether the body stopped arriving (the body timeout of the connection server).
fn timed_out(r: &JsonRejection) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(err) = e {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        e = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_keeps_its_detail_in_the_log_and_gives_the_request_id() {
        let id = RequestId::next();
        let r = REQUEST_ID
            .scope(id.clone(), async {
                ApiError::internal(
                    "/data/d3kos/state/licence.json: Permission denied; task 330 panicked",
                )
                .into_response()
            })
            .await;
        assert_eq!(r.status(), 500);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !text.contains("/data") && !text.contains("panicked"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["request_id"], id.as_str());
        assert_eq!(v["error"]["code"], "internal");
    }

    #[test]
    fn request_ids_differ() {
        assert_ne!(RequestId::next(), RequestId::next());
    }
}
