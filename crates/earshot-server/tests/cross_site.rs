//! Open mode in a browser's world: a page on another site can reach a loopback server,
//! so what only such a page would send is refused (a write or a WebSocket upgrade with a
//! foreign `Origin`, a body that is not JSON, a `Host` that is not ours), while the same
//! origin and clients that send no `Origin` (curl, SDKs) keep working.

mod common;

use common::{raw_error_code, raw_exchange, raw_status, TestApp, ACME};
use earshot_server::origin::OriginConfig;
use earshot_server::ServerConfig;

fn config(origins: OriginConfig) -> ServerConfig {
    ServerConfig {
        origins,
        ..common::test_server_config()
    }
}

/// A POST as a browser would send it: `origin` is `None` for non-browser clients.
fn post(app: &TestApp, origin: Option<&str>, content_type: &str, body: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: {}\r\n{origin}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.addr,
        body.len()
    )
}

fn upgrade(host: &str, origin: &str) -> String {
    format!(
        "GET /v1/sessions/s1/stream?sample_rate=16000&encoding=pcm_s16le HTTP/1.1\r\n\
         Host: {host}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_pages_cannot_write_or_open_streams_in_open_mode() {
    let app = TestApp::start_open(common::test_server_config()).await;
    let evil = Some("https://evil.example");
    for (ct, body) in [
        ("text/plain", r#"{"session_id":"from-evil"}"#),
        ("application/x-www-form-urlencoded", "session_id=from-evil"),
        ("application/json", r#"{"session_id":"from-evil"}"#),
    ] {
        let resp = raw_exchange(app.addr, &post(&app, evil, ct, body)).await;
        assert_eq!(raw_status(&resp), 403, "{ct}: {resp}");
        assert_eq!(raw_error_code(&resp), "origin_not_allowed");
    }
    let resp = raw_exchange(app.addr, &post(&app, Some("null"), "text/plain", "{}")).await;
    assert_eq!(raw_status(&resp), 403, "a sandboxed page's null origin");
    assert_eq!(app.session_count(ACME).await, 0, "nothing was created");

    let host = app.addr.to_string();
    let resp = raw_exchange(app.addr, &upgrade(&host, "https://evil.example")).await;
    assert_eq!(raw_status(&resp), 403, "{resp}");
    assert_eq!(raw_error_code(&resp), "origin_not_allowed");
    // The same page's own origin gets past the guard (then meets the route's own
    // answer: no speech engine in this app).
    let resp = raw_exchange(app.addr, &upgrade(&host, &format!("http://{host}"))).await;
    assert_ne!(raw_status(&resp), 403, "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_pages_and_clients_without_origin_keep_working() {
    let app = TestApp::start_open(common::test_server_config()).await;
    let own = format!("http://{}", app.addr);
    let resp = raw_exchange(
        app.addr,
        &post(
            &app,
            Some(&own),
            "application/json",
            r#"{"session_id":"mine"}"#,
        ),
    )
    .await;
    assert_eq!(raw_status(&resp), 201, "{resp}");
    // curl / an SDK: no Origin, no key in open mode.
    let r = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&serde_json::json!({"session_id": "sdk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Reads from anywhere are left to the browser's CORS rules (never granted).
    let r = app
        .client
        .get(app.url("/v1/sessions"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(app.session_count(ACME).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_labelled_json_is_refused_with_415() {
    let app = TestApp::start_open(common::test_server_config()).await;
    let resp = raw_exchange(
        app.addr,
        &post(&app, None, "text/plain", r#"{"session_id":"x"}"#),
    )
    .await;
    assert_eq!(raw_status(&resp), 415, "{resp}");
    assert_eq!(raw_error_code(&resp), "unsupported_media_type");
    // An empty body needs no label (e.g. `curl -XPOST …/complete`).
    let r = app
        .client
        .post(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_ours_is_refused_against_dns_rebinding() {
    let app = TestApp::start_open(config(OriginConfig {
        allowed_hosts: vec!["captions.lan".into()],
        ..OriginConfig::default()
    }))
    .await;
    let get = |host: &str| {
        format!("GET /v1/sessions HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let port = app.addr.port();
    let resp = raw_exchange(app.addr, &get(&format!("evil.example:{port}"))).await;
    assert_eq!(raw_status(&resp), 403, "{resp}");
    assert_eq!(raw_error_code(&resp), "host_not_allowed");
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("captions.lan:{port}"),
    ] {
        let resp = raw_exchange(app.addr, &get(&ok)).await;
        assert_eq!(raw_status(&resp), 200, "{ok}: {resp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_origins_are_allowed_and_also_enforced_with_keys() {
    let open = TestApp::start_open(config(OriginConfig {
        allowed_origins: vec!["https://app.example".into()],
        ..OriginConfig::default()
    }))
    .await;
    let resp = raw_exchange(
        open.addr,
        &post(&open, Some("https://app.example"), "application/json", "{}"),
    )
    .await;
    assert_eq!(raw_status(&resp), 201, "{resp}");

    let keyed = TestApp::start_with_config(config(OriginConfig {
        allowed_origins: vec!["https://app.example".into()],
        ..OriginConfig::default()
    }))
    .await;
    let with_key = |origin: &str| {
        keyed
            .post(ACME, "/v1/sessions")
            .header("origin", origin)
            .json(&serde_json::json!({}))
            .send()
    };
    assert_eq!(with_key("https://app.example").await.unwrap().status(), 201);
    let r = with_key("https://evil.example").await.unwrap();
    assert_eq!(common::expect_error(r, 403).await, "origin_not_allowed");
}
