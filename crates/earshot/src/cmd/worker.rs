//! `earshot worker`: one consumer of `transcription_events` in a consumer group,
//! delivering to a sink. Needs Redis: the embedded store is process-local,
//! so with it sinks run inside `earshot serve --sink …` instead.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use earshot_core::config::{parse_duration, StoreConfig};
use earshot_worker::sink::SinkSpec;
use earshot_worker::WorkerConfig;

use super::sink_args::DeliveryArgs;
use crate::secret::Secret;
use crate::{signals, store_select};

/// Flags of `earshot worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Consumer group; workers in one group share the events, every group sees all.
    #[arg(long, env = "EARSHOT_WORKER_GROUP")]
    pub group: String,
    /// This consumer's name; must be unique in the group (default: host, process id and
    /// a random suffix, unique per process).
    #[arg(long, env = "EARSHOT_WORKER_CONSUMER")]
    pub consumer: Option<String>,
    /// stdout | jsonl:PATH | webhook:URL
    #[arg(long, env = "EARSHOT_WORKER_SINK", value_parser = SinkSpec::parse)]
    pub sink: SinkSpec,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// redis:// or rediss:// URL (required: see `serve --sink` for the embedded store).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    #[command(flatten)]
    pub redis_tls: super::redis_tls_args::RedisTlsArgs,
    /// Event partitions on Redis Cluster; must match the deployment's (`earshot:config`).
    #[arg(long, env = "EARSHOT_EVENT_PARTITIONS", default_value_t = earshot_core::keys::DEFAULT_EVENT_PARTITIONS, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub event_partitions: u32,
    /// Connect and command timeout.
    #[arg(long, env = "EARSHOT_REDIS_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// After SIGTERM, how long the in-flight batch may take before it is left pending.
    #[arg(long, env = "EARSHOT_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// Runs the worker until SIGTERM/SIGINT.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let choice = store_select::choose(args.redis_url.as_ref().map(Secret::expose), None)?;
    if matches!(choice, store_select::StoreChoice::Memory { .. }) {
        bail!(
            "earshot worker needs REDIS_URL: the embedded in-memory store lives inside one \
             `earshot serve` process, so run sinks there instead: earshot serve --sink {}",
            args.sink
        );
    }
    let store_cfg = StoreConfig {
        command_timeout: args.redis_timeout,
        event_partitions: args.event_partitions,
        redis_tls: args.redis_tls.config(),
        ..StoreConfig::default()
    };
    let store = store_select::open(&choice, store_cfg).await?;
    let consumer = args
        .consumer
        .clone()
        .unwrap_or_else(WorkerConfig::default_consumer);
    let cfg = args
        .delivery
        .config(&args.group, &consumer, args.sink.clone(), args.grace);
    let shutdown = signals::shutdown_on_signal();
    tracing::info!(group = %cfg.group, consumer = %cfg.consumer, sink = %cfg.sink, "worker starting");
    let stats = earshot_worker::run(cfg, store.clone(), shutdown).await?;
    store.close().await;
    tracing::info!(?stats, "worker stopped");
    Ok(())
}
