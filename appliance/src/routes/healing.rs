//! Self-healing: counts per rule and outcome for the last seven days (the seed's
//! `/healing/stats`), the record, the rules with the problems open now, and the owner's
//! switches and "check now".

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Body, Data, Params, Segment};
use crate::healing::history::KEEP_MS;
use crate::healing::rules::RuleId;
use crate::healing::worker::{HealingError, Open};
use crate::http::{Owner, Reader, Shared};
use crate::signalk::timestamp;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/healing/stats", get(stats))
        .route("/healing/history", get(history))
        .route("/healing/rules", get(rules))
        .route("/healing/rules/{rule}", put(switch))
        .route("/healing/check", post(check))
}

fn open_json(o: &Open) -> Json {
    json!({
        "rule": o.rule, "title": o.rule.title(), "subject": o.subject, "seen": o.seen,
        "advice": o.advice, "since": timestamp(o.since_ms), "state": o.state,
        "last_action": o.last_action,
    })
}

fn record_json(r: &crate::healing::history::Record) -> Json {
    json!({
        "id": r.id, "at": timestamp(r.at_ms), "rule": r.rule, "subject": r.subject,
        "seen": r.seen, "action": r.action, "result": r.result, "outcome": r.outcome,
        "advice": r.advice,
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("healing: {e}"))
}

async fn stats(State(s): State<Shared>, _r: Reader) -> Result<Data<Json>, ApiError> {
    let now = crate::time::unix_now_ms();
    let h = s.healing.clone();
    let counts = tokio::task::spawn_blocking(move || h.history.counts(now - KEEP_MS))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let mut rules = serde_json::Map::new();
    for id in RuleId::ALL {
        rules.insert(id.as_str().to_owned(), json!({}));
    }
    let mut total = serde_json::Map::new();
    for c in &counts {
        if let Some(Json::Object(m)) = rules.get_mut(&c.rule) {
            m.insert(c.outcome.clone(), json!(c.count));
        }
        let t = total.entry(c.outcome.clone()).or_insert(json!(0));
        *t = json!(t.as_u64().unwrap_or(0) + c.count);
    }
    let open = s.healing.open();
    Ok(Data(json!({
        "days": 7,
        "since": timestamp(now - KEEP_MS),
        "rules": rules,
        "total": total,
        "open": open.len(),
        "escalated": open.iter().filter(|o| o.state == "escalated").count(),
        "last_check": s.healing.last_check_ms().map(timestamp),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    rule: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(s): State<Shared>,
    _r: Reader,
    Params(q): Params<HistoryQuery>,
) -> Result<Data<Json>, ApiError> {
    if let Some(r) = &q.rule
        && RuleId::parse(r).is_none()
    {
        return Err(ApiError::bad_request(
            HealingError::NoRule(r.clone()).to_string(),
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let h = s.healing.clone();
    let rows = tokio::task::spawn_blocking(move || h.history.recent(q.rule.as_deref(), limit))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Data(json!({
        "records": rows.iter().map(record_json).collect::<Vec<_>>(),
    })))
}

fn rules_json(s: &Shared) -> Json {
    let rules = s.healing.rules();
    let open = s.healing.open();
    let settings = serde_json::to_value(&rules).unwrap_or_default();
    json!({
        "check_every_secs": rules.check_every_secs,
        "rules": RuleId::ALL.iter().map(|id| {
            let c = rules.common(*id);
            json!({
                "id": id, "title": id.title(), "enabled": c.enabled, "action": c.action,
                "safe_actions": id.safe_actions(),
                "settings": settings[id.as_str()],
                "open": open.iter().filter(|o| o.rule == *id).count(),
            })
        }).collect::<Vec<_>>(),
        "open": open.iter().map(open_json).collect::<Vec<_>>(),
        "last_check": s.healing.last_check_ms().map(timestamp),
        "diagnosis": rules.diagnosis.url.is_some(),
    })
}

async fn rules(State(s): State<Shared>, _r: Reader) -> Data<Json> {
    Data(rules_json(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    enabled: bool,
}

/// `PUT /healing/rules/{rule} {"enabled": false}`: the owner's switch, kept across restarts.
async fn switch(
    State(s): State<Shared>,
    _o: Owner,
    Segment(rule): Segment<String>,
    Body(body): Body<Switch>,
) -> Result<Data<Json>, ApiError> {
    let _gate = s.writing()?;
    match s.healing.switch(&rule, body.enabled) {
        Ok(_) => Ok(Data(rules_json(&s))),
        Err(e @ HealingError::NoRule(_)) => Err(ApiError::not_found(e.to_string())),
        Err(HealingError::Save(e)) => Err(ApiError::storage(&e)),
    }
}

/// `POST /healing/check`: checks every rule now and answers with what it found and did.
async fn check(State(s): State<Shared>, _o: Owner) -> Result<Data<Json>, ApiError> {
    let c = s.healing.check().await;
    Ok(Data(json!({
        "at": timestamp(c.at_ms),
        "open": c.open.iter().map(open_json).collect::<Vec<_>>(),
        "recorded": c.recorded.iter().map(record_json).collect::<Vec<_>>(),
    })))
}
