//! The tenant indexes (`tenant:<t>:sessions`): listing a tenant's sessions page by
//! page, and pruning the entries of sessions that expired. On a cluster a tenant has
//! one index per partition (in the slot of its sessions), so a listing merges them and
//! every multi-key call stays within one partition.

use std::collections::BTreeMap;

use earshot_core::Session;
use redis::Value;

use super::sessions::session_from;
use super::{reply, RedisStore};
use crate::api::*;
use crate::common::{clamp_limit, session_ttl_ms};
use crate::cursor::Position;

/// Deletes tenant-index entries whose session is gone (or now another tenant's),
/// checking each again inside the script so a session re-created meanwhile stays.
/// KEYS: tenant index, metadata keys. ARGV: tenant, session ids (same order).
static PRUNE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local removed = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'tenant_id') ~= ARGV[1] then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
"#,
    )
});

/// Index keys per `SCAN` step and index entries per check when pruning.
const PRUNE_BATCH: usize = 200;

impl RedisStore {
    /// Up to `n` entries strictly after `pos` (newest first, ties by id descending) of
    /// all the tenant's indexes merged: one on standalone, one per partition on a
    /// cluster (read concurrently).
    async fn indexes_after(
        &self,
        tenant: &str,
        pos: Option<&Position>,
        n: usize,
    ) -> StoreResult<Vec<(u64, String)>> {
        let indexes = self.keys.tenant_indexes(tenant);
        let parts = futures::future::try_join_all(
            indexes
                .iter()
                .map(|(_, index)| self.index_after(index, pos, n)),
        )
        .await?;
        let mut all: Vec<(u64, String)> = parts.into_iter().flatten().collect();
        if indexes.len() > 1 {
            all.sort_unstable_by(|a, b| b.cmp(a));
            all.truncate(n);
        }
        Ok(all)
    }

