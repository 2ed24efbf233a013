//! Configuration values shared by the binary, the server and the stores, with the
//! defaults of api.md §1.

use std::time::Duration;

/// Parses a human duration (`5s`, `10m`, `24h`, `1500ms`) or bare seconds (`86400`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| format!("invalid duration {raw:?}: {e}"))
}

/// Store-level settings (api.md §1 and §2).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// TTL of every per-session key, refreshed on write (`EARSHOT_SESSION_TTL`).
    pub session_ttl: Duration,
    /// Approximate cap of the event stream (`EARSHOT_STREAM_MAXLEN`).
    pub stream_maxlen: u64,
    /// Age beyond which events are trimmed with `XTRIM MINID` (`EARSHOT_EVENT_RETENTION`).
    pub event_retention: Duration,
    /// Connect and command timeout (`EARSHOT_REDIS_TIMEOUT`).
    pub command_timeout: Duration,
    /// TTL of cached completed transcripts, clamped to 1-60 min (`EARSHOT_CACHE_TTL`).
    pub cache_ttl: Duration,
    /// TTL of session locks.
    pub lock_ttl: Duration,
    /// Event partitions on Redis Cluster (`EARSHOT_EVENT_PARTITIONS`); ignored elsewhere.
    pub event_partitions: u32,
    /// Replicas each acknowledged write waits for (`EARSHOT_REDIS_WAIT`, `WAIT n`).
    pub redis_wait: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(86_400),
            stream_maxlen: 10_000,
            event_retention: Duration::from_secs(24 * 3600),
            command_timeout: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(600),
            lock_ttl: Duration::from_secs(30),
            event_partitions: crate::keys::DEFAULT_EVENT_PARTITIONS,
            redis_wait: 0,
        }
    }
}

impl StoreConfig {
    /// Clamps the cache TTL to the 1-60 minute range of the original design.
    pub fn clamp_cache_ttl(d: Duration) -> Duration {
        d.clamp(Duration::from_secs(60), Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("86400").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            StoreConfig::clamp_cache_ttl(Duration::from_secs(5)),
            Duration::from_secs(60)
        );
    }
}
