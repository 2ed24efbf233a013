//! Wall-clock helpers: the RFC 3339 format the original service wrote, and ids.

use chrono::{DateTime, SecondsFormat, Utc};

/// Now as RFC 3339 UTC with microseconds and `Z`, e.g. `2026-11-26T05:34:32.123456Z`
/// (the original's `datetime.now(timezone.utc).isoformat()`, with `Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(Utc::now())
}

/// Formats a timestamp the way every stored and published timestamp is written.
pub fn format_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}
