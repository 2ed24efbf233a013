//! `MemoryStore`: the embedded default store (no `REDIS_URL`), for a laptop, a demo and
//! fast tests. Not a mock: it keeps Redis' observable semantics at the `Store` level —
//! TTLs refreshed on write, gap-free `seq`, monotonic stream ids, `MAXLEN`/`MINID`
//! trimming, consumer groups with pending entries and `XAUTOCLAIM`, blocking reads, NX
//! locks — so the conformance suite runs unchanged against it and `RedisStore`.
//!
//! Everything lives behind one `parking_lot::Mutex` that is never held across an
//! `.await`; blocking reads wait on a `watch` channel bumped after every stream write.

mod keyspace;
mod slots;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use earshot_core::event::completed_transcript;
use earshot_core::keys::{Keys, EVENT_STREAM, STREAM_LOCK};
use earshot_core::time::format_rfc3339;
use earshot_core::{
    config::StoreConfig, Event, EventKind, NewSegment, NewSession, Segment, Session, SessionStatus,
    StreamId, Transcript,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::api::*;
use crate::common::{
    clamp_limit, dead_letter_fields, dead_letter_stream, new_lock_token, segment_fingerprint,
};
use crate::cursor::Position;
use crate::metrics;

use keyspace::{Keyspace, SessionRec};
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

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run("ping", |_, _| Ok(()))
    }

    async fn create_session(&self, new: NewSession) -> StoreResult<CreateOutcome> {
        self.run("create_session", |st, now| {
            let id = new.session_id.as_str();
            if st.keys.session(id).is_some() {
                return Ok(CreateOutcome::AlreadyExists);
            }
            let started = Utc::now();
            let session = Session {
                session_id: id.to_owned(),
                tenant_id: new.tenant_id.as_str().to_owned(),
                language: new.language.clone(),
                status: SessionStatus::Active,
                started_at: format_rfc3339(started),
                completed_at: None,
                segment_count: 0,
                metadata: new.metadata.clone(),
            };
            let event = self.session_event(
                &session,
                EventKind::SessionStarted {
                    language: session.language.clone(),
                },
            );
            st.keys.insert_session(SessionRec {
                session: session.clone(),
                score: started.timestamp_millis().max(0) as u64,
                segments: Vec::new(),
                text_bytes: 0,
                idempotency: HashMap::new(),
                expires: self.session_deadline(now),
            });
            st.publish(&event, self.config.maxlen());
            Ok(CreateOutcome::Created(session))
        })
    }

    async fn get_session(&self, tenant: &str, id: &str) -> StoreResult<Option<Session>> {
        self.run("get_session", |st, _| {
            Ok(st.keys.session_of(tenant, id).map(|r| r.session.clone()))
        })
    }

    async fn list_sessions(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>> {
        let after = match cursor.map(Position::decode).transpose() {
            Ok(after) => after,
            Err(bad) => return self.run("list_sessions", |_, _| Ok(Err(bad))),
        };
        let limit = clamp_limit(limit);
        self.run("list_sessions", |st, _| {
            let found = st.keys.page(
                tenant,
                after.as_ref().map(|p| (p.score, p.id.as_str())),
                limit + 1,
            );
            let more = found.len() > limit;
            let page: Vec<(u64, Session)> = found
                .into_iter()
                .take(limit)
                .map(|(score, r)| (score, r.session.clone()))
                .collect();
            let next_cursor = match (more, page.last()) {
                (true, Some((score, s))) => Some(
                    Position {
                        score: *score,
                        id: s.session_id.clone(),
                    }
                    .encode(),
                ),
                _ => None,
            };
            Ok(Ok(SessionPage {
                sessions: page.into_iter().map(|(_, s)| s).collect(),
                next_cursor,
            }))
        })
    }

    async fn append_segment_once(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome> {
        let fingerprint = segment_fingerprint(segment);
        self.run("append_segment", |st, now| {
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(AppendOutcome::NotFound);
            };
            if let Some((seq, seen)) = key.and_then(|k| rec.idempotency.get(k)) {
                return Ok(if *seen == fingerprint {
                    AppendOutcome::Repeated { seq: *seq }
                } else {
                    AppendOutcome::KeyReused
                });
            }
            if rec.session.status == SessionStatus::Completed {
                return Ok(AppendOutcome::Completed);
            }
            let bytes = rec.text_bytes + segment.text.len() as u64;
            if rec.session.segment_count >= self.config.max_session_segments
                || bytes > self.config.max_session_bytes
            {
                return Ok(AppendOutcome::Full);
            }
            let seq = rec.session.segment_count;
            rec.session.segment_count += 1;
            rec.text_bytes = bytes;
            if let Some(k) = key {
                rec.idempotency.insert(k.to_owned(), (seq, fingerprint));
            }
            rec.segments.push(Segment {
                seq,
                text: segment.text.clone(),
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                words: segment.words.clone(),
            });
            let event = self.session_event(
                &rec.session,
                EventKind::TranscriptSegment {
                    seq,
                    text: segment.text.clone(),
                    start_ms: segment.start_ms,
                    end_ms: segment.end_ms,
                },
            );
            st.keys.touch_session(id, self.session_deadline(now));
            let event_id = st.publish(&event, self.config.maxlen());
            Ok(AppendOutcome::Appended { seq, event_id })
        })
    }

    async fn set_language(&self, tenant: &str, id: &str, language: &str) -> StoreResult<bool> {
        self.run("set_language", |st, _| {
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(false);
            };
            rec.session.language = language.to_owned();
            let event = self.session_event(
                &rec.session,
                EventKind::LanguageDetected {
                    language: language.to_owned(),
                },
            );
            st.publish(&event, self.config.maxlen());
            Ok(true)
        })
    }

    async fn complete_session(&self, tenant: &str, id: &str) -> StoreResult<CompleteOutcome> {
        self.run("complete_session", |st, now| {
            let already = match st.keys.session_of(tenant, id) {
                None => return Ok(CompleteOutcome::NotFound),
                Some(rec) => rec.session.status == SessionStatus::Completed,
            };
            if already {
                let Some(rec) = st.keys.session(id) else {
                    return Ok(CompleteOutcome::NotFound);
                };
                let transcript = match st.keys.cached(id) {
                    Some(t) => t.text.clone(),
                    None => rec.transcript().text,
                };
                return Ok(CompleteOutcome::Completed {
                    session: rec.session.clone(),
                    transcript,
                    newly_completed: false,
                });
            }
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(CompleteOutcome::NotFound);
            };
            rec.session.status = SessionStatus::Completed;
            rec.session.completed_at = Some(earshot_core::time::now_rfc3339());
            let session = rec.session.clone();
            let transcript = rec.transcript();
            let texts: Vec<&str> = transcript
                .segments
                .iter()
                .map(|s| s.text.as_str())
                .collect();
            let (text, truncated) = completed_transcript(&texts);
            let event = self.session_event(
                &session,
                EventKind::TranscriptCompleted {
                    transcript: text,
                    segment_count: session.segment_count,
                    transcript_truncated: truncated,
                },
            );
            st.keys.touch_session(id, self.session_deadline(now));
            let text = transcript.text.clone();
            st.keys
                .put_cache(id, transcript, now + self.config.cache_ttl);
            st.publish(&event, self.config.maxlen());
            Ok(CompleteOutcome::Completed {
                session,
                transcript: text,
                newly_completed: true,
            })
        })
    }

    async fn transcript(&self, tenant: &str, id: &str) -> StoreResult<Option<Transcript>> {
        self.run("transcript", |st, now| {
            let Some(rec) = st.keys.session_of(tenant, id) else {
                return Ok(None);
            };
            if rec.session.status != SessionStatus::Completed {
                return Ok(Some(rec.transcript()));
            }
            if let Some(t) = st.keys.cached(id) {
                return Ok(Some(t.clone()));
            }
            let t = rec.transcript();
            st.keys
                .put_cache(id, t.clone(), now + self.config.cache_ttl);
            Ok(Some(t))
        })
    }

    /// Expired sessions leave their tenant index the moment they expire (every call
    /// drops due keys first), so there is never anything left over to prune.
    async fn prune_expired(&self) -> StoreResult<u64> {
        self.run("prune_expired", |_, _| Ok(0))
    }

    async fn delete_session(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        self.run("delete_session", |st, _| {
            let Some(rec) = st.keys.session_of(tenant, id) else {
                return Ok(false);
            };
            let event = self.session_event(&rec.session, EventKind::SessionDeleted);
            st.keys.drop_session(id);
            st.keys.drop_lock(&self.keys.lock(id, STREAM_LOCK));
            st.publish(&event, self.config.maxlen());
            Ok(true)
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>> {
        self.run("read_stream", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(|s| s.range_after(after, count))
                .unwrap_or_default())
        })
    }

    async fn wait_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        metrics::timed(
            "wait_stream",
            self.blocking(block, |st, _| {
                Ok(st
                    .streams
                    .get(stream)
                    .map(|s| s.range_after(after, count))
                    .unwrap_or_default())
            }),
        )
        .await
    }

    async fn last_stream_id(&self, stream: &str) -> StoreResult<StreamId> {
        self.run("last_stream_id", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(Stream::last_entry_id)
                .unwrap_or_default())
        })
    }

    async fn add_entry(&self, stream: &str, fields: &[(String, String)]) -> StoreResult<StreamId> {
        self.run("add_entry", |st, _| {
            Ok(st.add(stream, fields.into(), self.config.maxlen()))
        })
    }

    async fn trim_stream_before(&self, stream: &str, min_id: StreamId) -> StoreResult<u64> {
        self.run("trim_stream_before", |st, _| {
            Ok(st
                .streams
                .get_mut(stream)
                .map(|s| s.trim_before(min_id))
                .unwrap_or(0))
        })
    }

    async fn stream_len(&self, stream: &str) -> StoreResult<u64> {
        self.run("stream_len", |st, _| {
            Ok(st.streams.get(stream).map(Stream::len).unwrap_or(0))
        })
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: GroupStart,
    ) -> StoreResult<bool> {
        self.run("create_group", |st, _| {
            Ok(st
                .streams
                .entry(stream.to_owned())
                .or_default()
                .create_group(group, start))
        })
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        metrics::timed(
            "read_group",
            self.blocking(block, |st, now| {
                let s = st.group_stream(stream, group)?;
                s.read_group(group, consumer, count, now)
                    .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
            }),
        )
        .await
    }

    async fn read_own_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>> {
        self.run("read_own_pending", |st, now| {
            let s = st.group_stream(stream, group)?;
            s.read_own_pending(group, consumer, after, count, now)
                .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
        })
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()> {
        self.run("release", |st, _| {
            if let Some(s) = st.streams.get_mut(stream) {
                s.release(group, consumer, entries);
            }
            Ok(())
        })
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> StoreResult<u64> {
        self.run("ack", |st, _| {
            Ok(st
                .streams
                .get_mut(stream)
                .map(|s| s.ack(group, ids))
                .unwrap_or(0))
        })
    }

    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim> {
        self.run("autoclaim", |st, now| {
            let s = st.group_stream(stream, group)?;
            s.autoclaim(group, consumer, min_idle, start, count, now)
                .ok_or_else(|| StoreError::NoGroup(group.to_owned()))
        })
    }

    async fn dead_letter(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId> {
        let dead = dead_letter_stream(stream);
        let fields = dead_letter_fields(group, entry, reason, delivery_count);
        self.run("dead_letter", |st, _| {
            let id = st.add(&dead, fields.into(), self.config.maxlen());
            if let Some(s) = st.streams.get_mut(stream) {
                s.ack(group, &[entry.id]);
            }
            Ok(id)
        })
    }

    async fn groups(&self, stream: &str) -> StoreResult<Vec<GroupInfo>> {
        self.run("groups", |st, _| {
            Ok(st
                .streams
                .get(stream)
                .map(Stream::groups)
                .unwrap_or_default())
        })
    }

    async fn try_lock(
        &self,
        session_id: &str,
        purpose: &str,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        let name = self.keys.lock(session_id, purpose);
        self.run("try_lock", |st, now| {
            if st.keys.lock(&name).is_some() {
                return Ok(None);
            }
            let token = new_lock_token();
            st.keys.set_lock(&name, token.0.clone(), now + ttl);
            Ok(Some(token))
        })
    }

    async fn extend_lock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let name = self.keys.lock(session_id, purpose);
        self.run("extend_lock", |st, now| match st.keys.lock(&name) {
            Some(l) if l.token == token.0 => {
                st.keys.set_lock(&name, token.0.clone(), now + ttl);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    async fn unlock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
    ) -> StoreResult<bool> {
        let name = self.keys.lock(session_id, purpose);
        self.run("unlock", |st, _| match st.keys.lock(&name) {
            Some(l) if l.token == token.0 => {
                st.keys.drop_lock(&name);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    async fn lock_remaining(
        &self,
        session_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<Duration>> {
        let name = self.keys.lock(session_id, purpose);
        self.run("lock_remaining", |st, now| {
            Ok(st
                .keys
                .lock(&name)
                .map(|l| l.expires.saturating_duration_since(now)))
        })
    }

    async fn acquire_stream_slot(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.run("acquire_stream_slot", |st, now| {
            Ok(st.slots.acquire(tenant, max, ttl, now))
        })
    }

    async fn extend_stream_slot(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.run("extend_stream_slot", |st, now| {
            Ok(st.slots.extend(tenant, token, ttl, now))
        })
    }

    async fn release_stream_slot(&self, tenant: &str, token: &LockToken) -> StoreResult<bool> {
        self.run("release_stream_slot", |st, _| {
            Ok(st.slots.release(tenant, token))
        })
    }

    async fn stream_slots_held(&self, tenant: &str) -> StoreResult<u64> {
        self.run("stream_slots_held", |st, now| {
            Ok(st.slots.held(tenant, now))
        })
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.run("stats", |st, _| {
            let streams: u64 = st.streams.values().map(Stream::approx_bytes).sum();
            Ok(StoreStats {
                used_memory_bytes: st.keys.approx_bytes() + streams,
                evicted_keys: 0,
                stream_length: st.streams.get(EVENT_STREAM).map(Stream::len).unwrap_or(0),
            })
        })
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Wake blocked readers so they notice.
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use earshot_core::{SessionId, TenantId};

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
