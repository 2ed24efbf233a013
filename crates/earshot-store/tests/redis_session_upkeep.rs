//! Redis-only: the keys that keep sessions bounded and retries single — the
//! idempotency hash beside a session's other keys, tenant indexes pruned of expired
//! sessions without anyone listing, and a large session completed without one long
//! script holding Redis.

mod support;

use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_store::*;
use support::*;

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn q<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con).unwrap()
}

async fn store_on(server: &RedisServer, config: StoreConfig) -> DynStore {
    std::sync::Arc::new(RedisStore::connect(&server.url(), config).await.unwrap())
}

#[tokio::test]
async fn idempotency_keys_live_and_die_with_their_session() {
    let server = RedisServer::start();
    let config = StoreConfig {
        session_ttl: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let store = store_on(&server, config).await;
    create(&store, "acme", "abc").await;
    store
        .append_segment_once("acme", "abc", &seg("hi"), Some("k-1"))
        .await
        .unwrap();
    let mut con = raw(&server);
    let ty: String = q(&mut con, &["TYPE", "session:abc:idempotency"]);
    assert_eq!(ty, "hash");
    let pttl: i64 = q(&mut con, &["PTTL", "session:abc:idempotency"]);
    assert!(pttl > 3_590_000 && pttl <= 3_600_000, "{pttl}");
    let entry: String = q(&mut con, &["HGET", "session:abc:idempotency", "k-1"]);
    assert!(entry.starts_with("0:"), "{entry}");
    assert!(store.delete_session("acme", "abc").await.unwrap());
    let exists: i64 = q(&mut con, &["EXISTS", "session:abc:idempotency"]);
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn expired_sessions_leave_the_tenant_index_without_a_list_call() {
    let server = RedisServer::start();
    let store = store_on(&server, StoreConfig::default()).await;
    create(&store, "acme", "alive").await;
    create(&store, "acme", "kept-alive").await;
    let mut con = raw(&server);
    // Two index entries that started more than a session TTL ago: one whose keys
    // expired (its metadata is gone), one kept alive by writes since.
    let long_ago = "1000";
    let _: i64 = q(
        &mut con,
        &["ZADD", "tenant:acme:sessions", long_ago, "expired"],
    );
    let _: i64 = q(
        &mut con,
        &["ZADD", "tenant:acme:sessions", long_ago, "kept-alive"],
    );
    let _: i64 = q(
        &mut con,
        &["ZADD", "tenant:other:sessions", long_ago, "gone"],
    );
    assert_eq!(store.prune_expired().await.unwrap(), 2);
    let left: Vec<String> = q(&mut con, &["ZRANGE", "tenant:acme:sessions", "0", "-1"]);
    assert_eq!(left, ["kept-alive", "alive"]);
    let other: i64 = q(&mut con, &["EXISTS", "tenant:other:sessions"]);
    assert_eq!(other, 0);
    assert_eq!(store.prune_expired().await.unwrap(), 0);
}

/// A session near the byte limit (7 MB in 120 segments of 60 kB) completes, answers its
/// whole transcript, caches it, and publishes a bounded event. The lists are read in
/// pages outside any script, so no single command carries the whole session.
#[tokio::test]
async fn a_large_session_completes_with_its_whole_text_and_a_bounded_event() {
    let server = RedisServer::start();
    let store = store_on(&server, StoreConfig::default()).await;
    create(&store, "acme", "big").await;
    let text = "word ".repeat(12_000);
    let segment = seg(text.trim());
    for i in 0..120 {
        match store.append_segment("acme", "big", &segment).await.unwrap() {
            AppendOutcome::Appended { seq, .. } => assert_eq!(seq, i),
            other => panic!("{other:?}"),
        }
    }
    let CompleteOutcome::Completed { transcript, .. } =
        store.complete_session("acme", "big").await.unwrap()
    else {
        panic!("not completed");
    };
    assert_eq!(transcript.len(), 120 * segment.text.len() + 119);
    let t = store.transcript("acme", "big").await.unwrap().unwrap();
    assert_eq!(t.segments.len(), 120);
    assert_eq!(t.text, transcript);
    let mut con = raw(&server);
    let cached: i64 = q(&mut con, &["STRLEN", "cache:session:big:transcript"]);
    assert!(cached as usize > transcript.len(), "{cached}");
    let done = events_of(&store, "transcript_completed").await;
    let earshot_core::EventKind::TranscriptCompleted {
        transcript,
        transcript_truncated,
        ..
    } = &done[0].kind
    else {
        unreachable!()
    };
    assert!(*transcript_truncated);
    assert_eq!(transcript.len(), segment.text.len());
}
