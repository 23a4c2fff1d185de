//! The HTTP routes, one module per concern.

pub mod backup;
pub mod boatlog;
pub mod engine;
pub mod export;
pub mod healing;
pub mod health;
pub mod licence;
pub mod session;
pub mod signalk;
pub mod timezone;
pub mod version;

use axum::Router;

use crate::http::Shared;

pub fn router(max_audio_bytes: u64) -> Router<Shared> {
    Router::new()
        .merge(licence::routes())
        .merge(health::routes())
        .merge(version::routes())
        .merge(session::routes())
        .merge(backup::routes())
        .merge(boatlog::routes(max_audio_bytes))
        .merge(export::routes())
        .merge(healing::routes())
        .merge(engine::routes())
        .merge(signalk::routes())
        .merge(timezone::routes())
}
