//! The trait and the value types that cross it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use earshot_core::{NewSegment, NewSession, Segment, Session, StreamId, Transcript};

/// A failed store call. Every variant is something the caller answers with a retry or a
/// fallback (HTTP 503 + `Retry-After`), never a panic.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached (refused, reset, reconnecting).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer within the command timeout.
    #[error("store call timed out after {0:?}")]
    Timeout(Duration),
    /// The store answered something we did not expect (damaged or foreign data).
    #[error("unexpected store reply: {0}")]
    Protocol(String),
    /// A consumer-group call named a group that does not exist.
    #[error("no consumer group {0:?}")]
    NoGroup(String),
    /// This node's configuration contradicts the deployment's (found at connect).
    #[error("store configuration mismatch: {0}")]
    Config(String),
}

impl StoreError {
    /// A short label for `earshot_redis_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::Protocol(_) => "protocol",
            Self::NoGroup(_) => "no_group",
            Self::Config(_) => "config",
        }
    }
}

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A shared store handle, created once at start-up.
pub type DynStore = Arc<dyn Store>;

/// Result of `create_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created; `session_started` was published in the same atomic write.
    Created(Session),
    /// A session with that id exists (in any tenant).
    AlreadyExists,
}

/// Result of `append_segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored and published; `seq` is 0-based and gap-free per session.
    Appended { seq: u64, event_id: StreamId },
    /// The idempotency key was used before with the same segment: this is a retry of
    /// an append that was applied. Nothing was written; `seq` is the first answer.
    Repeated { seq: u64 },
    /// The idempotency key was used before with a different segment; nothing written.
    KeyReused,
    /// No such session for this tenant.
    NotFound,
    /// The session is completed; nothing was written.
    Completed,
    /// The session holds `max_session_segments` segments or `max_session_bytes` of
    /// text, and this segment would pass the limit; nothing was written.
    Full,
}

/// Result of `complete_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// The session is completed. `newly_completed` is true for exactly one caller, the
    /// one whose call published `transcript_completed`.
    Completed {
        session: Session,
        transcript: String,
        newly_completed: bool,
    },
    NotFound,
}

/// One page of a tenant's sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Opaque; pass back to get the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A cursor that the store did not issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct BadCursor;

/// One entry of a stream: its id and its flat fields, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<(String, String)>,
}

impl StreamEntry {
    /// The value of a field, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The entry as JSON (typed numbers for known events, strings otherwise).
    pub fn to_json(&self) -> serde_json::Value {
        earshot_core::event::fields_to_json(&self.fields)
    }
}

/// An entry handed out by `autoclaim` or `read_own_pending`, with how many times it has
/// been delivered (this hand-out included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEntry {
    pub entry: StreamEntry,
    pub delivery_count: u64,
}

/// Result of one `XAUTOCLAIM` step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoClaim {
    /// Where the next scan should start (`0-0` when the scan wrapped around).
    pub next: StreamId,
    /// Entries now owned by the claiming consumer.
    pub claimed: Vec<ClaimedEntry>,
    /// Pending ids whose entries were trimmed away; they are removed from the PEL.
    pub deleted: Vec<StreamId>,
}

/// A consumer group on the event stream, as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub consumers: u64,
    /// Delivered but not acknowledged.
    pub pending: u64,
    pub last_delivered: StreamId,
    /// Entries not yet delivered to the group; `None` when the store cannot tell
    /// (Redis reports nil after trimming past the group).
    pub lag: Option<u64>,
}

/// A held lock: present the token to release or extend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken(pub String);

/// Figures the metrics poller publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    pub used_memory_bytes: u64,
    pub evicted_keys: u64,
    /// Summed over every event stream (partition).
    pub stream_length: u64,
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// Only entries added after creation (`$`).
    New,
    /// Every entry still in the stream (`0`).
    Beginning,
}

