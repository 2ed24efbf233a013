//! API keys never reach a log: every event the server emits while serving good keys,
//! bad keys, keys in the query string and refused requests is captured at TRACE level
//! (in its own test binary, as the subscriber is process-wide) and searched for them.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{test_server_config, TestApp, ACME, GLOBEX};
use earshot_server::limits::LimitsConfig;
use earshot_server::ServerConfig;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_log() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::start_with_config(ServerConfig {
        limits: LimitsConfig {
            tenant_rps: 1,
            tenant_burst: 1,
            ..LimitsConfig::default()
        },
        ..test_server_config()
    })
    .await;
    let wrong = "wrong-key-0123456789";
    for key in [ACME, ACME, GLOBEX, wrong] {
        let _ = app.get(key, "/v1/sessions").send().await.unwrap();
        let _ = app
            .get(key, "/v1/sessions?limit=oops")
            .send()
            .await
            .unwrap();
        let _ = app
            .post(key, "/v1/sessions")
            .body("{not json")
            .send()
            .await
            .unwrap();
        for path in [
            format!("/v1/sessions/x/stream?api_key={key}"),
            format!("/v1/sessions/x/stream?api_key={key}&sample_rate=1"),
            format!("/v1/sessions?api_key={key}"),
        ] {
            let _ = app.client.get(app.url(&path)).send().await.unwrap();
        }
        let _ = app
            .get(key, "/v1/sessions")
            .header("x-pad", "a".repeat(40_000))
            .send()
            .await
            .unwrap();
    }
    tracing::info!("capture works");
    drop(app);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let log = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        log.contains("capture works"),
        "the subscriber captured: {log}"
    );
    for key in [ACME, GLOBEX, wrong] {
        assert!(!log.contains(key), "{key} appears in the log:\n{log}");
    }
}
