//! The one place that names Redis keys. Exactly the original service's names
//! on standalone Redis and the embedded store. On Redis Cluster a session belongs to one
//! of N event partitions (`crc32(session_id) mod N`), and every key of the session and
//! its partition's event stream start with the hash tag `{p<n>}:`, so they share one
//! slot and a write and its event stay one atomic script.

/// The event stream every event is published on (standalone and embedded).
pub const EVENT_STREAM: &str = "transcription_events";
/// Where workers move entries delivered too often, with the reason.
pub const DEAD_LETTER_STREAM: &str = "transcription_events:dead";
/// The cluster's deployment-wide settings hash (holds `event_partitions`).
pub const CONFIG_KEY: &str = "earshot:config";
/// The `CONFIG_KEY` field that pins the partition count.
pub const PARTITIONS_FIELD: &str = "event_partitions";
/// `EARSHOT_EVENT_PARTITIONS` when unset.
pub const DEFAULT_EVENT_PARTITIONS: u32 = 16;

/// Lock purpose of a session's one live WebSocket stream (`lock:session:<id>:stream`);
/// deleting the session deletes this lock with its other keys.
pub const STREAM_LOCK: &str = "stream";

/// Key naming for one deployment shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keys {
    /// `None`: standalone names. `Some(n)`: n partitions, hash-tagged.
    partitions: Option<u32>,
}

/// The partition of a session id: CRC-32/IEEE of its UTF-8 bytes (zlib's `crc32`)
/// modulo the partition count.
pub fn partition_of(session_id: &str, partitions: u32) -> u32 {
    crc32fast::hash(session_id.as_bytes()) % partitions.max(1)
}

impl Keys {
    /// Standalone Redis or the embedded store: the original names, untagged.
    pub const fn standalone() -> Self {
        Self { partitions: None }
    }

    /// Redis Cluster with `partitions` event partitions (at least 1).
    pub const fn cluster(partitions: u32) -> Self {
        Self {
            partitions: Some(if partitions == 0 { 1 } else { partitions }),
        }
    }

    /// The partition count on a cluster, `None` on standalone.
    pub fn partitions(&self) -> Option<u32> {
        self.partitions
    }

    /// The session's partition (0 on standalone, which has one unnamed partition).
    pub fn partition(&self, session_id: &str) -> u32 {
        self.partitions
            .map(|n| partition_of(session_id, n))
            .unwrap_or(0)
    }

    /// `{p<n>}:` for the session's partition on a cluster, empty on standalone.
    fn prefix(&self, session_id: &str) -> String {
        match self.partitions {
            Some(n) => partition_prefix(partition_of(session_id, n)),
            None => String::new(),
        }
    }

    /// `session:<id>:transcript`: list of plain-text chunks.
    pub fn transcript(&self, id: &str) -> String {
        format!("{}session:{id}:transcript", self.prefix(id))
    }

    /// `session:<id>:metadata`: hash of session fields.
    pub fn metadata(&self, id: &str) -> String {
        format!("{}session:{id}:metadata", self.prefix(id))
    }

    /// `session:<id>:segments`: list of segment JSON objects.
    pub fn segments(&self, id: &str) -> String {
        format!("{}session:{id}:segments", self.prefix(id))
    }

    /// `tenant:<tenant>:sessions` that indexes session `id`: sorted set of session ids
    /// by start time (ms). On a cluster there is one per partition, in the session's slot.
    pub fn tenant_sessions(&self, tenant: &str, id: &str) -> String {
        format!("{}tenant:{tenant}:sessions", self.prefix(id))
    }

    /// Every tenant index of `tenant`, with its partition (one on standalone); a
    /// listing merges them.
    pub fn tenant_indexes(&self, tenant: &str) -> Vec<(u32, String)> {
        match self.partitions {
            None => vec![(0, format!("tenant:{tenant}:sessions"))],
            Some(n) => (0..n)
                .map(|p| {
                    (
                        p,
                        format!("{}tenant:{tenant}:sessions", partition_prefix(p)),
                    )
                })
                .collect(),
        }
    }

    /// `session:<id>:idempotency`: hash of `Idempotency-Key` → `<seq>:<body fingerprint>`
    /// for the session's appends, so a retried append answers the first `seq`.
    pub fn idempotency(&self, id: &str) -> String {
        format!("{}session:{id}:idempotency", self.prefix(id))
    }

    /// The `SCAN` patterns that find every tenant index: one on standalone, one per
    /// partition on a cluster (each carries its partition's hash tag, so it can be
    /// routed to the node holding that partition).
    pub fn tenant_sessions_patterns(&self) -> Vec<String> {
        match self.partitions {
            None => vec!["tenant:*:sessions".to_owned()],
            Some(n) => (0..n)
                .map(|p| format!("{}tenant:*:sessions", partition_prefix(p)))
                .collect(),
        }
    }

