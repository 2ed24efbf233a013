//! A graceful restart of `earshot serve --sink` on Redis: the in-process sink worker
//! finishes the delivery in flight and acknowledges it before the store closes, so the
//! next process does not deliver it again.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use earshot_testsupport::{free_port, RedisServer};
use redis::AsyncCommands;
use serde_json::json;

/// Generous bound for "it happened eventually"; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);
const KEY: &str = "shutdown-key-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_sink_acknowledges_its_last_delivery_before_the_store_closes() {
    let redis = RedisServer::start();
    // A webhook that takes a while to answer: SIGTERM arrives mid-delivery.
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let hook = axum::Router::new().route(
        "/hook",
        post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("EARSHOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", redis.url())
        .env("EARSHOT_API_KEYS", format!("acme:{KEY}"))
        .env("EARSHOT_NO_ASR", "true")
        .env(
            "EARSHOT_SINK",
            format!("webhook:http://127.0.0.1:{hook_port}/hook"),
        )
        .env("EARSHOT_WEBHOOK_SECRET", "a-secret")
        .env("EARSHOT_SHUTDOWN_GRACE", "20s")
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("spawn earshot serve");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "earshot serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(KEY)
        .json(&json!({"session_id": "s1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the sink never delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = tokio::task::block_in_place(|| serve.wait()).unwrap();
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(status.success(), "clean exit: {status:?}\n{output}");

    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pending: redis::Value = con
        .xpending("transcription_events", "earshot-sink-0")
        .await
        .unwrap();
    let redis::Value::Array(parts) = pending else {
        panic!("XPENDING reply: {pending:?}");
    };
    assert_eq!(
        parts.first(),
        Some(&redis::Value::Int(0)),
        "the delivered event stays pending and would be delivered again:\n{output}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
