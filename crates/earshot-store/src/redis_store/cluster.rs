//! Connecting to a Redis Cluster: the partition count is a property of the deployment
//! (every node must map a session to the same partition), so the first node to start
//! pins it in `earshot:config` and every later one checks it.

use earshot_core::config::StoreConfig;
use earshot_core::keys::{Keys, CONFIG_KEY, PARTITIONS_FIELD};
use redis::{Script, TlsCertificates, Value};

use super::conn::{Connections, RedisLimits};
use super::{reply, RedisStore};
use crate::api::{StoreError, StoreResult};

/// Sets the partition count if unset and returns the stored one, atomically.
/// KEYS: config hash. ARGV: field, wanted count.
static PIN: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"#,
    )
});

/// Connects through the seed `nodes` and pins or checks `config.event_partitions`.
pub(super) async fn connect(
    nodes: &[String],
    certs: Option<TlsCertificates>,
    config: StoreConfig,
    limits: RedisLimits,
) -> StoreResult<RedisStore> {
    let wanted = config.event_partitions.max(1);
    let conns = Connections::new_cluster(nodes, certs, config.command_timeout, &limits).await?;
    let stored = conns
        .run(|mut c| async move {
            PIN.key(CONFIG_KEY)
                .arg(PARTITIONS_FIELD)
                .arg(wanted)
                .invoke_async::<Value>(&mut c)
                .await
        })
        .await?;
    let stored = reply::int(stored)?;
    if stored != i64::from(wanted) {
        return Err(StoreError::Config(format!(
            "EARSHOT_EVENT_PARTITIONS is {wanted} but this cluster's {CONFIG_KEY} says \
             {PARTITIONS_FIELD}={stored}; every node of a deployment must use the same \
             partition count (set EARSHOT_EVENT_PARTITIONS={stored})"
        )));
    }
    Ok(RedisStore {
        conns,
        config,
        keys: Keys::cluster(wanted),
    })
}
