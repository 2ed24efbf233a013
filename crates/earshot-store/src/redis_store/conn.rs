//! Connections to Redis, bounded and timed.
//!
//! - One shared connection for every non-blocking command. Standalone: a multiplexed
//!   `ConnectionManager`, created lazily, so start-up succeeds while Redis is down, and
//!   it reconnects by itself. Cluster: one async cluster connection (a multiplexed
//!   connection per node, slot routing, redirects and topology refresh by the `redis`
//!   crate), opened at start-up because the partition count must be checked then.
//! - A semaphore bounds in-flight commands; waiting for a permit is counted
//!   (`earshot_redis_pool_exhausted_total`) and in-flight permits are a gauge.
//! - Blocking reads (`XREAD BLOCK`, `XREADGROUP BLOCK`) would stall every other command
//!   on the shared connection and be cut short by its response timeout, so they run on
//!   dedicated connections from a small reusable pool. Standalone ones have no response
//!   timeout of their own; cluster ones get one longer than any block
//!   (`MAX_BLOCK + command_timeout`). The whole call is bounded by
//!   `block + command_timeout` either way.
//! - Every call is wrapped in `tokio::time::timeout`, so no call can hang.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClient;
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError, TlsCertificates};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::api::{StoreError, StoreResult};
use crate::metrics::{POOL_EXHAUSTED, POOL_IN_USE};

use super::target::{cluster_client, cluster_connection, Conn};

/// The longest a single blocking read waits on a cluster; longer blocks are cut to
/// this (callers loop anyway), so a dedicated cluster connection's response timeout can
/// be fixed at `MAX_BLOCK + command_timeout` and still exceed every block.
pub(super) const MAX_BLOCK: Duration = Duration::from_secs(60);

/// Limits of the connection layer; `Default` suits a server.
#[derive(Debug, Clone)]
pub struct RedisLimits {
    /// Most commands in flight at once on the shared connection.
    pub max_in_flight: usize,
    /// Most blocking reads at once (each holds a dedicated connection).
    pub max_blocking: usize,
    /// Idle dedicated connections kept for reuse.
    pub idle_blocking: usize,
}

impl Default for RedisLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 512,
            max_blocking: 256,
            idle_blocking: 16,
        }
    }
}

/// What dedicated connections are opened from.
enum Source {
    Single(Box<Client>),
    Cluster(Box<ClusterClient>),
}

/// The shared connection, the blocking-read pool and their bounds.
pub(super) struct Connections {
    source: Source,
    shared: Conn,
    timeout: Duration,
    in_flight: Semaphore,
    max_in_flight: usize,
    blocking: Semaphore,
    idle: Mutex<Vec<Conn>>,
    idle_max: usize,
    closed: AtomicBool,
}

/// An in-flight permit that keeps the in-use gauge current.
struct InFlight<'a> {
    _permit: SemaphorePermit<'a>,
    conns: &'a Connections,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // The permit is returned right after this, hence the -1.
        let in_use = self.conns.max_in_flight - self.conns.in_flight.available_permits() - 1;
        metrics::gauge!(POOL_IN_USE).set(in_use as f64);
    }
}

impl Connections {
    /// Sets up the lazy shared connection; fails only on a malformed URL.
    pub fn new(
        url: &str,
        certs: Option<TlsCertificates>,
        timeout: Duration,
        limits: &RedisLimits,
    ) -> StoreResult<Arc<Self>> {
        let client = match certs {
            Some(certs) => Client::build_with_tls(url, certs),
            None => Client::open(url),
        }
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let shared = client
            .get_connection_manager_lazy(config)
            .map_err(|e| StoreError::Unavailable(format!("Redis client: {e}")))?;
        Ok(Self::with(
            Source::Single(Box::new(client)),
            Conn::Manager(shared),
            timeout,
            limits,
        ))
    }

    /// Connects to a cluster through any of `nodes` (seed node URLs); fails if none
    /// answers within the timeout.
    pub async fn new_cluster(
        nodes: &[String],
        certs: Option<TlsCertificates>,
        timeout: Duration,
        limits: &RedisLimits,
    ) -> StoreResult<Arc<Self>> {
        let client = cluster_client(nodes, certs)?;
        let shared =
            tokio::time::timeout(timeout * 2, cluster_connection(&client, timeout, timeout))
                .await
                .map_err(|_| StoreError::Timeout(timeout * 2))?
                .map_err(|e| {
                    StoreError::Unavailable(format!("Redis Cluster: no seed node answered: {e}"))
                })?;
        Ok(Self::with(
            Source::Cluster(Box::new(client)),
            Conn::Cluster(shared),
            timeout,
            limits,
        ))
    }

