//! What only a Redis Cluster has: partition-tagged key names, sessions spread over every
//! primary, the partition count pinned in `earshot:config`, and `EARSHOT_REDIS_WAIT`.
//! (The behaviour shared with the other backends is in `conformance.rs`.)

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_core::keys::{partition_of, EVENT_STREAM};
use earshot_store::*;
use support::*;

fn cluster_config(partitions: u32) -> StoreConfig {
    StoreConfig {
        event_partitions: partitions,
        ..StoreConfig::default()
    }
}

/// Runs `args` with `redis-cli -c` (following redirects) through the first node.
fn cli(args: &[&str]) -> String {
    let cluster = RedisCluster::shared();
    let port = cluster.nodes()[0].port();
    let mut all = vec!["-c"];
    all.extend_from_slice(args);
    cluster.cli(port, &all).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_partition_tagged_and_sessions_spread_over_every_primary() {
    let h = Harness::new(Kind::Cluster).await;
    for i in 0..48 {
        let id = format!("call-{i}");
        create(&h.store, "acme", &id).await;
        h.store
            .append_segment("acme", &id, &seg("hello"))
            .await
            .unwrap();
    }
    // "abc" is partition 2 of 16 (zlib crc32 % 16), so its keys carry {p2}.
    create(&h.store, "acme", "abc").await;
    assert_eq!(partition_of("abc", 16), 2);
    assert_eq!(
        cli(&["HGET", "{p2}:session:abc:metadata", "tenant_id"]),
        "acme"
    );
    assert_eq!(cli(&["EXISTS", "session:abc:metadata"]), "0");
    assert_eq!(
        cli(&["EXISTS", EVENT_STREAM]),
        "0",
        "no unpartitioned stream"
    );
    assert!(!cli(&["ZSCORE", "{p2}:tenant:acme:sessions", "abc"]).is_empty());
    let last = cli(&[
        "XREVRANGE",
        "{p2}:transcription_events",
        "+",
        "-",
        "COUNT",
        "1",
    ]);
    assert!(
        last.contains("session_started") && last.contains("abc"),
        "{last}"
    );
    // Every primary holds some sessions' keys.
    let cluster = RedisCluster::shared();
    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3);
    for port in primaries {
        let keys: u64 = cluster
            .cli(port, &["DBSIZE"])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(keys > 0, "primary {port} holds no key");
    }
    // All 49 sessions list as one tenant, across the 16 per-partition indexes.
    let page = h
        .store
        .list_sessions("acme", 200, None)
        .await
        .unwrap()
        .unwrap();
    let ids: BTreeSet<_> = page.sessions.iter().map(|s| s.session_id.clone()).collect();
    assert_eq!(ids.len(), 49);
    // And the streams hold 97 events between them (49 started, 48 segments).
    let total: u64 = futures::future::try_join_all(h.store.event_streams().iter().map(|s| {
        let store = h.store.clone();
        let s = s.clone();
        async move { store.stream_len(&s).await }
    }))
    .await
    .unwrap()
    .into_iter()
    .sum();
    assert_eq!(total, 97);
    assert_eq!(h.store.stats().await.unwrap().stream_length, 97);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_partition_count_refuses_to_start() {
    let h = Harness::with_config(Kind::Cluster, cluster_config(16)).await;
    assert_eq!(cli(&["HGET", "earshot:config", "event_partitions"]), "16");
    let url = RedisCluster::shared().url();
    let err = RedisStore::connect(&url, cluster_config(8))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("EARSHOT_EVENT_PARTITIONS=16"),
        "{err}"
    );
    // The same count is welcome.
    RedisStore::connect(&url, cluster_config(16)).await.unwrap();
    drop(h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_wait_acknowledges_only_replicated_writes() {
    // Each primary has one replica: WAIT 1 is met, WAIT 2 cannot be.
    let one = StoreConfig {
        redis_wait: 1,
        command_timeout: Duration::from_secs(2),
        ..StoreConfig::default()
    };
    let h = Harness::with_config(Kind::Cluster, one).await;
    create(&h.store, "acme", "w").await;
    let r = h
        .store
        .append_segment("acme", "w", &seg("kept"))
        .await
        .unwrap();
    assert!(matches!(r, AppendOutcome::Appended { seq: 0, .. }), "{r:?}");
    let two = StoreConfig {
        redis_wait: 2,
        command_timeout: Duration::from_secs(2),
        ..StoreConfig::default()
    };
    let url = RedisCluster::shared().url();
    let strict = RedisStore::connect(&url, two).await.unwrap();
    let err = strict
        .append_segment("acme", "w", &seg("unconfirmed"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("1 of 2 replicas"), "{err}");
}

/// Retention's index pruning finds the per-partition tenant indexes on every primary
/// (each partition's `SCAN` goes to the node holding it) and removes only the entries
/// whose session is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_leave_every_partitions_tenant_index() {
    let h = Harness::new(Kind::Cluster).await;
    create(&h.store, "pruned", "kept").await;
    let index_of = |id: &str| format!("{{p{}}}:tenant:pruned:sessions", partition_of(id, 16));
    // Entries that started long ago: 40 whose session expired, spread over the
    // partitions, and one kept alive by writes since.
    let gone: Vec<String> = (0..40).map(|i| format!("gone-{i}")).collect();
    for id in &gone {
        cli(&["ZADD", &index_of(id), "1000", id]);
    }
    cli(&["ZADD", &index_of("kept"), "1000", "kept"]);
    let partitions: BTreeSet<u32> = gone.iter().map(|id| partition_of(id, 16)).collect();
    assert!(partitions.len() > 8, "{partitions:?}");
    assert_eq!(h.store.prune_expired().await.unwrap(), 40);
    for id in &gone {
        assert_eq!(
            cli(&["ZSCORE", &index_of(id), id]),
            "",
            "{id} left in its index"
        );
    }
    assert_eq!(cli(&["ZSCORE", &index_of("kept"), "kept"]), "1000");
    let page = h
        .store
        .list_sessions("pruned", 10, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(h.store.prune_expired().await.unwrap(), 0);
}
