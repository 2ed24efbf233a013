//! A server that shuts down while a client streams must not drop audio it has already
//! received: it says `draining`, transcribes every frame the client sent before its
//! `flush`, delivers those finals, and only then closes with `shutting_down` (1012).

mod common;

use std::time::Duration;

use common::speech::{clip_i16, connect, reference, s16le, speech_app, with_silence};
use common::ACME;
use earshot_testsupport::speech::wer;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_transcribes_every_frame_the_client_sent() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let files = ["goforward.wav", "numbers.wav"];
    let audio: Vec<i16> = files
        .iter()
        .flat_map(|f| with_silence(&clip_i16(f), 700))
        .collect();
    let expected = files.map(reference).join(" ");
    let ws = connect(
        &app,
        "/v1/sessions/drain-1/stream?sample_rate=16000&encoding=pcm_s16le",
        ACME,
    )
    .await
    .expect("stream opens");
    let (mut tx, mut rx) = ws.split();
    // All of it at once (well under the 10 s a stream may have waiting): most frames are
    // still queued, unread by the decoder, when the shutdown begins.
    for chunk in s16le(&audio).chunks(3200) {
        tx.send(Message::Binary(chunk.to_vec().into()))
            .await
            .unwrap();
    }
    app.shutdown.cancel();

    let mut frames: Vec<Value> = Vec::new();
    let mut close = None;
    let collect = async {
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "draining" {
                        assert!(v["grace_ms"].as_u64().unwrap() > 0);
                        tx.send(Message::Text(r#"{"type":"flush"}"#.into()))
                            .await
                            .unwrap();
                    }
                    frames.push(v);
                }
                Ok(Message::Close(c)) => {
                    close = c.map(|c| u16::from(c.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the server closes the stream within its shutdown grace");

    let types: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    assert!(
        types.contains(&"draining"),
        "told to stop sending: {types:?}"
    );
    assert_eq!(close, Some(1012), "closed as a restart: {types:?}");
    let last_error = frames.iter().rev().find(|f| f["type"] == "error").unwrap();
    assert_eq!(last_error["code"], "shutting_down");
    let finals: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "final")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    let heard = finals.join(" ");
    let w = wer(&expected, &heard);
    assert!(
        w <= 0.25,
        "every word sent before the shutdown is final: {heard:?} vs {expected:?} (WER {w:.2})"
    );
}
