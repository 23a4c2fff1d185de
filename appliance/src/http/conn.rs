//! Serving connections. Each one is admitted or refused the moment it arrives (see
//! [`admission`](super::admission)); a request head must arrive within the header timeout,
//! which also closes a kept-alive connection left idle; an answer the client does not read
//! is given up after the write timeout (the body timeout is a layer of the router); and on
//! stop every connection is finished or closed within the stop timeout, whatever the
//! clients do.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use super::admission::{Admission, Caps};
use crate::config::ServerConfig;
use crate::peer::Peer;

/// The two ends of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The device's own address the client reached.
    pub local: SocketAddr,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub write: Duration,
    pub stop: Duration,
}

impl Timeouts {
    pub fn of(config: &ServerConfig) -> Timeouts {
        Timeouts {
            header: ServerConfig::secs(config.header_timeout_secs),
            write: ServerConfig::secs(config.write_timeout_secs),
            stop: ServerConfig::secs(config.stop_timeout_secs),
        }
    }
}

/// Read buffer of one connection: request heads are small, bodies stream through.
const MAX_BUF: usize = 64 << 10;
const MAX_HEADERS: usize = 64;

/// Written to a connection refused for want of room, before it is closed.
static REFUSED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = serde_json::json!({
        "success": false,
        "error": {
            "code": "too_many_connections",
            "message": "The helm computer has too many connections open; try again in a few seconds.",
        },
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Serves `app` on `listener` until `stop` completes, then lets open requests finish for
/// at most `timeouts.stop` and closes whatever is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    caps: Caps,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let admission = Admission::new(caps);
    log::info!(
        "connections: at most {} from the network, {} per client, {} kept for the helm screen",
        caps.network,
        caps.per_client,
        caps.helm
    );
    let (stopping, _) = tokio::sync::watch::channel(false);
    let mut conns = JoinSet::new();
    let mut refusals = Refusals::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(local) = stream.local_addr() else { continue };
                    match admission.admit(&Peer::of(peer)) {
                        Some(place) => {
                            let info = ConnInfo { peer, local };
                            let app = app.clone();
                            let stopping = stopping.subscribe();
                            conns.spawn(async move {
                                connection(stream, info, app, timeouts, stopping).await;
                                drop(place);
                            });
                        }
                        None => {
                            // Best effort: a client that is not reading may never see it.
                            let _ = stream.try_write(&REFUSED);
                            refusals.count(&admission);
                        }
                    }
                }
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or a connection gone before it was
                    // taken: wait a moment rather than spin.
                    log::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let open = conns.len();
    let drained = tokio::time::timeout(timeouts.stop, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        log::warn!(
            "{} of {open} connections did not finish within {} s of the stop; closed",
            conns.len(),
            timeouts.stop.as_secs()
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Logs refused connections at most every ten seconds, with their number.
#[derive(Default)]
struct Refusals {
    since: Option<Instant>,
    count: u64,
}

impl Refusals {
    fn count(&mut self, admission: &Admission) {
        self.count += 1;
        let now = Instant::now();
        if self
            .since
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            let (network, helm) = admission.open();
            log::warn!(
                "refused {} connections: {network} open from the network, {helm} from the helm screen ({:?})",
                self.count,
                admission.caps()
            );
            self.since = Some(now);
            self.count = 0;
        }
    }
}

async fn connection(
    stream: TcpStream,
    info: ConnInfo,
    app: Router,
    timeouts: Timeouts,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Stalling::new(stream, timeouts.write));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info);
        tower::ServiceExt::oneshot(app.clone(), req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .max_buf_size(MAX_BUF)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service)
        // The Signal K stream is a WebSocket: the connection is handed over to it.
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                log::debug!("connection from {}: {e}", info.peer);
            }
        }
        () = async { let _ = stopping.wait_for(|s| *s).await.map(drop); } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A socket whose writes fail once they have made no progress for `limit`: a client that
/// stops reading its answer cannot hold the connection for ever.
struct Stalling {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Stalling {
    fn new(inner: TcpStream, limit: Duration) -> Stalling {
        Stalling {
            inner,
            limit,
            stalled: None,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading the answer",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}
