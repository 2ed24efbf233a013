//! `GET /v1/events` at its edges: a subscriber whose resume point was trimmed away gets
//! an explicit `gap` event instead of a silent skip, and open subscriptions do not hold
//! up server shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{test_server_config, Backend, TestApp, ACME};
use earshot_core::config::StoreConfig;
use earshot_core::keys::EVENT_STREAM;
use earshot_core::{NewSegment, StreamId};
use earshot_server::{Server, SpeechStatus, Tenants};
use earshot_store::MemoryStore;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One SSE event block.
#[derive(Debug, Default)]
struct Sse {
    id: String,
    event: String,
    data: String,
}

/// The first event of an SSE response.
async fn first_event(resp: reqwest::Response) -> Sse {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    loop {
        if let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            let mut e = Sse::default();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    e.id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    e.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data.push_str(v.trim_start());
                }
            }
            if !e.event.is_empty() {
                return e;
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an SSE event within 10 s")
            .expect("stream open")
            .expect("body chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn resuming_after_trimmed_events_gets_a_gap_event(b: Backend) {
    let app = TestApp::start_with(
        b,
        StoreConfig {
            stream_maxlen: 5,
            ..common::store_config()
        },
    )
    .await;
    app.create(ACME, "s").await;
    let started = app
        .store
        .read_stream(EVENT_STREAM, StreamId::ZERO, 1)
        .await
        .unwrap()[0]
        .id;
    // Enough that Redis' approximate trim (whole nodes of 100) drops the first ones too.
    for i in 0..250 {
        let seg = NewSegment {
            text: format!("line {i}"),
            start_ms: None,
            end_ms: None,
            words: Vec::new(),
        };
        app.store.append_segment("acme", "s", &seg).await.unwrap();
    }
    let oldest = app
        .store
        .read_stream(EVENT_STREAM, StreamId::ZERO, 1)
        .await
        .unwrap()[0]
        .id;
    assert!(
        oldest > started,
        "the stream was trimmed past session_started"
    );
    let resp = app
        .get(ACME, "/v1/events")
        .header("Last-Event-ID", started.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let e = first_event(resp).await;
    assert_eq!(e.event, "gap", "{e:?}");
    assert_eq!(
        e.id,
        started.to_string(),
        "a reconnect resumes from the same point"
    );
    let data: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(data["after"], started.to_string());
    assert_eq!(data["resumes_at"], oldest.to_string());

    // Resuming from an event that is still kept: no gap, the next event comes.
    let kept = app
        .store
        .read_stream(EVENT_STREAM, oldest, 1)
        .await
        .unwrap()[0]
        .id;
    let resp = app
        .get(ACME, &format!("/v1/events?since={oldest}"))
        .send()
        .await
        .unwrap();
    let e = first_event(resp).await;
    assert_eq!(e.event, "transcript_segment");
    assert_eq!(e.id, kept.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_memory() {
    resuming_after_trimmed_events_gets_a_gap_event(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_redis() {
    resuming_after_trimmed_events_gets_a_gap_event(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sse_connections_do_not_hold_shutdown() {
    let mut config = test_server_config();
    // Long enough that "waited for the grace period" cannot pass for "finished".
    config.grace_period = Duration::from_secs(30);
    let store = Arc::new(MemoryStore::new(config.store.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let server = Server::start(
        listener,
        store,
        Tenants::parse(&format!("acme:{ACME}")).unwrap(),
        config,
        SpeechStatus::Disabled,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let url = format!("http://{}/v1/events", server.addr());
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(ACME)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let waiting = tokio::spawn(server.wait());
    shutdown.cancel();
    // The subscription ends (the client would reconnect elsewhere with Last-Event-ID)…
    while let Some(chunk) = body.next().await {
        if chunk.is_err() {
            break;
        }
    }
    // …and the server finished within its grace period instead of running it out.
    assert!(
        waiting.await.unwrap(),
        "shutdown waited out the grace period"
    );
}
