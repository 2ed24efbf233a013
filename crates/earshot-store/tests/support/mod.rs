//! Shared by the test binaries: builds a store of either backend (Redis with its own
//! throwaway server) and small helpers to make sessions and read events.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_core::keys::EVENT_STREAM;
use earshot_core::{Event, NewSegment, NewSession, Session, SessionId, StreamId, TenantId};
use earshot_store::{CreateOutcome, DynStore, MemoryStore};
pub use earshot_testsupport::RedisServer;

/// Which backend a conformance test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
}

/// A store under test, plus the redis-server it talks to (killed on drop).
pub struct Harness {
    pub kind: Kind,
    pub store: DynStore,
    pub server: Option<RedisServer>,
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
    }
}

pub fn timed_seg(text: &str, a: i64, b: i64) -> NewSegment {
    NewSegment {
        text: text.into(),
        start_ms: Some(a),
        end_ms: Some(b),
    }
}

/// Every event on the event stream, parsed.
pub async fn events(store: &DynStore) -> Vec<(StreamId, Event)> {
    store
        .read_stream(EVENT_STREAM, StreamId::ZERO, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, Event::from_fields(&e.fields).expect("a valid event")))
        .collect()
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
/// `memory` and a `redis` test, so one body runs against both backends.
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
            }
        )*
    };
}
