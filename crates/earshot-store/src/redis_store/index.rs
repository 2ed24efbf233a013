//! The tenant indexes (`tenant:<t>:sessions`): listing a tenant's sessions page by
//! page, and pruning the entries of sessions that expired.

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
        let index = self.keys.tenant_sessions(tenant);
        let mut live: Vec<(u64, Session)> = Vec::new();
        loop {
            let want = limit + 1 - live.len();
            let batch = self.index_after(&index, from.as_ref(), want).await?;
            let exhausted = batch.len() < want;
            if batch.is_empty() {
                break;
            }
            let meta_keys: Vec<String> =
                batch.iter().map(|(_, id)| self.keys.metadata(id)).collect();
            let hashes = self
                .conns
                .run(|mut c| async move {
                    let mut p = redis::pipe();
                    for key in &meta_keys {
                        p.cmd("HGETALL").arg(key);
                    }
                    p.query_async::<Vec<Value>>(&mut c).await
                })
                .await?;
            let mut stale: Vec<String> = Vec::new();
            for ((score, id), hash) in batch.iter().zip(hashes) {
                match session_from(id, hash)? {
                    Some(s) if s.tenant_id == tenant => live.push((*score, s)),
                    _ => stale.push(id.clone()),
                }
            }
            if !stale.is_empty() {
                self.prune(&index, tenant, stale).await?;
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
        let pattern = self.keys.tenant_sessions_pattern();
        let mut cursor = 0u64;
        let mut removed = 0;
        loop {
            let pattern = pattern.clone();
            let (next, indexes) = self
                .conns
                .run(|mut c| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(PRUNE_BATCH)
                        .arg("TYPE")
                        .arg("zset")
                        .query_async::<(u64, Vec<String>)>(&mut c)
                        .await
                })
                .await?;
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
            let key = index.to_owned();
            let batch = self
                .conns
                .run(|mut c| async move {
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg("-inf")
                        .arg(format!("({oldest_live}"))
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(PRUNE_BATCH)
                        .query_async::<Vec<String>>(&mut c)
                        .await
                })
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