    /// The tenant a tenant-index key belongs to; `None` for a key that is not a tenant
    /// index of this deployment shape.
    pub fn tenant_of_index(&self, index: &str) -> Option<String> {
        let rest = match self.partitions {
            None => index,
            Some(n) => {
                let (p, rest) = index.strip_prefix("{p")?.split_once("}:")?;
                if p.parse::<u32>().ok()? >= n {
                    return None;
                }
                rest
            }
        };
        let tenant = rest.strip_prefix("tenant:")?.strip_suffix(":sessions")?;
        Some(tenant.to_owned())
    }

    /// `lock:session:<id>:<purpose>`: an NX lock holding an owner token.
    pub fn lock(&self, id: &str, purpose: &str) -> String {
        format!("{}lock:session:{id}:{purpose}", self.prefix(id))
    }

    /// `tenant:<t>:streams`: the tenant's live streams across every node, a sorted set of
    /// slot tokens scored by when each expires (ms). One key per tenant, untagged even on
    /// a cluster: a tenant's count must be one atomic place, whatever its sessions'
    /// partitions.
    pub fn tenant_streams(&self, tenant: &str) -> String {
        format!("tenant:{tenant}:streams")
    }

    /// `cache:session:<id>:transcript`: the assembled transcript JSON of a completed session.
    pub fn cached_transcript(&self, id: &str) -> String {
        format!("{}cache:session:{id}:transcript", self.prefix(id))
    }

    /// The event stream that session `id`'s events go to.
    pub fn event_stream(&self, id: &str) -> String {
        format!("{}{EVENT_STREAM}", self.prefix(id))
    }

    /// Every event stream, in partition order (one on standalone).
    pub fn event_streams(&self) -> Vec<String> {
        match self.partitions {
            None => vec![EVENT_STREAM.to_owned()],
            Some(n) => (0..n)
                .map(|p| format!("{}{EVENT_STREAM}", partition_prefix(p)))
                .collect(),
        }
    }
}

/// `{p<n>}:`, the hash tag that puts a partition's keys in one slot.
fn partition_prefix(p: u32) -> String {
    format!("{{p{p}}}:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_original_service() {
        let k = Keys::standalone();
        assert_eq!(k.transcript("abc"), "session:abc:transcript");
        assert_eq!(k.metadata("abc"), "session:abc:metadata");
        assert_eq!(k.segments("abc"), "session:abc:segments");
        assert_eq!(k.tenant_sessions("acme", "abc"), "tenant:acme:sessions");
        assert_eq!(k.idempotency("abc"), "session:abc:idempotency");
        assert_eq!(
            k.tenant_of_index("tenant:acme:sessions"),
            Some("acme".to_owned())
        );
        assert_eq!(k.lock("abc", "stream"), "lock:session:abc:stream");
        assert_eq!(k.cached_transcript("abc"), "cache:session:abc:transcript");
        assert_eq!(k.event_stream("abc"), "transcription_events");
        assert_eq!(k.event_streams(), vec!["transcription_events"]);
        assert_eq!(
            k.tenant_indexes("acme"),
            vec![(0, "tenant:acme:sessions".to_owned())]
        );
    }

    #[test]
    fn partition_is_zlib_crc32_mod_n() {
        // zlib.crc32(b"abc") == 0x352441C2 == 891568578; 891568578 % 16 == 2.
        assert_eq!(partition_of("abc", 16), 2);
        assert_eq!(partition_of("abc", 1), 0);
    }

    #[test]
    fn cluster_keys_of_a_session_share_its_partition_tag() {
        let k = Keys::cluster(16);
        assert_eq!(k.transcript("abc"), "{p2}:session:abc:transcript");
        assert_eq!(k.metadata("abc"), "{p2}:session:abc:metadata");
        assert_eq!(k.segments("abc"), "{p2}:session:abc:segments");
        assert_eq!(
            k.tenant_sessions("acme", "abc"),
            "{p2}:tenant:acme:sessions"
        );
        assert_eq!(k.idempotency("abc"), "{p2}:session:abc:idempotency");
        assert_eq!(k.lock("abc", "stream"), "{p2}:lock:session:abc:stream");
        assert_eq!(
            k.tenant_of_index("{p2}:tenant:acme:sessions"),
            Some("acme".to_owned())
        );
        assert_eq!(k.tenant_of_index("tenant:acme:sessions"), None);
        assert_eq!(k.tenant_sessions_patterns()[3], "{p3}:tenant:*:sessions");
        assert_eq!(
            k.cached_transcript("abc"),
            "{p2}:cache:session:abc:transcript"
        );
        assert_eq!(k.event_stream("abc"), "{p2}:transcription_events");
        let streams = k.event_streams();
        assert_eq!(streams.len(), 16);
        assert_eq!(streams[7], "{p7}:transcription_events");
        assert_eq!(k.tenant_indexes("t")[15].1, "{p15}:tenant:t:sessions");
    }
}
