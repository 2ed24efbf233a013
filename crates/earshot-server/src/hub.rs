//! The event fan-out behind `GET /v1/events`. One task per event stream (just
//! `transcription_events`, or one per partition on a cluster) reads with a blocking
//! read (one dedicated store connection each, however many subscribers) and broadcasts
//! each entry, pre-serialized and tagged with its partition, to every SSE connection.
//! Subscribers that fall behind re-read what they missed from the store, so none is
//! ever silently cut.

use std::sync::Arc;
use std::time::Duration;

use earshot_core::StreamId;
use earshot_store::{DynStore, StreamEntry};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One event ready to send: its partition (index into `Store::event_streams`), stream
/// id, owner tenant, type and JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEntry {
    pub partition: usize,
    pub id: StreamId,
    pub tenant_id: String,
    pub event_type: String,
    pub data: String,
}

impl HubEntry {
    /// Prepares an entry of partition `partition` for SSE (done once, shared by every
    /// subscriber).
    pub fn from_stream(partition: usize, entry: &StreamEntry) -> Self {
        Self {
            partition,
            id: entry.id,
            tenant_id: entry.field("tenant_id").unwrap_or_default().to_owned(),
            event_type: entry.field("event_type").unwrap_or("message").to_owned(),
            data: entry.to_json().to_string(),
        }
    }
}

/// How many entries a slow subscriber may fall behind before it re-reads the store.
const CHANNEL_CAPACITY: usize = 8192;
/// How long one blocking read waits before looping (also bounds shutdown latency).
const BLOCK: Duration = Duration::from_secs(2);

/// Handle to the fan-out; cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<HubEntry>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self { tx }
    }

    /// A live feed of entries published after this call.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEntry>> {
        self.tx.subscribe()
    }

    /// Runs one reader per event stream until `shutdown`.
    pub async fn run(self, store: DynStore, shutdown: CancellationToken) {
        let readers = store
            .event_streams()
            .into_iter()
            .enumerate()
            .map(|(p, stream)| {
                self.clone()
                    .read(store.clone(), p, stream, shutdown.clone())
            });
        futures::future::join_all(readers).await;
    }

    /// Reads partition `p` (`stream`) until `shutdown`. Store errors are logged and
    /// retried with a capped backoff; the reader resumes after the last entry it saw,
    /// so an outage loses nothing for live subscribers.
    async fn read(self, store: DynStore, p: usize, stream: String, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut last = loop {
            match store.last_stream_id(&stream).await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::warn!(error = %e, "event hub: cannot read the stream head yet");
                    if sleep_or_cancel(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            let read = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = store.wait_stream(&stream, last, 512, BLOCK) => r,
            };
            match read {
                Ok(entries) => {
                    backoff = Duration::from_millis(100);
                    // With nobody listening, only the position matters: a new
                    // subscriber catches up from the store by itself.
                    let listening = self.tx.receiver_count() > 0;
                    for e in &entries {
                        last = last.max(e.id);
                        if listening {
                            let _ = self.tx.send(Arc::new(HubEntry::from_stream(p, e)));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event hub: read failed; retrying");
                    if sleep_or_cancel(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Sleeps, or returns true at once if shutdown was requested.
async fn sleep_or_cancel(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
