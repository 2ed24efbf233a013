//! A server with room for one live stream, taken by another client: Start says the
//! server is busy and offers Retry; once the other stream has ended, Retry goes live.

use std::time::Duration;

use earshot_testsupport::metric;
use earshot_testsupport::speech::wer;
use futures::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::page::{
    assert_gap_free, finals, get_text, joined, launch_with_mic, prerequisites, speak, strings,
    NETWORK_NOISE, PAGE, SERIAL,
};
use crate::serve::Serve;

/// Another client's live stream, kept open with keepalives until [`Occupier::end`].
struct Occupier {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<u16>>,
}

impl Occupier {
    /// Opens a stream and waits until the server counts it as running.
    async fn open(server: &Serve) -> Self {
        let url = format!(
            "{}/v1/sessions/other-client/stream?sample_rate=16000&encoding=pcm_s16le",
            server.base().replace("http://", "ws://")
        );
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("the other client's stream opens");
        let (mut tx, mut rx) = ws.split();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        tx.send(Message::text(r#"{"type":"keepalive"}"#)).await.ok()?;
                    }
                    m = rx.next() => match m? {
                        Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                        Ok(_) => {}
                        Err(_) => return None,
                    },
                }
            }
            tx.send(Message::text(r#"{"type":"finalize"}"#))
                .await
                .ok()?;
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Close(f) = m {
                    return f.map(|f| u16::from(f.code));
                }
            }
            None
        });
        let metrics = format!("{}/metrics", server.base());
        let deadline = tokio::time::Instant::now() + PAGE;
        loop {
            let text = get_text(&metrics).await;
            let running = metric(&text, "earshot_active_streams").unwrap_or(0.0);
            if running >= 1.0 {
                break;
            }
            assert!(!task.is_finished(), "the other client's stream was refused");
            assert!(
                tokio::time::Instant::now() < deadline,
                "the other client's stream never ran"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { stop, task }
    }

    /// Finalizes the stream; returns its close code.
    async fn end(self) -> Option<u16> {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_start_says_so_and_retry_goes_live() {
    let Some(model) = prerequisites() else { return };
    let _serial = SERIAL.lock().await;
    let setup = launch_with_mic(
        &model,
        "overload",
        &["goforward.wav", "something.wav"],
        &[("EARSHOT_MAX_STREAMS", "1")],
    )
    .await;
    let (b, reference) = (&setup.b, setup.reference.as_str());
    // Another client takes the one place before the page's Start.
    let other = Occupier::open(&setup.server).await;

    // Start: refused, and the page says why and what to do.
    b.by_id("start").await.click().await.unwrap();
    b.wait_state("error", PAGE).await;
    let status = b.text("status").await;
    assert!(
        status.contains("busy") && status.contains("overloaded") && status.contains("Retry"),
        "the status says the server is busy and to retry: {status:?}"
    );
    // Offered once the server has closed the refused stream.
    let retry = b.by_id("retry").await;
    b.wait("Retry offered", PAGE, || async {
        retry.is_displayed().await.ok()?.then_some(())
    })
    .await;
    assert!(
        !b.by_id("stop").await.is_enabled().await.unwrap(),
        "nothing is running to stop"
    );
    assert!(
        finals(b).await.is_empty(),
        "no captions from a refused stream"
    );
    let id = b.text("session-id").await;
    // Nothing ran, so the session the page had created for it is gone, not left in history
    // as a live session with no segments.
    let status = reqwest::get(format!("{}/v1/sessions/{id}", setup.server.base()))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "the refused stream's empty session is deleted");
    b.wait("the refused session gone from history", PAGE, || async {
        for l in b.all("session-link").await {
            if l.attr("data-session-id").await.ok()?.as_deref() == Some(id.as_str()) {
                return None;
            }
        }
        Some(())
    })
    .await;
    b.shot("overloaded").await;

    // The other stream ends; Retry goes live on the same session id this time.
    assert_eq!(other.end().await, Some(1000), "the other stream completed");
    let refused_states = strings(b, "window.__states").await.len();
    let (retried, shown) = speak(b, "retry", reference, "retried").await;
    assert_eq!(
        retried, id,
        "Retry goes live on the session id the page had shown"
    );
    assert!(
        !retry.is_displayed().await.unwrap(),
        "Retry is gone once live"
    );
    let after: Vec<String> = strings(b, "window.__states").await[refused_states..].to_vec();
    assert!(
        !after.contains(&"error".to_owned()),
        "no error after Retry: {after:?}"
    );
    assert_gap_free(&shown);
    let text = joined(&shown);
    let w = wer(reference, &text);
    assert!(
        w <= 0.25,
        "captions after Retry {text:?} vs {reference:?}: WER {w:.2}"
    );
    let errors = b.console_errors(NETWORK_NOISE).await;
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
    setup.b.close().await;
}
