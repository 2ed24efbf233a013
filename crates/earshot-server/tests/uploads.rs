//! `POST /v1/audio/transcriptions` is bounded by the audio an upload really holds: a
//! small file that decodes to hours is refused early with 413 in the error shape, and
//! the server carries on serving.

mod common;

use std::time::{Duration, Instant};

use common::speech::speech_ready;
use common::upload::{upload, TRANSCRIPTIONS};
use common::{expect_error, TestApp, ACME};
use earshot_server::ServerConfig;
use earshot_testsupport::audio::constant_flac;

/// An app with the real model and the given upload cap, or `None` without a model.
async fn app(max_upload_seconds: u64) -> Option<TestApp> {
    let config = ServerConfig {
        max_upload_seconds,
        ..common::test_server_config()
    };
    Some(TestApp::start_with_speech(config, speech_ready()?).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_of_hours_of_audio_is_refused_with_413_and_the_server_lives_on() {
    let Some(app) = app(60).await else {
        return;
    };
    // ~100 KB of FLAC holding three hours at 48 kHz (2 GB as 16 kHz floats).
    let flac = constant_flac(48_000, 3 * 3600);
    let t = Instant::now();
    let r = upload(&app, TRANSCRIPTIONS, flac, "long.flac", &[]).await;
    let took = t.elapsed();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "audio_too_long");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("60 s"), "the limit is named: {message}");
    assert!(
        took < Duration::from_secs(30),
        "refused early, took {took:?}"
    );

    // Still alive and serving; nothing was recorded for the refused upload.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.session_count(ACME).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_empty_uploads_get_4xx_in_the_error_shape() {
    let Some(app) = app(60).await else {
        return;
    };
    let send = |bytes: Vec<u8>, name: &'static str| upload(&app, TRANSCRIPTIONS, bytes, name, &[]);
    let r = send(b"this is not audio at all, just text".repeat(50), "a.bin").await;
    assert_eq!(expect_error(r, 415).await, "unsupported_audio_format");
    let r = send(Vec::new(), "empty.wav").await;
    assert_eq!(expect_error(r, 422).await, "empty_audio");
}
