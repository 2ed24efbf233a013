//! A tenant's live-stream limit is one count for the whole deployment, kept in Redis:
//! streams on node A and node B add up, a stream ending on one node frees a place on the
//! other, and the places held by a node that was SIGKILLed come back once they expire.

use std::time::{Duration, Instant};

use earshot_testsupport::speech::model_path;
use earshot_testsupport::RedisCluster;

use crate::node::{Node, LIMA};
use crate::stream::{of_type, Heard, LiveClient};

const LOCK_TTL_SECS: u64 = 6;

fn path(session: &str) -> String {
    format!("/v1/sessions/{session}/stream?sample_rate=16000&encoding=pcm_s16le&api_key={LIMA}")
}

/// Opens a stream that must be accepted.
async fn open(node: &Node, session: &str) -> LiveClient {
    LiveClient::connect(&node.ws(&path(session)))
        .await
        .unwrap_or_else(|r| panic!("{} refused {session}: {r:?}", node.name))
}

/// Asserts a stream is refused for the tenant's limit.
async fn refused(node: &Node, session: &str) {
    let r = LiveClient::connect(&node.ws(&path(session)))
        .await
        .err()
        .unwrap_or_else(|| panic!("{} accepted {session} past the tenant's limit", node.name));
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error"]["code"], "too_many_streams", "{r:?}");
    assert!(r.retry_after.is_some(), "{r:?}");
}

/// Opens a stream, retrying while the tenant's places are all held (bounded).
async fn open_once_free(node: &Node, session: &str, deadline: Instant) -> LiveClient {
    loop {
        match LiveClient::connect(&node.ws(&path(session))).await {
            Ok(ws) => return ws,
            Err(r) => assert_eq!(r.status, 429, "{r:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the dead node's places never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A stream the server is still running: nothing but (maybe) a greeting heard yet, in
/// particular no `overloaded` refusal after the upgrade.
fn assert_live(ws: &mut LiveClient, what: &str) {
    while let Ok(h) = ws.rx.try_recv() {
        match h {
            Heard::Msg(m) => assert_ne!(m["type"], "error", "{what}: {m}"),
            Heard::Closed(code) => panic!("{what} was closed ({code:?})"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_stream_limit_holds_across_nodes() {
    let Some(model) = model_path() else {
        return;
    };
    let cluster = RedisCluster::shared();
    let dir = crate::tempdir();
    let envs = [
        ("EARSHOT_MODEL", model.display().to_string()),
        ("EARSHOT_TENANT_MAX_STREAMS", "2".to_owned()),
        ("EARSHOT_STREAM_LOCK_TTL", format!("{LOCK_TTL_SECS}s")),
        // Streams here send no audio: room for all of them whatever this machine's speed.
        ("EARSHOT_DECODE_SLOTS", "4".to_owned()),
        ("EARSHOT_ADMISSION_TARGET", "1.0".to_owned()),
    ];
    let a = Node::start(dir.path(), "node-a", &cluster.url(), &envs).await;
    let mut b = Node::start(dir.path(), "node-b", &cluster.url(), &envs).await;

    // One stream on each node: the tenant's two places, counted together.
    let mut s1 = open(&a, "lim-1").await;
    let mut s2 = open(&b, "lim-2").await;
    refused(&a, "lim-3").await;
    refused(&b, "lim-3").await;

    // A stream ending on A frees a place on B.
    assert!(s1.send_text(r#"{"type":"finalize"}"#).await);
    let (msgs, code) = s1.until_closed().await;
    assert_eq!(code, Some(1000), "{msgs:?}");
    assert_eq!(of_type(&msgs, "completed").len(), 1, "{msgs:?}");
    let mut s3 = open(&b, "lim-3").await;
    refused(&a, "lim-4").await;
    assert_live(&mut s2, "lim-2 on B");
    assert_live(&mut s3, "lim-3 on B");

    // B dies holding both places: they keep counting until they expire...
    b.kill9();
    refused(&a, "lim-4").await;
    // ...then A lets the tenant stream again, without anybody cleaning up (each of B's
    // places expires on its own, renewed at its own times).
    let deadline = Instant::now() + Duration::from_secs(LOCK_TTL_SECS + 60);
    let mut s4 = open_once_free(&a, "lim-4", deadline).await;
    let mut s5 = open_once_free(&a, "lim-5", deadline).await;
    refused(&a, "lim-6").await;
    assert_live(&mut s4, "lim-4 on A");
    assert_live(&mut s5, "lim-5 on A");
}