    /// `HGETALL` of every session's metadata (in order), one pipeline per partition so
    /// that no pipeline spans slots on a cluster (one pipeline in all on standalone).
    async fn hashes(&self, batch: &[(u64, String)]) -> StoreResult<Vec<Value>> {
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, (_, id)) in batch.iter().enumerate() {
            groups.entry(self.keys.partition(id)).or_default().push(i);
        }
        let replies = futures::future::try_join_all(groups.values().map(|idx| {
            let keys: Vec<String> = idx
                .iter()
                .map(|&i| self.keys.metadata(&batch[i].1))
                .collect();
            self.conns.run(|mut c| async move {
                let mut p = redis::pipe();
                for key in &keys {
                    p.cmd("HGETALL").arg(key);
                }
                p.query_async::<Vec<Value>>(&mut c).await
            })
        }))
        .await?;
        let mut out = vec![Value::Nil; batch.len()];
        for (idx, values) in groups.values().zip(replies) {
            for (&i, v) in idx.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Up to `n` index entries strictly after `pos` (newest first): the ones tied on
    /// `pos.score` with a smaller id, then lower scores.
    async fn index_after(
        &self,
        index: &str,
        pos: Option<&Position>,
        n: usize,
    ) -> StoreResult<Vec<(u64, String)>> {
        let mut p = redis::pipe();
        match pos {
            None => {
                p.cmd("ZRANGE").arg(index).arg("+inf").arg("-inf");
            }
            Some(pos) => {
                p.cmd("ZRANGE")
                    .arg(index)
                    .arg(pos.score)
                    .arg(pos.score)
                    .arg("BYSCORE")
                    .arg("REV");
                p.cmd("ZRANGE")
                    .arg(index)
                    .arg(format!("({}", pos.score))
                    .arg("-inf");
            }
        }
        p.arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(n)
            .arg("WITHSCORES");
        let replies = self
            .conns
            .run(|mut c| async move { p.query_async::<Vec<Value>>(&mut c).await })
            .await?;
        let mut out = Vec::with_capacity(n);
        let mut replies = replies.into_iter();
        if let Some(pos) = pos {
            let ties = replies.next().map(reply::strings).transpose()?;
            for id in ties.unwrap_or_default() {
                if id.as_str() < pos.id.as_str() && out.len() < n {
                    out.push((pos.score, id));
                }
            }
        }
        if let Some(scored) = replies.next() {
            for (id, score) in reply::pairs(scored)? {
                if out.len() >= n {
                    break;
                }
                let score = score
                    .parse::<f64>()
                    .map_err(|_| StoreError::Protocol(format!("bad index score {score:?}")))?;
                out.push((score.max(0.0) as u64, id));
            }
        }
        Ok(out)
    }

    pub(super) async fn list_sessions_impl(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>> {
        let mut from = match cursor.map(Position::decode).transpose() {
            Ok(p) => p,
            Err(bad) => return Ok(Err(bad)),
        };
        let limit = clamp_limit(limit);
        let mut live: Vec<(u64, Session)> = Vec::new();
        loop {
            let want = limit + 1 - live.len();
            let batch = self.indexes_after(tenant, from.as_ref(), want).await?;
            let exhausted = batch.len() < want;
            if batch.is_empty() {
                break;
            }
            let hashes = self.hashes(&batch).await?;
            // Stale entries by index: one prune per index (a partition's index and its
            // sessions share a slot).
            let mut stale: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for ((score, id), hash) in batch.iter().zip(hashes) {
                match session_from(id, hash)? {
                    Some(s) if s.tenant_id == tenant => live.push((*score, s)),
                    _ => stale
                        .entry(self.keys.tenant_sessions(tenant, id))
                        .or_default()
                        .push(id.clone()),
                }
            }
            for (index, ids) in stale {
                self.prune(&index, tenant, ids).await?;
            }
            from = batch.last().map(|(score, id)| Position {
                score: *score,
                id: id.clone(),
            });
            if live.len() > limit || exhausted {
                break;
            }
        }
        let more = live.len() > limit;
        live.truncate(limit);
        let next_cursor = match (more, live.last()) {
            (true, Some((score, s))) => Some(
                Position {
                    score: *score,
                    id: s.session_id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(Ok(SessionPage {
            sessions: live.into_iter().map(|(_, s)| s).collect(),
            next_cursor,
        }))
    }

    /// Runs `PRUNE` over these ids of the index; returns how many it removed.
    async fn prune(&self, index: &str, tenant: &str, ids: Vec<String>) -> StoreResult<u64> {
        let index = index.to_owned();
        let tenant = tenant.to_owned();
        let keys: Vec<String> = ids.iter().map(|id| self.keys.metadata(id)).collect();
        let removed = self
            .conns
            .run(|mut c| async move {
                let mut inv = PRUNE.prepare_invoke();
                inv.key(&index);
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(&tenant);
                for id in &ids {
                    inv.arg(id);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        Ok(reply::int(removed)?.max(0) as u64)
    }

    /// Removes the index entries of expired sessions from every tenant index. Only
    /// entries that started more than a session TTL ago can have expired (every write
    /// pushes the expiry further), so only those are looked at.
    pub(super) async fn prune_expired_impl(&self) -> StoreResult<u64> {
        let oldest_live = (earshot_core::time::now_ms() as i64)
            .saturating_sub(session_ttl_ms(&self.config) as i64);
        let mut removed = 0;
        for pattern in self.keys.tenant_sessions_patterns() {
            removed += self.prune_matching(&pattern, oldest_live).await?;
        }
        Ok(removed)
    }

    /// Prunes every tenant index matching `pattern`. On a cluster the pattern names one
    /// partition, and the `SCAN` goes to the node holding that partition's slot.
    async fn prune_matching(&self, pattern: &str, oldest_live: i64) -> StoreResult<u64> {
        let mut cursor = 0u64;
        let mut removed = 0;
        loop {
            let pattern = pattern.to_owned();
            let r = self
                .conns
                .run(|mut c| async move {
                    let mut cmd = redis::cmd("SCAN");
                    cmd.arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(PRUNE_BATCH)
                        .arg("TYPE")
                        .arg("zset");
                    c.route_by_key(cmd, &pattern).await
                })
                .await?;
            let (next, indexes): (u64, Vec<String>) = redis::from_redis_value(r)
                .map_err(|e| StoreError::Protocol(format!("bad SCAN reply: {e}")))?;
            for index in indexes {
                removed += self.prune_index(&index, oldest_live).await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn prune_index(&self, index: &str, oldest_live: i64) -> StoreResult<u64> {
        let Some(tenant) = self.keys.tenant_of_index(index) else {
            return Ok(0);
        };
        let mut offset = 0usize;
        let mut removed = 0;
        loop {
            let batch = self
                .conns
                .query::<Vec<String>>(
                    redis::cmd("ZRANGE")
                        .arg(index)
                        .arg("-inf")
                        .arg(format!("({oldest_live}"))
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(PRUNE_BATCH),
                )
                .await?;
            if batch.is_empty() {
                return Ok(removed);
            }
            let full = batch.len() == PRUNE_BATCH;
            let looked = batch.len();
            let n = self.prune(index, &tenant, batch).await?;
            removed += n;
            // Entries kept (alive, written to since) are skipped next time round.
            offset += looked - n as usize;
            if !full {
                return Ok(removed);
            }
        }
    }
}
