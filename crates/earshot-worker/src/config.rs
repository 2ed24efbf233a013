//! What a worker is told at start-up (the `earshot worker` flags), with their defaults.

use std::time::Duration;

use earshot_core::keys::EVENT_STREAM;
use earshot_store::GroupStart;

use crate::backoff::BackoffConfig;
use crate::error::WorkerError;
use crate::sink::{SinkSpec, WebhookOptions};

/// Configuration of one worker process (one consumer in one group).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The stream to consume. The default, `transcription_events`, means "the event
    /// stream": every partition stream on a cluster (see [`WorkerConfig::streams`]).
    pub stream: String,
    /// The consumer group; several workers in one group share the load.
    pub group: String,
    /// This consumer's name, unique within the group (see `default_consumer`). A worker
    /// started under a name that has pending entries delivers those first.
    pub consumer: String,
    /// Where a group created by this worker starts: every retained entry, or only new ones.
    pub start: GroupStart,
    /// Entries per read; at most one batch is held in memory.
    pub batch: usize,
    /// How long one `XREADGROUP` blocks waiting for entries.
    pub block: Duration,
    /// Entries pending (unacknowledged) longer than this are reclaimed with `XAUTOCLAIM`,
    /// from dead peers or from this worker's own failed deliveries. Must exceed the time a
    /// batch takes to deliver, or a live peer's entries are delivered twice.
    pub min_idle: Duration,
    /// How often to run the reclaim scan; `None` means `min_idle / 2`.
    pub claim_interval: Option<Duration>,
    /// An entry delivered more than this many times goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// After shutdown is requested, how long the in-flight batch may take to finish.
    pub grace: Duration,
    /// How often the consumer-group lag gauge is refreshed.
    pub lag_poll: Duration,
    /// Backoff while the store is unreachable (retried forever, capped).
    pub store_backoff: BackoffConfig,
    /// Pause after a retryable sink failure before the next delivery, so an outage of
    /// the destination does not burn through the stream.
    pub sink_backoff: BackoffConfig,
    /// The destination.
    pub sink: SinkSpec,
    /// Options of the webhook sink (ignored by the others).
    pub webhook: WebhookOptions,
}

impl WorkerConfig {
    /// The streams to consume: every event stream of `store` (one, or one per
    /// partition on a cluster) when `stream` is the event stream, else just `stream`.
    pub fn streams(&self, store: &dyn earshot_store::Store) -> Vec<String> {
        if self.stream == EVENT_STREAM {
            store.event_streams()
        } else {
            vec![self.stream.clone()]
        }
    }

    /// Defaults for `group` and `consumer`, delivering to stdout.
    pub fn new(group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream: EVENT_STREAM.to_owned(),
            group: group.into(),
            consumer: consumer.into(),
            start: GroupStart::Beginning,
            batch: 64,
            block: Duration::from_secs(2),
            min_idle: Duration::from_secs(30),
            claim_interval: None,
            max_deliveries: 5,
            grace: Duration::from_secs(10),
            lag_poll: Duration::from_secs(5),
            store_backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(10)),
            sink_backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(5)),
            sink: SinkSpec::Stdout,
            webhook: WebhookOptions::default(),
        }
    }

    /// A default consumer name unique to this process: `<host>-<pid>-<random>`. Two
    /// processes under one name would each take the other's pending entries for their
    /// own lost reads and deliver them at the same time; a restarted process's leftovers
    /// are reclaimed by the group (`--claim-idle`). The host comes from `$HOSTNAME`, else
    /// `/etc/hostname`, else `earshot-worker`.
    pub fn default_consumer() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "earshot-worker".to_owned());
        format!(
            "{host}-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        )
    }

    /// The effective reclaim interval.
    pub fn claim_every(&self) -> Duration {
        self.claim_interval
            .unwrap_or(self.min_idle / 2)
            .max(Duration::from_millis(10))
    }

    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let bad = |m: &str| Err(WorkerError::Config(m.to_owned()));
        if self.stream.is_empty() {
            return bad("stream name is empty");
        }
        if self.group.is_empty() {
            return bad("--group is empty");
        }
        if self.consumer.is_empty() {
            return bad("--consumer is empty");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return bad("--batch must be 1..=10000");
        }
        if self.max_deliveries == 0 {
            return bad("--max-deliveries must be at least 1");
        }
        if self.min_idle.is_zero() {
            return bad("--claim-idle must be positive");
        }
        if matches!(self.sink, SinkSpec::Webhook(_))
            && self.webhook.worst_case() * 2 > self.min_idle
        {
            // Not fatal: it only costs duplicates, but the operator should know.
            tracing::warn!(
                worst_case = ?self.webhook.worst_case(),
                claim_idle = ?self.min_idle,
                "one webhook delivery can take more than half of --claim-idle: peers may reclaim and deliver events twice; raise --claim-idle or lower the webhook timeout"
            );
        }
        Ok(())
    }
}
