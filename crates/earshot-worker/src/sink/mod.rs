//! Where a worker delivers events. A sink is the only part of the worker that talks to
//! the outside world, so it is also the part that decides whether a failure is worth
//! retrying (`SinkError::Retryable`) or will never succeed (`SinkError::Permanent`,
//! dead-lettered at once).

mod jsonl;
mod stdout;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use earshot_store::StreamEntry;

pub use jsonl::JsonlSink;
pub use stdout::StdoutSink;
pub use webhook::{signature, WebhookOptions, WebhookSink, EVENT_ID_HEADER, SIGNATURE_HEADER};

/// Why a delivery failed, and so what the worker does with the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Might work later (timeouts, 5xx, 429, a full disk): the entry stays pending and is
    /// delivered again after a backoff or by a reclaim, until `max_deliveries`.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will never work (a 4xx refusal): the entry is dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SinkError {
    /// The message without the classification, for the dead-letter `reason`.
    pub fn message(&self) -> &str {
        match self {
            Self::Retryable(m) | Self::Permanent(m) => m,
        }
    }

    /// True for `Retryable`.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

/// A destination for events.
///
/// The worker calls `deliver` for each entry of a batch, then `flush` once, and
/// acknowledges the entries whose `deliver` succeeded only after `flush` succeeded. A
/// sink that buffers (a file) makes its writes durable in `flush`; one that does not
/// (a webhook) keeps the default.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// A short name for logs (`stdout`, `jsonl`, `webhook`).
    fn name(&self) -> &'static str;

    /// Hands one entry over. `Ok` means the destination has it (or will, after `flush`).
    async fn deliver(&self, entry: &StreamEntry) -> Result<(), SinkError>;

    /// Makes every successful `deliver` since the last flush durable.
    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A shared sink handle.
pub type DynSink = Arc<dyn Sink>;

/// The JSON a sink delivers for an entry: the event JSON (`StreamEntry::to_json`) plus
/// `"id": "<stream id>"`, the key consumers deduplicate on (delivery is at-least-once).
pub fn payload(entry: &StreamEntry) -> serde_json::Value {
    let id = serde_json::Value::String(entry.id.to_string());
    match entry.to_json() {
        serde_json::Value::Object(mut m) => {
            m.insert("id".to_owned(), id);
            serde_json::Value::Object(m)
        }
        other => serde_json::json!({ "id": id, "event": other }),
    }
}

/// The payload as one line of JSON (no trailing newline).
pub fn payload_line(entry: &StreamEntry) -> String {
    payload(entry).to_string()
}

/// The `--sink` value, parsed: `stdout`, `jsonl:PATH` or `webhook:URL`. Shown (`Display`,
/// `Debug`) with the webhook URL cut to its origin: such URLs often carry tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// One JSON line per event on standard output.
    Stdout,
    /// One JSON line per event appended to a file, synced per batch.
    Jsonl(PathBuf),
    /// An HMAC-signed POST per event (`http://` or `https://`).
    Webhook(String),
}

/// Why a `--sink` value or the options that go with it were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkSpecError {
    #[error("empty sink: expected stdout, jsonl:PATH or webhook:URL")]
    Empty,
    #[error("unknown sink {0:?}: expected stdout, jsonl:PATH or webhook:URL")]
    Unknown(String),
    #[error("jsonl sink needs a file path: jsonl:/var/log/earshot/events.jsonl")]
    MissingPath,
    #[error("webhook sink needs an http(s) URL: webhook:https://example.com/hook ({0})")]
    BadUrl(String),
    #[error("the webhook sink needs a signing secret (--webhook-secret / EARSHOT_WEBHOOK_SECRET)")]
    MissingSecret,
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl SinkSpec {
    /// Parses `stdout`, `jsonl:PATH` or `webhook:URL`.
    pub fn parse(raw: &str) -> Result<Self, SinkSpecError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(SinkSpecError::Empty);
        }
        if raw == "stdout" {
            return Ok(Self::Stdout);
        }
        if let Some(path) = raw.strip_prefix("jsonl:") {
            if path.trim().is_empty() {
                return Err(SinkSpecError::MissingPath);
            }
            return Ok(Self::Jsonl(PathBuf::from(path)));
        }
        if let Some(url) = raw.strip_prefix("webhook:") {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| SinkSpecError::BadUrl(e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SinkSpecError::BadUrl(format!(
                    "scheme {:?} is not http or https",
                    parsed.scheme()
                )));
            }
            if parsed.host_str().is_none() {
                return Err(SinkSpecError::BadUrl("no host".to_owned()));
            }
            return Ok(Self::Webhook(url.to_owned()));
        }
        Err(SinkSpecError::Unknown(raw.chars().take(64).collect()))
    }

    /// Builds the sink (opens the file, builds the HTTP client).
    pub async fn build(&self, webhook: &WebhookOptions) -> Result<DynSink, SinkSpecError> {
        Ok(match self {
            Self::Stdout => Arc::new(StdoutSink::new()),
            Self::Jsonl(path) => Arc::new(JsonlSink::open(path).await?),
            Self::Webhook(url) => Arc::new(WebhookSink::new(url, webhook.clone())?),
        })
    }
}

