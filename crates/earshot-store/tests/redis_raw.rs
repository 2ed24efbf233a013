//! Redis-only: what `RedisStore` leaves in Redis, read back with a plain client (exact key
//! names, types, TTLs, hash fields, segment JSON, event fields, stream cap), and how it
//! behaves when Redis goes away and comes back.

mod support;

use std::time::{Duration, Instant};

use earshot_core::config::StoreConfig;
use earshot_core::keys::{DEAD_LETTER_STREAM, EVENT_STREAM};
use earshot_core::{Segment, StreamId, Transcript};
use earshot_store::*;
use redis::Value;
use support::*;

/// A plain synchronous client for reading raw keys.
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

async fn store_on(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::connect(&server.url(), config).await.unwrap()
}

fn assert_ttl_near(con: &mut redis::Connection, key: &str, want: Duration) {
    let pttl: i64 = q(con, &["PTTL", key]);
    let want = want.as_millis() as i64;
    assert!(
        pttl <= want && pttl > want - 5_000,
        "{key}: PTTL {pttl} ms, want about {want} ms"
    );
}

#[tokio::test]
async fn keys_types_ttls_and_values_match_the_data_model() {
    let server = RedisServer::start();
    let config = StoreConfig {
        session_ttl: Duration::from_secs(3600),
        cache_ttl: Duration::from_secs(120),
        ..StoreConfig::default()
    };
    let store: DynStore = std::sync::Arc::new(store_on(&server, config.clone()).await);
    let mut new = new_session("acme", "abc");
    new.metadata.insert("caller".into(), "bob".into());
    let CreateOutcome::Created(s) = store.create_session(new).await.unwrap() else {
        panic!()
    };
    store
        .append_segment("acme", "abc", &timed_seg("hello \"world\"", 10, 20))
        .await
        .unwrap();
    store
        .append_segment("acme", "abc", &seg("again"))
        .await
        .unwrap();
    let mut con = raw(&server);

    // Types and TTLs.
    for (key, ty) in [
        ("session:abc:metadata", "hash"),
        ("session:abc:transcript", "list"),
        ("session:abc:segments", "list"),
        ("tenant:acme:sessions", "zset"),
        ("transcription_events", "stream"),
    ] {
        let got: String = q(&mut con, &["TYPE", key]);
        assert_eq!(got, ty, "{key}");
        if key != "transcription_events" {
            assert_ttl_near(&mut con, key, config.session_ttl);
        }
    }
    let stream_ttl: i64 = q(&mut con, &["PTTL", "transcription_events"]);
    assert_eq!(stream_ttl, -1, "the event stream never expires");

    // Hash fields.
    let mut hash: Vec<(String, String)> = q(&mut con, &["HGETALL", "session:abc:metadata"]);
    hash.sort();
    let want: Vec<(String, String)> = vec![
        ("language".into(), "en-US".into()),
        ("meta.caller".into(), "bob".into()),
        ("segment_count".into(), "2".into()),
        ("started_at".into(), s.started_at.clone()),
        ("status".into(), "active".into()),
        ("tenant_id".into(), "acme".into()),
        ("text_bytes".into(), "18".into()),
    ];
    assert_eq!(hash, want);

    // Lists: plain chunks and segment JSON with seq first.
    let chunks: Vec<String> = q(&mut con, &["LRANGE", "session:abc:transcript", "0", "-1"]);
    assert_eq!(chunks, ["hello \"world\"", "again"]);
    let segs: Vec<String> = q(&mut con, &["LRANGE", "session:abc:segments", "0", "-1"]);
    assert_eq!(
        segs,
        [
            r#"{"seq":0,"text":"hello \"world\"","start_ms":10,"end_ms":20}"#,
            r#"{"seq":1,"text":"again","start_ms":null,"end_ms":null}"#,
        ]
    );
    let parsed: Segment = serde_json::from_str(&segs[0]).unwrap();
    assert_eq!(parsed.seq, 0);

    // Tenant index scored by start time in ms.
    let score: f64 = q(&mut con, &["ZSCORE", "tenant:acme:sessions", "abc"]);
    let started = chrono::DateTime::parse_from_rfc3339(&s.started_at).unwrap();
    assert_eq!(score as i64, started.timestamp_millis());

    // Completion: status, completed_at, cache entry with its own TTL.
    store.complete_session("acme", "abc").await.unwrap();
    let status: String = q(&mut con, &["HGET", "session:abc:metadata", "status"]);
    assert_eq!(status, "completed");
    let completed_at: String = q(&mut con, &["HGET", "session:abc:metadata", "completed_at"]);
    assert!(chrono::DateTime::parse_from_rfc3339(&completed_at).is_ok());
    let cached: String = q(&mut con, &["GET", "cache:session:abc:transcript"]);
    let t: Transcript = serde_json::from_str(&cached).unwrap();
    assert_eq!(t.text, "hello \"world\" again");
    assert_eq!(t.segments.len(), 2);
    assert_eq!(t.session_id, "abc");
    assert_ttl_near(&mut con, "cache:session:abc:transcript", config.cache_ttl);

    // transcript() of a completed session is served from the cache entry: tamper with
    // the cache and see the tampered text come back.
    let mut fake = t.clone();
    fake.text = "from the cache".into();
    let _: () = q(
        &mut con,
        &[
            "SET",
            "cache:session:abc:transcript",
            &serde_json::to_string(&fake).unwrap(),
        ],
    );
    let got = store.transcript("acme", "abc").await.unwrap().unwrap();
    assert_eq!(got.text, "from the cache");
    // A missing cache entry is rebuilt from the lists and stored again.
    let _: () = q(&mut con, &["DEL", "cache:session:abc:transcript"]);
    let got = store.transcript("acme", "abc").await.unwrap().unwrap();
    assert_eq!(got, t);
    let exists: i64 = q(&mut con, &["EXISTS", "cache:session:abc:transcript"]);
    assert_eq!(exists, 1);

    // Delete removes every key of the session and its index entry.
    assert!(store.delete_session("acme", "abc").await.unwrap());
    for key in [
        "session:abc:metadata",
        "session:abc:transcript",
        "session:abc:segments",
        "cache:session:abc:transcript",
    ] {
        let exists: i64 = q(&mut con, &["EXISTS", key]);
        assert_eq!(exists, 0, "{key}");
    }
    let score: Option<f64> = q(&mut con, &["ZSCORE", "tenant:acme:sessions", "abc"]);
    assert_eq!(score, None);
}

