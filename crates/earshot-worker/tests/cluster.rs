//! `earshot worker` on a real Redis Cluster: one group consumes every partition's stream,
//! each event reaches the webhook sink exactly once, and a poison event ends in the
//! dead-letter stream of its own partition.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::webhook::{receiver, webhook_opts};
use common::{cfg, PATIENCE};
use earshot_core::config::StoreConfig;
use earshot_core::keys::partition_of;
use earshot_core::{NewSegment, NewSession, SessionId, StreamId, TenantId};
use earshot_store::{AppendOutcome, CreateOutcome, DynStore, RedisStore};
use earshot_testsupport::RedisCluster;
use earshot_worker::SinkSpec;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const PARTITIONS: u32 = 16;
const POISON: &str = "this segment poisons every webhook";

/// Identifies an event by what it says, independent of stream ids.
type What = (String, String, Option<u64>);

fn what(v: &Value) -> What {
    (
        v["session_id"].as_str().unwrap().to_owned(),
        v["event_type"].as_str().unwrap().to_owned(),
        v["seq"].as_u64(),
    )
}

async fn create(store: &DynStore, id: &str) {
    let new = NewSession {
        session_id: SessionId::parse(id).unwrap(),
        tenant_id: TenantId::parse("acme").unwrap(),
        language: "en-US".into(),
        metadata: BTreeMap::new(),
    };
    let r = store.create_session(new).await.unwrap();
    assert!(matches!(r, CreateOutcome::Created(_)), "{id}: {r:?}");
}

async fn append(store: &DynStore, id: &str, text: &str) -> StreamId {
    let seg = NewSegment {
        text: text.into(),
        start_ms: None,
        end_ms: None,
        words: Vec::new(),
    };
    match store.append_segment("acme", id, &seg).await.unwrap() {
        AppendOutcome::Appended { event_id, .. } => event_id,
        other => panic!("{id}: {other:?}"),
    }
}

/// Two session ids per partition, so every partition stream carries events.
fn ids_over_every_partition() -> Vec<String> {
    let mut per: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for i in 0.. {
        let id = format!("wk{i}");
        let p = per.entry(partition_of(&id, PARTITIONS)).or_default();
        if p.len() < 2 {
            p.push(id);
        }
        if per.len() == PARTITIONS as usize && per.values().all(|v| v.len() == 2) {
            break;
        }
    }
    per.into_values().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_delivers_every_partition_exactly_once_and_dead_letters_per_partition() {
    let cluster = RedisCluster::shared();
    cluster.flush_all();
    let config = StoreConfig {
        event_partitions: PARTITIONS,
        command_timeout: Duration::from_secs(2),
        ..StoreConfig::default()
    };
    let store: DynStore = Arc::new(
        RedisStore::connect(&cluster.url(), config)
            .await
            .expect("connect to the cluster"),
    );
    let streams = store.event_streams();
    assert_eq!(streams.len(), PARTITIONS as usize);

    // Half the events exist before the worker starts, half arrive while it runs.
    let ids = ids_over_every_partition();
    let (early, late) = ids.split_at(ids.len() / 2);
    let mut expected: BTreeSet<What> = BTreeSet::new();
    for id in early {
        create(&store, id).await;
        expected.insert((id.clone(), "session_started".into(), None));
        for n in 0..3 {
            append(&store, id, &format!("{id} says {n}")).await;
            expected.insert((id.clone(), "transcript_segment".into(), Some(n)));
        }
    }
    let poison_session = early[3].clone();
    let poison_id = append(&store, &poison_session, POISON).await;
    let poison_partition = partition_of(&poison_session, PARTITIONS);

    // The sink refuses the poison outright (a 400), and accepts everything else.
    let (url, rx) = receiver(Arc::new(|_, _, body: &[u8]| {
        if String::from_utf8_lossy(body).contains(POISON) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }))
    .await;
    let mut c = cfg("billing", "w1");
    c.sink = SinkSpec::Webhook(url);
    c.webhook = webhook_opts();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(earshot_worker::run(c, store.clone(), shutdown.clone()));

    for id in late {
        create(&store, id).await;
        expected.insert((id.clone(), "session_started".into(), None));
        for n in 0..3 {
            append(&store, id, &format!("{id} says {n}")).await;
            expected.insert((id.clone(), "transcript_segment".into(), Some(n)));
        }
    }

    // Wait for every event to be accepted and the poison to be refused.
    let accepted = || -> Vec<Value> {
        rx.requests()
            .into_iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|v| v["text"].as_str() != Some(POISON))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while accepted().len() < expected.len() || rx.requests().len() <= expected.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} events delivered",
            accepted().len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a duplicate the chance to show before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    let stats = tokio::time::timeout(PATIENCE, worker)
        .await
        .expect("worker stops")
        .unwrap()
        .expect("worker ran");
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");

    // Exactly once each, from every partition.
    let delivered = accepted();
    let mut seen: BTreeMap<What, usize> = BTreeMap::new();
    for v in &delivered {
        *seen.entry(what(v)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let got: BTreeSet<What> = seen.into_keys().collect();
    assert_eq!(got, expected, "every event of every partition delivered");
    // A stream id can repeat across partitions; session_id + id cannot.
    let keys: BTreeSet<(String, String)> = delivered
        .iter()
        .map(|v| {
            (
                v["session_id"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(keys.len(), delivered.len(), "session_id + id is unique");

    // The poison is in its own partition's dead-letter stream and nowhere else, and
    // every partition's group is drained.
    for (p, stream) in streams.iter().enumerate() {
        let dead = store
            .read_stream(&format!("{stream}:dead"), StreamId::ZERO, 100)
            .await
            .unwrap();
        if p as u32 == poison_partition {
            assert_eq!(dead.len(), 1, "{stream}: {dead:?}");
            assert_eq!(dead[0].field("original_id"), Some(&*poison_id.to_string()));
            assert_eq!(dead[0].field("group"), Some("billing"));
            assert_eq!(dead[0].field("session_id"), Some(&*poison_session));
            assert!(dead[0].field("reason").unwrap().contains("400"), "{dead:?}");
        } else {
            assert!(dead.is_empty(), "{stream}: {dead:?}");
        }
        let groups = store.groups(stream).await.unwrap();
        let g = groups.iter().find(|g| g.name == "billing").expect("group");
        assert_eq!(g.pending, 0, "{stream}: {g:?}");
        assert_eq!(g.lag, Some(0), "{stream}: {g:?}");
    }
}
