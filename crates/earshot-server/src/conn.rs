//! The accept loop, in place of `axum::serve`, which has no way to bound slow or idle
//! clients: hyper's HTTP/1 connection with a timer, so that
//!
//! - a request head must arrive whole within `header_timeout`, counted from the moment
//!   the connection waits for it (when it opens, and again after each response), which
//!   closes both slowloris connections trickling header bytes and idle keep-alive ones;
//! - a connection's read buffer holds at most [`HEAD_BUFFER_BYTES`], so slow heads cost
//!   little memory each (hyper's own default is ~408 KiB);
//! - at most `max_connections` connections are open at once, WebSocket streams
//!   included (the count is held by the socket itself, so it follows an upgraded
//!   connection). Past the cap the server stops accepting: new connections wait in the
//!   kernel's backlog instead of costing a task, a buffer and a file descriptor each,
//!   and are served as soon as a slot frees up;
//! - a request body must arrive whole within `body_timeout` ([`body_deadline`]), else
//!   408 `body_timeout` and the connection is closed.
//!
//! Only HTTP/1 is served: browsers speak HTTP/2 only over TLS, which earshot leaves to
//! a proxy, and hyper's HTTP/2 server has no head timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::state::AppState;

/// Default time a client has to send a whole request head (and the idle keep-alive time).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a whole request body: a 25 MiB upload needs about
/// 1.7 Mbit/s to make it.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Default cap on open connections. At most [`HEAD_BUFFER_BYTES`] each while their heads
/// arrive, that is 80 MiB for a full house of slow clients. Lowered at start to leave
/// [`RESERVED_FDS`] file descriptors under the process limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// File descriptors kept for the store's connections, the model file and logs: without
/// them a full house of clients would make Redis reconnects fail.
const RESERVED_FDS: u64 = 128;
/// Largest read buffer of a connection (hyper's default is ~408 KiB): room for the
/// largest head [`crate::limits`] accepts, and a 64 KiB request target to refuse with 414.
pub const HEAD_BUFFER_BYTES: usize = 80 * 1024;

/// How slow and idle clients are bounded (flags of `earshot serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnConfig {
    /// Time to send a whole request head, also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// Time to send a whole request body; zero = no limit.
    pub body_timeout: Duration,
    /// Open connections at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires, then lets in-flight requests
/// finish (idle connections close at once) and returns when every HTTP connection has
/// ended. Upgraded WebSockets are not waited for here: they end through the shutdown
/// token and the server's task tracker.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: ConnConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout.max(Duration::from_millis(1)))
        .max_buf_size(HEAD_BUFFER_BYTES)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(connection_cap(cfg.max_connections)));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e, &shutdown).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!("earshot_http_connections").increment(1.0);
        let io = TokioIo::new(Counted {
            inner: stream,
            _slot: slot,
        });
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: hyper::Request<Incoming>| req.map(Body::new)),
        );
        let conn = http.serve_connection(io, service).with_upgrades();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let mut stopping = std::pin::pin!(stop.cancelled_owned());
            let mut draining = false;
            let result = loop {
                tokio::select! {
                    r = conn.as_mut() => break r,
                    _ = &mut stopping, if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// `wanted`, lowered to what the process's file descriptor limit leaves room for.
fn connection_cap(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let room = if known && lim.rlim_cur != libc::RLIM_INFINITY {
        (lim.rlim_cur.saturating_sub(RESERVED_FDS) as usize).max(16)
    } else {
        usize::MAX
    };
    if wanted > room {
        tracing::warn!(
            wanted,
            allowed = room,
            "the file descriptor limit (ulimit -n) leaves room for fewer connections; \
             raise it to serve more"
        );
    }
    wanted.min(room).max(1)
}

/// Out of file descriptors or memory: wait a moment rather than spin; per-connection
/// errors (a peer that reset before accept) need no wait.
async fn accept_failed(e: std::io::Error, shutdown: &CancellationToken) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; retrying in 1 s");
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

/// A socket that holds one connection slot for as long as it exists, through an
/// upgrade to a WebSocket too.
struct Counted {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("earshot_http_connections").decrement(1.0);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Middleware: a request body that has not arrived whole within `body_timeout` of the
/// request head ends the request with 408 `body_timeout` and closes the connection, so
/// a client trickling an upload cannot hold a connection slot and a growing buffer.
pub async fn body_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timeout = state.config.conn.body_timeout;
    if timeout.is_zero() || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            fired: flag,
        })
    });
    let resp = next.run(req).await;
    if !fired.load(Ordering::Acquire) {
        return resp;
    }
    metrics::counter!("earshot_slow_clients_total", "limit" => "body").increment(1);
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.fired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
