//! The worker against both stores (the embedded one and a real redis-server): load
//! sharing, fan-out to groups, retries, dead-lettering, reclaiming a dead consumer's
//! entries, restart, graceful shutdown and a slow sink. Every test checks that nothing
//! acknowledged was lost and that duplicates stay bounded.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use earshot_core::keys::EVENT_STREAM;
use earshot_store::GroupStart;
use earshot_worker::SinkError;

/// Runs an async test body once per backend.
macro_rules! both_backends {
    ($body:ident: $mem:ident, $redis:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $mem() {
            $body(Backend::Memory).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $redis() {
            $body(Backend::Redis).await;
        }
    };
}

both_backends!(workers_share_the_load: share_load_memory, share_load_redis);
async fn workers_share_the_load(b: Backend) {
    let env = env(b).await;
    let mut published = publish(&env.store, "early", 120).await;
    let record = Arc::new(Record::default());
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let name = format!("w{i}");
            let mut sink = TestSink::ok(&name, &record);
            sink.delay = Duration::from_millis(2);
            let mut c = cfg("g", &name);
            c.batch = 5;
            spawn(c, &env.store, sink)
        })
        .collect();
    published.extend(publish(&env.store, "late", 60).await);
    let total = published.len();
    wait_until("all events delivered", || record.delivered_count() >= total).await;
    let mut delivered = 0;
    for w in workers {
        delivered += w.stop().await.delivered;
    }
    assert_eq!(delivered as usize, total);
    // No failures and no reclaim: exactly once each, and the union covers everything.
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty() && dead.is_empty());
    assert_eq!(record.delivered_count(), total);
    let by_worker = record.by_worker();
    assert!(by_worker.len() >= 2, "the load was shared: {by_worker:?}");
}

both_backends!(every_group_sees_everything: two_groups_memory, two_groups_redis);
async fn every_group_sees_everything(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 40).await;
    let (ra, rb) = (Arc::new(Record::default()), Arc::new(Record::default()));
    let a = spawn(cfg("audit", "a1"), &env.store, TestSink::ok("a1", &ra));
    let bw = spawn(cfg("search", "b1"), &env.store, TestSink::ok("b1", &rb));
    wait_until("both groups got everything", || {
        ra.delivered_count() >= 40 && rb.delivered_count() >= 40
    })
    .await;
    a.stop().await;
    bw.stop().await;
    for (g, r) in [("audit", &ra), ("search", &rb)] {
        let (pending, _) = check_invariants(&env.store, g, &published, r, 1).await;
        assert!(pending.is_empty());
        assert_eq!(r.delivered_ids(), published, "group {g} in stream order");
    }
}

both_backends!(transient_failures_are_retried: transient_memory, transient_redis);
async fn transient_failures_are_retried(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 10).await;
    let flaky = published[3];
    let record = Arc::new(Record::default());
    // Every 3rd entry and `flaky` fail their first two attempts, then succeed.
    let script: Script = Arc::new(move |e, attempt| {
        if (e.id == flaky || e.id.seq % 3 == 0) && attempt <= 2 {
            Err(SinkError::Retryable(format!("try {attempt} failed")))
        } else {
            Ok(())
        }
    });
    let mut c = cfg("g", "w");
    c.min_idle = Duration::from_millis(150);
    c.claim_interval = Some(Duration::from_millis(30));
    let w = spawn(c, &env.store, TestSink::scripted("w", &record, script));
    wait_until("everything delivered after retries", || {
        record.delivered_count() >= published.len()
    })
    .await;
    // Give the ack of the last batch a moment to land before checking pending.
    wait_until("nothing pending", || {
        w.stats.snapshot().acked as usize >= published.len()
    })
    .await;
    let stats = w.stop().await;
    assert!(stats.retryable_failures >= 4, "{stats:?}");
    assert!(
        stats.reclaimed >= 2,
        "failed entries came back by reclaim: {stats:?}"
    );
    assert_eq!(stats.dead_lettered, 0);
    assert_eq!(record.attempts_of(flaky), 3);
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(
        pending.is_empty() && dead.is_empty(),
        "{pending:?} {dead:?}"
    );
}

