//! Per-tenant live-stream slots and a lock's remaining life, the same on every backend:
//! these are what make a tenant's stream limit hold across nodes, and what tells a
//! client reconnecting to another node how long a dead node's lock still lives.

mod support;

use std::time::Duration;

use support::*;

conformance!(
    slots_are_limited_per_tenant_and_given_back,
    a_dead_holders_slot_expires_and_a_live_one_is_kept,
    lock_remaining_is_the_locks_life,
);

const LONG: Duration = Duration::from_secs(60);

async fn slots_are_limited_per_tenant_and_given_back(kind: Kind) {
    let h = Harness::new(kind).await;
    let s = &h.store;
    let a1 = s
        .acquire_stream_slot("acme", 2, LONG)
        .await
        .unwrap()
        .expect("1st");
    let a2 = s
        .acquire_stream_slot("acme", 2, LONG)
        .await
        .unwrap()
        .expect("2nd");
    assert!(
        s.acquire_stream_slot("acme", 2, LONG)
            .await
            .unwrap()
            .is_none(),
        "3rd of 2"
    );
    let z = s.acquire_stream_slot("zeta", 2, LONG).await.unwrap();
    assert!(z.is_some(), "another tenant has its own slots");
    assert_eq!(s.stream_slots_held("acme").await.unwrap(), 2);
    assert_eq!(s.stream_slots_held("zeta").await.unwrap(), 1);
    assert_eq!(s.stream_slots_held("nobody").await.unwrap(), 0);

    assert!(s.release_stream_slot("acme", &a1).await.unwrap());
    assert!(
        !s.release_stream_slot("acme", &a1).await.unwrap(),
        "given back once"
    );
    assert!(
        !s.release_stream_slot("zeta", &a2).await.unwrap(),
        "only by its tenant"
    );
    let a3 = s.acquire_stream_slot("acme", 2, LONG).await.unwrap();
    assert!(a3.is_some(), "a released slot is free again");
    // 0: no limit, but every slot still counts.
    for _ in 0..5 {
        assert!(s
            .acquire_stream_slot("acme", 0, LONG)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(s.stream_slots_held("acme").await.unwrap(), 7);
}

async fn a_dead_holders_slot_expires_and_a_live_one_is_kept(kind: Kind) {
    let h = Harness::new(kind).await;
    let s = &h.store;
    let ttl = Duration::from_millis(600);
    // Two holders; only `kept` renews (a node that died never does).
    let _dead = s
        .acquire_stream_slot("acme", 2, ttl)
        .await
        .unwrap()
        .unwrap();
    let kept = s
        .acquire_stream_slot("acme", 2, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .acquire_stream_slot("acme", 2, ttl)
        .await
        .unwrap()
        .is_none());
    for _ in 0..6 {
        tokio::time::sleep(ttl / 3).await;
        assert!(s.extend_stream_slot("acme", &kept, ttl).await.unwrap());
    }
    // 1.2 s later the dead holder's slot has lapsed, the renewed one has not.
    assert_eq!(s.stream_slots_held("acme").await.unwrap(), 1);
    let again = s.acquire_stream_slot("acme", 2, ttl).await.unwrap();
    assert!(again.is_some(), "the dead holder's slot is free");
    assert!(s
        .acquire_stream_slot("acme", 2, ttl)
        .await
        .unwrap()
        .is_none());
    // A lapsed slot cannot be renewed (it may have been given to someone else).
    tokio::time::sleep(ttl * 2).await;
    assert!(!s.extend_stream_slot("acme", &kept, ttl).await.unwrap());
    assert_eq!(s.stream_slots_held("acme").await.unwrap(), 0);
}

async fn lock_remaining_is_the_locks_life(kind: Kind) {
    let h = Harness::new(kind).await;
    let s = &h.store;
    assert_eq!(s.lock_remaining("s1", "stream").await.unwrap(), None);
    let token = s.try_lock("s1", "stream", LONG).await.unwrap().unwrap();
    let left = s
        .lock_remaining("s1", "stream")
        .await
        .unwrap()
        .expect("held");
    assert!(
        left <= LONG && left > LONG - Duration::from_secs(10),
        "{left:?}"
    );
    assert_eq!(s.lock_remaining("s1", "other").await.unwrap(), None);
    assert!(s.unlock("s1", "stream", &token).await.unwrap());
    assert_eq!(s.lock_remaining("s1", "stream").await.unwrap(), None);
}
