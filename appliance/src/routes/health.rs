//! `/api/health`: the latest sample of the machine's health.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::api::{ApiError, Data};
use crate::health::Snapshot;
use crate::http::{Reader, Shared};

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/health", get(health))
}

async fn health(State(s): State<Shared>, _reader: Reader) -> Result<Data<Snapshot>, ApiError> {
    Ok(Data(s.health.read().await))
}
