//! What every handler shares: the one store handle, the tenants, the event hub and the
//! settings. Cloned per request (everything inside is an `Arc` or small).

use std::sync::Arc;
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_store::DynStore;

use crate::hub::EventHub;
use crate::speech::SpeechStatus;
use crate::tenants::Tenants;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Default largest JSON body, bytes.
pub const DEFAULT_MAX_JSON_BODY: usize = 256 * 1024;
/// Default largest upload on `/v1/audio/transcriptions`, bytes (OpenAI's own limit).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// Default longest audio one upload may hold, seconds. An hour covers a long meeting;
/// its 16 kHz samples take 230 MB while it is transcribed, which is what one upload may
/// cost a server; a compressed file that decodes to more is refused as soon as decoding
/// passes the hour, before the rest is decoded.
pub const DEFAULT_MAX_UPLOAD_SECONDS: u64 = 3600;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest JSON body accepted (413 above).
    pub max_json_body: usize,
    /// Store settings, for the retention task.
    pub store: StoreConfig,
    /// How often the retention task runs `XTRIM MINID`.
    pub retention_interval: Duration,
    /// How often store figures (memory, evictions, stream length, lag) are polled, and
    /// recorded histogram samples are drained into their buckets.
    pub stats_interval: Duration,
    /// How long shutdown waits for in-flight work.
    pub grace_period: Duration,
    /// Largest upload accepted by `/v1/audio/transcriptions`.
    pub max_upload_bytes: usize,
    /// Longest audio one upload may hold, counted while decoding (413 `audio_too_long`).
    pub max_upload_seconds: u64,
    /// Per-tenant rate, stream and request-head limits.
    pub limits: crate::limits::LimitsConfig,
    /// Slow and idle clients: head and body timeouts, open connections.
    pub conn: crate::conn::ConnConfig,
    /// Origins and host names allowed besides the server's own.
    pub origins: crate::origin::OriginConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_json_body: DEFAULT_MAX_JSON_BODY,
            store: StoreConfig::default(),
            retention_interval: Duration::from_secs(60),
            stats_interval: Duration::from_secs(5),
            grace_period: Duration::from_secs(10),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_upload_seconds: DEFAULT_MAX_UPLOAD_SECONDS,
            limits: crate::limits::LimitsConfig::default(),
            conn: crate::conn::ConnConfig::default(),
            origins: crate::origin::OriginConfig::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    /// Session rules shared by every route that writes sessions.
    pub sessions: crate::service::SessionService,
    pub tenants: Arc<Tenants>,
    pub hub: EventHub,
    pub config: Arc<ServerConfig>,
    /// The speech engine, or why there is none.
    pub speech: Arc<SpeechStatus>,
    /// Fired on SIGTERM/SIGINT; live streams watch it to flush and close.
    pub shutdown: CancellationToken,
    /// Live WebSocket streams, so shutdown can wait for their last finals.
    pub tasks: TaskTracker,
    /// Per-tenant request rate and live stream counts.
    pub limits: Arc<crate::limits::Limits>,
    /// Which hosts and cross-site origins are refused.
    pub origins: Arc<crate::origin::OriginPolicy>,
}
