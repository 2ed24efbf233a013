//! Shared harness of the worker tests: a store per backend (the embedded one, or a
//! RedisStore on a test-started redis-server), a scriptable recording sink, event
//! publishing and the delivery invariants every test checks.
#![allow(dead_code)]

pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use earshot_core::config::StoreConfig;
use earshot_core::keys::{DEAD_LETTER_STREAM, EVENT_STREAM};
use earshot_core::{Event, EventKind, StreamId};
use earshot_store::{DynStore, GroupInfo, StreamEntry};
use earshot_testsupport::RedisServer;
use earshot_worker::{
    BackoffConfig, Sink, SinkError, StatsHandle, Worker, WorkerConfig, WorkerStats,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous bound for "did not hang"; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Which store implementation a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Redis,
}

/// A store, plus the redis-server behind it (kept alive for the test).
pub struct Env {
    pub store: DynStore,
    pub redis: Option<RedisServer>,
}

pub async fn env(backend: Backend) -> Env {
    match backend {
        Backend::Memory => Env {
            store: Arc::new(earshot_store::MemoryStore::new(StoreConfig::default())),
            redis: None,
        },
        Backend::Redis => {
            let server = RedisServer::builder().appendonly(true).start();
            let store = redis_store(&server.url()).await;
            Env {
                store,
                redis: Some(server),
            }
        }
    }
}

pub async fn redis_store(url: &str) -> DynStore {
    let cfg = StoreConfig {
        command_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    Arc::new(
        earshot_store::RedisStore::connect(url, cfg)
            .await
            .expect("connect to the test redis-server"),
    )
}

/// Worker settings for tests: short blocks and backoffs, reclaim effectively off.
pub fn cfg(group: &str, consumer: &str) -> WorkerConfig {
    let mut c = WorkerConfig::new(group, consumer);
    c.batch = 8;
    c.block = Duration::from_millis(50);
    c.min_idle = Duration::from_secs(60);
    c.grace = Duration::from_secs(2);
    c.lag_poll = Duration::from_millis(50);
    c.store_backoff = BackoffConfig::new(Duration::from_millis(5), Duration::from_millis(100));
    c.sink_backoff = BackoffConfig::new(Duration::from_millis(1), Duration::from_millis(20));
    c
}

/// Publishes `n` transcript_segment events tagged `tag`; returns their ids.
pub async fn publish(store: &DynStore, tag: &str, n: usize) -> Vec<StreamId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ev = Event {
            session_id: tag.to_owned(),
            tenant_id: "t".to_owned(),
            timestamp: earshot_core::time::now_rfc3339(),
            kind: EventKind::TranscriptSegment {
                seq: i as u64,
                text: format!("{tag} {i}"),
                start_ms: Some(i as i64 * 1000),
                end_ms: None,
            },
        };
        let fields: Vec<(String, String)> = ev
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        ids.push(
            store
                .add_entry(EVENT_STREAM, &fields)
                .await
                .expect("publish"),
        );
    }
    ids
}

/// What a test sink does with one delivery attempt (1-based, counted across workers).
pub type Script = Arc<dyn Fn(&StreamEntry, u32) -> Result<(), SinkError> + Send + Sync>;

/// Everything test sinks saw, shared by the sinks of one group.
#[derive(Default)]
pub struct Record {
    /// Attempts per id (successful or not).
    pub attempts: Mutex<BTreeMap<StreamId, u32>>,
    /// Successful deliveries, in order, with the worker that made them.
    pub delivered: Mutex<Vec<(StreamId, String)>>,
    /// Deliveries running right now, and the most ever at once.
    pub in_flight: AtomicUsize,
    pub blocked: AtomicUsize,
}

