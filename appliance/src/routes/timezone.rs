//! The boat's time zone: what the device decided, from which source and when (reads follow
//! the live-data rule), and the owner's override.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Body, Data};
use crate::http::{Owner, Reader, Shared};
use crate::signalk::timestamp;
use crate::timezone::worker::Status;

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/timezone", get(show).put(set))
}

fn status_json(s: &Status) -> Json {
    let d = &s.decision;
    let offset = jiff::tz::TimeZone::get(&d.zone)
        .map(|tz| tz.to_offset(jiff::Timestamp::now()).seconds())
        .unwrap_or(0);
    json!({
        "zone": d.zone,
        "source": d.source,
        "offset": crate::timezone::offset_text(offset),
        "offset_seconds": offset,
        "decided_at": timestamp(d.decided_at_ms),
        "override": s.manual,
        "position": d.position,
        "pending": s.pending.as_ref().map(|p| json!({
            "zone": p.zone,
            "source": p.source,
            "since": timestamp(p.since_ms),
            "answers": p.answers,
        })),
    })
}

/// `GET /api/timezone`.
async fn show(State(s): State<Shared>, _r: Reader) -> Data<Json> {
    Data(status_json(&s.timezone.status()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetZone {
    /// A zone name, or null to clear the override. Required: `{}` is a mistake, not a
    /// request to clear.
    zone: Json,
}

/// `PUT /api/timezone {"zone": "Europe/Berlin"}` sets the owner's zone, which wins over
/// every source; `{"zone": null}` clears it.
async fn set(
    State(s): State<Shared>,
    _o: Owner,
    Body(body): Body<SetZone>,
) -> Result<Data<Json>, ApiError> {
    let zone = match body.zone {
        Json::Null => None,
        Json::String(name) => {
            let tz = jiff::tz::TimeZone::get(name.trim()).map_err(|_| {
                let shown: String = name.chars().take(64).collect();
                ApiError::bad_request(format!(
                    "`{shown}` is not a time zone this device knows: give an IANA name such as \
                     Europe/Berlin or America/New_York, or null to go back to the automatic zone. \
                     Nothing was changed."
                ))
            })?;
            Some(tz.iana_name().unwrap_or(name.trim()).to_owned())
        }
        _ => {
            return Err(ApiError::bad_request(
                "`zone` must be a time zone name such as Europe/Berlin, or null to go back to \
                 the automatic zone. Nothing was changed.",
            ));
        }
    };
    let _writing = s.writing()?;
    let status = s
        .timezone
        .set_override(zone, crate::time::unix_now_ms())
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Data(status_json(&status)))
}
