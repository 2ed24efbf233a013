//! A tenant's live-stream slot, counted in the store (`tenant:<t>:streams` on Redis,
//! in process on the embedded store), so `tenant_max_streams` holds across every node
//! of a deployment rather than per node.
//!
//! A slot expires unless renewed, so the slots of a node that died stop counting after
//! the stream lock TTL, the same time its stream locks take. While the stream runs a
//! task renews it every third of that; if a long store outage let it expire anyway,
//! the task takes a new one regardless of the limit (the stream is already running and
//! must be counted again). Dropping the slot gives it back in the background, however
//! the stream ends, including an upgrade that never completes.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use earshot_core::TenantId;
use earshot_store::{DynStore, LockToken};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::error::ApiError;

/// One live stream of a tenant.
#[must_use = "the slot is released as soon as the guard is dropped"]
pub struct StreamSlot {
    store: DynStore,
    tenant: String,
    token: Arc<Mutex<LockToken>>,
    keeper: JoinHandle<()>,
    released: bool,
}

/// Takes one of `tenant`'s `max` slots (0 = unlimited, still counted) for `ttl`, or
/// refuses with 429 `too_many_streams`; 503 when the store does not answer.
pub async fn acquire(
    store: &DynStore,
    tenant: &TenantId,
    max: usize,
    ttl: Duration,
) -> Result<StreamSlot, ApiError> {
    let Some(token) = store
        .acquire_stream_slot(tenant.as_str(), max as u64, ttl)
        .await?
    else {
        metrics::counter!("earshot_tenant_limited_total", "limit" => "streams").increment(1);
        return Err(ApiError {
            // A stream lasts as long as its audio; a few seconds is a fair first retry.
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this tenant already has {max} live audio streams, the most allowed; \
                     close one or retry later"
                ),
            )
        });
    };
    let token = Arc::new(Mutex::new(token));
    let keeper = tokio::spawn(keep(
        store.clone(),
        tenant.as_str().to_owned(),
        token.clone(),
        ttl,
    ));
    Ok(StreamSlot {
        store: store.clone(),
        tenant: tenant.as_str().to_owned(),
        token,
        keeper,
        released: false,
    })
}

/// Renews the slot every third of its TTL; store errors are retried at the next tick.
async fn keep(store: DynStore, tenant: String, token: Arc<Mutex<LockToken>>, ttl: Duration) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let held = token.lock().clone();
        match store.extend_stream_slot(&tenant, &held, ttl).await {
            Ok(true) => {}
            Ok(false) => match store.acquire_stream_slot(&tenant, 0, ttl).await {
                Ok(Some(new)) => *token.lock() = new,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not retake a lapsed stream slot"),
            },
            Err(e) => tracing::warn!(error = %e, "could not renew the tenant's stream slot"),
        }
    }
}

impl StreamSlot {
    /// Gives the slot back now (the stream is over).
    pub async fn release(mut self) {
        self.released = true;
        self.keeper.abort();
        let token = self.token.lock().clone();
        release(&self.store, &self.tenant, &token).await;
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.keeper.abort();
        if self.released {
            return;
        }
        let (store, tenant, token) = (
            self.store.clone(),
            std::mem::take(&mut self.tenant),
            self.token.lock().clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { release(&store, &tenant, &token).await });
        }
    }
}

async fn release(store: &DynStore, tenant: &str, token: &LockToken) {
    if let Err(e) = store.release_stream_slot(tenant, token).await {
        tracing::warn!(error = %e, "could not give back a stream slot; it expires by itself");
    }
}

#[cfg(test)]
mod tests {
    use earshot_core::config::StoreConfig;
    use earshot_store::MemoryStore;

    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).expect("valid tenant")
    }

    const TTL: Duration = Duration::from_secs(30);

    async fn held(store: &DynStore, t: &str) -> u64 {
        store.stream_slots_held(t).await.unwrap()
    }

    /// Waits for the background release of dropped slots.
    async fn settle(store: &DynStore, t: &str, want: u64) {
        for _ in 0..1000 {
            if held(store, t).await == want {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{t} holds {} slots, expected {want}", held(store, t).await);
    }

    #[tokio::test]
    async fn slots_are_counted_per_tenant_and_given_back() {
        let store = MemoryStore::shared(StoreConfig::default());
        let (a, b) = (tenant("a"), tenant("b"));
        let s1 = acquire(&store, &a, 2, TTL).await.expect("1st");
        let s2 = acquire(&store, &a, 2, TTL).await.expect("2nd");
        let e = acquire(&store, &a, 2, TTL)
            .await
            .err()
            .expect("3rd refused");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "too_many_streams");
        assert!(e.retry_after.is_some());
        let other = acquire(&store, &b, 2, TTL)
            .await
            .expect("other tenant unaffected");
        assert_eq!(held(&store, "a").await, 2);
        s1.release().await;
        assert_eq!(held(&store, "a").await, 1);
        let s3 = acquire(&store, &a, 2, TTL).await.expect("a slot came back");
        drop((s2, s3, other));
        settle(&store, "a", 0).await;
        settle(&store, "b", 0).await;
    }

    #[tokio::test]
    async fn a_slot_in_a_task_that_dies_is_given_back() {
        let store = MemoryStore::shared(StoreConfig::default());
        let a = tenant("a");
        let slot = acquire(&store, &a, 1, TTL).await.expect("1st");
        let task = tokio::spawn(async move {
            let _slot = slot;
            panic!("a stream task that dies");
        });
        assert!(task.await.is_err());
        settle(&store, "a", 0).await;
        let _again = acquire(&store, &a, 1, TTL).await.expect("released");
    }

    #[tokio::test]
    async fn unlimited_slots_are_still_counted() {
        let store = MemoryStore::shared(StoreConfig::default());
        let a = tenant("a");
        let mut slots = Vec::new();
        for _ in 0..50 {
            slots.push(acquire(&store, &a, 0, TTL).await.expect("unlimited"));
        }
        assert_eq!(held(&store, "a").await, 50);
        drop(slots);
        settle(&store, "a", 0).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_stream_keeps_its_slot_past_the_ttl() {
        let store = MemoryStore::shared(StoreConfig::default());
        let a = tenant("a");
        let ttl = Duration::from_millis(1500);
        let _slot = acquire(&store, &a, 1, ttl).await.expect("1st");
        tokio::time::sleep(ttl * 3).await;
        assert_eq!(held(&store, "a").await, 1, "renewed while held");
        assert!(acquire(&store, &a, 1, ttl).await.is_err(), "still counted");
    }
}
