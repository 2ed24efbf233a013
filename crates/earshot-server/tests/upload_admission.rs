//! Uploads share the decode slots with live streams. Past two uploads in flight per slot
//! a new one is refused at once with 503 `overloaded` and `Retry-After`, instead of
//! waiting in memory behind the others; once a place frees, uploads are taken again.
//! (Its own test binary: it reads a process-wide gauge from `/metrics`.)

mod common;

use std::time::{Duration, Instant};

use common::speech::{clip_i16, speech_app, with_silence};
use common::upload::{form, TRANSCRIPTIONS};
use common::{expect_error, TestApp, ACME};
use earshot_testsupport::metric;
use earshot_testsupport::speech::wer;
use earshot_testsupport::tts::wav;

async fn upload(app: &TestApp, bytes: Vec<u8>) -> reqwest::Response {
    common::upload::upload(app, TRANSCRIPTIONS, bytes, "speech.wav", &[]).await
}

async fn uploads_in_flight(app: &TestApp) -> u64 {
    metric(&app.metrics().await, "earshot_asr_uploads_in_flight").map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_decode_budget_are_refused_with_retry_after() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    // The shared clips one after another (about 25 s of varied speech): enough to keep the
    // one slot busy for a few seconds.
    let clip = with_silence(&clip_i16("goforward.wav"), 500);
    let long: Vec<i16> = earshot_testsupport::speech::references()
        .iter()
        .flat_map(|(file, _)| with_silence(&clip_i16(file), 500))
        .collect();
    let long = wav(&long);
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (app_url, body) = (app.url(""), long.clone());
            // No request timeout: on a busy machine these take as long as they take.
            let client = reqwest::Client::new();
            tokio::spawn(async move {
                client
                    .post(format!("{app_url}{TRANSCRIPTIONS}"))
                    .bearer_auth(ACME)
                    .multipart(form(&[], Some((body, "long.wav"))))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let t0 = Instant::now();
    while uploads_in_flight(&app).await < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the two uploads never got in"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = upload(&app, wav(&clip)).await;
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(expect_error(refused, 503).await, "overloaded");
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "the refusal says when to retry"
    );

    for task in busy {
        let resp = task.await.unwrap();
        assert_eq!(resp.status(), 200, "admitted uploads complete");
        let text = resp.json::<serde_json::Value>().await.unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.to_lowercase().contains("forward"),
            "the clips' words: {text:?}"
        );
    }
    let again = upload(&app, wav(&clip)).await;
    assert_eq!(again.status(), 200, "a freed place takes the next upload");
    let text = again.json::<serde_json::Value>().await.unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(wer("go forward ten meters", &text) <= 0.25, "{text:?}");
}