#[tokio::test]
async fn every_event_type_has_the_documented_raw_fields() {
    let server = RedisServer::start();
    let store = store_on(&server, StoreConfig::default()).await;
    store
        .create_session(new_session("acme", "e1"))
        .await
        .unwrap();
    store
        .append_segment("acme", "e1", &timed_seg("hi", 0, 500))
        .await
        .unwrap();
    store.complete_session("acme", "e1").await.unwrap();
    store.delete_session("acme", "e1").await.unwrap();
    let mut con = raw(&server);
    let entries: Vec<(String, Vec<(String, String)>)> =
        q(&mut con, &["XRANGE", "transcription_events", "-", "+"]);
    let got: Vec<Vec<(String, String)>> = entries
        .into_iter()
        .map(|(_, f)| {
            f.into_iter()
                .map(|(k, v)| {
                    if k == "timestamp" {
                        assert!(chrono::DateTime::parse_from_rfc3339(&v).is_ok(), "{v}");
                        (k, "T".into())
                    } else {
                        (k, v)
                    }
                })
                .collect()
        })
        .collect();
    let base = |t: &str| {
        vec![
            ("event_type".to_owned(), t.to_owned()),
            ("session_id".into(), "e1".into()),
            ("tenant_id".into(), "acme".into()),
            ("timestamp".into(), "T".into()),
        ]
    };
    let with = |t: &str, extra: &[(&str, &str)]| {
        let mut v = base(t);
        v.extend(
            extra
                .iter()
                .map(|(k, x)| ((*k).to_owned(), (*x).to_owned())),
        );
        v
    };
    assert_eq!(
        got,
        vec![
            with("session_started", &[("language", "en-US")]),
            with(
                "transcript_segment",
                &[
                    ("seq", "0"),
                    ("text", "hi"),
                    ("start_ms", "0"),
                    ("end_ms", "500")
                ]
            ),
            with(
                "transcript_completed",
                &[
                    ("transcript", "hi"),
                    ("segment_count", "1"),
                    ("transcript_truncated", "false")
                ]
            ),
            base("session_deleted"),
        ]
    );
}