both_backends!(permanent_failure_is_dead_lettered_at_once: permanent_memory, permanent_redis);
async fn permanent_failure_is_dead_lettered_at_once(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 6).await;
    let bad = published[2];
    let record = Arc::new(Record::default());
    let script: Script = Arc::new(move |e, _| {
        if e.id == bad {
            Err(SinkError::Permanent("receiver said 422".into()))
        } else {
            Ok(())
        }
    });
    let w = spawn(
        cfg("g", "w"),
        &env.store,
        TestSink::scripted("w", &record, script),
    );
    wait_until("dead-lettered and the rest delivered", || {
        let s = w.stats.snapshot();
        s.dead_lettered == 1 && s.acked == 5
    })
    .await;
    w.stop().await;
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty());
    assert_eq!(dead.keys().copied().collect::<Vec<_>>(), vec![bad]);
    let d = &dead[&bad];
    assert_eq!(d.field("reason"), Some("receiver said 422"));
    assert_eq!(d.field("delivery_count"), Some("1"));
    assert_eq!(
        d.field("text"),
        Some("s 2"),
        "the event travels with its reason"
    );
    assert_eq!(record.attempts_of(bad), 1, "never retried");
}

both_backends!(poison_entry_is_dead_lettered_after_max_deliveries: poison_memory, poison_redis);
async fn poison_entry_is_dead_lettered_after_max_deliveries(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 5).await;
    let poison = published[1];
    let record = Arc::new(Record::default());
    let script: Script = Arc::new(move |e, attempt| {
        if e.id == poison {
            Err(SinkError::Retryable(format!(
                "downstream timeout #{attempt}"
            )))
        } else {
            Ok(())
        }
    });
    let mut c = cfg("g", "w");
    c.max_deliveries = 3;
    c.min_idle = Duration::from_millis(100);
    c.claim_interval = Some(Duration::from_millis(20));
    let w = spawn(c, &env.store, TestSink::scripted("w", &record, script));
    wait_until("poison entry dead-lettered", || {
        w.stats.snapshot().dead_lettered == 1
    })
    .await;
    let stats = w.stop().await;
    assert_eq!(stats.retryable_failures, 3);
    assert_eq!(
        record.attempts_of(poison),
        3,
        "delivered exactly max_deliveries times"
    );
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty());
    let d = &dead[&poison];
    let reason = d.field("reason").unwrap_or_default();
    assert!(reason.contains("downstream timeout #3"), "{reason}");
    assert!(reason.contains("max 3"), "{reason}");
    assert_eq!(d.field("delivery_count"), Some("4"));
}

both_backends!(dead_consumers_entries_are_reclaimed: reclaim_memory, reclaim_redis);
async fn dead_consumers_entries_are_reclaimed(b: Backend) {
    let env = env(b).await;
    env.store
        .create_group(EVENT_STREAM, "g", GroupStart::Beginning)
        .await
        .unwrap();
    let published = publish(&env.store, "s", 20).await;
    // Consumer A reads everything and dies without acknowledging.
    let taken = env
        .store
        .read_group(EVENT_STREAM, "g", "A", 100, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(taken.len(), 20);
    assert_eq!(group(&env.store, "g").await.unwrap().pending, 20);

    let record = Arc::new(Record::default());
    let mut c = cfg("g", "B");
    c.min_idle = Duration::from_millis(100);
    c.claim_interval = Some(Duration::from_millis(20));
    let w = spawn(c, &env.store, TestSink::ok("B", &record));
    wait_until("B delivered A's entries", || record.delivered_count() >= 20).await;
    wait_until("B acked them", || w.stats.snapshot().acked >= 20).await;
    let stats = w.stop().await;
    assert_eq!(stats.reclaimed, 20);
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty() && dead.is_empty());
}

both_backends!(restarted_worker_redelivers_its_own_pending: restart_memory, restart_redis);
async fn restarted_worker_redelivers_its_own_pending(b: Backend) {
    let env = env(b).await;
    env.store
        .create_group(EVENT_STREAM, "g", GroupStart::Beginning)
        .await
        .unwrap();
    let published = publish(&env.store, "s", 12).await;
    // "w" read 7 entries, then crashed before acknowledging them.
    let taken = env
        .store
        .read_group(EVENT_STREAM, "g", "w", 7, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(taken.len(), 7);
    let record = Arc::new(Record::default());
    // Reclaim is effectively off (min_idle 60 s): only read_own_pending can bring them back.
    let w = spawn(cfg("g", "w"), &env.store, TestSink::ok("w", &record));
    wait_until("all delivered", || w.stats.snapshot().acked >= 12).await;
    let stats = w.stop().await;
    assert_eq!(stats.reclaimed, 0);
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty() && dead.is_empty());
    assert_eq!(
        record.delivered_ids()[..7],
        published[..7],
        "own pending first"
    );
}

