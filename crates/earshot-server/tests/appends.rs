//! Appends that are safe to retry and sessions that cannot grow without end, from
//! outside: `Idempotency-Key` on `POST /v1/sessions/{id}/segments` and the per-session
//! limits, against the embedded store and a real redis-server alike.

mod common;

use std::time::Duration;

use common::{expect_error, Backend, TestApp, ACME, GLOBEX};
use earshot_core::config::StoreConfig;
use serde_json::{json, Value};

async fn post_keyed(app: &TestApp, key: &str, id: &str, body: Value) -> reqwest::Response {
    app.post(ACME, &format!("/v1/sessions/{id}/segments"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn transcript(app: &TestApp, id: &str) -> Value {
    app.get_json(ACME, &format!("/v1/sessions/{id}/transcript"))
        .await
}

fn segment_events(events: &[Value], id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == "transcript_segment" && e["session_id"] == id)
        .count()
}

async fn a_repeated_append_with_its_key_answers_the_first_seq(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "s").await;
    let body = json!({"text": "hello", "start_ms": 0, "end_ms": 800});
    for _ in 0..3 {
        let r = post_keyed(&app, "req-1", "s", body.clone()).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.json::<Value>().await.unwrap()["seq"], 0);
    }
    assert_eq!(app.append(ACME, "s", "next").await, 1);
    let t = transcript(&app, "s").await;
    assert_eq!(t["text"], "hello next");
    assert_eq!(t["segments"].as_array().unwrap().len(), 2);
    assert_eq!(segment_events(&app.events().await, "s"), 2);

    // The same key with another body: refused, nothing stored.
    let other = post_keyed(&app, "req-1", "s", json!({"text": "bye"})).await;
    assert_eq!(expect_error(other, 422).await, "idempotency_key_reused");
    // Keys that are not keys: refused before anything is stored.
    for bad in ["has space", &"k".repeat(256)] {
        let r = post_keyed(&app, bad, "s", json!({"text": "x"})).await;
        assert_eq!(expect_error(r, 400).await, "invalid_idempotency_key");
    }
    let t = transcript(&app, "s").await;
    assert_eq!(t["segments"].as_array().unwrap().len(), 2);

    // Another tenant's key space is its own and its sessions stay invisible.
    let r = app
        .post(GLOBEX, "/v1/sessions/s/segments")
        .header("Idempotency-Key", "req-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 404).await, "session_not_found");
}

async fn a_full_session_is_refused_with_409(b: Backend) {
    let cfg = StoreConfig {
        max_session_segments: 2,
        ..common::store_config()
    };
    let app = TestApp::start_with(b, cfg).await;
    app.create(ACME, "s").await;
    app.append(ACME, "s", "one").await;
    app.append(ACME, "s", "two").await;
    let r = app
        .post(ACME, "/v1/sessions/s/segments")
        .json(&json!({"text": "three"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 409).await, "session_full");
    let done: Value = app
        .post(ACME, "/v1/sessions/s/complete")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["transcript"], "one two");
}

both_backends!(
    a_repeated_append_with_its_key_answers_the_first_seq,
    a_full_session_is_refused_with_409,
);

/// The failure the key exists for: Redis holds writes back (`CLIENT PAUSE WRITE`)
/// longer than the store's command timeout, so the server's first attempt times out
/// although Redis applies it afterwards. Whatever each request answers (201, or 503
/// while the pause lasts), every 201 carries seq 0 and one segment is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_timed_out_but_applied_is_stored_once() {
    let cfg_timeout = Duration::from_millis(500);
    let cfg = StoreConfig {
        command_timeout: cfg_timeout,
        ..common::store_config()
    };
    let app = TestApp::start_with(Backend::Redis, cfg).await;
    app.create(ACME, "s").await;
    // An earlier append loads the script, as on any running server.
    app.create(ACME, "warm-up").await;
    app.append(ACME, "warm-up", "x").await;
    let url = app.redis.as_ref().unwrap().url();
    let mut raw = ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = ::redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600)
        .arg("WRITE")
        .query_async(&mut raw)
        .await
        .unwrap();
    let body = json!({"text": "exactly once", "start_ms": 0, "end_ms": 500});
    let mut answers = Vec::new();
    // The client's own retries, as a client would make them after a 503.
    loop {
        let r = post_keyed(&app, "final-7", "s", body.clone()).await;
        let status = r.status().as_u16();
        answers.push(status);
        match status {
            201 => {
                assert_eq!(r.json::<Value>().await.unwrap()["seq"], 0);
                break;
            }
            503 => assert!(answers.len() < 50, "never answered 201: {answers:?}"),
            other => panic!("unexpected {other}"),
        }
    }
    let again = post_keyed(&app, "final-7", "s", body.clone()).await;
    assert_eq!(again.json::<Value>().await.unwrap()["seq"], 0);
    let t = transcript(&app, "s").await;
    assert_eq!(t["segments"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(segment_events(&app.events().await, "s"), 1);
}

/// The session service's own retries, which every live final goes through: a final
/// whose first write timed out but was applied is retried under the same key and
/// stored once. Without a key the service does not retry at all (it could double).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_retries_of_a_keyed_final_store_it_once() {
    use earshot_server::service::{IdempotencyKey, SessionService};
    let server = earshot_testsupport::RedisServer::start();
    let cfg_timeout = Duration::from_millis(500);
    let cfg = StoreConfig {
        command_timeout: cfg_timeout,
        ..common::store_config()
    };
    let store: earshot_store::DynStore = std::sync::Arc::new(
        earshot_store::RedisStore::connect(&server.url(), cfg)
            .await
            .unwrap(),
    );
    let sessions = SessionService::new(store.clone(), cfg_timeout);
    for id in ["s", "warm-up"] {
        store
            .create_session(earshot_core::NewSession {
                session_id: earshot_core::SessionId::parse(id).unwrap(),
                tenant_id: earshot_core::TenantId::parse("acme").unwrap(),
                language: "en".into(),
                metadata: Default::default(),
            })
            .await
            .unwrap();
    }
    let segment = earshot_server::service::segment_from_asr(" a final ", 0, 700, &[]).unwrap();
    sessions
        .append("acme", "warm-up", &segment, None)
        .await
        .unwrap();
    let mut raw = ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pause = |ms: u64| {
        ::redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .arg("WRITE")
            .clone()
    };
    let _: () = pause(700).query_async(&mut raw).await.unwrap();
    let key = IdempotencyKey::ordinal("live:conn-1", 0);
    let seq = sessions
        .append("acme", "s", &segment, Some(&key))
        .await
        .expect("retried until the store answered");
    assert_eq!(seq, 0);
    let t = store.transcript("acme", "s").await.unwrap().unwrap();
    assert_eq!(t.segments.len(), 1, "{t:?}");
    assert_eq!(t.text, "a final");

    // Unkeyed: one attempt, the timeout is reported, and nothing is retried (a pause
    // four times the command timeout, so the one attempt surely meets it).
    let _: () = pause(2000).query_async(&mut raw).await.unwrap();
    let unkeyed = sessions.append("acme", "s", &segment, None).await;
    assert!(
        matches!(
            unkeyed,
            Err(earshot_server::service::AppendError::Store(
                earshot_store::StoreError::Timeout(_)
            ))
        ),
        "{unkeyed:?}"
    );
}