#[tokio::test]
async fn stream_cap_is_honoured_in_redis() {
    let server = RedisServer::start();
    let config = StoreConfig {
        stream_maxlen: 100,
        ..StoreConfig::default()
    };
    let store = store_on(&server, config).await;
    for i in 0..1500 {
        store
            .add_entry(EVENT_STREAM, &fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    let mut con = raw(&server);
    let info: Vec<Value> = q(&mut con, &["XINFO", "STREAM", "transcription_events"]);
    let len = info
        .chunks(2)
        .find(|kv| matches!(&kv[0], Value::BulkString(k) if k == b"length"))
        .and_then(|kv| match kv[1] {
            Value::Int(n) => Some(n),
            _ => None,
        })
        .unwrap();
    assert!((100..=200).contains(&len), "XINFO STREAM length {len}");
    let added: i64 = info
        .chunks(2)
        .find(|kv| matches!(&kv[0], Value::BulkString(k) if k == b"entries-added"))
        .and_then(|kv| match kv[1] {
            Value::Int(n) => Some(n),
            _ => None,
        })
        .unwrap();
    assert_eq!(added, 1500);
}

#[tokio::test]
async fn locks_and_dead_letters_use_the_documented_keys() {
    let server = RedisServer::start();
    let store = store_on(&server, StoreConfig::default()).await;
    let token = store
        .try_lock("abc", "stream", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let mut con = raw(&server);
    let held: String = q(&mut con, &["GET", "lock:session:abc:stream"]);
    assert_eq!(held, token.0);
    assert_ttl_near(&mut con, "lock:session:abc:stream", Duration::from_secs(30));
    assert!(store.unlock("abc", "stream", &token).await.unwrap());
    let exists: i64 = q(&mut con, &["EXISTS", "lock:session:abc:stream"]);
    assert_eq!(exists, 0);

    store
        .create_group(EVENT_STREAM, "g", GroupStart::Beginning)
        .await
        .unwrap();
    store
        .add_entry(EVENT_STREAM, &fields(&[("x", "1")]))
        .await
        .unwrap();
    let got = store
        .read_group(EVENT_STREAM, "g", "c", 1, Duration::from_millis(10))
        .await
        .unwrap();
    store
        .dead_letter(EVENT_STREAM, "g", &got[0], "boom", 5)
        .await
        .unwrap();
    let len: i64 = q(&mut con, &["XLEN", DEAD_LETTER_STREAM]);
    assert_eq!(len, 1);
    assert_eq!(DEAD_LETTER_STREAM, "transcription_events:dead");
    let pending: Vec<Value> = q(&mut con, &["XPENDING", EVENT_STREAM, "g"]);
    assert_eq!(pending[0], Value::Int(0));
}

#[tokio::test]
async fn blocking_reads_outlast_the_client_default_response_timeout() {
    let server = RedisServer::start();
    let store = store_on(&server, StoreConfig::default()).await;
    store.create_group("s", "g", GroupStart::New).await.unwrap();
    let t0 = Instant::now();
    let got = store
        .wait_stream("s", StreamId::ZERO, 10, Duration::from_millis(1200))
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(1100));
    let t0 = Instant::now();
    let got = store
        .read_group("s", "g", "c", 10, Duration::from_millis(1200))
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(1100));
}

/// Calls until one succeeds, for at most `within`.
async fn recovers_within(store: &RedisStore, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match store.ping().await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("store did not recover within {within:?}: {e}"),
        }
    }
}

