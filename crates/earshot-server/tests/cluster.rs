//! Two earshot nodes on one real Redis Cluster: SSE on node B delivers what node A
//! wrote, from every partition, and its resume id continues exactly after an event
//! across partitions (nothing missing, nothing repeated).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::sse::SseReader;
use common::{store_config, TestApp, ACME};
use earshot_store::RedisStore;
use earshot_testsupport::RedisCluster;
use serde_json::Value;

async fn node(cluster: &RedisCluster) -> TestApp {
    let cfg = store_config();
    let store = RedisStore::connect(&cluster.url(), cfg.clone())
        .await
        .expect("connect to the cluster");
    TestApp::start_on_store(Arc::new(store), cfg).await
}

/// The session id of a `transcript_segment` event and its text.
fn segment(e: &common::sse::SseEvent) -> (String, String) {
    assert_eq!(e.event, "transcript_segment", "{}", e.data);
    let v: Value = serde_json::from_str(&e.data).unwrap();
    (
        v["session_id"].as_str().unwrap().to_owned(),
        v["text"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_on_one_node_sees_every_partition_written_on_another_and_resumes_exactly() {
    let cluster = RedisCluster::shared();
    let a = node(cluster).await;
    let b = node(cluster).await;
    let partitions = b.store.event_streams().len();
    assert_eq!(partitions, 16);
    // Sessions over many partitions, created on A.
    let ids: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let used: BTreeSet<String> = ids.iter().map(|id| a.store.event_stream_of(id)).collect();
    assert!(used.len() >= 6, "sessions span partitions: {used:?}");
    for id in &ids {
        a.create(ACME, id).await;
    }

    let resp = b.get(ACME, "/v1/events").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = SseReader::new(resp);
    for id in &ids {
        a.append(ACME, id, "one").await;
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    let mut ids_at = Vec::new();
    for _ in 0..ids.len() {
        let e = sse.next_event().await;
        assert!(seen.insert(segment(&e)), "no event twice");
        order.push(segment(&e));
        // One position per partition.
        assert_eq!(e.id.split(',').count(), partitions, "{}", e.id);
        ids_at.push(e.id);
    }
    let expected: BTreeSet<_> = ids.iter().map(|id| (id.clone(), "one".into())).collect();
    assert_eq!(seen, expected, "every partition's events reach node B");
    drop(sse);

    // Written while disconnected, on A again; B resumes after the 5th event it sent.
    for id in &ids {
        a.append(ACME, id, "two").await;
    }
    let resp = b
        .get(ACME, "/v1/events")
        .header("Last-Event-ID", ids_at[4].clone())
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(resp);
    let mut replay = BTreeSet::new();
    // The 7 "one" segments not yet sent before that id, then all 12 "two" segments.
    for _ in 0..(ids.len() - 5 + ids.len()) {
        assert!(
            replay.insert(segment(&sse.next_event().await)),
            "no event twice"
        );
    }
    let after: BTreeSet<_> = order[5..].iter().cloned().collect();
    let twos: BTreeSet<_> = ids.iter().map(|id| (id.clone(), "two".into())).collect();
    assert!(
        twos.is_subset(&replay),
        "every event written while away is replayed"
    );
    let ones: BTreeSet<_> = replay.iter().filter(|(_, t)| t == "one").cloned().collect();
    assert_eq!(
        ones, after,
        "exactly the events after the resume id, none already sent"
    );
}
