//! A server with API keys: the prompt, a wrong key refused, then upload, events, the
//! JSON download and delete with the right one.

use earshot_testsupport::speech::wer;
use serde_json::Value;

use crate::page::{downloaded, launch, prerequisites, PAGE, SERIAL, SPEECH};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prompt_wrong_key_upload_events_and_delete() {
    let Some(model) = prerequisites() else { return };
    let _serial = SERIAL.lock().await;
    const KEY: &str = "acme-key-0001";
    let setup = launch(
        &model,
        "keys",
        &[],
        &[("EARSHOT_API_KEYS", &format!("acme:{KEY}"))],
    )
    .await;
    let (b, server, downloads) = (&setup.b, &setup.server, &setup.downloads);
    b.client.goto(&format!("{}/", server.base())).await.unwrap();

    // The prompt: visible, saying what is needed; nothing works before a key.
    b.wait("the key prompt", PAGE, || async {
        b.by_id("api-key")
            .await
            .is_displayed()
            .await
            .ok()?
            .then_some(())
    })
    .await;
    let msg = b.text("key-message").await;
    assert!(msg.contains("needs an API key"), "prompt says why: {msg:?}");
    assert!(!b.by_id("start").await.is_enabled().await.unwrap());
    b.shot("prompt").await;

    let input = b.by_id("api-key").await;
    input.send_keys("not-the-key-1").await.unwrap();
    input.send_keys("\u{E007}").await.unwrap(); // Enter submits
    b.wait("the wrong-key message", PAGE, || async {
        b.text("key-message")
            .await
            .contains("Wrong API key")
            .then_some(())
    })
    .await;
    b.shot("wrong-key").await;
    assert_eq!(
        b.js("return localStorage.getItem('earshot.apiKey')").await,
        Value::Null,
        "a refused key is not kept"
    );

    input.clear().await.unwrap();
    input.send_keys(KEY).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap();
    b.wait("the key accepted", PAGE, || async {
        b.text("key-message")
            .await
            .contains("accepted")
            .then_some(())
    })
    .await;
    // Kept in the browser: a reload needs no prompt.
    b.client.refresh().await.unwrap();
    b.wait("Start enabled after a reload", PAGE, || async {
        b.by_id("start")
            .await
            .is_enabled()
            .await
            .ok()?
            .then_some(())
    })
    .await;

    // Upload, with the bearer key, and the text appears.
    // chromedriver takes only canonical paths for a file input.
    let clip = earshot_testsupport::speech::audio_dir()
        .join("goforward.wav")
        .canonicalize()
        .unwrap();
    b.by_id("upload")
        .await
        .send_keys(&clip.display().to_string())
        .await
        .unwrap();
    let text = b
        .wait("the upload's text", SPEECH, || async {
            Some(b.text("upload-result").await).filter(|t| !t.is_empty())
        })
        .await;
    let w = wer("go forward ten meters", &text);
    assert!(w <= 0.25, "upload text {text:?}: WER {w:.2}");
    assert_eq!(
        b.js(r#"return document.querySelector('[data-testid="upload-progress"]').value"#)
            .await
            .as_f64(),
        Some(1.0),
        "the progress bar is full"
    );

    // The event stream shows the upload's session as a consumer sees it.
    b.wait("a transcript_completed event", PAGE, || async {
        let n = b
            .js(r#"return document.querySelectorAll('[data-testid="event"][data-event-type="transcript_completed"]').length"#)
            .await;
        (n.as_u64()? > 0).then_some(())
    })
    .await;
    b.shot("upload-events").await;

    // History → open it → JSON download → delete.
    let link = b
        .wait("the upload in history", PAGE, || async {
            b.all("session-link").await.into_iter().next()
        })
        .await;
    let id = link.attr("data-session-id").await.unwrap().unwrap();
    link.click().await.unwrap();
    b.wait("the transcript shown", PAGE, || async {
        (b.text("detail-id").await == id && !b.text("detail-transcript").await.is_empty())
            .then_some(())
    })
    .await;
    b.by_id("download-json").await.click().await.unwrap();
    let json: Value =
        serde_json::from_str(&downloaded(b, downloads, &format!("{id}.json")).await).unwrap();
    assert_eq!(json["session_id"], id.as_str());
    assert!(wer("go forward ten meters", json["text"].as_str().unwrap()) <= 0.25);

    let delete = b.by_id("delete").await;
    delete.click().await.unwrap();
    assert!(
        delete.text().await.unwrap().contains("again"),
        "delete asks for a second press"
    );
    delete.click().await.unwrap();
    b.wait("the session gone from history", PAGE, || async {
        for l in b.all("session-link").await {
            if l.attr("data-session-id").await.ok()?.as_deref() == Some(id.as_str()) {
                return None;
            }
        }
        Some(())
    })
    .await;
    let gone = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{id}", server.base()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404, "deleted on the server");
    b.viewport(390, 844).await;
    b.shot("phone").await;

    // The wrong key's 401 is the one error the browser logs.
    let errors = b.console_errors(&["401 (Unauthorized)"]).await;
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
    setup.b.close().await;
}
