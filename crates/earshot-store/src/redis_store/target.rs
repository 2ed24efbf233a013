//! Where the store's connections go: one standalone Redis (`redis://`, `rediss://`) or a
//! Redis Cluster (`redis+cluster://h1:p1,h2:p2`, `rediss+cluster://`), and the one
//! connection type the rest of the store sees either way.
//!
//! On a cluster the `redis` crate's async cluster client does all the routing, redirects
//! (`MOVED`/`ASK`) and topology refreshes; the store only makes sure every multi-key
//! command names keys of one slot (see `earshot_core::keys`).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};

use crate::api::{StoreError, StoreResult};

/// The cluster URL schemes and the per-node scheme each maps to.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// The node URLs of a cluster URL, or `None` for a standalone URL.
/// `redis+cluster://user:pw@h1:p1,h2:p2` gives `redis://user:pw@h1:p1`, `redis://user:pw@h2:p2`.
pub(super) fn cluster_nodes(url: &str) -> Option<StoreResult<Vec<String>>> {
    let (scheme, node_scheme) = CLUSTER_SCHEMES
        .iter()
        .find(|(s, _)| url.starts_with(s))
        .copied()?;
    let rest = &url[scheme.len()..];
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('/') || hosts.contains('?') {
        return Some(Err(StoreError::Unavailable(
            "invalid Redis Cluster URL: a cluster has no database number or options; use \
             redis+cluster://host:port,host:port"
                .into(),
        )));
    }
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{node_scheme}{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        return Some(Err(StoreError::Unavailable(
            "invalid Redis Cluster URL: no seed nodes; use redis+cluster://host:port,host:port"
                .into(),
        )));
    }
    Some(Ok(nodes))
}

/// A cluster client for `nodes` (trusting `certs` over TLS); fails only on malformed
/// node URLs.
pub(super) fn cluster_client(
    nodes: &[String],
    certs: Option<TlsCertificates>,
) -> StoreResult<ClusterClient> {
    let mut builder = ClusterClient::builder(nodes.iter().map(String::as_str));
    if let Some(certs) = certs {
        builder = builder.certs(certs);
    }
    builder
        .build()
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis Cluster URL: {e}")))
}

/// A cluster connection whose every request is bounded by `response_timeout`.
pub(super) async fn cluster_connection(
    client: &ClusterClient,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> RedisResult<ClusterConnection> {
    let config = ClusterConfig::new()
        .set_connection_timeout(connect_timeout)
        .set_response_timeout(response_timeout);
    client.get_async_connection_with_config(config).await
}

/// One connection of either shape. Cheap to clone: every variant is a handle to a
/// multiplexed connection (or, on a cluster, to one per node).
#[derive(Clone)]
pub(super) enum Conn {
    /// The shared, auto-reconnecting connection to a standalone server.
    Manager(ConnectionManager),
    /// A dedicated connection to a standalone server (blocking reads).
    Single(MultiplexedConnection),
    /// A cluster connection (shared, or dedicated for blocking reads).
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT replicas timeout` on the node that holds `key`'s slot, over the connection
    /// that sent the write: how many replicas acknowledged every write sent so far.
    pub(super) async fn wait_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<Value> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            // redis-rs sends a command routed to a node it is not connected to (a primary
            // that just died) to any connected node, and another shard's primary would
            // answer WAIT with *its* replicas: a write to a primary with none would be
            // confirmed. A keyed command ahead of it on the same connection fails (MOVED)
            // anywhere but on the slot's primary, so a WAIT that runs at all runs there.
            Self::Cluster(c) => {
                let mut p = redis::pipe();
                p.cmd("EXISTS").arg(key).ignore().add_command(cmd);
                let (n,): (i64,) = p.query_async(c).await?;
                Ok(Value::Int(n))
            }
            other => cmd.query_async(other).await,
        }
    }

    /// Runs a keyless command (`SCAN`) on the primary holding `key`'s slot on a
    /// cluster; on standalone there is only the one server.
    pub(super) async fn route_by_key(&mut self, cmd: Cmd, key: &str) -> RedisResult<Value> {
        match self {
            Self::Cluster(c) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
            }
            other => cmd.query_async(other).await,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_become_node_urls() {
        assert!(cluster_nodes("redis://h:1").is_none());
        assert!(cluster_nodes("rediss://h:1").is_none());
        let nodes = cluster_nodes("redis+cluster://a:1, b:2,").unwrap().unwrap();
        assert_eq!(nodes, vec!["redis://a:1", "redis://b:2"]);
        let nodes = cluster_nodes("rediss+cluster://u:p@a:1,b:2/")
            .unwrap()
            .unwrap();
        assert_eq!(nodes, vec!["rediss://u:p@a:1", "rediss://u:p@b:2"]);
        assert!(cluster_nodes("redis+cluster://").unwrap().is_err());
        assert!(cluster_nodes("redis+cluster://a:1/3").unwrap().is_err());
    }
}
