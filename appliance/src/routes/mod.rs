//! The HTTP routes, one module per concern.

pub mod backup;
pub mod boatlog;
pub mod engine;
pub mod export;
pub mod healing;
pub mod health;
pub mod helm;
pub mod licence;
pub mod onboarding;
pub mod session;
pub mod signalk;
pub mod timezone;
pub mod update;
pub mod version;
pub mod wifi;

use axum::Router;

use crate::http::Shared;

pub fn router(max_audio_bytes: u64) -> Router<Shared> {
    Router::new()
        .merge(licence::routes())
        .merge(health::routes())
        .merge(helm::routes())
        .merge(version::routes())
        .merge(session::routes())
        .merge(backup::routes())
        .merge(boatlog::routes(max_audio_bytes))
        .merge(export::routes())
        .merge(healing::routes())
        .merge(engine::routes())
        .merge(signalk::routes())
        .merge(timezone::routes())
        .merge(wifi::routes())
        .merge(onboarding::routes())
        .merge(update::routes())
}

/// What the route tests share: the whole app on a scratch device, and one request to it from
/// a given client, as the connection server would hand it over.
#[cfg(test)]
pub(crate) mod testing {
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode};
    use tower::ServiceExt;

    use crate::http::conn::ConnInfo;

    /// The app over `dir`: state, data partition and config partition folders inside it.
    pub fn app(dir: &std::path::Path) -> axum::Router {
        crate::server::app(state(dir))
    }

    /// The state of a scratch device over `dir`.
    fn state(dir: &std::path::Path) -> crate::http::Shared {
        let config = crate::config::Config {
            state_dir: dir.join("state"),
            data_dir: dir.join("data"),
            setup_code_file: dir.join("config/d3kos-setup-code.txt"),
            setup_wifi_file: dir.join("config/d3kos-setup-wifi.txt"),
            ..Default::default()
        };
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::create_dir_all(dir.join("config")).unwrap();
        crate::http::AppState::load(config).unwrap()
    }

    /// The app over `dir` with its owner made at the helm screen; returns the state, the app
    /// and an `Authorization` value with one of the owner's API tokens.
    pub async fn owned_app(dir: &std::path::Path) -> (crate::http::Shared, axum::Router, String) {
        let s = state(dir);
        let code = s
            .auth
            .setup_code_shown()
            .expect("a new device shows a setup code");
        let helm = crate::peer::Peer::of(([127, 0, 0, 1], 40000).into());
        s.auth
            .create_owner(&helm, &code, "skipper", "correct horse battery")
            .await
            .unwrap();
        let (_, token) = s
            .auth
            .create_token("route test", crate::api::now_rfc3339())
            .unwrap();
        let app = crate::server::app(s.clone());
        (s, app, format!("Bearer {token}"))
    }

    /// `METHOD path` with `authorization` and a JSON `body` (none when empty), as a script on
    /// the network sends it; returns the status and the body.
    pub async fn send(
        app: &axum::Router,
        method: &str,
        path: &str,
        authorization: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "d3kos.local")
            .header("authorization", authorization);
        if !body.is_empty() {
            r = r.header("content-type", "application/json");
        }
        let mut r = r.body(Body::from(body.to_owned())).unwrap();
        r.extensions_mut().insert(ConnInfo {
            peer: ([192, 168, 4, 20], 40000).into(),
            local: ([192, 168, 4, 1], 80).into(),
        });
        let answer = app.clone().oneshot(r).await.unwrap();
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// `GET path` with `Host: host` from `peer` to the device's address `local`.
    pub async fn get(
        app: &axum::Router,
        path: &str,
        host: &str,
        peer: [u8; 4],
        local: [u8; 4],
    ) -> (StatusCode, HeaderMap, String) {
        let mut r = Request::get(path)
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        r.extensions_mut().insert(ConnInfo {
            peer: (peer, 40000).into(),
            local: (local, 80).into(),
        });
        let answer = app.clone().oneshot(r).await.unwrap();
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }
}
