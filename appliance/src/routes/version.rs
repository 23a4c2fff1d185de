//! `/api/version`: the image's version.txt and build manifest, as the builder wrote them.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use crate::api::Data;
use crate::http::Shared;

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/version", get(version))
}

#[derive(Serialize)]
struct Version {
    /// The image's version, from the build manifest (the daemon's own when there is none).
    version: String,
    build_date: Option<String>,
    board: Option<String>,
    version_txt: Option<String>,
    build_manifest: Option<serde_json::Value>,
}

async fn version(State(s): State<Shared>) -> Data<Version> {
    let etc = &s.config.etc_dir;
    let version_txt = tokio::fs::read_to_string(etc.join("version.txt"))
        .await
        .ok();
    let build_manifest: Option<serde_json::Value> =
        tokio::fs::read(etc.join(crate::release::MANIFEST))
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let field = |k: &str| {
        build_manifest
            .as_ref()
            .and_then(|m| m[k].as_str())
            .map(str::to_owned)
    };
    Data(Version {
        version: field("version").unwrap_or_else(|| crate::release::version().to_owned()),
        build_date: field("build_date"),
        board: field("board"),
        version_txt,
        build_manifest,
    })
}
