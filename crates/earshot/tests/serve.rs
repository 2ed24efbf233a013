//! `earshot serve` as a user runs it: the real binary, real signals, a real Redis.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use earshot_testsupport::{free_port, RedisServer};
use serde_json::{json, Value};

struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(envs: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EARSHOT_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn earshot serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "earshot serve did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, base }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    fn stderr_lines(&mut self) -> Vec<String> {
        let err = self.child.stderr.take().unwrap();
        BufReader::new(err).lines().map_while(Result::ok).collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn refuses_open_access_on_a_public_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("EARSHOT_API_KEYS")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EARSHOT_API_KEYS"), "clear message: {err}");
}

#[test]
fn refuses_malformed_keys_and_urls() {
    for (k, v) in [
        ("EARSHOT_API_KEYS", "no-colon"),
        ("REDIS_URL", "http://localhost"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_earshot"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env(k, v)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{k}={v} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(k),
            "message names {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_warns_serves_and_stops_on_sigterm() {
    let mut serve = Serve::start(&[]);
    let c = reqwest::Client::new();
    // Open tenant `default` on loopback: no key needed.
    let r = c
        .post(format!("{}/v1/sessions", serve.base))
        .json(&json!({"session_id": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["tenant_id"], "default");
    let r = c
        .post(format!("{}/v1/sessions/demo/segments", serve.base))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let t0 = Instant::now();
    serve.signal(libc::SIGTERM);
    let status = loop {
        if let Some(st) = serve.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "did not stop within the grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let log = serve.stderr_lines().join("\n");
    assert!(
        log.contains("in-memory store"),
        "start-up warning about the embedded store: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_ttls_and_events_are_exactly_the_contract() {
    let redis = RedisServer::start();
    let serve = Serve::start(&[
        ("REDIS_URL", redis.url()),
        ("EARSHOT_API_KEYS", "acme:acme-key-0001".into()),
    ]);
    let c = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        c.post(format!("{}{path}", serve.base))
            .bearer_auth("acme-key-0001")
            .json(&body)
            .send()
    };
    assert_eq!(
        post(
            "/v1/sessions",
            json!({"session_id": "k1", "metadata": {"team": "red"}})
        )
        .await
        .unwrap()
        .status(),
        201
    );
    assert_eq!(
        post(
            "/v1/sessions/k1/segments",
            json!({"text": "hello", "start_ms": 0, "end_ms": 900})
        )
        .await
        .unwrap()
        .status(),
        201
    );
    assert_eq!(
        post("/v1/sessions/k1/segments", json!({"text": "world"}))
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        post("/v1/sessions/k1/complete", json!({}))
            .await
            .unwrap()
            .status(),
        200
    );

    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let chunks: Vec<String> = redis::cmd("LRANGE")
        .arg("session:k1:transcript")
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(chunks, ["hello", "world"]);
    let segs: Vec<String> = redis::cmd("LRANGE")
        .arg("session:k1:segments")
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    let s0: Value = serde_json::from_str(&segs[0]).unwrap();
    assert_eq!(
        s0,
        json!({"seq": 0, "text": "hello", "start_ms": 0, "end_ms": 900})
    );
    let meta: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("session:k1:metadata")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(meta["tenant_id"], "acme");
    assert_eq!(meta["language"], "en-US");
    assert_eq!(meta["status"], "completed");
    assert_eq!(meta["segment_count"], "2");
    assert_eq!(meta["meta.team"], "red");
    assert!(meta.contains_key("started_at") && meta.contains_key("completed_at"));
    for key in [
        "session:k1:transcript",
        "session:k1:segments",
        "session:k1:metadata",
    ] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!((86_000..=86_400).contains(&ttl), "{key} ttl {ttl}");
    }
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("tenant:acme:sessions")
        .arg("k1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(score.is_some(), "indexed under its tenant");
    let cache_ttl: i64 = redis::cmd("TTL")
        .arg("cache:session:k1:transcript")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        (60..=600).contains(&cache_ttl),
        "completed transcript cached for 10 min: {cache_ttl}"
    );

    let entries: redis::Value = redis::cmd("XRANGE")
        .arg("transcription_events")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    let text = format!("{entries:?}");
    for field in [
        "session_started",
        "transcript_segment",
        "transcript_completed",
        "event_type",
        "tenant_id",
        "timestamp",
        "hello world",
    ] {
        assert!(text.contains(field), "stream lacks {field}: {text}");
    }
    let len: u64 = redis::cmd("XLEN")
        .arg("transcription_events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 4);
}

/// One raw HTTP/1.1 exchange on a fresh connection; returns the response head.
async fn raw_head(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_and_browser_settings_are_read_from_the_environment() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let serve = Serve::start(&[
        ("EARSHOT_NO_ASR", "true".into()),
        ("EARSHOT_HEADER_TIMEOUT", "1s".into()),
        ("EARSHOT_ALLOWED_HOSTS", "captions.lan".into()),
        ("EARSHOT_MAX_UPLOAD_SECONDS", "600".into()),
    ]);
    let port: u16 = serve.base.rsplit(':').next().unwrap().parse().unwrap();
    // A half-sent request head is closed after the configured second.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => {}
            Err(_) => break false,
        }
    };
    assert!(
        closed && t.elapsed() < Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );

    let get = |host: &str| format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let head = raw_head(port, &get(&format!("captions.lan:{port}"))).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = raw_head(port, &get("rebound.example")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let post = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://evil.example\r\n\
         Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let head = raw_head(port, &post).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}
