//! Authentication happens once per request, in one middleware, and the tenant it finds is
//! the one every later layer and handler acts for.

mod common;

use common::{expect_error, test_server_config, TestApp, ACME, GLOBEX};
use earshot_server::limits::LimitsConfig;
use earshot_server::ServerConfig;

/// With rate limiting on, the limiter and the handlers read the tenant the middleware
/// found: each request must still act as its own tenant, never another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rate_limits_on_tenants_stay_isolated() {
    let app = TestApp::start_with_config(ServerConfig {
        limits: LimitsConfig {
            tenant_rps: 100,
            tenant_burst: 100,
            ..LimitsConfig::default()
        },
        ..test_server_config()
    })
    .await;
    let r = app
        .post(ACME, "/v1/sessions")
        .json(&serde_json::json!({"session_id": "acme-call"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .get(GLOBEX, "/v1/sessions/acme-call")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 404).await, "session_not_found");
    let r = app
        .get(ACME, "/v1/sessions/acme-call")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: serde_json::Value = app
        .get(GLOBEX, "/v1/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains("acme-call"),
        "globex lists only its own sessions: {listed}"
    );
}

/// `?api_key=` exists for browsers opening the WebSocket; any other route, even one whose
/// path also ends in `/stream` (a session named `stream`), refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_key_is_accepted_only_on_the_stream_route() {
    let app = TestApp::start(common::Backend::Memory).await;
    let r = app
        .post(ACME, "/v1/sessions")
        .json(&serde_json::json!({"session_id": "stream"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .client
        .get(app.url(&format!("/v1/sessions/stream?api_key={ACME}")))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 401).await, "unauthorized");
    let r = app
        .client
        .get(app.url(&format!("/v1/sessions?api_key={ACME}")))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(r, 401).await, "unauthorized");
    // On the stream route itself the key is taken (the request then fails for lack of
    // a WebSocket upgrade, not for lack of a key).
    let r = app
        .client
        .get(app.url(&format!("/v1/sessions/stream/stream?api_key={ACME}")))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 401);
}
