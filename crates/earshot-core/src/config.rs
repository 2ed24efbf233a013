//! Configuration values shared by the binary, the server and the stores, with the
//! defaults of the service.

use std::path::PathBuf;
use std::time::Duration;

/// Parses a human duration (`5s`, `10m`, `24h`, `1500ms`) or bare seconds (`86400`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| format!("invalid duration {raw:?}: {e}"))
}

/// Store-level settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// TTL of every per-session key, refreshed on write (`EARSHOT_SESSION_TTL`).
    pub session_ttl: Duration,
    /// Approximate cap of the event stream (`EARSHOT_STREAM_MAXLEN`); 0 means no cap
    /// (age-based retention still trims). Stores read it through [`StoreConfig::maxlen`].
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
    /// Most segments one session holds (`EARSHOT_MAX_SESSION_SEGMENTS`); appends past
    /// it are refused with `session_full`.
    pub max_session_segments: u64,
    /// Most transcript text one session holds, bytes (`EARSHOT_MAX_SESSION_BYTES`);
    /// an append that would pass it is refused with `session_full`.
    pub max_session_bytes: u64,
    /// Certificates for `rediss://` and `rediss+cluster://`.
    pub redis_tls: RedisTls,
}

/// PEM files for TLS to Redis. With none set, server certificates are checked against
/// the Mozilla roots built into the binary (not the system's store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// The CA certificate(s) that sign the Redis servers' certificates, trusted instead
    /// of the built-in roots (`EARSHOT_REDIS_CA_FILE`): for a private CA.
    pub ca_file: Option<PathBuf>,
    /// A client certificate, for servers that require one (`tls-auth-clients yes`)
    /// (`EARSHOT_REDIS_CLIENT_CERT`); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (`EARSHOT_REDIS_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

/// Default of [`StoreConfig::max_session_segments`]: a day of live speech cut into
/// two-second finals.
pub const DEFAULT_MAX_SESSION_SEGMENTS: u64 = 50_000;
/// Default of [`StoreConfig::max_session_bytes`]: 8 MiB, about a hundred hours of
/// speech, small enough that assembling it never holds the store for long.
pub const DEFAULT_MAX_SESSION_BYTES: u64 = 8 << 20;

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
            max_session_segments: DEFAULT_MAX_SESSION_SEGMENTS,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            redis_tls: RedisTls::default(),
        }
    }
}

impl StoreConfig {
    /// The `MAXLEN` every store applies: `stream_maxlen`, or for 0 the largest value
    /// Redis accepts (a signed 64-bit integer), which never trims.
    pub fn maxlen(&self) -> u64 {
        if self.stream_maxlen == 0 {
            i64::MAX as u64
        } else {
            self.stream_maxlen
        }
    }

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
