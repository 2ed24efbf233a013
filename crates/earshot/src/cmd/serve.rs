//! `earshot serve`: the API server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use earshot_core::config::{parse_duration, StoreConfig};
use earshot_server::conn::ConnConfig;
use earshot_server::{tenants, Server, ServerConfig, Tenants};
use earshot_store::DynStore;
use earshot_worker::sink::SinkSpec;
use earshot_worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

use super::sink_args::DeliveryArgs;
use crate::secret::Secret;
use crate::{signals, store_select};

/// Flags of `earshot serve` (each also read from the environment).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to bind.
    #[arg(long, env = "EARSHOT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// redis://, rediss:// (TLS), redis+cluster://h1:p1,h2:p2 or rediss+cluster:// URL.
    /// Unset: the embedded in-memory store.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    #[command(flatten)]
    pub redis_tls: super::redis_tls_args::RedisTlsArgs,
    /// `test` forces the embedded store.
    #[arg(long, env = "ENVIRONMENT")]
    pub environment: Option<String>,
    /// Comma-separated tenant_id:key pairs. Unset: one open tenant `default`, loopback only.
    #[arg(long, env = "EARSHOT_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<Secret>,
    /// TTL of every per-session key.
    #[arg(long, env = "EARSHOT_SESSION_TTL", default_value = "86400", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// Approximate cap (MAXLEN ~) of the event stream; 0 = no length cap.
    #[arg(long, env = "EARSHOT_STREAM_MAXLEN", default_value_t = 10_000)]
    pub stream_maxlen: u64,
    /// Events older than this are trimmed (XTRIM MINID), checked every minute.
    #[arg(long, env = "EARSHOT_EVENT_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub event_retention: Duration,
    /// Connect and command timeout of the store.
    #[arg(long, env = "EARSHOT_REDIS_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// Event partitions on Redis Cluster; fixed for the life of a deployment (pinned in
    /// `earshot:config`, a node configured differently refuses to start).
    #[arg(long, env = "EARSHOT_EVENT_PARTITIONS", default_value_t = earshot_core::keys::DEFAULT_EVENT_PARTITIONS, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub event_partitions: u32,
    /// Replicas every acknowledged write waits for (WAIT); 0 = asynchronous replication.
    #[arg(long, env = "EARSHOT_REDIS_WAIT", default_value_t = 0)]
    pub redis_wait: u32,
    /// How long a live stream's claims (its session's lock, its tenant's stream slot)
    /// outlive a node that died without releasing them; a client reconnecting to
    /// another node is refused (409 `stream_active`) until then. Renewed every third of
    /// it while the stream runs; at least 1 s.
    #[arg(long, env = "EARSHOT_STREAM_LOCK_TTL", default_value = "30s", value_parser = parse_duration)]
    pub stream_lock_ttl: Duration,
    /// TTL of cached completed transcripts (clamped to 1-60 min).
    #[arg(long, env = "EARSHOT_CACHE_TTL", default_value = "10m", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// Most segments one session holds; appends past it get 409 `session_full`.
    #[arg(long, env = "EARSHOT_MAX_SESSION_SEGMENTS", default_value_t = earshot_core::config::DEFAULT_MAX_SESSION_SEGMENTS)]
    pub max_session_segments: u64,
    /// Most transcript text one session holds, bytes; appends past it get 409 `session_full`.
    #[arg(long, env = "EARSHOT_MAX_SESSION_BYTES", default_value_t = earshot_core::config::DEFAULT_MAX_SESSION_BYTES)]
    pub max_session_bytes: u64,
    /// How often store figures (memory, evictions, stream length, consumer-group lag) are
    /// polled into /metrics.
    #[arg(long, env = "EARSHOT_STATS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub stats_interval: Duration,
    /// How long shutdown waits for in-flight requests and streams.
    #[arg(long, env = "EARSHOT_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "EARSHOT_MAX_BODY_BYTES", default_value_t = earshot_server::state::DEFAULT_MAX_JSON_BODY)]
    pub max_body_bytes: usize,
    /// Largest audio upload on /v1/audio/transcriptions, in bytes.
    #[arg(long, env = "EARSHOT_MAX_UPLOAD_BYTES", default_value_t = earshot_server::state::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// Longest audio one upload may hold, in seconds, counted while decoding: more is
    /// refused with 413 `audio_too_long` as soon as decoding passes it.
    #[arg(long, env = "EARSHOT_MAX_UPLOAD_SECONDS", default_value_t = earshot_server::state::DEFAULT_MAX_UPLOAD_SECONDS)]
    pub max_upload_seconds: u64,
    /// Time a client has to send a whole request head, counted from when the connection
    /// opens or finishes its previous response; also closes idle keep-alive connections
    /// [default: 10s].
    #[arg(long, env = "EARSHOT_HEADER_TIMEOUT", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Time a client has to send a whole request body (408 `body_timeout` after it);
    /// 0 = no limit [default: 120s].
    #[arg(long, env = "EARSHOT_BODY_TIMEOUT", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Open connections (WebSockets included) at once; more wait in the listen backlog
    /// until one closes; lowered to fit the file descriptor limit
    /// [default: 1024].
    #[arg(long, env = "EARSHOT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Comma-separated origins (`https://app.example.com`) whose pages may send writes and
    /// open WebSockets besides the server's own; `*` allows any. Setting it also turns the
    /// origin check on when API keys are configured.
    #[arg(long, env = "EARSHOT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Comma-separated host names this server answers to besides loopback names and the
    /// listen address (checked without keys, or when set).
    #[arg(long, env = "EARSHOT_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// ggml model file (default: the `earshot model path` lookup).
    #[arg(long, env = "EARSHOT_MODEL")]
    pub model: Option<PathBuf>,
    /// Several models in one server: comma-separated `name=path` (or names looked up like
    /// `EARSHOT_MODEL`), e.g. `tiny.en=/m/ggml-tiny.en.bin,base=/m/ggml-base-q5_0.bin`.
    /// Requests choose one by name (OpenAI `model`, stream `?model=`).
    #[arg(long, env = "EARSHOT_MODELS")]
    pub models: Option<String>,
    /// The model of requests that name none (or `whisper-1`); default: the first listed.
    #[arg(long, env = "EARSHOT_DEFAULT_MODEL")]
    pub default_model: Option<String>,
    /// Run without speech recognition (text segments only; /readyz ignores the model).
    #[arg(long, env = "EARSHOT_NO_ASR")]
    pub no_asr: bool,
    /// CPU threads per decode.
    #[arg(long, env = "EARSHOT_ASR_THREADS", default_value_t = 1)]
    pub asr_threads: usize,
    /// Start an utterance's final decode half way through the endpointing silence, so its
    /// words are ready when the end is certain (`false`: decode only once it is).
    #[arg(long, env = "EARSHOT_EARLY_FINAL", default_value_t = true, action = clap::ArgAction::Set)]
    pub early_final: bool,
    /// When speech resumes after such an early decode started, make its words final at
    /// the pause (`false`: at the next utterance end or when the window fills).
    #[arg(long, env = "EARSHOT_COMMIT_AT_PAUSE", default_value_t = true, action = clap::ArgAction::Set)]
    pub commit_at_pause: bool,
    /// Concurrent decodes (default: cores / threads per decode, at least 1).
    #[arg(long, env = "EARSHOT_DECODE_SLOTS")]
    pub decode_slots: Option<usize>,
    /// Hard cap on live streams (default 16 per decode slot); below it a stream is admitted
    /// while the measured decode cost leaves room, otherwise it gets `overloaded` (1013).
    #[arg(long, env = "EARSHOT_MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// Fraction of the decode slots that admitted streams' commit decodes and uploads may
    /// use (default 0.5); the rest absorbs bursts and partials.
    #[arg(long, env = "EARSHOT_ADMISSION_TARGET")]
    pub admission_target: Option<f64>,
    /// A stream with no audio and no keepalive for this long is closed.
    #[arg(long, env = "EARSHOT_STREAM_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub stream_idle_timeout: Duration,
    /// Deliver events to a sink from inside this process (stdout | jsonl:PATH | webhook:URL);
    /// the way to run workers on the embedded store. May be repeated.
    #[arg(long, env = "EARSHOT_SINK", value_parser = SinkSpec::parse, value_delimiter = ';')]
    pub sink: Vec<SinkSpec>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Sustained requests per second per tenant on /v1 routes (429 `rate_limited` with
    /// Retry-After above it); 0 = unlimited (the default: size it to your tenants).
    #[arg(long, env = "EARSHOT_TENANT_RPS", default_value_t = 0)]
    pub tenant_rps: u32,
    /// Requests a tenant may send at once above --tenant-rps; 0 = one second's worth.
    #[arg(long, env = "EARSHOT_TENANT_BURST", default_value_t = 0)]
    pub tenant_burst: u32,
    /// Live WebSocket audio streams per tenant (429 `too_many_streams` above); 0 = unlimited.
    #[arg(long, env = "EARSHOT_TENANT_MAX_STREAMS", default_value_t = earshot_server::limits::DEFAULT_TENANT_MAX_STREAMS)]
    pub tenant_max_streams: usize,
}

