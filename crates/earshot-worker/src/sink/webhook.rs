//! The `webhook:URL` sink: one signed HTTP POST per event, retried with exponential
//! backoff and full jitter. Receivers verify `X-Earshot-Signature` (an HMAC-SHA256 of
//! the exact body with the shared secret) and deduplicate on `X-Earshot-Event-Id`.
//!
//! What a receiver does:
//! 1. compute `hex(HMAC-SHA256(secret, raw_body))` and compare it, in constant time,
//!    with the `X-Earshot-Signature` value after `sha256=`; refuse with 401 otherwise;
//! 2. skip the event if `X-Earshot-Event-Id` (also the body's `"id"`) was already
//!    processed: delivery is at-least-once, a retry or a redelivery after a worker
//!    crash sends the same id again;
//! 3. answer 2xx once the event is stored. 408, 429 (`Retry-After` in seconds is
//!    honoured up to the backoff cap), 5xx and network errors are retried; any other
//!    status (400, 401, 404, 422, redirects) dead-letters the event at once.

use std::time::Duration;

use async_trait::async_trait;
use earshot_store::StreamEntry;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;

use super::{payload, Sink, SinkError, SinkSpecError};
use crate::backoff::{Backoff, BackoffConfig};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Earshot-Signature";
/// Header carrying the stream id, the idempotency key of the event.
pub const EVENT_ID_HEADER: &str = "X-Earshot-Event-Id";
/// Header carrying the event type, so receivers can route without parsing.
pub const EVENT_TYPE_HEADER: &str = "X-Earshot-Event-Type";

/// How the webhook sink signs, times out and retries.
#[derive(Clone)]
pub struct WebhookOptions {
    /// The shared HMAC secret; the sink refuses to start without one.
    pub secret: Option<String>,
    /// Per-request timeout (connect + response).
    pub timeout: Duration,
    /// Attempts per delivery (at least 1) before the worker sees a retryable failure.
    pub attempts: u32,
    /// Backoff between attempts (full jitter).
    pub backoff: BackoffConfig,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            secret: None,
            // Worst case per delivery ~ 3 x 5 s + 2 x 2 s: well inside the default
            // --claim-idle of 30 s, so a peer never reclaims an event mid-delivery.
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(2)),
        }
    }
}

impl WebhookOptions {
    /// The longest one delivery can take: every attempt timing out, plus the pauses.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.attempts.max(1);
        self.timeout * attempts + self.backoff.max * (attempts - 1)
    }
}

impl std::fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the value of `X-Earshot-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs each event as JSON to one URL.
pub struct WebhookSink {
    url: reqwest::Url,
    secret: Vec<u8>,
    client: reqwest::Client,
    opts: WebhookOptions,
}

impl WebhookSink {
    /// A sink for `url` (already validated by `SinkSpec::parse`, checked again here).
    pub fn new(url: &str, opts: WebhookOptions) -> Result<Self, SinkSpecError> {
        let url = reqwest::Url::parse(url).map_err(|e| SinkSpecError::BadUrl(e.to_string()))?;
        let secret = match &opts.secret {
            Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
            _ => return Err(SinkSpecError::MissingSecret),
        };
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            // A redirected POST would become a GET or lose its body: configure the final URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("earshot-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkSpecError::Client(e.to_string()))?;
        Ok(Self {
            url,
            secret,
            client,
            opts,
        })
    }

    async fn attempt(&self, id: &str, event_type: &str, body: &[u8]) -> Attempt {
        let sig = signature(&self.secret, body);
        let res = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header(EVENT_ID_HEADER, id)
            .header(EVENT_TYPE_HEADER, event_type)
            .body(body.to_vec())
            .send()
            .await;
        match res {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = retry_after(&resp);
                classify(status, retry_after)
            }
            Err(e) => Attempt::Retry(format!("webhook request failed: {}", describe(e)), None),
        }
    }
}

/// A transport error with its causes, without the URL (which may carry a token): the
/// message goes to logs and to dead-letter reasons.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

/// Outcome of one HTTP attempt.
#[derive(Debug)]
enum Attempt {
    Done,
    Retry(String, Option<Duration>),
    Refused(String),
}

/// 2xx = done; 408, 429, 5xx = retry; anything else (other 4xx, 3xx, 1xx) = refused.
fn classify(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    if status.is_success() {
        Attempt::Done
    } else if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Attempt::Retry(format!("webhook answered {status}"), retry_after)
    } else {
        Attempt::Refused(format!("webhook answered {status}"))
    }
}

/// `Retry-After` in seconds, if the receiver sent one.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, entry: &StreamEntry) -> Result<(), SinkError> {
        let body = serde_json::to_vec(&payload(entry))
            .map_err(|e| SinkError::Permanent(format!("cannot encode event: {e}")))?;
        let id = entry.id.to_string();
        let event_type = entry.field("event_type").unwrap_or("unknown");
        let attempts = self.opts.attempts.max(1);
        let mut backoff = Backoff::new(self.opts.backoff);
        let mut last = String::new();
        for n in 1..=attempts {
            match self.attempt(&id, event_type, &body).await {
                Attempt::Done => return Ok(()),
                Attempt::Refused(msg) => return Err(SinkError::Permanent(msg)),
                Attempt::Retry(msg, hint) => {
                    tracing::debug!(id, attempt = n, error = %msg, "webhook attempt failed");
                    last = msg;
                    if n < attempts {
                        // Honour Retry-After, but never beyond the configured cap.
                        let jitter = backoff.next_full_jitter();
                        let delay = hint
                            .map_or(jitter, |h| h.max(jitter))
                            .min(self.opts.backoff.max);
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Err(SinkError::Retryable(format!(
            "{last} (after {attempts} attempts)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn statuses_are_classified() {
        let c = |s: u16| classify(StatusCode::from_u16(s).unwrap(), None);
        assert!(matches!(c(200), Attempt::Done));
        assert!(matches!(c(204), Attempt::Done));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(c(s), Attempt::Retry(..)), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 422] {
            assert!(matches!(c(s), Attempt::Refused(_)), "{s}");
        }
    }

    #[tokio::test]
    async fn a_failed_request_does_not_reveal_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // closed again: connections are refused
        let opts = WebhookOptions {
            secret: Some("s".into()),
            attempts: 1,
            ..Default::default()
        };
        let sink = WebhookSink::new(
            &format!("http://127.0.0.1:{port}/hook/path-SECRET?token=q-SECRET"),
            opts,
        )
        .unwrap();
        let entry = StreamEntry {
            id: earshot_core::StreamId::new(1, 0),
            fields: vec![("event_type".into(), "session_deleted".into())],
        };
        let err = sink.deliver(&entry).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(!err.message().contains("SECRET"), "{err}");
        assert!(err.message().contains("webhook request failed"), "{err}");
    }

    #[test]
    fn a_secret_is_required() {
        assert!(matches!(
            WebhookSink::new("http://127.0.0.1:1/", WebhookOptions::default()),
            Err(SinkSpecError::MissingSecret)
        ));
        let opts = WebhookOptions {
            secret: Some("s".into()),
            ..Default::default()
        };
        assert!(WebhookSink::new("http://127.0.0.1:1/", opts.clone()).is_ok());
        assert!(!format!("{opts:?}").contains("\"s\""));
    }
}