both_backends!(shutdown_leaves_unfinished_entries_pending: shutdown_memory, shutdown_redis);
async fn shutdown_leaves_unfinished_entries_pending(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 8).await;
    let record = Arc::new(Record::default());
    let mut sink = TestSink::ok("w", &record);
    sink.hang_on = Some(published[5]);
    let mut c = cfg("g", "w");
    c.batch = 8;
    c.grace = Duration::from_millis(200);
    let w = spawn(c, &env.store, sink);
    wait_until("the sink hangs on entry 5", || {
        record.blocked.load(Ordering::SeqCst) == 1
    })
    .await;
    let stats = w.stop().await;
    // 0..5 were delivered before shutdown and acknowledged; 5 hung past the grace
    // period; 6 and 7 were never started. Those three stay pending for a peer.
    assert_eq!(stats.delivered, 5);
    assert_eq!(stats.acked, 5);
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(dead.is_empty());
    assert_eq!(
        pending.into_iter().collect::<Vec<_>>(),
        published[5..].to_vec(),
        "undelivered entries are never acknowledged"
    );
}

both_backends!(slow_sink_bounds_memory_and_lag_shows: slow_memory, slow_redis);
async fn slow_sink_bounds_memory_and_lag_shows(b: Backend) {
    let env = env(b).await;
    let record = Arc::new(Record::default());
    let mut sink = TestSink::ok("w", &record);
    sink.delay = Duration::from_millis(20);
    let mut c = cfg("g", "w");
    c.batch = 4;
    let w = spawn(c, &env.store, sink);
    wait_for_group(&env.store, "g").await;
    let mut published = Vec::new();
    let mut max_lag = 0;
    for _ in 0..10 {
        published.extend(publish(&env.store, "s", 20).await);
        if let Some(g) = group(&env.store, "g").await {
            assert!(g.pending <= 4, "at most one batch is held: {g:?}");
            max_lag = max_lag.max(g.lag.unwrap_or(0));
        }
    }
    let g = group(&env.store, "g").await.expect("group exists");
    max_lag = max_lag.max(g.lag.unwrap_or(0));
    assert!(
        max_lag >= 50,
        "lag grows behind a slow sink and is visible: {max_lag}"
    );
    assert!(g.pending <= 4);
    let stats = w.stop().await;
    assert!(stats.max_in_flight <= 4, "{stats:?}");
    assert!(record.in_flight.load(Ordering::SeqCst) <= 1);
    check_invariants(&env.store, "g", &published, &record, 1).await;
}

both_backends!(crash_mid_batch_loses_nothing: crash_memory, crash_redis);
async fn crash_mid_batch_loses_nothing(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 60).await;
    let record = Arc::new(Record::default());
    let mut sink = TestSink::ok("A", &record);
    sink.delay = Duration::from_millis(3);
    let a = spawn(cfg("g", "A"), &env.store, sink);
    wait_until("A is half way", || record.delivered_count() >= 20).await;
    // A dies at an arbitrary await point: no grace period, no final ack.
    a.handle.abort();
    let _ = a.handle.await;
    let acked_by_a = a.stats.snapshot().acked;

    // A peer reclaims whatever A held; A's restart re-reads its own pending entries.
    let mut c = cfg("g", "B");
    c.min_idle = Duration::from_millis(100);
    c.claim_interval = Some(Duration::from_millis(20));
    let b = spawn(c, &env.store, TestSink::ok("B", &record));
    let a2 = spawn(cfg("g", "A"), &env.store, TestSink::ok("A'", &record));
    wait_drained(&env.store, "g", *published.last().unwrap()).await;
    b.stop().await;
    a2.stop().await;
    // Entries A delivered but had not acked may be delivered once more, no more.
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 2).await;
    assert!(pending.is_empty() && dead.is_empty());
    let copies = record.delivered_count() - published.len();
    assert!(
        copies <= 8,
        "at most one batch is redelivered: {copies} (A acked {acked_by_a})"
    );
}

/// Redis goes away under a running worker and comes back: the worker logs, backs off,
/// keeps going, and delivers everything published before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_outage() {
    let mut env = env(Backend::Redis).await;
    let record = Arc::new(Record::default());
    let w = spawn(cfg("g", "w"), &env.store, TestSink::ok("w", &record));
    let mut published = publish(&env.store, "before", 10).await;
    wait_until("first events delivered", || record.delivered_count() >= 10).await;

    let server = env.redis.as_mut().expect("redis backend");
    server.stop();
    wait_until("the worker noticed the outage", || {
        w.stats.snapshot().store_errors >= 2
    })
    .await;
    server.restart();

    // The store reconnects on its own; publish once it answers again.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while env.store.ping().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    published.extend(publish(&env.store, "after", 10).await);
    let total = published.len();
    wait_until("events after the outage delivered", || {
        record.delivered_count() >= total
    })
    .await;
    wait_until("all acked", || w.stats.snapshot().acked as usize >= total).await;
    let stats = w.stop().await;
    assert!(stats.store_errors >= 2);
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 2).await;
    assert!(pending.is_empty() && dead.is_empty());
}
