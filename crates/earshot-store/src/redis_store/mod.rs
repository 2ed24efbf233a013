//! `RedisStore`: the `Store` on standalone Redis (or TLS via `rediss://`), with exactly
//! the key names and event fields of the original service, or on Redis Cluster
//! (`redis+cluster://`), where the same scripts run on partition-tagged keys.
//!
//! Every multi-part write is one atomic server-side script (`scripts`), every call is
//! bounded in time and concurrency (`conn`), and every call is measured (`metrics`).
//! `connect` does not need Redis to be up: calls fail with `Unavailable`/`Timeout`
//! until it answers, and succeed again by themselves after an outage.

mod cluster;
mod conn;
mod groups;
mod index;
mod reply;
mod scripts;
mod sessions;
mod slots;
mod stats;
mod streams;
mod target;
mod tls;
mod transcripts;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use earshot_core::config::StoreConfig;
use earshot_core::keys::Keys;
use earshot_core::{NewSegment, NewSession, Segment, Session, StreamId, Transcript};
use redis::Value;

use crate::api::*;
use crate::common::{new_lock_token, ttl_ms};
use crate::metrics::timed;

use conn::Connections;
pub use conn::RedisLimits;

/// The Redis-backed store. One per process, shared as `DynStore`.
pub struct RedisStore {
    conns: Arc<Connections>,
    config: StoreConfig,
    keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Sets up the client for `url` with default limits. Standalone (`redis://`,
    /// `rediss://`): succeeds while Redis is down (calls then fail until it answers);
    /// fails only on a URL that cannot work. Cluster (`redis+cluster://`,
    /// `rediss+cluster://`): connects now and pins or checks the partition count
    /// (`earshot:config`), failing if the cluster does not answer or disagrees.
    pub async fn connect(url: &str, config: StoreConfig) -> StoreResult<Self> {
        Self::connect_with_limits(url, config, RedisLimits::default()).await
    }

    /// `connect` with explicit concurrency limits.
    pub async fn connect_with_limits(
        url: &str,
        config: StoreConfig,
        limits: RedisLimits,
    ) -> StoreResult<Self> {
        let certs = tls::certificates(url, &config.redis_tls)?;
        if let Some(nodes) = target::cluster_nodes(url) {
            return cluster::connect(&nodes?, certs, config, limits).await;
        }
        let conns = Connections::new(url, certs, config.command_timeout, &limits)?;
        let store = Self {
            conns,
            config,
            keys: Keys::standalone(),
        };
        // Open the shared connection now rather than on the first request, and say so
        // early if Redis is not there; the store works either way.
        let conns = store.conns.clone();
        tokio::spawn(async move {
            let r = conns.query::<Value>(&redis::cmd("PING")).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "Redis is not answering yet; store calls fail until it does");
            }
        });
        Ok(store)
    }

    fn maxlen(&self) -> u64 {
        self.config.maxlen()
    }

    /// With `EARSHOT_REDIS_WAIT=n`, waits until `n` replicas have the writes sent so
    /// far to the node holding `key` (`WAIT`), so an acknowledged write survives a
    /// failover; fewer in time is `Unavailable` (the write may or may not survive, and
    /// the client retries).
    async fn replicate(&self, key: String) -> StoreResult<()> {
        let want = self.config.redis_wait;
        if want == 0 {
            return Ok(());
        }
        let wait = self.config.command_timeout / 2;
        let got = timed("wait_replicas", async {
            let r = self
                .conns
                .run(|mut c| async move { c.wait_replicas(&key, want, wait).await })
                .await?;
            reply::int(r)
        })
        .await?;
        if got < i64::from(want) {
            return Err(StoreError::Unavailable(format!(
                "write reached {got} of {want} replicas in time"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        if self.keys.partitions().is_some() {
            "redis-cluster"
        } else {
            "redis"
        }
    }

    fn event_streams(&self) -> Vec<String> {
        self.keys.event_streams()
    }

    fn event_stream_of(&self, session_id: &str) -> String {
        self.keys.event_stream(session_id)
    }

    async fn ping(&self) -> StoreResult<()> {
        timed("ping", async {
            let pong = self.conns.query::<Value>(&redis::cmd("PING")).await?;
            match reply::string(pong)?.as_str() {
                "PONG" => Ok(()),
                other => Err(StoreError::Protocol(format!("PING answered {other:?}"))),
            }
        })
        .await
    }

    async fn create_session(&self, new: NewSession) -> StoreResult<CreateOutcome> {
        let key = self.keys.metadata(new.session_id.as_str());
        let r = timed("create_session", self.create_session_impl(new)).await?;
        if matches!(r, CreateOutcome::Created(_)) {
            self.replicate(key).await?;
        }
        Ok(r)
    }

    async fn get_session(&self, tenant: &str, id: &str) -> StoreResult<Option<Session>> {
        timed("get_session", self.get_session_impl(tenant, id)).await
    }

    async fn list_sessions(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>> {
        timed(
            "list_sessions",
            self.list_sessions_impl(tenant, limit, cursor),
        )
        .await
    }

    async fn append_segment_once(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome> {
        let r = timed(
            "append_segment",
            self.append_segment_impl(tenant, id, segment, key),
        )
        .await?;
        // A repeat is acknowledged like the first answer, so it waits for replicas too:
        // the first attempt may have failed in `WAIT`, leaving the segment on the
        // primary alone.
        if matches!(
            r,
            AppendOutcome::Appended { .. } | AppendOutcome::Repeated { .. }
        ) {
            self.replicate(self.keys.metadata(id)).await?;
        }
        Ok(r)
    }

    async fn complete_session(&self, tenant: &str, id: &str) -> StoreResult<CompleteOutcome> {
        let r = timed("complete_session", self.complete_session_impl(tenant, id)).await?;
        if matches!(r, CompleteOutcome::Completed { .. }) {
            self.replicate(self.keys.metadata(id)).await?;
        }
        Ok(r)
    }

    async fn set_language(&self, tenant: &str, id: &str, language: &str) -> StoreResult<bool> {
        timed("set_language", self.set_language_impl(tenant, id, language)).await
    }

    async fn transcript(&self, tenant: &str, id: &str) -> StoreResult<Option<Transcript>> {
        timed("transcript", self.transcript_impl(tenant, id)).await
    }

    async fn segments_from(
        &self,
        tenant: &str,
        id: &str,
        from: u64,
    ) -> StoreResult<Option<Vec<Segment>>> {
        timed("segments_from", self.segments_from_impl(tenant, id, from)).await
    }

    async fn prune_expired(&self) -> StoreResult<u64> {
        timed("prune_expired", self.prune_expired_impl()).await
    }

    async fn delete_session(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        let deleted = timed("delete_session", self.delete_session_impl(tenant, id)).await?;
        if deleted {
            self.replicate(self.keys.metadata(id)).await?;
        }
        Ok(deleted)
    }

    async fn read_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<StreamEntry>> {
        timed("read_stream", self.read_stream_impl(stream, after, count)).await
    }

    async fn wait_stream(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        timed(
            "wait_stream",
            self.wait_stream_impl(stream, after, count, block),
        )
        .await
    }

    async fn last_stream_id(&self, stream: &str) -> StoreResult<StreamId> {
        timed("last_stream_id", self.last_stream_id_impl(stream)).await
    }

    async fn add_entry(&self, stream: &str, fields: &[(String, String)]) -> StoreResult<StreamId> {
        timed("add_entry", self.add_entry_impl(stream, fields)).await
    }

    async fn trim_stream_before(&self, stream: &str, min_id: StreamId) -> StoreResult<u64> {
        timed("trim_stream_before", self.trim_impl(stream, min_id)).await
    }

    async fn stream_len(&self, stream: &str) -> StoreResult<u64> {
        timed("stream_len", self.stream_len_impl(stream)).await
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: GroupStart,
    ) -> StoreResult<bool> {
        timed("create_group", self.create_group_impl(stream, group, start)).await
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<StreamEntry>> {
        timed(
            "read_group",
            self.read_group_impl(stream, group, consumer, count, block),
        )
        .await
    }

    async fn read_own_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: usize,
    ) -> StoreResult<Vec<ClaimedEntry>> {
        timed(
            "read_own_pending",
            self.read_own_pending_impl(stream, group, consumer, after, count),
        )
        .await
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        entries: &[(StreamId, u64)],
    ) -> StoreResult<()> {
        timed(
            "release",
            self.release_impl(stream, group, consumer, entries),
        )
        .await
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> StoreResult<u64> {
        timed("ack", self.ack_impl(stream, group, ids)).await
    }

    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: StreamId,
        count: usize,
    ) -> StoreResult<AutoClaim> {
        timed(
            "autoclaim",
            self.autoclaim_impl(stream, group, consumer, min_idle, start, count),
        )
        .await
    }

    async fn dead_letter(
        &self,
        stream: &str,
        group: &str,
        entry: &StreamEntry,
        reason: &str,
        delivery_count: u64,
    ) -> StoreResult<StreamId> {
        timed(
            "dead_letter",
            self.dead_letter_impl(stream, group, entry, reason, delivery_count),
        )
        .await
    }

    async fn groups(&self, stream: &str) -> StoreResult<Vec<GroupInfo>> {
        timed("groups", self.groups_impl(stream)).await
    }

    async fn try_lock(
        &self,
        session_id: &str,
        purpose: &str,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        let key = self.keys.lock(session_id, purpose);
        let token = new_lock_token();
        let value = token.0.clone();
        timed("try_lock", async {
            let r = self
                .conns
                .query::<Value>(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms(ttl)),
                )
                .await?;
            Ok(match r {
                Value::Nil => None,
                _ => Some(token),
            })
        })
        .await
    }

    async fn extend_lock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let key = self.keys.lock(session_id, purpose);
        let token = token.0.clone();
        timed("extend_lock", async {
            let r = self
                .conns
                .run(|mut c| async move {
                    scripts::EXTEND_LOCK
                        .key(key)
                        .arg(token)
                        .arg(ttl_ms(ttl))
                        .invoke_async::<Value>(&mut c)
                        .await
                })
                .await?;
            Ok(reply::int(r)? == 1)
        })
        .await
    }

    async fn unlock(
        &self,
        session_id: &str,
        purpose: &str,
        token: &LockToken,
    ) -> StoreResult<bool> {
        let key = self.keys.lock(session_id, purpose);
        let token = token.0.clone();
        timed("unlock", async {
            let r = self
                .conns
                .run(|mut c| async move {
                    scripts::UNLOCK
                        .key(key)
                        .arg(token)
                        .invoke_async::<Value>(&mut c)
                        .await
                })
                .await?;
            Ok(reply::int(r)? == 1)
        })
        .await
    }

    async fn lock_remaining(
        &self,
        session_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<Duration>> {
        self.lock_pttl(self.keys.lock(session_id, purpose)).await
    }

    async fn acquire_stream_slot(
        &self,
        tenant: &str,
        max: u64,
        ttl: Duration,
    ) -> StoreResult<Option<LockToken>> {
        self.slot_acquire(tenant, max, ttl).await
    }

    async fn extend_stream_slot(
        &self,
        tenant: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.slot_extend(tenant, token, ttl).await
    }

    async fn release_stream_slot(&self, tenant: &str, token: &LockToken) -> StoreResult<bool> {
        self.slot_release(tenant, token).await
    }

    async fn stream_slots_held(&self, tenant: &str) -> StoreResult<u64> {
        self.slots_held(tenant).await
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        timed("stats", self.stats_impl()).await
    }

    async fn close(&self) {
        self.conns.close();
    }
}
