//! The cluster harness: six real nodes form one cluster with 3 primaries, each with a
//! replica, on ports whose bus ports are free too, and the processes die with it.

use earshot_testsupport::RedisCluster;

#[test]
fn a_cluster_forms_with_three_primaries_and_is_torn_down_on_drop() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://127.0.0.1:"), "{url}");
    assert_eq!(url.matches(',').count(), 5, "{url}");
    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    let info = cluster.cli(primaries[0], &["CLUSTER", "INFO"]).unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    // A key lands on the primary that owns its slot: writing through every primary
    // with -c (follow redirects) works, and exactly one primary holds the key.
    cluster
        .cli(primaries[0], &["-c", "SET", "{p3}:k", "v"])
        .unwrap();
    let holders = primaries
        .iter()
        .filter(|&&p| cluster.cli(p, &["EXISTS", "{p3}:k"]).unwrap().trim() == "1")
        .count();
    assert_eq!(holders, 1);
    let pids: Vec<u32> = cluster.nodes().iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 6);
    drop(cluster);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node {pid} still runs after drop"
        );
    }
}
