//! Per-tenant limits and request-head limits (issue 4, item 7), from outside over real
//! sockets: 429 with `Retry-After` per tenant, recovery after the wait, unauthenticated
//! requests never spending a budget, 431/414 for oversized heads (never a 5xx, a panic
//! or a hang), and the live WebSocket stream limit with its slot released however a
//! stream ends.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{expect_error, test_server_config, TestApp, ACME, GLOBEX};
use earshot_server::limits::LimitsConfig;
use earshot_server::{ServerConfig, Speech, SpeechStatus};
use futures::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

fn config(limits: LimitsConfig) -> ServerConfig {
    ServerConfig {
        limits,
        ..test_server_config()
    }
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rate_requests_get_429_per_tenant_and_recover() {
    let burst = 3;
    let app = TestApp::start_with_config(config(LimitsConfig {
        tenant_rps: 1,
        tenant_burst: burst,
        ..LimitsConfig::default()
    }))
    .await;

    // Unauthenticated floods are 401 and spend nobody's budget.
    for _ in 0..20 {
        let r = app
            .get("not-a-configured-key", "/v1/sessions")
            .send()
            .await
            .unwrap();
        assert_eq!(expect_error(r, 401).await, "unauthorized");
    }
    let r = app
        .client
        .get(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 401).await, "unauthorized");

    // acme: the burst passes, then 429 (one cell per second refills meanwhile, so
    // count until the first refusal rather than assume exact timing).
    let mut ok = 0;
    let limited = loop {
        let r = app.get(ACME, "/v1/sessions").send().await.unwrap();
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
        ok += 1;
        assert!(ok < 50, "never rate limited");
    };
    assert!(ok >= burst, "the burst of {burst} passed (got {ok})");
    let wait = retry_after(&limited);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_eq!(expect_error(limited, 429).await, "rate_limited");

    // Every /v1 route is covered, including writes and the stream upgrade route.
    let r = app
        .post(ACME, "/v1/sessions")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 429).await, "rate_limited");
    let r = app
        .client
        .get(app.url(&format!("/v1/sessions/s1/stream?api_key={ACME}")))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 429).await, "rate_limited");

    // Another tenant is unaffected; health, readiness and metrics are never limited.
    for _ in 0..burst {
        let r = app.get(GLOBEX, "/v1/sessions").send().await.unwrap();
        assert_eq!(r.status(), 200, "globex has its own budget");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..10 {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_ne!(r.status(), 429, "{path} is not rate limited");
        }
    }

    // After the advertised wait, acme is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = app.get(ACME, "/v1/sessions").send().await.unwrap();
    assert_eq!(r.status(), 200, "served again after Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_does_not_rate_limit() {
    let app = TestApp::start_with_config(test_server_config()).await;
    assert_eq!(LimitsConfig::default().tenant_rps, 0);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url) = (app.client.clone(), app.url("/v1/sessions"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let r = client.get(&url).bearer_auth(ACME).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_or_414_in_the_json_shape() {
    let app = TestApp::start_with_config(test_server_config()).await;
    let limits = LimitsConfig::default();

    // Over the service's own limit, under hyper's: our JSON 431.
    let r = app
        .get(ACME, "/v1/sessions")
        .header("x-padding", "a".repeat(limits.max_header_bytes + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 431).await, "headers_too_large");
    // Also on unauthenticated routes, before any handler.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "a".repeat(limits.max_header_bytes + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 431).await, "headers_too_large");

    // A long query: 414.
    let q = "x".repeat(limits.max_uri_bytes);
    let r = app
        .get(ACME, &format!("/v1/sessions?cursor={q}"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 414).await, "uri_too_long");

    // Just under the limits still works.
    let r = app
        .get(ACME, "/v1/sessions")
        .header("x-padding", "a".repeat(limits.max_header_bytes / 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// What came back for a raw request: a status line, or the connection was closed.
#[derive(Debug)]
enum RawOutcome {
    Status(u16),
    Closed,
}

/// Writes `head` on a fresh connection and reads the answer; panics on a hang.
async fn raw_request(addr: &str, head: Vec<u8>) -> RawOutcome {
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before the whole head is written.
        let _ = conn.write_all(&head).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf);
        match text.strip_prefix("HTTP/1.1 ") {
            Some(rest) => RawOutcome::Status(rest[..3].parse().unwrap()),
            None => RawOutcome::Closed,
        }
    };
    tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .expect("the server answers or closes, never hangs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_over_hypers_limits_are_refused_without_5xx_or_hang() {
    let app = TestApp::start_with_config(test_server_config()).await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    // A 1 MiB header: past the connection's read buffer.
    let mut head = b"GET /v1/sessions HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1 << 20));
    head.extend_from_slice(b"\r\n\r\n");
    match raw_request(&addr, head).await {
        RawOutcome::Status(s) => assert_eq!(s, 431, "huge header"),
        RawOutcome::Closed => {}
    }

    // More headers than hyper parses (100).
    let mut head = b"GET /v1/sessions HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..150 {
        head.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    match raw_request(&addr, head).await {
        RawOutcome::Status(s) => assert_eq!(s, 431, "too many headers"),
        RawOutcome::Closed => {}
    }

    // A URI past hyper's 65 534-byte limit.
    let mut head = b"GET /v1/sessions?cursor=".to_vec();
    head.extend(std::iter::repeat_n(b'a', 70_000));
    head.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n\r\n");
    match raw_request(&addr, head).await {
        RawOutcome::Status(s) => assert_eq!(s, 414, "huge URI"),
        RawOutcome::Closed => {}
    }

    // A head that never ends must not wedge the server for others.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: b")
        .await
        .unwrap();

    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "still serving");
    drop(slow);
}

/// The speech engine for stream tests: `EARSHOT_MODEL`, else the shared tiny model.
fn speech() -> Option<SpeechStatus> {
    let path = std::env::var_os("EARSHOT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/models/ggml-tiny.en.bin")
        });
    if !path.is_file() {
        assert!(
            std::env::var("EARSHOT_REQUIRE_MODEL").as_deref() != Ok("1"),
            "EARSHOT_REQUIRE_MODEL=1 but there is no model at {}",
            path.display()
        );
        eprintln!(
            "notice: no speech model at {} (set EARSHOT_MODEL); skipping the live stream test",
            path.display()
        );
        return None;
    }
    let mut cfg = earshot_asr::EngineConfig::new(&path);
    cfg.threads = 1;
    let engine = earshot_asr::Engine::load(cfg).expect("the model loads");
    let mut sched = earshot_asr::SchedulerConfig::for_threads(1);
    sched.max_streams = 16;
    Some(SpeechStatus::Ready(Arc::new(Speech {
        scheduler: earshot_asr::Scheduler::with_config(engine, sched),
        stream: earshot_asr::StreamConfig::default(),
        idle_timeout: Duration::from_secs(60),
        model_name: "test".into(),
    })))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_stream(app: &TestApp, key: &str, id: &str) -> Result<Ws, (u16, Option<String>)> {
    let url = format!(
        "{}/v1/sessions/{id}/stream?api_key={key}",
        app.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => {
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                    .expect("error body is JSON");
            assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
            Err((resp.status().as_u16(), retry))
        }
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// Opens `id` until it is admitted, for up to 20 s (the previous stream winds down).
async fn open_when_released(app: &TestApp, key: &str, id: &str) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match open_stream(app, key, id).await {
            Ok(ws) => return ws,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the slot was never released: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_limited_per_tenant_and_released_however_they_end() {
    let Some(speech) = speech() else { return };
    let app = TestApp::start_with_speech(
        config(LimitsConfig {
            tenant_max_streams: 2,
            ..LimitsConfig::default()
        }),
        speech,
    )
    .await;

    let mut a1 = open_stream(&app, ACME, "a1").await.expect("1st");
    let a2 = open_stream(&app, ACME, "a2").await.expect("2nd");
    let (status, retry) = open_stream(&app, ACME, "a3")
        .await
        .expect_err("3rd refused before the upgrade");
    assert_eq!(status, 429);
    assert!(retry.is_some(), "429 carries Retry-After");
    let g1 = open_stream(&app, GLOBEX, "g1")
        .await
        .expect("another tenant is unaffected");

    // A clean close gives the slot back ...
    a1.close(None).await.unwrap();
    let a3 = open_when_released(&app, ACME, "a3").await;
    // ... and so does a connection that just vanishes.
    drop(a2);
    let mut a4 = open_when_released(&app, ACME, "a4").await;
    // finalize ends a stream from inside: its slot comes back too.
    a4.send(tungstenite::Message::text(r#"{"type":"finalize"}"#))
        .await
        .unwrap();
    let _a5 = open_when_released(&app, ACME, "a5").await;
    drop((a3, g1));
}
