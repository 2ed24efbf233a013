//! Flags shared by `earshot worker` and `earshot serve --sink` (the embedded store's
//! in-process worker): where events go and how delivery is retried.

use std::time::Duration;

use clap::Args;
use earshot_core::config::parse_duration;
use earshot_store::GroupStart;
use earshot_worker::sink::SinkSpec;
use earshot_worker::WorkerConfig;

use crate::secret::Secret;

/// Delivery settings of one consumer.
#[derive(Args, Debug, Clone)]
pub struct DeliveryArgs {
    /// Shared HMAC-SHA256 secret for `X-Earshot-Signature` (webhook sink).
    #[arg(long, env = "EARSHOT_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,
    /// Per-request timeout of the webhook sink.
    #[arg(long, env = "EARSHOT_WEBHOOK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
    /// HTTP attempts per delivery (with exponential backoff and jitter).
    #[arg(long, env = "EARSHOT_WEBHOOK_ATTEMPTS", default_value_t = 3)]
    pub webhook_attempts: u32,
    /// An entry delivered more than this many times goes to transcription_events:dead.
    #[arg(long, env = "EARSHOT_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,
    /// Entries pending longer than this are reclaimed from dead consumers (XAUTOCLAIM).
    #[arg(long, env = "EARSHOT_CLAIM_IDLE", default_value = "30s", value_parser = parse_duration)]
    pub claim_idle: Duration,
    /// Entries per read; at most one batch is in memory.
    #[arg(long, env = "EARSHOT_WORKER_BATCH", default_value_t = 64)]
    pub batch: usize,
    /// How long one XREADGROUP blocks.
    #[arg(long, env = "EARSHOT_WORKER_BLOCK", default_value = "2s", value_parser = parse_duration)]
    pub block: Duration,
    /// Where a newly created group starts: `beginning` (every retained event) or `new`.
    #[arg(long, env = "EARSHOT_WORKER_START", default_value = "beginning", value_parser = ["beginning", "new"])]
    pub start: String,
}

impl DeliveryArgs {
    /// The worker configuration for `group`/`consumer` delivering to `sink`.
    pub fn config(
        &self,
        group: &str,
        consumer: &str,
        sink: SinkSpec,
        grace: Duration,
    ) -> WorkerConfig {
        let mut cfg = WorkerConfig::new(group, consumer);
        cfg.sink = sink;
        cfg.webhook.secret = self.webhook_secret.as_ref().map(|s| s.expose().to_owned());
        cfg.webhook.timeout = self.webhook_timeout;
        cfg.webhook.attempts = self.webhook_attempts;
        cfg.max_deliveries = self.max_deliveries;
        cfg.min_idle = self.claim_idle;
        cfg.batch = self.batch;
        cfg.block = self.block;
        cfg.grace = grace;
        cfg.start = if self.start == "new" {
            GroupStart::New
        } else {
            GroupStart::Beginning
        };
        cfg
    }
}
