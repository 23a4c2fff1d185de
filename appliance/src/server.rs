//! The one HTTP server: shared state, authentication extractors, the same-origin rule for
//! writes, panics turned into JSON, and a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Mutex, RwLock};

use crate::api::ApiError;
use crate::auth::{Auth, SESSION_COOKIE};
use crate::config::Config;
use crate::health::{Probe, Snapshot};
use crate::licence::Licence;

pub struct AppState {
    pub config: Config,
    pub licence: Mutex<Licence>,
    pub auth: Mutex<Auth>,
    pub health: RwLock<Snapshot>,
    pub problems: Vec<String>,
    pub backup_jobs: crate::routes::backup::Jobs,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Loads the state folder. Files that cannot be read are moved aside and listed in
    /// `problems`, which the log and /api/health report.
    pub fn load(config: Config) -> anyhow::Result<Shared> {
        use anyhow::Context;
        let now = crate::time::unix_now().max(0) as u64;
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "while creating the state folder {}",
                config.state_dir.display()
            )
        })?;
        let mut problems = Vec::new();
        // A restore cut off by a power cut is finished or undone before anything reads the
        // state folder.
        problems.extend(
            crate::backup::recover(&config.backup_paths(), &config.backup.limits())
                .into_iter()
                .map(|line| format!("backup: {line}")),
        );
        let (licence, p) = Licence::load_or_create(&config.state_dir, config.tier, now)
            .context("while loading the licence")?;
        problems.extend(p);
        let (auth, p) = Auth::load(&config.state_dir, &config.setup_code_file, now)
            .context("while loading the accounts")?;
        problems.extend(p);
        for p in &problems {
            log::error!("{p}");
        }
        Ok(Arc::new(AppState {
            config,
            licence: Mutex::new(licence),
            auth: Mutex::new(auth),
            health: RwLock::new(Snapshot::default()),
            problems,
            backup_jobs: Default::default(),
        }))
    }
}

/// The session cookie's token, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
                .map(str::to_owned)
        })
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

async fn user_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let auth = state.auth.lock().await;
    if let Some(t) = bearer_token(headers) {
        return auth.token_user(&t);
    }
    cookie_token(headers).and_then(|t| auth.session_user(&t))
}

/// The signed-in owner; 401 otherwise.
pub struct Owner(pub String);

impl FromRequestParts<Shared> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        user_of(state, &parts.headers)
            .await
            .map(Owner)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Whoever may read live data: anyone when the configuration allows it, else the owner.
pub struct Reader;

impl FromRequestParts<Shared> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        if state.config.features.public_live_data || user_of(state, &parts.headers).await.is_some()
        {
            Ok(Reader)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// Writes from a browser must come from a page of this device: a page elsewhere on the
/// marina network cannot make the owner's browser change anything (CSRF). Scripts using an
/// API token send no Origin and are judged by their token.
async fn same_origin(req: Request, next: Next) -> Response {
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

async fn fallback(req: Request) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(r) = crate::web::asset(req.uri().path()) {
            return r;
        }
        // Browsers ask for an icon on every page; there is none, and that is not an error.
        if req.uri().path() == "/favicon.ico" {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
    ApiError::not_found(format!("Nothing at {} {}.", req.method(), req.uri().path()))
        .into_response()
}

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    log::error!("a request handler panicked: {what}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong inside the device; it was logged.",
    )
    .into_response()
}

/// The whole application.
pub fn app(state: Shared) -> Router {
    let limit = state.config.max_body_bytes;
    crate::routes::router()
        .fallback(fallback)
        .with_state(state)
        .layer(middleware::from_fn(same_origin))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
}

/// Samples the machine every two seconds; /api/health answers from the latest sample, so a
/// busy client cannot make the device spawn processes.
pub async fn sample_health(state: Shared) {
    let mut probe = Probe::new("/");
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let (mut snap, probe_back) = tokio::task::spawn_blocking(move || {
            let s = probe.sample();
            (s, probe)
        })
        .await
        .expect("the health probe does not panic");
        probe = probe_back;
        snap.services = crate::systemd::unit_states(&state.config.units).await;
        snap.system = crate::systemd::system_state().await;
        snap.problems = state.problems.clone();
        *state.health.write().await = snap;
    }
}

/// Serves until SIGTERM or SIGINT, telling systemd when it is ready and that it is alive.
pub async fn serve(state: Shared) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(state.config.listen)
        .await
        .with_context(|| format!("while listening on {}", state.config.listen))?;
    let addr = listener.local_addr()?;
    log::info!("listening on http://{addr}");
    tokio::spawn(sample_health(state.clone()));
    tokio::spawn(crate::routes::backup::scheduler(state.clone()));
    if let Some(every) = crate::notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::notify::send("WATCHDOG=1");
            }
        });
    }
    crate::notify::send("READY=1");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    log::info!("stopped");
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    log::info!("stopping");
    crate::notify::send("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        panic!("deliberate")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_and_the_server_lives_on() {
        let app = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                panic_response,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let boom = get("/boom").await;
        assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
        assert!(
            boom.contains(r#""success":false"#) && boom.contains(r#""code":"internal""#),
            "{boom}"
        );
        assert!(
            !boom.contains("deliberate"),
            "no panic text reaches the client"
        );
        assert!(get("/fine").await.ends_with("fine"));
    }
}
