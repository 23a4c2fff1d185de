//! Assembles the daemon: the routes behind their guards and limits, the background
//! workers of each concern, and the connection server, until SIGTERM.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::http::Shared;
use crate::http::admission::Caps;
use crate::http::guard;

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
    ApiError::internal(format!("a request handler panicked: {what}")).into_response()
}

/// The whole application. Outermost first: the request id, the Host allow-list, the
/// same-origin rule, the body's pace, deadline and size, and panics turned into JSON.
pub fn app(state: Shared) -> Router {
    let limit = state.config.max_body_bytes;
    let body_timeout = crate::config::ServerConfig::secs(state.config.server.body_timeout_secs);
    crate::routes::router(state.config.boatlog.max_audio_bytes)
        .fallback(fallback)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(crate::api::BodyDeadline(body_timeout)))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(middleware::from_fn(guard::same_origin))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::host_allowed,
        ))
        .layer(middleware::from_fn(guard::request_id))
        .with_state(state)
}

/// Serves until SIGTERM or SIGINT, telling systemd when it is ready and that it is alive.
pub async fn serve(state: Shared) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = listen(state.config.listen)
        .with_context(|| format!("while listening on {}", state.config.listen))?;
    let addr = listener.local_addr()?;
    log::info!("listening on http://{addr}");
    tokio::spawn(crate::health::sample(
        state.health.clone(),
        state.config.units.clone(),
        state.problems.clone(),
        state.n2k.clone(),
    ));
    start_n2k(&state);
    tokio::spawn(crate::engine::worker::run(
        state.engine.clone(),
        state.writes.clone(),
        {
            // Engine events reach the healing rules.
            let inbox = state.healing.inbox.clone();
            move |e: &crate::engine::worker::Event| {
                inbox.send(crate::healing::Event::Engine(e.clone()))
            }
        },
    ));
    tokio::spawn(crate::healing::worker::run(state.healing.clone()));
    tokio::spawn(crate::timezone::worker::run(state.timezone.clone()));
    tokio::spawn(crate::backup::schedule::run(
        crate::backup::Paths::of(&state.config),
        crate::backup::Limits::of(&state.config.backup),
        state.backup_jobs.clone(),
    ));
    tokio::spawn(crate::boatlog::retention::run(
        crate::boatlog::retention::Pruner {
            log: state.boatlog.clone(),
            days_by_tier: state.config.boatlog.retention_days,
            tier: {
                let state_dir = state.config.state_dir.clone();
                let default = state.config.tier;
                Box::new(move || crate::licence::Licence::tier_in(&state_dir, default))
            },
            synced: Box::new(crate::boatlog::retention::clock_synced),
        },
    ));
    tokio::spawn(crate::export::worker::run(state.exports.clone()));
    tokio::spawn(crate::helm::watch(state.helm_seen.clone()));
    if let Some(every) = crate::notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::notify::send("WATCHDOG=1");
            }
        });
    }
    let caps = Caps::for_this_process(&state.config.server);
    let timeouts = crate::http::conn::Timeouts::of(&state.config.server);
    crate::notify::send("READY=1");
    crate::http::conn::serve(listener, app(state), caps, timeouts, shutdown()).await?;
    log::info!("stopped");
    Ok(())
}

/// NMEA 2000 ingest into the vessel model: a capture replayed when the configuration
/// names one, else the bus.
fn start_n2k(state: &Shared) {
    use crate::n2k::{ingest, source};
    let n2k = &state.config.n2k;
    if let Some(path) = &n2k.replay {
        match source::Replay::open(path, None, true, true) {
            Ok(src) => {
                log::info!("NMEA 2000: replaying {} round and round", path.display());
                let feed = crate::signalk::feed(state.vessel.clone(), "replay");
                tokio::spawn(ingest::run(src, state.n2k.clone(), feed));
            }
            Err(e) => log::error!("NMEA 2000: {e}"),
        }
    } else if !n2k.interface.is_empty() {
        let feed = crate::signalk::feed(state.vessel.clone(), &n2k.interface);
        let src = source::Live::new(&n2k.interface);
        tokio::spawn(ingest::run(src, state.n2k.clone(), feed));
    }
}

/// Handshakes the kernel completes before the daemon accepts them: a burst of connections
/// larger than the default 1,024 would have its handshakes dropped (and retried a second
/// later) before the daemon could refuse them. The kernel caps it at net.core.somaxconn.
const BACKLOG: u32 = 4096;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restart finds the port free while the last run's connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
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
        panic!("deliberate at /data/d3kos/state")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_and_the_server_lives_on() {
        let app = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                panic_response,
            ))
            .layer(middleware::from_fn(guard::request_id));
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
            !boom.contains("deliberate") && !boom.contains("/data"),
            "no panic text or path reaches the client: {boom}"
        );
        let id = boom
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .expect("a request id header");
        assert!(
            boom.contains(&format!(r#""request_id":"{id}""#)),
            "the error names its request: {boom}"
        );
        assert!(get("/fine").await.ends_with("fine"));
    }
}