impl Record {
    pub fn delivered_ids(&self) -> Vec<StreamId> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn delivered_count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    pub fn attempts_of(&self, id: StreamId) -> u32 {
        self.attempts.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    pub fn by_worker(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, w) in self.delivered.lock().unwrap().iter() {
            *m.entry(w.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// A sink that records, follows a script, may be slow, and may hang on one id.
pub struct TestSink {
    pub worker: String,
    pub record: Arc<Record>,
    pub script: Script,
    pub delay: Duration,
    pub hang_on: Option<StreamId>,
}

impl TestSink {
    pub fn ok(worker: &str, record: &Arc<Record>) -> Self {
        Self {
            worker: worker.to_owned(),
            record: record.clone(),
            script: Arc::new(|_, _| Ok(())),
            delay: Duration::ZERO,
            hang_on: None,
        }
    }

    pub fn scripted(worker: &str, record: &Arc<Record>, script: Script) -> Self {
        Self {
            script,
            ..Self::ok(worker, record)
        }
    }
}

#[async_trait]
impl Sink for TestSink {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn deliver(&self, entry: &StreamEntry) -> Result<(), SinkError> {
        let attempt = {
            let mut a = self.record.attempts.lock().unwrap();
            let n = a.entry(entry.id).or_insert(0);
            *n += 1;
            *n
        };
        self.record.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.hang_on == Some(entry.id) {
            self.record.blocked.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.record.in_flight.fetch_sub(1, Ordering::SeqCst);
        let r = (self.script)(entry, attempt);
        if r.is_ok() {
            self.record
                .delivered
                .lock()
                .unwrap()
                .push((entry.id, self.worker.clone()));
        }
        r
    }
}

/// A running worker.
pub struct Running {
    pub handle: JoinHandle<WorkerStats>,
    pub stats: StatsHandle,
    pub shutdown: CancellationToken,
}

impl Running {
    /// Requests shutdown and waits (generously) for the worker to return.
    pub async fn stop(self) -> WorkerStats {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("worker stopped within the grace period")
            .expect("worker task did not panic")
    }
}

pub fn spawn(cfg: WorkerConfig, store: &DynStore, sink: impl Sink) -> Running {
    let worker = Worker::new(cfg, store.clone(), Arc::new(sink)).expect("valid config");
    let stats = worker.stats();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    Running {
        handle,
        stats,
        shutdown,
    }
}

/// Polls `cond` until true; panics after `PATIENCE` with `what`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn group(store: &DynStore, name: &str) -> Option<GroupInfo> {
    store
        .groups(EVENT_STREAM)
        .await
        .expect("groups")
        .into_iter()
        .find(|g| g.name == name)
}

/// Waits until a worker has created `name`.
pub async fn wait_for_group(store: &DynStore, name: &str) -> GroupInfo {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(g) = group(store, name).await {
            return g;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {name} never created"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the group has read up to `last` and nothing is pending.
pub async fn wait_drained(store: &DynStore, name: &str, last: StreamId) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(g) = group(store, name).await {
            if g.last_delivered >= last && g.pending == 0 {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {name} never drained"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Dead-lettered entries: original id → the dead-letter entry.
pub async fn dead_letters(store: &DynStore) -> BTreeMap<StreamId, StreamEntry> {
    store
        .read_stream(DEAD_LETTER_STREAM, StreamId::ZERO, 100_000)
        .await
        .expect("read dead letters")
        .into_iter()
        .map(|e| {
            let orig = e
                .field("original_id")
                .expect("dead letter names its original id")
                .parse()
                .expect("original id parses");
            (orig, e)
        })
        .collect()
}

/// The ids still pending in `group` (claims them for a checker consumer: call last).
pub async fn pending_ids(store: &DynStore, group: &str) -> BTreeSet<StreamId> {
    let mut out = BTreeSet::new();
    let mut cursor = StreamId::ZERO;
    loop {
        let ac = store
            .autoclaim(
                EVENT_STREAM,
                group,
                "__checker__",
                Duration::ZERO,
                cursor,
                1000,
            )
            .await
            .expect("autoclaim");
        out.extend(ac.claimed.iter().map(|c| c.entry.id));
        cursor = ac.next;
        if cursor == StreamId::ZERO {
            return out;
        }
    }
}

/// The invariants of at-least-once delivery, checked after the workers stopped:
/// every acknowledged entry (read by the group, neither pending nor dead-lettered) was
/// delivered — so nothing is lost: every entry is delivered, dead-lettered, pending, or
/// not yet read; and no entry
/// was delivered more than `max_copies` times. Returns (pending, dead) for more checks.
pub async fn check_invariants(
    store: &DynStore,
    group: &str,
    published: &[StreamId],
    record: &Record,
    max_copies: usize,
) -> (BTreeSet<StreamId>, BTreeMap<StreamId, StreamEntry>) {
    // Entries after the group's last-delivered id were never read: still in the stream.
    let last_delivered = wait_for_group(store, group).await.last_delivered;
    let pending = pending_ids(store, group).await;
    let dead: BTreeMap<_, _> = dead_letters(store)
        .await
        .into_iter()
        .filter(|(_, e)| e.field("group") == Some(group))
        .collect();
    let mut copies: BTreeMap<StreamId, usize> = BTreeMap::new();
    for id in record.delivered_ids() {
        *copies.entry(id).or_insert(0) += 1;
    }
    for id in published {
        let acked = *id <= last_delivered && !pending.contains(id) && !dead.contains_key(id);
        if acked {
            assert!(
                copies.contains_key(id),
                "{id} was acknowledged but never delivered"
            );
        }
        let n = copies.get(id).copied().unwrap_or(0);
        assert!(
            n <= max_copies,
            "{id} delivered {n} times (bound {max_copies})"
        );
    }
    let published: BTreeSet<_> = published.iter().copied().collect();
    for id in copies.keys() {
        assert!(published.contains(id), "{id} delivered but never published");
    }
    (pending, dead)
}
