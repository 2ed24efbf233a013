//! Shared by the test binaries: builds a store of any backend (Redis with its own
//! throwaway server; Redis Cluster on the binary's one shared cluster, flushed and
//! used by one test at a time) and small helpers to make sessions and read events.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_core::{Event, NewSegment, NewSession, Session, SessionId, StreamId, TenantId};
use earshot_store::{CreateOutcome, DynStore, MemoryStore};
pub use earshot_testsupport::{RedisCluster, RedisServer};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

/// Which backend a conformance test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
    Cluster,
}

/// Cluster tests share one cluster per binary, so they take turns: each flushes it
/// and holds this until its harness is dropped. Re-entrant, because a test may build
/// a second harness (on its own thread) after it is done with the first.
static CLUSTER_TURN: ReentrantMutex<()> = ReentrantMutex::new(());

/// A store under test, plus the redis-server it talks to (killed on drop).
pub struct Harness {
    pub kind: Kind,
    pub store: DynStore,
    pub server: Option<RedisServer>,
    /// Held by a cluster test for its whole run (see `CLUSTER_TURN`).
    pub cluster_turn: Option<ReentrantMutexGuard<'static, ()>>,
}

impl Harness {
    pub async fn new(kind: Kind) -> Self {
        Self::with_config(kind, StoreConfig::default()).await
    }

    pub async fn with_config(kind: Kind, config: StoreConfig) -> Self {
        match kind {
            Kind::Memory => Self {
                kind,
                store: Arc::new(MemoryStore::new(config)),
                server: None,
                cluster_turn: None,
            },
            Kind::Redis => {
                let server = RedisServer::start();
                let store = earshot_store::RedisStore::connect(&server.url(), config)
                    .await
                    .expect("connect to the test's redis-server");
                Self {
                    kind,
                    store: Arc::new(store),
                    server: Some(server),
                    cluster_turn: None,
                }
            }
            Kind::Cluster => {
                let turn = CLUSTER_TURN.lock();
                let cluster = RedisCluster::shared();
                cluster.flush_all();
                let store = earshot_store::RedisStore::connect(&cluster.url(), config)
                    .await
                    .expect("connect to the test binary's cluster");
                Self {
                    kind,
                    store: Arc::new(store),
                    server: None,
                    cluster_turn: Some(turn),
                }
            }
        }
    }
}

/// A config with a short session TTL, for expiry tests.
pub fn short_ttl(ttl: Duration) -> StoreConfig {
    StoreConfig {
        session_ttl: ttl,
        ..StoreConfig::default()
    }
}

pub fn new_session(tenant: &str, id: &str) -> NewSession {
    NewSession {
        session_id: SessionId::parse(id).unwrap(),
        tenant_id: TenantId::parse(tenant).unwrap(),
        language: "en-US".into(),
        metadata: BTreeMap::new(),
    }
}

/// Creates a session and returns it; panics if the id exists.
pub async fn create(store: &DynStore, tenant: &str, id: &str) -> Session {
    match store.create_session(new_session(tenant, id)).await.unwrap() {
        CreateOutcome::Created(s) => s,
        CreateOutcome::AlreadyExists => panic!("{id} exists"),
    }
}

pub fn seg(text: &str) -> NewSegment {
    NewSegment {
        text: text.into(),
        start_ms: None,
        end_ms: None,
        words: Vec::new(),
    }
}

pub fn timed_seg(text: &str, a: i64, b: i64) -> NewSegment {
    NewSegment {
        text: text.into(),
        start_ms: Some(a),
        end_ms: Some(b),
        words: Vec::new(),
    }
}

/// Every event on every event stream (partition), parsed, in id order.
pub async fn events(store: &DynStore) -> Vec<(StreamId, Event)> {
    let mut all = Vec::new();
    for stream in store.event_streams() {
        all.extend(
            store
                .read_stream(&stream, StreamId::ZERO, 100_000)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.id, Event::from_fields(&e.fields).expect("a valid event"))),
        );
    }
    all.sort_by_key(|(id, _)| *id);
    all
}

/// The events of one type.
pub async fn events_of(store: &DynStore, event_type: &str) -> Vec<Event> {
    events(store)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.kind.event_type() == event_type)
        .collect()
}

/// Fields for `add_entry`.
pub fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Declares each listed `async fn name(kind: Kind)` as a test module `name` with a
/// `memory`, a `redis` and a `cluster` test, so one body runs against every backend.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name($crate::support::Kind::Memory).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$name($crate::support::Kind::Redis).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    super::$name($crate::support::Kind::Cluster).await
                }
            }
        )*
    };
}
