//! Deleting a session deletes every key it has, its live-stream lock included: a new
//! stream into a re-created session must not meet the deleted one's lock.

mod support;

use std::time::Duration;

use earshot_core::keys::STREAM_LOCK;
use support::*;

conformance!(delete_removes_the_stream_lock);

async fn delete_removes_the_stream_lock(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "t", "s1").await;
    let ttl = Duration::from_secs(3600);
    let held = h.store.try_lock("s1", STREAM_LOCK, ttl).await.unwrap();
    assert!(held.is_some());
    assert!(h.store.delete_session("t", "s1").await.unwrap());
    create(&h.store, "t", "s1").await;
    assert!(
        h.store
            .try_lock("s1", STREAM_LOCK, ttl)
            .await
            .unwrap()
            .is_some(),
        "the deleted session's stream lock is gone with it"
    );
    // The deleted stream's owner finds out it lost the lock.
    assert!(!h
        .store
        .extend_lock("s1", STREAM_LOCK, &held.unwrap(), ttl)
        .await
        .unwrap());
}
