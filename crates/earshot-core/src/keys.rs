//! The one place that names Redis keys (api.md §2). Exactly the original service's names
//! on standalone Redis and the embedded store; with `cluster` the session id becomes a
//! hash tag (`session:{<id>}:transcript`) so one session's keys share a slot.

/// The event stream every event is published on.
pub const EVENT_STREAM: &str = "transcription_events";
/// Where workers move entries delivered too often, with the reason.
pub const DEAD_LETTER_STREAM: &str = "transcription_events:dead";

/// Lock purpose of a session's one live WebSocket stream (`lock:session:<id>:stream`);
/// deleting the session deletes this lock with its other keys.
pub const STREAM_LOCK: &str = "stream";

/// Key naming for one deployment shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keys {
    cluster: bool,
}

impl Keys {
    /// Standalone Redis or the embedded store: the original names, untagged.
    pub const fn standalone() -> Self {
        Self { cluster: false }
    }

    /// Redis Cluster: the session id is wrapped in `{}` so a session's keys share a slot.
    pub const fn cluster() -> Self {
        Self { cluster: true }
    }

    fn sid(&self, id: &str) -> String {
        if self.cluster {
            format!("{{{id}}}")
        } else {
            id.to_owned()
        }
    }

    /// `session:<id>:transcript`: list of plain-text chunks.
    pub fn transcript(&self, id: &str) -> String {
        format!("session:{}:transcript", self.sid(id))
    }

    /// `session:<id>:metadata`: hash of session fields.
    pub fn metadata(&self, id: &str) -> String {
        format!("session:{}:metadata", self.sid(id))
    }

    /// `session:<id>:segments`: list of segment JSON objects.
    pub fn segments(&self, id: &str) -> String {
        format!("session:{}:segments", self.sid(id))
    }

    /// `session:<id>:idempotency`: hash of `Idempotency-Key` → `<seq>:<body fingerprint>`
    /// for the session's appends, so a retried append answers the first `seq`.
    pub fn idempotency(&self, id: &str) -> String {
        format!("session:{}:idempotency", self.sid(id))
    }

    /// `tenant:<tenant>:sessions`: sorted set of session ids by start time (ms).
    pub fn tenant_sessions(&self, tenant: &str) -> String {
        format!("tenant:{tenant}:sessions")
    }

    /// The pattern that `SCAN` uses to find every tenant index.
    pub fn tenant_sessions_pattern(&self) -> String {
        "tenant:*:sessions".to_owned()
    }

    /// The tenant a tenant-index key belongs to.
    pub fn tenant_of_index(&self, index: &str) -> Option<String> {
        index
            .strip_prefix("tenant:")?
            .strip_suffix(":sessions")
            .map(str::to_owned)
    }

    /// `lock:session:<id>:<purpose>`: an NX lock holding an owner token.
    pub fn lock(&self, id: &str, purpose: &str) -> String {
        format!("lock:session:{}:{purpose}", self.sid(id))
    }

    /// `cache:session:<id>:transcript`: the assembled transcript JSON of a completed session.
    pub fn cached_transcript(&self, id: &str) -> String {
        format!("cache:session:{}:transcript", self.sid(id))
    }

    /// The pattern that `SCAN` uses to find every session.
    pub fn metadata_pattern(&self) -> &'static str {
        "session:*:metadata"
    }

    /// The event stream key.
    pub fn event_stream(&self) -> &'static str {
        EVENT_STREAM
    }

    /// The dead-letter stream key.
    pub fn dead_letter_stream(&self) -> &'static str {
        DEAD_LETTER_STREAM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_original_service() {
        let k = Keys::standalone();
        assert_eq!(k.transcript("abc"), "session:abc:transcript");
        assert_eq!(k.metadata("abc"), "session:abc:metadata");
        assert_eq!(k.segments("abc"), "session:abc:segments");
        assert_eq!(k.tenant_sessions("acme"), "tenant:acme:sessions");
        assert_eq!(k.lock("abc", "stream"), "lock:session:abc:stream");
        assert_eq!(k.cached_transcript("abc"), "cache:session:abc:transcript");
        assert_eq!(k.event_stream(), "transcription_events");
    }

    #[test]
    fn cluster_names_share_a_hash_slot_tag() {
        let k = Keys::cluster();
        assert_eq!(k.transcript("abc"), "session:{abc}:transcript");
        assert_eq!(k.metadata("abc"), "session:{abc}:metadata");
    }
}
