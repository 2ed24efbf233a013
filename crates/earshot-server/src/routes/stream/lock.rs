//! The one-live-stream-per-session lock (`lock:session:<id>:stream`): taken before the
//! upgrade, kept alive by its own task (a long decode must not let it expire under a live
//! stream), and released however the stream ends.

use std::time::Duration;

use earshot_store::{DynStore, LockToken};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// Lock purpose for the one live stream of a session.
const PURPOSE: &str = "stream";

/// A held stream lock.
pub struct StreamLock {
    store: DynStore,
    session_id: String,
    token: LockToken,
    ttl: Duration,
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
    /// Take the lock, or 409 `stream_active` when another connection holds it.
    pub async fn take(store: DynStore, session_id: &str, ttl: Duration) -> Result<Self, ApiError> {
        let token = store.try_lock(session_id, PURPOSE, ttl).await?.ok_or_else(|| {
            ApiError::conflict(
                "stream_active",
                "another connection is streaming into this session; close it or wait for its lock to expire",
            )
        })?;
        Ok(StreamLock {
            store,
            session_id: session_id.to_owned(),
            token,
            ttl,
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
    pub async fn release(self) {
        if let Err(e) = self
            .store
            .unlock(&self.session_id, PURPOSE, &self.token)
            .await
        {
            tracing::warn!(error = %e, "could not release the stream lock; it expires by itself");
        }
    }
}
