//! Signal K over HTTP on the device's own port: the discovery document, the full model
//! of this vessel, and the delta stream over WebSocket. Reads follow the live-data rule.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Params, Segment};
use crate::http::{Reader, Shared};
use crate::signalk::{self, stream};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/signalk", get(discovery))
        .route("/signalk/", get(discovery))
        .route("/signalk/v1/api", get(api_root))
        .route("/signalk/v1/api/", get(api_root))
        .route("/signalk/v1/api/vessels/self", get(vessel))
        .route("/signalk/v1/api/vessels/self/", get(vessel))
        .route("/signalk/v1/api/vessels/self/{*path}", get(vessel_path))
        .route("/signalk/v1/stream", get(stream_upgrade))
}

/// The host the client reached us by (already checked against the device's names).
fn host(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

/// `/signalk`: where the v1 API and stream are, and which server this is.
async fn discovery(headers: HeaderMap) -> axum::Json<Json> {
    let host = host(&headers);
    axum::Json(json!({
        "endpoints": {
            "v1": {
                "version": signalk::VERSION,
                "signalk-http": format!("http://{host}/signalk/v1/api/"),
                "signalk-ws": format!("ws://{host}/signalk/v1/stream"),
            }
        },
        "server": {"id": "d3kos", "version": crate::release::version()},
    }))
}

async fn api_root(State(s): State<Shared>, _r: Reader) -> axum::Json<Json> {
    let urn = s
        .vessel
        .self_context
        .trim_start_matches("vessels.")
        .to_owned();
    let mut me = s.vessel.tree();
    me["uuid"] = json!(urn.trim_start_matches("urn:mrn:signalk:uuid:"));
    axum::Json(json!({
        "version": signalk::VERSION,
        "self": s.vessel.self_context,
        "vessels": {urn: me},
    }))
}

async fn vessel(State(s): State<Shared>, _r: Reader) -> axum::Json<Json> {
    axum::Json(s.vessel.tree())
}

/// `/signalk/v1/api/vessels/self/propulsion/port/revolutions`: the subtree at a path.
async fn vessel_path(
    State(s): State<Shared>,
    _r: Reader,
    Segment(path): Segment<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let tree = s.vessel.tree();
    let mut node = &tree;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        node = node.get(part).ok_or_else(|| {
            ApiError::not_found(format!("This vessel has no value at {path} yet."))
        })?;
    }
    Ok(axum::Json(node.clone()))
}

#[derive(Deserialize)]
struct StreamQuery {
    subscribe: Option<String>,
    #[serde(rename = "sendMeta")]
    send_meta: Option<String>,
}

async fn stream_upgrade(
    State(s): State<Shared>,
    _r: Reader,
    Params(q): Params<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(sub) = q.subscribe.as_deref()
        && !matches!(sub, "self" | "all" | "none")
    {
        return ApiError::bad_request(format!("subscribe={sub} is not one of self, all or none."))
            .into_response();
    }
    let subs = stream::initial(q.subscribe.as_deref());
    let send_meta = q.send_meta.as_deref() == Some("all");
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve_stream(socket, s, subs, send_meta))
}

async fn serve_stream(
    mut socket: WebSocket,
    s: Shared,
    subs: Vec<stream::Subscription>,
    send_meta: bool,
) {
    let hello = json!({
        "name": "d3kOS",
        "version": signalk::VERSION,
        "self": s.vessel.self_context,
        "roles": ["master", "main"],
        "timestamp": signalk::timestamp(crate::time::unix_now_ms()),
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut client = stream::Client::new(subs, send_meta);
    let mut changed = s.vessel.watch();
    loop {
        if let Some(delta) = client.due(&s.vessel, crate::time::unix_now_ms())
            && socket
                .send(Message::Text(delta.to_string().into()))
                .await
                .is_err()
        {
            return;
        }
        let tick = Duration::from_millis(client.next_tick_ms());
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Err(e) = client.handle(text.as_str(), &s.vessel) {
                        let answer = json!({"errorMessage": e.to_string()});
                        if socket.send(Message::Text(answer.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            r = changed.changed() => if r.is_err() { return },
            () = tokio::time::sleep(tick) => {}
        }
    }
}
