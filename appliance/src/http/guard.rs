//! What every request passes before a handler runs: a request id for its answer and the
//! log, the Host allow-list (DNS rebinding, see [`hosts`](super::hosts)), and the
//! same-origin rule for writes (CSRF), with the security headers on every answer.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::conn::ConnInfo;
use super::state::Shared;
use crate::api::{self, ApiError};

/// Gives the request an id, for its answer (`x-request-id`, and errors carry it) and for
/// every log line about it.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = api::RequestId::next();
    let header = HeaderValue::from_str(id.as_str()).expect("a request id is hex");
    let mut r = api::REQUEST_ID.scope(id, next.run(req)).await;
    r.headers_mut().insert("x-request-id", header);
    r
}

/// Notes a request from the helm screen (for [`crate::helm`]); 421 for a Host this device is
/// not, see [`HostNames`].
pub async fn host_allowed(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnInfo>();
    if conn.is_some_and(|c| crate::peer::Peer::of(c.peer).is_helm()) {
        s.helm_seen.mark();
    }
    let local = conn.map(|c| c.local.ip());
    let host = match req.uri().authority() {
        Some(a) => Some(Ok(a.as_str())),
        None => req.headers().get(header::HOST).map(|h| h.to_str()),
    };
    match host {
        // HTTP/1.0 clients may send none; a browser always does.
        None => {}
        Some(Ok(h)) if s.hosts.allows(h, local) => {}
        // On the setup Wi-Fi every name resolves to the device, and a phone that just
        // joined asks some vendor's name whether it is online. Sending it to the owner setup
        // makes the phone open that page by itself (a captive portal). Only there: on other
        // networks a foreign name is DNS rebinding and stays refused.
        Some(Ok(_))
            if matches!(*req.method(), Method::GET | Method::HEAD)
                && local.is_some_and(|l| l.to_string() == crate::wifi::ADDRESS) =>
        {
            return captive_redirect();
        }
        Some(h) => {
            let shown = h
                .unwrap_or("(not text)")
                .chars()
                .take(100)
                .collect::<String>();
            return ApiError::misdirected(&shown, s.hosts.names()).into_response();
        }
    }
    next.run(req).await
}

/// 302 to the owner setup page on the setup Wi-Fi, not cached: the same name answers
/// differently once the phone is on another network.
fn captive_redirect() -> Response {
    let mut r = axum::http::StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(SETUP_PAGE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Where a phone on the setup Wi-Fi is sent: the page with the owner setup.
const SETUP_PAGE: &str = "http://d3kos.local/settings.html";

/// Writes from a browser must come from a page of this device: a page elsewhere on the
/// marina network cannot make the owner's browser change anything (CSRF). Scripts using an
/// API token send no Origin and are judged by their token. Host is on the allow-list by
/// now, so an Origin equal to it is one of the device's own.
pub async fn same_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let origin = origin.to_str().unwrap_or("");
            let ok = !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"));
            if !ok {
                return ApiError::forbidden(format!(
                    "Requests from {origin} may not change this device."
                ))
                .into_response();
            }
        } else if req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "same-origin" && v != "none")
        {
            return ApiError::forbidden("Requests from other sites may not change this device.")
                .into_response();
        }
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}
