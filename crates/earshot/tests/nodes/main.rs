//! Several real `earshot serve` processes on one real Redis Cluster, driven from outside
//! as a deployment behind a load balancer would be: any node serves any session, SSE on
//! one node carries what another wrote, a live stream survives the death of its node,
//! and a tenant's live-stream limit holds across nodes.

mod moving;
mod node;
mod sse;
mod stream;
mod tenant_limit;

use std::collections::BTreeMap;

use earshot_testsupport::RedisCluster;
use node::{Node, ACME};
use reqwest::Method;
use serde_json::json;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("earshot-nodes-")
        .tempdir()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_any_session_and_sse_on_one_node_sees_the_others_writes() {
    let cluster = RedisCluster::shared();
    let dir = tempdir();
    let no_asr = [("EARSHOT_NO_ASR", "true".to_owned())];
    let a = Node::start(dir.path(), "node-a", &cluster.url(), &no_asr).await;
    let b = Node::start(dir.path(), "node-b", &cluster.url(), &no_asr).await;
    let c = Node::start(dir.path(), "node-c", &cluster.url(), &no_asr).await;

    // SSE on B, opened before anything is written.
    let mut events = sse::Sse::new(b.req(Method::GET, ACME, "/v1/events").send().await.unwrap());

    // Sessions spread over partitions (so over the three primaries): created on A,
    // appended on B and C, read on C, completed on A, read again on B.
    let ids: Vec<String> = (0..6).map(|i| format!("multi-{i}")).collect();
    for id in &ids {
        let (st, _) = a
            .json(
                Method::POST,
                ACME,
                "/v1/sessions",
                Some(json!({"session_id": id})),
            )
            .await;
        assert_eq!(st, 201, "create {id} on A");
        let path = format!("/v1/sessions/{id}/segments");
        let (st, one) = b
            .json(Method::POST, ACME, &path, Some(json!({"text": "one"})))
            .await;
        assert_eq!((st, &one["seq"]), (201, &json!(0)), "append on B");
        let (st, two) = c
            .json(Method::POST, ACME, &path, Some(json!({"text": "two"})))
            .await;
        assert_eq!((st, &two["seq"]), (201, &json!(1)), "append on C");
        let (st, t) = c
            .json(
                Method::GET,
                ACME,
                &format!("/v1/sessions/{id}/transcript"),
                None,
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(t["text"], "one two", "C reads what A and B wrote: {t}");
        let (st, _) = a
            .json(
                Method::POST,
                ACME,
                &format!("/v1/sessions/{id}/complete"),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 200, "complete {id} on A");
        let (st, s) = b
            .json(Method::GET, ACME, &format!("/v1/sessions/{id}"), None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(
            (&s["status"], &s["segment_count"]),
            (&json!("completed"), &json!(2))
        );
        // A completed session refuses appends on every node.
        let (st, e) = c
            .json(Method::POST, ACME, &path, Some(json!({"text": "late"})))
            .await;
        assert_eq!(st, 409, "{e}");
    }
    // Listing on C finds every session, whichever partition it is in.
    let (st, list) = c
        .json(Method::GET, ACME, "/v1/sessions?limit=100", None)
        .await;
    assert_eq!(st, 200);
    let listed: Vec<&str> = list["sessions"]
        .as_array()
        .expect("sessions array")
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    for id in &ids {
        assert!(
            listed.contains(&id.as_str()),
            "{id} listed on C: {listed:?}"
        );
    }

    // SSE on B got every event of every session exactly once, each session's in the
    // order it was written, whichever node wrote it.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..ids.len() * 4 {
        let e = events.next().await;
        let id = e.data["session_id"].as_str().unwrap_or_default().to_owned();
        let what = match e.event.as_str() {
            "transcript_segment" => format!("segment:{}", e.data["text"].as_str().unwrap()),
            other => other.to_owned(),
        };
        seen.entry(id).or_default().push(what);
    }
    let expected: Vec<String> = [
        "session_started",
        "segment:one",
        "segment:two",
        "transcript_completed",
    ]
    .map(String::from)
    .to_vec();
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&expected),
            "events of {id} on B: {seen:?}"
        );
    }
    assert_eq!(seen.len(), ids.len(), "no other session's events: {seen:?}");
}
