//! Small pieces both backends must agree on exactly.

use earshot_core::config::StoreConfig;
use earshot_core::{NewSegment, Segment};
use sha2::{Digest, Sha256};

use crate::api::{LockToken, StreamEntry};

/// The dead-letter stream of `stream` (`transcription_events:dead` for the events).
pub(crate) fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}:dead")
}

/// The original fields plus why and how often it was delivered, where it came from,
/// and which group gave up on it.
pub(crate) fn dead_letter_fields(
    group: &str,
    entry: &StreamEntry,
    reason: &str,
    delivery_count: u64,
) -> Vec<(String, String)> {
    let mut fields = entry.fields.clone();
    fields.push(("reason".into(), reason.to_owned()));
    fields.push(("delivery_count".into(), delivery_count.to_string()));
    fields.push(("original_id".into(), entry.id.to_string()));
    fields.push(("group".into(), group.to_owned()));
    fields
}

/// A random owner token for an NX lock.
pub(crate) fn new_lock_token() -> LockToken {
    LockToken(uuid::Uuid::new_v4().simple().to_string())
}

/// `list_sessions` page size, clamped to the documented 1..=200.
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, 200)
}

/// Milliseconds of a duration for `PX`/`PEXPIRE`, at least 1 (0 would be an error).
pub(crate) fn ttl_ms(d: std::time::Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// The session TTL in ms.
pub(crate) fn session_ttl_ms(config: &StoreConfig) -> u64 {
    ttl_ms(config.session_ttl)
}

/// What an idempotency key is checked against: a hash of the segment's canonical JSON,
/// so a retry with the same key but another text or other times is told apart.
pub(crate) fn segment_fingerprint(segment: &NewSegment) -> String {
    hex::encode(Sha256::digest(Segment::json_tail(segment).as_bytes()))
}