fn assert_transient<T: std::fmt::Debug>(r: StoreResult<T>, started: Instant, what: &str) {
    let took = started.elapsed();
    match r {
        Err(StoreError::Unavailable(_)) | Err(StoreError::Timeout(_)) => {}
        other => panic!("{what}: expected Unavailable/Timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(3), "{what} took {took:?}");
}

#[tokio::test]
async fn outage_fails_fast_and_recovers_without_a_new_store() {
    let mut server = RedisServer::builder().appendonly(true).start();
    let config = StoreConfig {
        command_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    let store = store_on(&server, config).await;
    store
        .create_session(new_session("acme", "live"))
        .await
        .unwrap();
    store
        .append_segment("acme", "live", &seg("before"))
        .await
        .unwrap();

    // Redis dies; its port is held by something that accepts but never answers.
    server.stop();
    let t0 = Instant::now();
    assert_transient(store.ping().await, t0, "ping");
    let t0 = Instant::now();
    assert_transient(store.get_session("acme", "live").await, t0, "get_session");
    let t0 = Instant::now();
    assert_transient(
        store.append_segment("acme", "live", &seg("lost")).await,
        t0,
        "append_segment",
    );
    let t0 = Instant::now();
    let r = store
        .wait_stream(EVENT_STREAM, StreamId::ZERO, 1, Duration::from_millis(500))
        .await;
    // A blocking read is bounded by block + timeout.
    match r {
        Err(StoreError::Unavailable(_)) | Err(StoreError::Timeout(_)) => {}
        other => panic!("wait_stream: {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(3));

    // Redis comes back on the same port with its data (AOF): the same store works.
    server.restart();
    recovers_within(&store, Duration::from_secs(10)).await;
    match store
        .append_segment("acme", "live", &seg("after"))
        .await
        .unwrap()
    {
        AppendOutcome::Appended { seq, .. } => assert_eq!(seq, 1),
        other => panic!("{other:?}"),
    }
    let t = store.transcript("acme", "live").await.unwrap().unwrap();
    assert_eq!(t.text, "before after");

    // A refused port (nothing listening) fails fast too, and recovers the same way.
    server.stop_refusing();
    let t0 = Instant::now();
    assert_transient(store.ping().await, t0, "ping (refused)");
    server.restart();
    recovers_within(&store, Duration::from_secs(10)).await;
    assert!(store.get_session("acme", "live").await.unwrap().is_some());
}

#[tokio::test]
async fn starts_while_redis_is_down_and_works_once_it_is_up() {
    let mut server = RedisServer::start();
    server.stop_refusing();
    let config = StoreConfig {
        command_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    // Connecting does not need Redis.
    let store = RedisStore::connect(&server.url(), config).await.unwrap();
    let t0 = Instant::now();
    assert_transient(store.ping().await, t0, "ping while down");
    let t0 = Instant::now();
    assert_transient(
        store.create_session(new_session("acme", "s")).await,
        t0,
        "create while down",
    );
    server.restart();
    recovers_within(&store, Duration::from_secs(10)).await;
    assert!(matches!(
        store
            .create_session(new_session("acme", "s"))
            .await
            .unwrap(),
        CreateOutcome::Created(_)
    ));
}

#[tokio::test]
async fn bad_urls_fail_clearly() {
    let err = RedisStore::connect("http://nope", StoreConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Redis URL"), "{err}");
    // A cluster URL needs a reachable cluster at start (its partition count is
    // checked then); nothing listens on a fresh port here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis+cluster://127.0.0.1:{port}");
    let err = RedisStore::connect(&url, StoreConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Redis Cluster"), "{err}");
    let err = RedisStore::connect("redis+cluster://", StoreConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no seed nodes"), "{err}");
}
