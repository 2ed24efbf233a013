//! Appending a segment: the idempotency key that makes a retry safe, and the retries
//! themselves. A retry without a key could store a segment twice (the first call may
//! have been applied before its answer was lost), so only keyed appends are retried.
//! The retries ride over a short blip only: all of them together stay within the
//! service's append budget, so during a longer outage (a Redis Cluster failover) a
//! client gets its 503 and `Retry-After` within a bounded time rather than waiting for
//! attempt after attempt to time out.

use std::time::Duration;

use earshot_core::NewSegment;
use earshot_store::{AppendOutcome, StoreError};

use super::SessionService;
use crate::error::ApiError;

/// Longest `Idempotency-Key` accepted, bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Attempts of a keyed append over a short store outage, and the first pause between
/// them (tripled after each).
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters, scoped to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a client's key (400 `invalid_idempotency_key` if it is not one).
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_IDEMPOTENCY_KEY
            && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            ))
        }
    }

    /// The key of the `ordinal`-th segment a server-side writer appends (`scope` names
    /// the writer: one live connection, one upload), so that a retry of the same
    /// segment carries the same key and no other segment does.
    pub fn ordinal(scope: &str, ordinal: u64) -> Self {
        Self(format!("{scope}:{ordinal}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an append stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("no such session")]
    NotFound,
    #[error("the session is completed")]
    Completed,
    #[error("the session is full")]
    Full,
    #[error("the idempotency key was used with another segment")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppendError {
    /// The API's answer for it, with the id of the session it concerns.
    pub fn into_api(self, session_id: &str) -> ApiError {
        match self {
            Self::NotFound => ApiError::session_not_found(session_id),
            Self::Completed => ApiError::session_completed(),
            Self::Full => ApiError::session_full(),
            Self::KeyReused => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for another segment of the session",
            ),
            Self::Store(e) => e.into(),
        }
    }
}

impl SessionService {
    /// Appends a segment and returns its `seq`. With a key, a repeat of an append that
    /// was applied answers the first `seq` and stores nothing, and a store error is
    /// retried a few times (safe, because of the key) within the append budget, which
    /// also cuts an attempt still running at its end; without a key it is tried once.
    pub async fn append(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&IdempotencyKey>,
    ) -> Result<u64, AppendError> {
        let attempts = if key.is_some() { ATTEMPTS } else { 1 };
        let deadline = tokio::time::Instant::now() + self.append_budget;
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let once = self.store.append_segment_once(
                tenant,
                id,
                segment,
                key.map(IdempotencyKey::as_str),
            );
            let result = match tokio::time::timeout_at(deadline, once).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Timeout(self.append_budget)),
            };
            let retry = attempt < attempts && tokio::time::Instant::now() + pause < deadline;
            match result {
                Ok(AppendOutcome::Appended { seq, .. }) | Ok(AppendOutcome::Repeated { seq }) => {
                    return Ok(seq)
                }
                Ok(AppendOutcome::NotFound) => return Err(AppendError::NotFound),
                Ok(AppendOutcome::Completed) => return Err(AppendError::Completed),
                Ok(AppendOutcome::Full) => return Err(AppendError::Full),
                Ok(AppendOutcome::KeyReused) => return Err(AppendError::KeyReused),
                Err(e) if retry => {
                    tracing::warn!(error = %e, attempt, "appending a segment failed; retrying with its key");
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("req-42_a.b:c").is_ok());
        for bad in ["", "has space", "tab\t", "ünï", &"k".repeat(256)] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(e.code, "invalid_idempotency_key", "{bad:?}");
        }
    }
}
