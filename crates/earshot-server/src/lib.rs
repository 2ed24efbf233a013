//! earshot's HTTP, WebSocket and SSE API on top of the `Store`.
//!
//! [`Server::start`] binds, spawns the background tasks (event fan-out, retention,
//! store metrics) and serves (through [`conn::serve`], which bounds slow clients) until
//! the shutdown token fires, then drains in-flight requests within the grace period and
//! closes the store.

pub mod app;
pub mod auth;
pub mod body;
pub mod conn;
pub mod error;
pub mod event_cursor;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod retention;
pub mod routes;
pub mod service;
pub mod speech;
pub mod speech_request;
pub mod state;
pub mod tenant_streams;
pub mod tenants;
pub mod validate;
pub mod verbose_json;
pub mod views;
pub mod web;
pub mod ws_protocol;

use std::net::SocketAddr;
use std::sync::Arc;

use earshot_store::DynStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use speech::{Models, Speech, SpeechStatus};
pub use state::{AppState, ServerConfig};
pub use tenants::Tenants;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    streams: TaskTracker,
    store: DynStore,
    grace: std::time::Duration,
}

impl Server {
    /// Serves on `listener` and spawns the background tasks, until `shutdown` fires.
    pub async fn start(
        listener: TcpListener,
        store: DynStore,
        tenants: Tenants,
        config: ServerConfig,
        speech: SpeechStatus,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        crate::metrics::install();
        let addr = listener.local_addr()?;
        let hub = hub::EventHub::new();
        let origins = origin::OriginPolicy::new(&config.origins, tenants.is_open(), addr);
        let state = AppState {
            store: store.clone(),
            sessions: service::SessionService::new(store.clone(), config.store.command_timeout),
            tenants: Arc::new(tenants),
            hub: hub.clone(),
            config: Arc::new(config.clone()),
            speech: Arc::new(speech),
            shutdown: shutdown.clone(),
            tasks: TaskTracker::new(),
            limits: Arc::new(limits::Limits::new(&config.limits)),
            origins: Arc::new(origins),
        };
        let streams = state.tasks.clone();
        tokio::spawn(hub.run(store.clone(), shutdown.child_token()));
        tokio::spawn(retention::run(
            store.clone(),
            config.store.event_retention,
            config.retention_interval,
            shutdown.child_token(),
        ));
        tokio::spawn(crate::metrics::poll_store(
            store.clone(),
            config.stats_interval,
            shutdown.child_token(),
        ));
        tokio::spawn(crate::metrics::upkeep(
            config.stats_interval,
            shutdown.child_token(),
        ));
        let app = app::router(state);
        let token = shutdown.clone();
        let task = tokio::spawn(conn::serve(listener, app, config.conn.clone(), token));
        Ok(Self {
            addr,
            shutdown,
            task,
            streams,
            store,
            grace: config.grace_period,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until shutdown is requested, then gives in-flight requests and live audio
    /// streams (which flush and persist their last finals) up to the grace period, and
    /// closes the store. Returns false if the grace period ran out.
    pub async fn wait(self) -> bool {
        self.wait_also(std::future::ready(())).await
    }

    /// `wait`, with more users of the store to finish before it closes: the in-process
    /// sink workers, which acknowledge what they delivered during their own grace
    /// period. Without this a graceful restart would deliver those events again.
    pub async fn wait_also(self, also: impl std::future::Future<Output = ()>) -> bool {
        self.shutdown.cancelled().await;
        self.streams.close();
        let streams = self.streams.clone();
        let drain = async move {
            let _ = self.task.await;
            streams.wait().await;
        };
        let finished = tokio::time::timeout(self.grace, drain).await.is_ok();
        if !finished {
            tracing::warn!(grace = ?self.grace, "grace period over; dropping remaining connections");
        }
        also.await;
        self.store.close().await;
        finished
    }

    /// Requests shutdown (what SIGTERM/SIGINT do in the binary).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}
