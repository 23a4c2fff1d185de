//! The web pages, compiled into the binary: the helm screen works with nothing but d3kosd.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (URL path, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../web/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/index.html"),
    ),
    (
        "/settings.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/settings.html"),
    ),
    (
        "/dashboard.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/dashboard.html"),
    ),
    (
        "/navigation.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/navigation.html"),
    ),
    (
        "/settings-healing.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/settings-healing.html"),
    ),
    (
        "/boatlog.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/boatlog.html"),
    ),
    (
        "/onboarding",
        "text/html; charset=utf-8",
        include_bytes!("../web/onboarding.html"),
    ),
    (
        "/onboarding.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/onboarding.html"),
    ),
    (
        "/onboarding.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/onboarding.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/app.css"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/app.js"),
    ),
    // The HTTP API described for clients (OpenAPI 3.1); appliance/tests/openapi.rs holds it
    // against the routes.
    (
        "/api/openapi.json",
        "application/json",
        include_bytes!("../web/openapi.json"),
    ),
];

/// Serves the embedded file at `path`.
pub fn asset(path: &str) -> Option<Response> {
    let (_, mime, bytes) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let mut r = (StatusCode::OK, *bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // Pages change with the software, which changes rarely; revalidate rather than guess.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}