    fn with(source: Source, shared: Conn, timeout: Duration, limits: &RedisLimits) -> Arc<Self> {
        Arc::new(Self {
            source,
            shared,
            timeout,
            in_flight: Semaphore::new(limits.max_in_flight.max(1)),
            max_in_flight: limits.max_in_flight.max(1),
            blocking: Semaphore::new(limits.max_blocking.max(1)),
            idle: Mutex::new(Vec::new()),
            idle_max: limits.idle_blocking,
            closed: AtomicBool::new(false),
        })
    }

    /// Refuses every later call and drops the idle dedicated connections.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().clear();
    }

    fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Unavailable("store closed".into()))
        } else {
            Ok(())
        }
    }

    async fn permit(&self) -> StoreResult<InFlight<'_>> {
        let permit = match self.in_flight.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                metrics::counter!(POOL_EXHAUSTED).increment(1);
                self.in_flight
                    .acquire()
                    .await
                    .map_err(|_| StoreError::Unavailable("store closed".into()))?
            }
        };
        let in_use = self.max_in_flight - self.in_flight.available_permits();
        metrics::gauge!(POOL_IN_USE).set(in_use as f64);
        Ok(InFlight {
            _permit: permit,
            conns: self,
        })
    }

    /// Runs `f` on the shared connection within the command timeout (permit wait
    /// included).
    pub async fn run<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_group(None, f).await
    }

    /// Runs one command on the shared connection: `run` for the common case.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Like `run`, for a consumer-group call: Redis' `NOGROUP` becomes
    /// `StoreError::NoGroup(group)`.
    pub async fn run_group<T, F, Fut>(&self, group: Option<&str>, f: F) -> StoreResult<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.check_open()?;
        let timeout = self.timeout;
        let call = async {
            let _permit = self.permit().await?;
            f(self.shared.clone())
                .await
                .map_err(|e| map_error(e, group, timeout))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// Runs a blocking read on a dedicated connection, bounded by `block` plus the
    /// command timeout. The connection goes back to the pool only after a clean reply
    /// (a timed-out one may still have a BLOCK pending on the server).
    pub async fn run_blocking<T, F, Fut>(
        &self,
        group: Option<&str>,
        block: Duration,
        f: F,
    ) -> StoreResult<T>
    where
        F: FnOnce(Conn) -> Fut + Clone,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.check_open()?;
        let limit = block.min(MAX_BLOCK) + self.timeout;
        let call = async {
            let _slot = self
                .blocking
                .acquire()
                .await
                .map_err(|_| StoreError::Unavailable("store closed".into()))?;
            let (conn, pooled) = self.dedicated().await?;
            let mut result = f.clone()(conn.clone()).await;
            let mut conn = conn;
            if pooled && matches!(&result, Err(e) if e.is_io_error()) {
                // An idle connection may have died with an earlier outage: one more try
                // on a fresh one, so callers don't see an error from a stale socket.
                conn = self.fresh().await?;
                result = f(conn.clone()).await;
            }
            match result {
                Ok(v) => {
                    let mut idle = self.idle.lock();
                    if idle.len() < self.idle_max && !self.closed.load(Ordering::Acquire) {
                        idle.push(conn);
                    }
                    Ok(v)
                }
                Err(e) => Err(map_error(e, group, self.timeout)),
            }
        };
        match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// An idle dedicated connection (`true`) or a new one (`false`).
    async fn dedicated(&self) -> StoreResult<(Conn, bool)> {
        if let Some(c) = self.idle.lock().pop() {
            return Ok((c, true));
        }
        Ok((self.fresh().await?, false))
    }

    async fn fresh(&self) -> StoreResult<Conn> {
        match &self.source {
            Source::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Single)
            }
            Source::Cluster(client) => {
                cluster_connection(client, self.timeout, MAX_BLOCK + self.timeout)
                    .await
                    .map(Conn::Cluster)
            }
        }
        .map_err(|e| map_error(e, None, self.timeout))
    }
}

/// How a Redis failure looks to callers: transient trouble is `Unavailable`/`Timeout`
/// (HTTP 503), `NOGROUP` on a group call is `NoGroup`, anything else is `Protocol`.
fn map_error(e: RedisError, group: Option<&str>, timeout: Duration) -> StoreError {
    if let Some(group) = group {
        if is_no_group(&e) {
            return StoreError::NoGroup(group.to_owned());
        }
    }
    if e.is_timeout() {
        return StoreError::Timeout(timeout);
    }
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
    {
        return StoreError::Unavailable(e.to_string());
    }
    match e.code() {
        Some(
            "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY" | "OOM",
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Protocol(e.to_string()),
    }
}

/// True if the error is Redis' "no such key or consumer group".
fn is_no_group(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP")
}
