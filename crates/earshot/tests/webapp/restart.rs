//! A live stream on Redis whose server is restarted mid-speech (SIGTERM, `draining`):
//! every word is captioned once.

use earshot_testsupport::speech::{normalize, wer};
use earshot_testsupport::RedisServer;

use crate::browser::{Browser, Options};
use crate::clip;
use crate::page::{
    assert_gap_free, finals, joined, observe, open, prerequisites, stored, strings, NETWORK_NOISE,
    PAGE, SERIAL, SPEECH,
};
use crate::serve::Serve;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_captions_survive_a_server_restart_on_redis() {
    let Some(model) = prerequisites() else { return };
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("speech.wav");
    let reference = clip::speech_wav(
        &[
            "goforward.wav",
            "something.wav",
            "cards-005.wav",
            "goforward.wav",
            "something.wav",
        ],
        &wav,
    );
    let mut server = Serve::start(&model, &[("REDIS_URL", &redis.url())]).await;
    let b = Browser::launch(
        "restart",
        Options {
            mic_wav: Some(&wav),
            downloads: tmp.path(),
        },
    )
    .await;
    open(&b, &server).await;
    observe(&b).await;
    b.by_id("start").await.click().await.unwrap();
    b.wait_state("live", PAGE).await;
    let id = b.text("session-id").await;
    b.wait("the first final", SPEECH, || async {
        (!finals(&b).await.is_empty()).then_some(())
    })
    .await;

    // Mid-speech, the server is restarted; the page reconnects and carries on.
    server.restart().await;
    b.wait("live again after the restart", SPEECH, || async {
        let states = strings(&b, "window.__states").await;
        let n = states.len();
        (n >= 2 && states[n - 1] == "live" && states.contains(&"reconnecting".to_owned()))
            .then_some(())
    })
    .await;
    b.shot("reconnected").await;
    // Speech after the restart is captioned: wait for the last sentence. It is said twice
    // in the clip, so the captions must also be about as long as the whole reference.
    let want = normalize(&reference).len();
    b.wait("captions of the last sentence", SPEECH, || async {
        let words = normalize(&joined(&finals(&b).await));
        (words.len() + 4 >= want
            && words.ends_with(&["go", "somewhere", "and", "do", "something"].map(String::from)))
        .then_some(())
    })
    .await;
    b.by_id("stop").await.click().await.unwrap();
    b.wait_state("completed", SPEECH).await;
    b.shot("completed").await;

    let shown = finals(&b).await;
    assert_gap_free(&shown);
    let stored = stored(&server, &id).await;
    assert_eq!(
        stored["text"].as_str().unwrap(),
        joined(&shown),
        "the page shows exactly what the server stored, nothing twice or missing"
    );
    // The old server reads the page's audio until the page has stopped sending
    // (`draining`), and the page sends the rest to the new one: nothing is lost, so the
    // bound is the one of an uninterrupted stream.
    let w = wer(&reference, &joined(&shown));
    assert!(
        w <= 0.25,
        "captions across the restart {:?} vs {reference:?}: WER {w:.2}",
        joined(&shown)
    );
    let errors = b.console_errors(NETWORK_NOISE).await;
    assert!(
        errors.is_empty(),
        "browser console errors: {errors:#?}\nserver log:\n{}",
        server.log()
    );
    b.close().await;
}
