//! `MemoryStore`: the embedded default store (no `REDIS_URL`), for a laptop, a demo and
//! fast tests. Not a mock: it keeps Redis' observable semantics at the `Store` level —
//! TTLs refreshed on write, gap-free `seq`, monotonic stream ids, `MAXLEN`/`MINID`
//! trimming, consumer groups with pending entries and `XAUTOCLAIM`, blocking reads, NX
//! locks — so the conformance suite runs unchanged against it and `RedisStore`.
//!
//! Everything lives behind one `parking_lot::Mutex` that is never held across an
//! `.await`; blocking reads wait on a `watch` channel bumped after every stream write.

mod groups;
mod housekeeping;
mod keyspace;
mod locks;
mod sessions;
mod slots;
mod store;
mod stream;
mod streams;
mod transcripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use earshot_core::config::StoreConfig;
use earshot_core::keys::{Keys, EVENT_STREAM};
use earshot_core::{Event, EventKind, Session, StreamId};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::api::*;
use crate::metrics;

use keyspace::Keyspace;
use stream::{Fields, Stream};

/// Everything behind the lock.
#[derive(Debug, Default)]
struct State {
    keys: Keyspace,
    streams: HashMap<String, Stream>,
    /// Live-stream slots per tenant.
    slots: slots::Slots,
    /// Set when a stream got an entry during the current call, so blocked readers wake.
    published: bool,
}

impl State {
    /// `XADD stream MAXLEN maxlen * fields`.
    fn add(&mut self, stream: &str, fields: Fields, maxlen: u64) -> StreamId {
        self.published = true;
        self.streams.entry(stream.to_owned()).or_default().add(
            fields,
            earshot_core::time::now_ms(),
            maxlen,
        )
    }

    fn publish(&mut self, event: &Event, maxlen: u64) -> StreamId {
        let fields: Vec<(String, String)> = event
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.add(EVENT_STREAM, fields.into(), maxlen)
    }

    fn group_stream(&mut self, stream: &str, group: &str) -> StoreResult<&mut Stream> {
        match self.streams.get_mut(stream) {
            Some(s) if s.has_group(group) => Ok(s),
            _ => Err(StoreError::NoGroup(group.to_owned())),
        }
    }
}

/// The embedded, process-local store. Cheap to clone handles via `Arc`; holds 10,000s
/// of sessions in plain maps.
#[derive(Debug)]
pub struct MemoryStore {
    config: StoreConfig,
    keys: Keys,
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    closed: AtomicBool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(StoreConfig::default())
    }
}

impl MemoryStore {
    /// A new, empty store with these TTLs and caps.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            keys: Keys::standalone(),
            state: Mutex::new(State::default()),
            changes: watch::channel(0).0,
            closed: AtomicBool::new(false),
        }
    }

    /// A new store behind the shared handle type.
    pub fn shared(config: StoreConfig) -> DynStore {
        Arc::new(Self::new(config))
    }

    /// How many sessions are stored (expired ones are dropped first).
    pub fn session_count(&self) -> usize {
        let mut st = self.state.lock();
        st.keys.expire_due(Instant::now());
        st.keys.session_count()
    }

    fn session_deadline(&self, now: Instant) -> Instant {
        now + self.config.session_ttl
    }

    /// Runs `f` under the lock after expiring due keys, wakes blocked readers if it
    /// published, and records the call's metrics.
    fn run<T>(
        &self,
        command: &'static str,
        f: impl FnOnce(&mut State, Instant) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let result = self.run_unrecorded(f);
        metrics::record(command, start, &result);
        result
    }

    fn run_unrecorded<T>(
        &self,
        f: impl FnOnce(&mut State, Instant) -> StoreResult<T>,
    ) -> StoreResult<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("store closed".into()));
        }
        let now = Instant::now();
        let (result, published) = {
            let mut st = self.state.lock();
            st.keys.expire_due(now);
            let result = f(&mut st, now);
            (result, std::mem::take(&mut st.published))
        };
        if published {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        result
    }

    /// Polls `f` until it returns something non-empty or `block` has passed, waking on
    /// every stream write. A zero `block` polls once.
    async fn blocking<T>(
        &self,
        block: Duration,
        mut f: impl FnMut(&mut State, Instant) -> StoreResult<Vec<T>>,
    ) -> StoreResult<Vec<T>> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Subscribe before looking, so a write between the look and the wait wakes us.
            let mut rx = self.changes.subscribe();
            let found = self.run_unrecorded(&mut f)?;
            if !found.is_empty() || block.is_zero() {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return self.run_unrecorded(&mut f),
            }
        }
    }

    fn session_event(&self, session: &Session, kind: EventKind) -> Event {
        Event {
            session_id: session.session_id.clone(),
            tenant_id: session.tenant_id.clone(),
            timestamp: earshot_core::time::now_rfc3339(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use earshot_core::{NewSegment, NewSession, SessionId, TenantId};

    use super::*;

    fn new(i: usize) -> NewSession {
        NewSession {
            session_id: SessionId::parse(&format!("s{i}")).unwrap(),
            tenant_id: TenantId::parse(&format!("t{}", i % 7)).unwrap(),
            language: "en".into(),
            metadata: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn holds_ten_thousand_sessions_and_expiry_leaves_nothing_behind() {
        let store = MemoryStore::new(StoreConfig {
            session_ttl: Duration::from_secs(3),
            stream_maxlen: 1000,
            ..StoreConfig::default()
        });
        let t0 = Instant::now();
        for i in 0..10_000 {
            store.create_session(new(i)).await.unwrap();
            let seg = NewSegment {
                text: "hello".into(),
                start_ms: None,
                end_ms: None,
                words: Vec::new(),
            };
            store
                .append_segment(&format!("t{}", i % 7), &format!("s{i}"), &seg)
                .await
                .unwrap();
        }
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "10k creates+appends took {took:?}"
        );
        assert_eq!(store.session_count(), 10_000);
        let stats = store.stats().await.unwrap();
        assert!(stats.used_memory_bytes < 64 << 20, "{stats:?}");
        // The stream is capped, not growing with every write.
        assert_eq!(stats.stream_length, 1000);
        tokio::time::sleep_until((t0 + took + Duration::from_millis(3200)).into()).await;
        assert_eq!(store.session_count(), 0);
        let st = store.state.lock();
        assert_eq!(st.keys.approx_bytes(), 0, "indexes and caches emptied too");
        assert_eq!(
            st.keys.indexed(),
            0,
            "tenant indexes pruned as sessions expire"
        );
    }
}
