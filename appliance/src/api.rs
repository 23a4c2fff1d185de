//! The JSON envelope every endpoint answers with, and the errors it can carry.
//!
//! Success: `{"success":true,"data":…,"timestamp":…,"version":…}`.
//! Failure: `{"success":false,"error":{"code":…,"message":…}}` with the matching status.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
            "version": VERSION,
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// A failed answer: a stable machine code, a message for a person, and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
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
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn storage(e: &crate::state::StateError) -> Self {
        if let crate::state::StateError::Io { source, .. } = e {
            if source.raw_os_error() == Some(28) {
                return Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "no_space",
                    "The data partition is full: nothing was changed. Delete old backups or exports to make room.",
                );
            }
        }
        log::error!("state: {e}");
        Self::internal(format!("Could not save: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": { "code": self.code, "message": self.message },
        });
        (self.status, axum::Json(body)).into_response()
    }
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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

fn rejection_error(r: JsonRejection) -> ApiError {
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