impl ServeArgs {
    fn store_config(&self) -> StoreConfig {
        StoreConfig {
            session_ttl: self.session_ttl,
            stream_maxlen: self.stream_maxlen,
            event_retention: self.event_retention,
            command_timeout: self.redis_timeout,
            cache_ttl: StoreConfig::clamp_cache_ttl(self.cache_ttl),
            event_partitions: self.event_partitions,
            redis_wait: self.redis_wait,
            max_session_segments: self.max_session_segments.max(1),
            max_session_bytes: self.max_session_bytes.max(1),
            lock_ttl: self.stream_lock_ttl.max(Duration::from_secs(1)),
            redis_tls: self.redis_tls.config(),
        }
    }

    fn conn_config(&self) -> ConnConfig {
        let default = ConnConfig::default();
        ConnConfig {
            header_timeout: self.header_timeout.unwrap_or(default.header_timeout),
            body_timeout: self.body_timeout.unwrap_or(default.body_timeout),
            max_connections: self.max_connections.unwrap_or(default.max_connections),
        }
    }

    fn tenants(&self) -> anyhow::Result<Tenants> {
        let tenants = match self
            .api_keys
            .as_ref()
            .map(|k| k.expose().trim())
            .filter(|k| !k.is_empty())
        {
            Some(raw) => Tenants::parse(raw)?,
            None => Tenants::open(),
        };
        if tenants.is_open() && !tenants::open_access_allowed(&self.listen) {
            bail!(
                "refusing to listen on {} without EARSHOT_API_KEYS: open access (single tenant \
                 `default`, no auth) is allowed only on a loopback address. Set \
                 EARSHOT_API_KEYS=tenant:key[,tenant:key...] or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(tenants)
    }
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let tenants = args.tenants()?;
    let choice = store_select::choose(
        args.redis_url.as_ref().map(Secret::expose),
        args.environment.as_deref(),
    )?;
    let store_cfg = args.store_config();
    let store = store_select::open(&choice, store_cfg.clone()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let config = ServerConfig {
        max_json_body: args.max_body_bytes,
        max_upload_bytes: args.max_upload_bytes,
        max_upload_seconds: args.max_upload_seconds.max(1),
        store: store_cfg,
        grace_period: args.shutdown_grace,
        stats_interval: args.stats_interval.max(Duration::from_millis(100)),
        limits: earshot_server::limits::LimitsConfig {
            tenant_rps: args.tenant_rps,
            tenant_burst: args.tenant_burst,
            tenant_max_streams: args.tenant_max_streams,
            ..Default::default()
        },
        conn: args.conn_config(),
        origins: earshot_server::origin::OriginConfig {
            allowed_origins: args.allowed_origins.clone(),
            allowed_hosts: args.allowed_hosts.clone(),
        },
        ..ServerConfig::default()
    };
    let speech = super::serve_models::load_speech(&args).await?;
    let shutdown = signals::shutdown_on_signal();
    let workers = spawn_sinks(&args, &store, &shutdown);
    let server = Server::start(listener, store, tenants.clone(), config, speech, shutdown).await?;
    tracing::info!(
        addr = %server.addr(),
        tenants = if tenants.is_open() { "open (default)".to_owned() } else { tenants.tenant_count().to_string() },
        "earshot listening"
    );
    // The sink workers stop reading at the same signal and finish (within their own
    // grace period) before the store closes, so what they delivered is acknowledged.
    let workers = async move {
        for w in workers {
            let _ = w.await;
        }
    };
    if !server.wait_also(workers).await {
        tracing::warn!("some requests were cut off by the shutdown grace period");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts one in-process worker per `--sink` (group `earshot-sink-<n>`).
fn spawn_sinks(
    args: &ServeArgs,
    store: &DynStore,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    args.sink
        .iter()
        .enumerate()
        .map(|(i, sink)| {
            let group = format!("earshot-sink-{i}");
            let cfg = args.delivery.config(
                &group,
                &format!("serve-{}", WorkerConfig::default_consumer()),
                sink.clone(),
                args.shutdown_grace,
            );
            let (store, token) = (store.clone(), shutdown.clone());
            tracing::info!(%group, %sink, "delivering events in-process");
            tokio::spawn(async move {
                if let Err(e) = earshot_worker::run(cfg, store, token).await {
                    tracing::error!("sink worker stopped: {e}");
                }
            })
        })
        .collect()
}
