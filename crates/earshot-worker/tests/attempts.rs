//! How often an event is really attempted, whatever happens to the worker or to Redis:
//! a poison event that hangs every worker taking it is dead-lettered after
//! `max_deliveries` attempts across crashes and restarts; entries a slow batch never got
//! to use up no attempt; and entries whose read reply was lost in a Redis outage are
//! delivered at once, not after `min_idle`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use earshot_core::keys::EVENT_STREAM;
use earshot_store::GroupStart;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

both_backends!(poison_that_hangs_every_worker_is_dead_lettered_across_restarts: hang_memory, hang_redis);
async fn poison_that_hangs_every_worker_is_dead_lettered_across_restarts(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 3).await;
    let poison = published[1];
    let record = Arc::new(Record::default());
    let mut c = cfg("g", "w");
    c.max_deliveries = 3;
    // Crashed workers come back under the same name (a fixed --consumer): their own
    // pending entries are what brings the poison back, not a reclaim.
    let mut crashes = 0;
    loop {
        let mut sink = TestSink::ok("w", &record);
        sink.hang_on = Some(poison);
        // Read before the worker starts: on a multi-threaded runtime it may reach the
        // poison before the next line runs, and a count read after that would wait forever.
        let hangs_before = record.blocked.load(Ordering::SeqCst);
        let w = spawn(c.clone(), &env.store, sink);
        wait_until("the worker hangs on the poison or dead-letters it", || {
            record.blocked.load(Ordering::SeqCst) > hangs_before
                || w.stats.snapshot().dead_lettered == 1
        })
        .await;
        if w.stats.snapshot().dead_lettered == 1 {
            w.stop().await;
            break;
        }
        // SIGKILL: nothing of the worker runs any more.
        w.handle.abort();
        let _ = w.handle.await;
        crashes += 1;
        assert!(crashes <= 3, "the poison event came back {crashes} times");
    }
    assert_eq!(
        record.attempts_of(poison),
        3,
        "attempted max_deliveries times"
    );
    let dead = dead_letters(&env.store).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[&poison].field("delivery_count"), Some("4"));
    let delivered = record.delivered_ids();
    assert!(delivered.contains(&published[0]) && delivered.contains(&published[2]));
    assert!(pending_ids(&env.store, "g").await.is_empty());
}

both_backends!(a_slow_batch_uses_up_no_attempt_of_what_it_never_tried: slow_memory, slow_redis);
async fn a_slow_batch_uses_up_no_attempt_of_what_it_never_tried(b: Backend) {
    let env = env(b).await;
    let published = publish(&env.store, "s", 3).await;
    let record = Arc::new(Record::default());
    let mut c = cfg("g", "w");
    // One attempt each: an entry counted twice would be dead-lettered untried.
    c.max_deliveries = 1;
    c.min_idle = Duration::from_millis(400);
    c.claim_interval = Some(Duration::from_millis(20));
    let mut sink = TestSink::ok("w", &record);
    // Each delivery outlasts 3/4 of min_idle, so every batch stops after one entry.
    sink.delay = Duration::from_millis(400);
    let w = spawn(c, &env.store, sink);
    wait_until("all delivered", || w.stats.snapshot().acked >= 3).await;
    let stats = w.stop().await;
    assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    for id in &published {
        assert_eq!(record.attempts_of(*id), 1, "{id}");
    }
    assert!(dead_letters(&env.store).await.is_empty());
    assert!(pending_ids(&env.store, "g").await.is_empty());
}

/// Tag of the events whose replies the proxy cuts.
const MARKED: &str = "lost-reply-marker";

/// A TCP proxy in front of Redis that, while `cut` is set, closes a connection instead
/// of passing on a reply that carries one of the [`MARKED`] events: the command ran in
/// Redis, its answer never reached the client. Other replies pass, so the client keeps
/// connecting and reading.
async fn reply_cutting_proxy(redis_port: u16, cut: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else {
                continue;
            };
            let cut = cut.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = sr.read(&mut buf).await?;
                        let marked = String::from_utf8_lossy(&buf[..n]).contains(MARKED);
                        if n == 0 || (marked && cut.load(Ordering::SeqCst)) {
                            return Ok::<_, std::io::Error>(());
                        }
                        cw.write_all(&buf[..n]).await?;
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
                // Dropping both halves of both sockets closes them.
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_whose_read_reply_was_lost_are_delivered_at_once() {
    let env = env(Backend::Redis).await;
    let redis = env.redis.as_ref().unwrap();
    env.store
        .create_group(EVENT_STREAM, "g", GroupStart::Beginning)
        .await
        .unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let port = reply_cutting_proxy(redis.port(), cut.clone()).await;
    let worker_store = redis_store(&format!("redis://127.0.0.1:{port}")).await;
    let record = Arc::new(Record::default());
    // All five are in the stream before the worker's first read, so that one read takes
    // them all: published while it waits, the first XADD would wake it with fewer, and
    // the rest would never be read while every reply carrying the marker is cut.
    let published = publish(&env.store, MARKED, 5).await;
    cut.store(true, Ordering::SeqCst);
    // min_idle stays at 60 s: a reclaim cannot be what recovers the entries.
    let w = spawn(cfg("g", "w"), &worker_store, TestSink::ok("w", &record));
    // The worker's XREADGROUP ran (the entries are pending under its name) but its
    // reply was cut.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while group(&env.store, "g").await.map_or(0, |g| g.pending) < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record.delivered_count(), 0);
    cut.store(false, Ordering::SeqCst);
    wait_until("the lost entries delivered", || {
        w.stats.snapshot().acked >= 5
    })
    .await;
    let stats = w.stop().await;
    assert_eq!(stats.reclaimed, 0, "recovered as its own, not reclaimed");
    let (pending, dead) = check_invariants(&env.store, "g", &published, &record, 1).await;
    assert!(pending.is_empty() && dead.is_empty());
}
