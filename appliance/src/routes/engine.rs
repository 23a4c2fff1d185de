//! Engine data: the current values with their deviation and alert level, the history
//! behind the sparklines, the baseline recording, the recent events, and the state of
//! NMEA 2000 ingest. Reads follow the live-data rule; recording a baseline is the owner's.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Body, Data, Params};
use crate::engine::worker::{EngineError, Event};
use crate::engine::{Metric, baseline, history};
use crate::http::{Owner, Reader, Shared};
use crate::signalk::timestamp;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/engine/current", get(current))
        .route("/api/engine/history", get(history))
        .route("/api/engine/events", get(events))
        .route("/api/engine/benchmark", get(benchmark).delete(cancel))
        .route("/api/engine/benchmark/start", post(start))
        .route("/api/n2k/status", get(n2k_status))
}

fn api_error(e: EngineError) -> ApiError {
    let message = e.to_string();
    match e {
        EngineError::Minutes(_) => ApiError::bad_request(message),
        EngineError::Recording(_) | EngineError::NotRecording => ApiError::conflict(message),
        EngineError::History(e) => ApiError::internal(format!("engine: {e}")),
    }
}

fn at(ms: Option<i64>) -> Json {
    ms.map_or(Json::Null, |ms| json!(timestamp(ms)))
}

fn baseline_json(b: &crate::engine::worker::BaselineNow) -> Json {
    json!({
        "state": b.state,
        "started": at(b.started_ms),
        "ends": at(b.ends_ms),
        "recorded": at(b.recorded_ms),
        "last_result": b.last_result,
        "bands": b.bands.iter().map(|(engine, band, metric, s)| json!({
            "engine": engine, "band": band, "metric": metric,
            "n": s.n, "mean": s.mean, "stddev": s.stddev,
        })).collect::<Vec<_>>(),
    })
}

async fn current(State(s): State<Shared>, _r: Reader) -> Data<Json> {
    let now = crate::time::unix_now_ms();
    let c = s.engine.current(now);
    Data(json!({
        "units": s.config.display,
        "engines": c.engines,
        "alerts": c.alerts.iter().map(|a| json!({
            "engine": a.engine, "metric": a.metric, "level": a.level,
            "message": a.message, "since": timestamp(a.since_ms),
        })).collect::<Vec<_>>(),
        "baseline": baseline_json(&c.baseline),
        "at": timestamp(now),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    engine: String,
    metric: String,
    /// How far back, in minutes (default the last hour).
    minutes: Option<i64>,
    /// The most points wanted (default 240).
    points: Option<usize>,
}

/// The longest history asked for in one go: ten years.
const MAX_MINUTES: i64 = 10 * 366 * 24 * 60;

async fn history(
    State(s): State<Shared>,
    _r: Reader,
    Params(q): Params<HistoryQuery>,
) -> Result<Data<Json>, ApiError> {
    let metric = Metric::parse(&q.metric).ok_or_else(|| {
        let known: Vec<_> = Metric::ALL.iter().map(|m| m.key()).collect();
        ApiError::bad_request(format!(
            "metric={} is not one of {}.",
            q.metric,
            known.join(", ")
        ))
    })?;
    let minutes = q.minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request(format!(
            "minutes={minutes} must be from 1 to {MAX_MINUTES}."
        )));
    }
    let points = q.points.unwrap_or(240).clamp(1, history::MAX_POINTS);
    let now_s = crate::time::unix_now_ms().div_euclid(1000);
    let engine = s.engine.clone();
    let id = q.engine.clone();
    let rows = tokio::task::spawn_blocking(move || {
        engine
            .history()
            .points(&id, metric, now_s - minutes * 60, now_s + 1, now_s, points)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the history task stopped: {e}")))?
    .map_err(|e| ApiError::internal(format!("engine: {e}")))?;
    Ok(Data(json!({
        "engine": q.engine,
        "metric": metric,
        "unit": metric.unit(),
        "points": rows,
    })))
}

async fn events(State(s): State<Shared>, _r: Reader) -> Data<Vec<Event>> {
    Data(s.engine.events())
}

async fn benchmark(State(s): State<Shared>, _r: Reader) -> Data<Json> {
    let c = s.engine.current(crate::time::unix_now_ms());
    Data(baseline_json(&c.baseline))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Start {
    minutes: Option<u32>,
}

/// `POST /api/engine/benchmark/start {"minutes": 30}` (`{}` for the default): records a baseline while the
/// engine runs through its bands.
async fn start(
    State(s): State<Shared>,
    _o: Owner,
    Body(body): Body<Start>,
) -> Result<(axum::http::StatusCode, Data<Json>), ApiError> {
    let minutes = body.minutes.unwrap_or(baseline::DEFAULT_MINUTES);
    let b = s
        .engine
        .start_baseline(minutes, crate::time::unix_now_ms())
        .map_err(api_error)?;
    Ok((axum::http::StatusCode::ACCEPTED, Data(baseline_json(&b))))
}

async fn cancel(State(s): State<Shared>, _o: Owner) -> Result<Data<Json>, ApiError> {
    s.engine.cancel_baseline().map_err(api_error)?;
    let c = s.engine.current(crate::time::unix_now_ms());
    Ok(Data(baseline_json(&c.baseline)))
}

async fn n2k_status(State(s): State<Shared>, _r: Reader) -> Data<crate::n2k::ingest::Status> {
    Data(s.n2k.lock().expect("n2k status").clone())
}
