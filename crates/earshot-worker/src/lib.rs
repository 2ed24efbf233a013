//! Downstream processors of `transcription_events`.
//!
//! A [`Worker`] is one consumer in a consumer group: it reads with `XREADGROUP`, hands
//! each event to a [`sink::Sink`] (stdout, a JSONL file, a signed webhook), and
//! acknowledges an event only after the sink accepted it. Entries that dead peers left
//! pending are reclaimed with `XAUTOCLAIM`; entries that keep failing, or that the sink
//! refuses outright, go to `transcription_events:dead` with the reason.
//!
//! Delivery is **at-least-once**: every delivered payload carries `"id"` (the stream
//! id, also sent as `X-Earshot-Event-Id` by the webhook sink), which consumers use to
//! deduplicate.
//!
//! [`run`] is the whole of `earshot worker`: the binary parses flags into a
//! [`WorkerConfig`], opens the store and passes a shutdown token. On Redis Cluster the
//! events are split over partition streams (`{p<n>}:transcription_events`); `run`
//! consumes every one of them with the same group, one [`Worker`] per partition, each
//! with its own reclaim scan, dead-letter stream and lag.

pub mod backoff;
pub mod config;
pub mod error;
pub mod metrics;
pub mod sink;
pub mod stats;
pub mod worker;

pub use backoff::{Backoff, BackoffConfig};
pub use config::WorkerConfig;
pub use error::WorkerError;
pub use sink::{DynSink, Sink, SinkError, SinkSpec, SinkSpecError, WebhookOptions};
pub use stats::{StatsHandle, WorkerStats};
pub use worker::Worker;

use earshot_store::DynStore;
use tokio_util::sync::CancellationToken;

/// Builds the sink named by `cfg.sink` and runs a worker until `shutdown` is cancelled.
/// Errors only on start-up problems (bad configuration, unopenable sink); store outages
/// and sink failures while running are retried, never fatal.
pub async fn run(
    cfg: WorkerConfig,
    store: DynStore,
    shutdown: CancellationToken,
) -> Result<WorkerStats, WorkerError> {
    cfg.validate()?;
    let sink = cfg.sink.build(&cfg.webhook).await?;
    let mut runs = Vec::new();
    for stream in cfg.streams(store.as_ref()) {
        let cfg = WorkerConfig {
            stream,
            ..cfg.clone()
        };
        runs.push(Worker::new(cfg, store.clone(), sink.clone())?.run(shutdown.clone()));
    }
    let all = futures::future::join_all(runs).await;
    Ok(all
        .into_iter()
        .fold(WorkerStats::default(), WorkerStats::merge))
}
