//! What every handler shares: the one store handle, the tenants, the event hub and the
//! settings. Cloned per request (everything inside is an `Arc` or small).

use std::sync::Arc;
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_store::DynStore;

use crate::auth::Tenants;
use crate::hub::EventHub;
use crate::speech::SpeechStatus;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Server settings (api.md §1).
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
    /// Per-tenant rate, stream and request-head limits.
    pub limits: crate::limits::LimitsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_json_body: 256 * 1024,
            store: StoreConfig::default(),
            retention_interval: Duration::from_secs(60),
            stats_interval: Duration::from_secs(5),
            grace_period: Duration::from_secs(10),
            max_upload_bytes: 25 * 1024 * 1024,
            limits: crate::limits::LimitsConfig::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
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
}
