//! Session calls: create, get, list, append, complete, transcript, delete.

use std::collections::BTreeMap;

use chrono::Utc;
use earshot_core::time::{format_rfc3339, now_rfc3339};
use earshot_core::{
    Event, EventKind, NewSegment, NewSession, Segment, Session, SessionStatus, Transcript,
};
use redis::Value;

use super::{reply, scripts, RedisStore};
use crate::api::*;
use crate::common::{clamp_limit, session_ttl_ms, ttl_ms};
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

fn event_fields(session_id: &str, tenant: &str, kind: EventKind) -> Vec<(&'static str, String)> {
    Event {
        session_id: session_id.to_owned(),
        tenant_id: tenant.to_owned(),
        timestamp: now_rfc3339(),
        kind,
    }
    .to_fields()
}

/// `{"session_id":"<id>","text":` — the start of the cached transcript JSON, which the
/// scripts complete with the text and the stored segment JSONs.
fn cache_prefix(id: &str) -> String {
    let id = serde_json::Value::from(id).to_string();
    format!("{{\"session_id\":{id},\"text\":")
}

fn session_from(id: &str, hash: Value) -> StoreResult<Option<Session>> {
    let pairs = reply::pairs(hash)?;
    Ok(Session::from_hash(
        id,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

fn parse_segment(json: &str) -> StoreResult<Segment> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Protocol(format!("bad segment JSON {json:?}: {e}")))
}

impl RedisStore {
    pub(super) async fn create_session_impl(&self, new: NewSession) -> StoreResult<CreateOutcome> {
        let started = Utc::now();
        let session = Session {
            session_id: new.session_id.as_str().to_owned(),
            tenant_id: new.tenant_id.as_str().to_owned(),
            language: new.language,
            status: SessionStatus::Active,
            started_at: format_rfc3339(started),
            completed_at: None,
            segment_count: 0,
            metadata: new.metadata,
        };
        let id = session.session_id.clone();
        let k = self.keys;
        let hash = session.to_hash();
        let event = event_fields(
            &id,
            &session.tenant_id,
            EventKind::SessionStarted {
                language: session.language.clone(),
            },
        );
        let keys = [
            k.metadata(&id),
            k.transcript(&id),
            k.segments(&id),
            k.cached_transcript(&id),
            k.tenant_sessions(&session.tenant_id, &id),
            k.event_stream(&id),
        ];
        let ttl = session_ttl_ms(&self.config);
        let maxlen = self.maxlen();
        let score = started.timestamp_millis().max(0);
        let created = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::CREATE.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                inv.arg(ttl)
                    .arg(maxlen)
                    .arg(score)
                    .arg(&id)
                    .arg(hash.len() * 2);
                for (f, v) in &hash {
                    inv.arg(f).arg(v);
                }
                for (f, v) in &event {
                    inv.arg(*f).arg(v);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        Ok(match reply::int(created)? {
            1 => CreateOutcome::Created(session),
            _ => CreateOutcome::AlreadyExists,
        })
    }

    pub(super) async fn get_session_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<Session>> {
        let key = self.keys.metadata(id);
        let hash = self
            .conns
            .run(|mut c| async move {
                redis::cmd("HGETALL")
                    .arg(key)
                    .query_async::<Value>(&mut c)
                    .await
            })
            .await?;
        Ok(session_from(id, hash)?.filter(|s| s.tenant_id == tenant))
    }

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
            let meta: Vec<String> = batch.iter().map(|(_, id)| self.keys.metadata(id)).collect();
            let hashes = self.hashes(&batch, &meta).await?;
            let mut stale = Vec::new();
            for (i, ((score, id), hash)) in batch.iter().zip(hashes).enumerate() {
                match session_from(id, hash)? {
                    Some(s) if s.tenant_id == tenant => live.push((*score, s)),
                    _ => stale.push(i),
                }
            }
            // One prune per index (a partition's index and its sessions share a slot).
            let mut by_index: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for &i in &stale {
                let index = self.keys.tenant_sessions(tenant, &batch[i].1);
                by_index.entry(index).or_default().push(i);
            }
            for (index, stale) in by_index {
                self.prune(&index, tenant, &batch, &meta, &stale).await?;
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

    /// `HGETALL` of every `meta` key (in order), one pipeline per partition so that no
    /// pipeline spans slots on a cluster (one pipeline in all on standalone).
    async fn hashes(&self, batch: &[(u64, String)], meta: &[String]) -> StoreResult<Vec<Value>> {
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, (_, id)) in batch.iter().enumerate() {
            groups.entry(self.keys.partition(id)).or_default().push(i);
        }
        let replies = futures::future::try_join_all(groups.values().map(|idx| {
            let keys: Vec<String> = idx.iter().map(|&i| meta[i].clone()).collect();
            self.conns.run(|mut c| async move {
                let mut p = redis::pipe();
                for key in &keys {
                    p.cmd("HGETALL").arg(key);
                }
                p.query_async::<Vec<Value>>(&mut c).await
            })
        }))
        .await?;
        let mut out = vec![Value::Nil; meta.len()];
        for (idx, values) in groups.values().zip(replies) {
            for (&i, v) in idx.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    async fn prune(
        &self,
        index: &str,
        tenant: &str,
        batch: &[(u64, String)],
        meta: &[String],
        stale: &[usize],
    ) -> StoreResult<()> {
        let index = index.to_owned();
        let tenant = tenant.to_owned();
        let keys: Vec<String> = stale.iter().map(|&i| meta[i].clone()).collect();
        let ids: Vec<String> = stale.iter().map(|&i| batch[i].1.clone()).collect();
        self.conns
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
        Ok(())
    }

    pub(super) async fn append_segment_impl(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
    ) -> StoreResult<AppendOutcome> {
        let k = self.keys;
        let keys = [
            k.metadata(id),
            k.transcript(id),
            k.segments(id),
            k.tenant_sessions(tenant, id),
            k.event_stream(id),
        ];
        let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let args = [
            tenant.to_owned(),
            segment.text.clone(),
            Segment::json_tail(segment),
            num(segment.start_ms),
            num(segment.end_ms),
            session_ttl_ms(&self.config).to_string(),
            self.maxlen().to_string(),
            now_rfc3339(),
            id.to_owned(),
        ];
        let r = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::APPEND.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        let code = parts.next().map(reply::int).transpose()?;
        match (code, parts.next(), parts.next()) {
            (Some(0), _, _) => Ok(AppendOutcome::NotFound),
            (Some(1), _, _) => Ok(AppendOutcome::Completed),
            (Some(2), Some(seq), Some(event_id)) => Ok(AppendOutcome::Appended {
                seq: reply::int(seq)?.max(0) as u64,
                event_id: reply::stream_id(event_id)?,
            }),
            _ => Err(StoreError::Protocol("unexpected append reply".into())),
        }
    }

    pub(super) async fn complete_session_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<CompleteOutcome> {
        let k = self.keys;
        let keys = [
            k.metadata(id),
            k.transcript(id),
            k.segments(id),
            k.cached_transcript(id),
            k.tenant_sessions(tenant, id),
            k.event_stream(id),
        ];
        // The base fields of the event; the script appends transcript and segment_count.
        let mut event = event_fields(
            id,
            tenant,
            EventKind::TranscriptCompleted {
                transcript: String::new(),
                segment_count: 0,
            },
        );
        event.truncate(4);
        let args = [
            tenant.to_owned(),
            now_rfc3339(),
            session_ttl_ms(&self.config).to_string(),
            ttl_ms(self.config.cache_ttl).to_string(),
            self.maxlen().to_string(),
            cache_prefix(id),
        ];
        let r = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::COMPLETE.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                for a in &args {
                    inv.arg(a);
                }
                for (f, v) in &event {
                    inv.arg(*f).arg(v);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        let code = parts.next().map(reply::int).transpose()?;
        let newly_completed = match code {
            Some(0) => return Ok(CompleteOutcome::NotFound),
            Some(1) => false,
            Some(2) => true,
            _ => return Err(StoreError::Protocol("unexpected complete reply".into())),
        };
        let (Some(hash), Some(text)) = (parts.next(), parts.next()) else {
            return Err(StoreError::Protocol("short complete reply".into()));
        };
        let session = session_from(id, hash)?
            .ok_or_else(|| StoreError::Protocol("completed session has no metadata".into()))?;
        Ok(CompleteOutcome::Completed {
            session,
            transcript: reply::string(text)?,
            newly_completed,
        })
    }

    pub(super) async fn transcript_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<Transcript>> {
        let k = self.keys;
        let keys = [
            k.metadata(id),
            k.transcript(id),
            k.segments(id),
            k.cached_transcript(id),
        ];
        let args = [
            tenant.to_owned(),
            cache_prefix(id),
            ttl_ms(self.config.cache_ttl).to_string(),
        ];
        let r = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::TRANSCRIPT.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        match parts.next().map(reply::int).transpose()? {
            Some(0) => Ok(None),
            Some(1) => {
                let json = parts
                    .next()
                    .map(reply::string)
                    .transpose()?
                    .unwrap_or_default();
                serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|e| StoreError::Protocol(format!("bad cached transcript: {e}")))
            }
            Some(2) => {
                let chunks = parts
                    .next()
                    .map(reply::strings)
                    .transpose()?
                    .unwrap_or_default();
                let segs = parts
                    .next()
                    .map(reply::strings)
                    .transpose()?
                    .unwrap_or_default();
                Ok(Some(Transcript {
                    session_id: id.to_owned(),
                    text: Transcript::join_chunks(&chunks),
                    segments: segs
                        .iter()
                        .map(|s| parse_segment(s))
                        .collect::<StoreResult<_>>()?,
                }))
            }
            _ => Err(StoreError::Protocol("unexpected transcript reply".into())),
        }
    }

    pub(super) async fn delete_session_impl(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        let k = self.keys;
        let keys = [
            k.metadata(id),
            k.transcript(id),
            k.segments(id),
            k.cached_transcript(id),
            k.tenant_sessions(tenant, id),
            k.event_stream(id),
        ];
        let event = event_fields(id, tenant, EventKind::SessionDeleted);
        let args = [tenant.to_owned(), id.to_owned(), self.maxlen().to_string()];
        let r = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::DELETE.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                for a in &args {
                    inv.arg(a);
                }
                for (f, v) in &event {
                    inv.arg(*f).arg(v);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        Ok(reply::int(r)? == 1)
    }
}
