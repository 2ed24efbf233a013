//! The one-live-stream-per-session lock (`lock:session:<id>:stream`): taken before the
//! upgrade, kept alive by its own task (a long decode must not let it expire under a live
//! stream), and released however the stream ends, including an upgrade that never
//! completes (the stream task then never runs and the lock is only dropped).

use std::time::Duration;

use earshot_store::{DynStore, LockToken};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

use earshot_core::keys::STREAM_LOCK as PURPOSE;

/// A held stream lock; dropping it without [`StreamLock::release`] releases it in the
/// background.
pub struct StreamLock {
    store: DynStore,
    session_id: String,
    token: LockToken,
    ttl: Duration,
    released: bool,
}

/// The task extending a [`StreamLock`]; aborted when dropped.
pub struct Keeper {
    task: JoinHandle<()>,
    /// Cancelled when another owner holds the lock now.
    pub lost: CancellationToken,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StreamLock {
    /// Take the lock, or 409 `stream_active` when another connection holds it, with
    /// `Retry-After` at the lock's remaining life: a client whose node died holding it
    /// gets in on any node once it expires.
    pub async fn take(store: DynStore, session_id: &str, ttl: Duration) -> Result<Self, ApiError> {
        let Some(token) = store.try_lock(session_id, PURPOSE, ttl).await? else {
            // Unknown (gone meanwhile, or the store hiccuped): retry soon.
            let left = store
                .lock_remaining(session_id, PURPOSE)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(ApiError {
                retry_after: Some(secs.max(1)),
                ..ApiError::conflict(
                    "stream_active",
                    "another connection is streaming into this session; close it, or retry \
                     after Retry-After seconds (a connection that vanished holds it until \
                     its lock expires)",
                )
            });
        };
        Ok(StreamLock {
            store,
            session_id: session_id.to_owned(),
            token,
            ttl,
            released: false,
        })
    }

    /// Extend the lock every third of its TTL until the keeper is dropped. Store errors are
    /// retried at the next tick (the lock survives a short outage since its TTL is three
    /// ticks).
    pub fn keep(&self) -> Keeper {
        let lost = CancellationToken::new();
        let (store, id, token, ttl) = (
            self.store.clone(),
            self.session_id.clone(),
            self.token.clone(),
            self.ttl,
        );
        let cancel = lost.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.extend_lock(&id, PURPOSE, &token, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        cancel.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not extend the stream lock; will retry")
                    }
                }
            }
        });
        Keeper { task, lost }
    }

    /// Give the lock back.
    pub async fn release(mut self) {
        self.released = true;
        unlock(&self.store, &self.session_id, &self.token).await;
    }
}

impl Drop for StreamLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (store, id, token) = (
            self.store.clone(),
            std::mem::take(&mut self.session_id),
            self.token.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { unlock(&store, &id, &token).await });
        }
    }
}

async fn unlock(store: &DynStore, session_id: &str, token: &LockToken) {
    if let Err(e) = store.unlock(session_id, PURPOSE, token).await {
        tracing::warn!(error = %e, "could not release the stream lock; it expires by itself");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use earshot_core::config::StoreConfig;
    use earshot_store::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn a_lock_dropped_without_release_is_released() {
        let store: DynStore = Arc::new(MemoryStore::new(StoreConfig::default()));
        let ttl = Duration::from_secs(3600);
        let lock = StreamLock::take(store.clone(), "s1", ttl).await.unwrap();
        assert!(StreamLock::take(store.clone(), "s1", ttl).await.is_err());
        // What happens when the WebSocket upgrade fails: the stream task that would
        // have released it never runs.
        drop(lock);
        let mut again = None;
        for _ in 0..100 {
            tokio::task::yield_now().await;
            if let Ok(l) = StreamLock::take(store.clone(), "s1", ttl).await {
                again = Some(l);
                break;
            }
        }
        assert!(again.is_some(), "the session's stream stayed locked");
    }
}