/// Everything earshot stores. Tenant-scoped calls treat a session of another tenant
/// exactly like a missing one, so existence never leaks across tenants.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"redis"`, `"redis-cluster"` or `"memory"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Every event stream: `transcription_events` alone on standalone Redis and the
    /// embedded store, one per partition (`{p<n>}:transcription_events`) on a cluster.
    /// Readers that want every event read all of them.
    fn event_streams(&self) -> Vec<String> {
        vec![earshot_core::keys::EVENT_STREAM.to_owned()]
    }

    /// The event stream that `session_id`'s events are published on.
    fn event_stream_of(&self, session_id: &str) -> String {
        let _ = session_id;
        earshot_core::keys::EVENT_STREAM.to_owned()
    }

    /// Round trip to the store (`PING`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- sessions -------------------------------------------------------------

    /// Creates the metadata hash, indexes the session under its tenant and publishes
    /// `session_started`, atomically.
    async fn create_session(&self, new: NewSession) -> StoreResult<CreateOutcome>;

    /// The session, if it exists and belongs to `tenant`.
    async fn get_session(&self, tenant: &str, id: &str) -> StoreResult<Option<Session>>;

    /// A page of the tenant's sessions, newest first (`limit` 1..=200). Ids whose keys
    /// expired are pruned from the tenant index on the way. A cursor this store did not
    /// issue gives `Ok(Err(BadCursor))`.
    async fn list_sessions(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>>;

    /// Appends one final segment: chunk, segment JSON, `segment_count`, TTL refresh and
    /// the `transcript_segment` event in one atomic write.
    async fn append_segment(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
    ) -> StoreResult<AppendOutcome> {
        self.append_segment_once(tenant, id, segment, None).await
    }

    /// `append_segment` with an idempotency key: the first append with `key` is stored
    /// together with the key (in the same atomic write, kept for the session TTL); a
    /// later one with the same key and segment answers [`AppendOutcome::Repeated`] with
    /// the first `seq`, with a different segment [`AppendOutcome::KeyReused`]. Either
    /// way nothing is stored or published twice, so a call that timed out but was
    /// applied can be retried safely. The key is checked before the session's status,
    /// so a retry still gets its first answer after the session was completed.
    async fn append_segment_once(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome>;

    /// Marks the session completed and publishes `transcript_completed`, once; repeats
    /// return the same session and transcript and publish nothing. Caches the
    /// assembled transcript for `cache_ttl`.
    async fn complete_session(&self, tenant: &str, id: &str) -> StoreResult<CompleteOutcome>;

    /// Sets the session's `language` (a language detected from its speech after it was
    /// created) and publishes `language_detected` with it. False if there is no such
    /// session for this tenant (then nothing is published).
    async fn set_language(&self, tenant: &str, id: &str, language: &str) -> StoreResult<bool>;

    /// The transcript (chunks joined by one space) and segments, if the session exists
    /// and belongs to `tenant`. Completed sessions are served from the cache entry.
    async fn transcript(&self, tenant: &str, id: &str) -> StoreResult<Option<Transcript>>;

    /// The session's segments with `seq >= from`, oldest first (none when `from` is past
    /// the last), if the session exists and belongs to `tenant`. For a reader that needs
    /// the tail of a long session, not all of it (a reconnecting live stream).
    async fn segments_from(
        &self,
        tenant: &str,
        id: &str,
        from: u64,
    ) -> StoreResult<Option<Vec<Segment>>>;

    /// Removes the tenant-index entries of sessions that expired, so an index does not
    /// grow with every session a tenant ever had when nobody lists it. The server runs
    /// it periodically; returns how many entries were removed.
    async fn prune_expired(&self) -> StoreResult<u64>;

    /// Deletes every key of the session and publishes `session_deleted`. False if there
    /// was no such session for this tenant.
    async fn delete_session(&self, tenant: &str, id: &str) -> StoreResult<bool>;

    // ---- the event stream -----------------------------------------------------

    /// Up to `count` entries of `stream` with ids strictly greater than `after`
    /// (non-blocking `XRANGE`).
    async fn read_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>>;

    /// Like `read_stream`, but waits up to `block` for entries to arrive (`XREAD BLOCK`,
    /// on a dedicated connection). Returns an empty vector on timeout; a zero `block`
    /// does not wait.
    async fn wait_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>>;

    /// The id of the newest entry of the stream (`0-0` when empty).
    async fn last_stream_id(&self, stream: &str) -> StoreResult<StreamId>;

    /// Appends an entry with `MAXLEN ~ stream_maxlen` and returns its id.
    async fn add_entry(&self, stream: &str, fields: &[(String, String)]) -> StoreResult<StreamId>;

    /// `XTRIM stream MINID min_id`: removes every entry older than `min_id` (exact, not
    /// `~`, so retention is a promise); returns how many entries were removed.
    async fn trim_stream_before(&self, stream: &str, min_id: StreamId) -> StoreResult<u64>;

    /// `XLEN`.
    async fn stream_len(&self, stream: &str) -> StoreResult<u64>;

    // ---- consumer groups ------------------------------------------------------

    /// `XGROUP CREATE stream group <start> MKSTREAM`; false if it already existed.
    async fn create_group(&self, stream: &str, group: &str, start: GroupStart)
        -> StoreResult<bool>;

    /// `XREADGROUP GROUP group consumer COUNT count BLOCK block STREAMS stream >`:
    /// new entries, now pending for `consumer`. Empty on timeout; a zero `block` does
    /// not wait (unlike Redis' `BLOCK 0`, which waits forever).
    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>>;

    /// Up to `count` of the consumer's own pending entries with ids above `after`
    /// (`XREADGROUP ... <after>`), each with its delivery count, which this read
    /// increments as Redis does. An entry trimmed from the stream while pending comes
    /// with no fields, so the caller can acknowledge it.
    async fn read_own_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>>;

    /// Hands entries this consumer read but never attempted back to the group: idle
    /// long enough for the next reclaim by any consumer, with the delivery count each
    /// had before that read (`XCLAIM ... IDLE RETRYCOUNT JUSTID`). A pair is (id, the
    /// count to restore); ids no longer pending for `consumer` are left alone.
    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()>;

    /// `XACK`; returns how many were acknowledged.
    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> StoreResult<u64>;

    /// `XAUTOCLAIM stream group consumer min_idle start COUNT count`, with each claimed
    /// entry's delivery count (which the claim increments).
    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim>;

    /// Moves an entry to the dead-letter stream with `reason` and the delivery count,
    /// and acknowledges it in `group`, atomically.
    async fn dead_letter(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId>;

    /// `XINFO GROUPS stream`; empty if the stream does not exist.
    async fn groups(&self, stream: &str) -> StoreResult<Vec<GroupInfo>>;

    // ---- locks ----------------------------------------------------------------

    /// `SET lock:session:<id>:<purpose> <token> NX PX ttl`. `None` if someone holds it.
    async fn try_lock(
        &self,
        session_id: &str,
        purpose: &str,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>>;

    /// Extends a held lock (compare-and-`PEXPIRE`); false if the token no longer holds it.
    async fn extend_lock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// Releases a lock by compare-and-delete; false if the token no longer held it.
    async fn unlock(&self, session_id: &str, purpose: &str, token: &LockToken)
        -> StoreResult<bool>;

    /// How long a lock still lives (`PTTL`); `None` when nobody holds it.
    async fn lock_remaining(
        &self,
        session_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<Duration>>;

    // ---- tenant stream slots --------------------------------------------------

    /// Takes one of `tenant`'s live-stream slots (`tenant:<t>:streams`) for `ttl`, when
    /// fewer than `max` unexpired ones are held (`max` 0: no limit, still counted).
    /// `None`: all taken. Slots of a node that died expire after `ttl`.
    async fn acquire_stream_slot(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>>;

    /// Keeps a held slot for another `ttl`; false if it had expired (it is not retaken).
    async fn extend_stream_slot(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// Gives a slot back; false if it was no longer held.
    async fn release_stream_slot(&self, tenant: &str, token: &LockToken) -> StoreResult<bool>;

    /// Unexpired slots `tenant` holds now, on every node.
    async fn stream_slots_held(&self, tenant: &str) -> StoreResult<u64>;

    // ---- operations -----------------------------------------------------------

    /// Memory, evictions and event-stream length for the metrics poller.
    async fn stats(&self) -> StoreResult<StoreStats>;

    /// Closes connections (graceful shutdown). Calls after this fail with `Unavailable`.
    async fn close(&self);
}