impl std::str::FromStr for SinkSpec {
    type Err = SinkSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("stdout"),
            Self::Jsonl(p) => write!(f, "jsonl:{}", p.display()),
            Self::Webhook(u) => write!(f, "webhook:{}", redact_url(u)),
        }
    }
}

impl std::fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SinkSpec({self})")
    }
}

/// A URL safe to log: scheme, host and port only (`https://hooks.example.com/…`). User
/// info, path, query and fragment may all hold secrets (`/services/T0/B0/<token>`,
/// `?token=`), so none of them is shown.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_core::StreamId;

    #[test]
    fn specs_parse() {
        assert_eq!(SinkSpec::parse("stdout"), Ok(SinkSpec::Stdout));
        assert_eq!(
            SinkSpec::parse("jsonl:/tmp/x.jsonl"),
            Ok(SinkSpec::Jsonl("/tmp/x.jsonl".into()))
        );
        assert_eq!(
            SinkSpec::parse("webhook:http://127.0.0.1:9/hook"),
            Ok(SinkSpec::Webhook("http://127.0.0.1:9/hook".into()))
        );
        assert_eq!(SinkSpec::parse(""), Err(SinkSpecError::Empty));
        assert_eq!(SinkSpec::parse("jsonl:"), Err(SinkSpecError::MissingPath));
        assert!(matches!(
            SinkSpec::parse("webhook:ftp://x/y"),
            Err(SinkSpecError::BadUrl(_))
        ));
        assert!(matches!(
            SinkSpec::parse("webhook:not a url"),
            Err(SinkSpecError::BadUrl(_))
        ));
        assert!(matches!(
            SinkSpec::parse("kafka:topic"),
            Err(SinkSpecError::Unknown(_))
        ));
        assert_eq!(
            SinkSpec::parse("jsonl:/a b").map(|s| s.to_string()),
            Ok("jsonl:/a b".to_owned())
        );
    }

    #[test]
    fn webhook_urls_are_shown_without_their_secrets() {
        let spec =
            SinkSpec::parse("webhook:https://user:pw-SECRET@hooks.example.com:8443/T0/B0/tok-SECRET?token=q-SECRET#f-SECRET")
                .unwrap();
        for shown in [spec.to_string(), format!("{spec:?}")] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("https://hooks.example.com:8443"), "{shown}");
        }
    }

    #[test]
    fn payload_carries_the_stream_id() {
        let e = StreamEntry {
            id: StreamId::new(5, 1),
            fields: vec![
                ("event_type".into(), "session_deleted".into()),
                ("session_id".into(), "s".into()),
                ("tenant_id".into(), "t".into()),
                ("timestamp".into(), "2026-01-01T00:00:00Z".into()),
            ],
        };
        let p = payload(&e);
        assert_eq!(p["id"], "5-1");
        assert_eq!(p["event_type"], "session_deleted");
        let foreign = StreamEntry {
            id: StreamId::new(6, 0),
            fields: vec![("x".into(), "1".into())],
        };
        assert_eq!(payload(&foreign)["id"], "6-0");
        assert_eq!(payload(&foreign)["x"], "1");
    }
}
