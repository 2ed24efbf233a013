//! Time-based retention of the event stream: every `interval`, `XTRIM MINID` drops
//! entries older than `EARSHOT_EVENT_RETENTION` (the `MAXLEN ~` cap is applied on every
//! `XADD` by the store). Stream ids start with their creation time in ms, so the cut-off
//! id is simply `<now - retention>-0`. Every event stream is trimmed (one per
//! partition on a cluster). The same tick prunes expired sessions from the tenant
//! indexes, so an index does not keep every session a tenant ever had.

use std::time::Duration;

use earshot_core::StreamId;
use earshot_store::DynStore;
use tokio_util::sync::CancellationToken;

/// The oldest id kept when trimming at `now_ms`.
pub fn cutoff(now_ms: u64, retention: Duration) -> StreamId {
    StreamId::new(now_ms.saturating_sub(retention.as_millis() as u64), 0)
}

/// Trims once; returns how many entries were removed.
pub async fn trim_once(
    store: &DynStore,
    retention: Duration,
) -> Result<u64, earshot_store::StoreError> {
    let min = cutoff(earshot_core::time::now_ms(), retention);
    let mut removed = 0;
    for stream in store.event_streams() {
        removed += store.trim_stream_before(&stream, min).await?;
    }
    if removed > 0 {
        tracing::info!(removed, min_id = %min, "retention: trimmed old events");
    }
    Ok(removed)
}

/// Removes expired sessions from the tenant indexes once; returns how many.
pub async fn prune_once(store: &DynStore) -> Result<u64, earshot_store::StoreError> {
    let removed = store.prune_expired().await?;
    if removed > 0 {
        tracing::info!(
            removed,
            "retention: pruned expired sessions from tenant indexes"
        );
    }
    Ok(removed)
}

/// Runs `trim_once` and `prune_once` every `interval` until shutdown; failures are
/// logged and retried at the next tick.
pub async fn run(
    store: DynStore,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = trim_once(&store, retention).await {
            tracing::warn!(error = %e, "retention trim failed; will retry");
        }
        if let Err(e) = prune_once(&store).await {
            tracing::warn!(error = %e, "tenant index pruning failed; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_now_minus_retention() {
        assert_eq!(
            cutoff(10_000, Duration::from_secs(3)),
            StreamId::new(7_000, 0)
        );
        assert_eq!(cutoff(1_000, Duration::from_secs(3)), StreamId::new(0, 0));
    }
}
