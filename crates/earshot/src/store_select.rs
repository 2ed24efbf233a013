//! Chooses the store from the environment: no `REDIS_URL` (or `ENVIRONMENT=test`) means
//! the embedded in-memory store, with a warning; `redis://`/`rediss://` means Redis;
//! `redis+cluster://`/`rediss+cluster://` means Redis Cluster.

use std::sync::Arc;

use anyhow::{bail, Context};
use earshot_core::config::StoreConfig;
use earshot_store::{DynStore, MemoryStore, RedisStore};

/// Which store the flags and environment ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Memory { reason: &'static str },
    Redis(String),
}

/// The URL schemes the Redis store accepts (standalone, then cluster).
const SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis+cluster://",
    "rediss+cluster://",
];

/// Decides the store: `ENVIRONMENT=test` wins, then `REDIS_URL`.
pub fn choose(redis_url: Option<&str>, environment: Option<&str>) -> anyhow::Result<StoreChoice> {
    if environment == Some("test") {
        return Ok(StoreChoice::Memory {
            reason: "ENVIRONMENT=test",
        });
    }
    match redis_url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(StoreChoice::Memory {
            reason: "REDIS_URL is not set",
        }),
        Some(u) if SCHEMES.iter().any(|s| u.starts_with(s)) => Ok(StoreChoice::Redis(u.to_owned())),
        Some(_) => bail!(
            "REDIS_URL must start with redis://, rediss://, redis+cluster:// or rediss+cluster://"
        ),
    }
}

/// Opens the chosen store (one client for the whole process).
pub async fn open(choice: &StoreChoice, cfg: StoreConfig) -> anyhow::Result<DynStore> {
    Ok(match choice {
        StoreChoice::Memory { reason } => {
            tracing::warn!(
                "{reason}: using the embedded in-memory store. Data is process-local and \
                 lost on exit; set REDIS_URL=redis://host:6379 for a durable, shared store"
            );
            Arc::new(MemoryStore::new(cfg))
        }
        StoreChoice::Redis(url) => {
            tracing::info!(url = %redact(url), partitions = cfg.event_partitions, "using Redis");
            Arc::new(
                RedisStore::connect(url, cfg)
                    .await
                    .with_context(|| format!("connecting to {}", redact(url)))?,
            )
        }
    })
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_store() {
        assert!(matches!(choose(None, None), Ok(StoreChoice::Memory { .. })));
        assert!(matches!(
            choose(Some(""), None),
            Ok(StoreChoice::Memory { .. })
        ));
        assert!(matches!(
            choose(Some("redis://x:6379"), Some("test")),
            Ok(StoreChoice::Memory { .. })
        ));
        assert_eq!(
            choose(Some("rediss://x:6380/0"), None).unwrap(),
            StoreChoice::Redis("rediss://x:6380/0".into())
        );
        assert!(choose(Some("http://x"), None).is_err());
        assert_eq!(
            choose(Some("redis+cluster://a:1,b:2"), None).unwrap(),
            StoreChoice::Redis("redis+cluster://a:1,b:2".into())
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:s3cret@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }
}
