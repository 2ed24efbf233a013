//! Transcripts: reading a session's segments, completing it, and the cached
//! transcript of a completed session. Lists are read in pages outside any script, so a
//! large session never holds Redis for everyone else; only the short completion
//! script is atomic.

use earshot_core::event::completed_transcript;
use earshot_core::time::now_rfc3339;
use earshot_core::{EventKind, Segment, SessionStatus, Transcript};
use redis::Value;

use super::sessions::{event_fields, parse_segment, session_from};
use super::{reply, scripts, RedisStore};
use crate::api::*;
use crate::common::{session_ttl_ms, ttl_ms};

/// Segments read per `LRANGE` when a transcript is assembled: a page of the longest
/// segments (64 KiB each) stays a few MB.
const SEGMENT_PAGE: u64 = 256;
/// How often `complete_session` reads again when appends keep arriving meanwhile.
const COMPLETE_ATTEMPTS: usize = 8;

fn transcript_of(id: &str, segments: Vec<Segment>) -> Transcript {
    let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    Transcript {
        session_id: id.to_owned(),
        text: Transcript::join_chunks(&texts),
        segments,
    }
}

impl RedisStore {
    /// `tenant_id`, `status` and `segment_count` of a session, if it is `tenant`'s.
    async fn head(&self, tenant: &str, id: &str) -> StoreResult<Option<(bool, u64)>> {
        let r = self
            .conns
            .query::<Vec<Option<String>>>(
                redis::cmd("HMGET")
                    .arg(self.keys.metadata(id))
                    .arg("tenant_id")
                    .arg("status")
                    .arg("segment_count"),
            )
            .await?;
        let [t, status, count] = <[Option<String>; 3]>::try_from(r)
            .map_err(|_| StoreError::Protocol("short HMGET reply".into()))?;
        if t.as_deref() != Some(tenant) {
            return Ok(None);
        }
        let completed = status.as_deref() == Some(SessionStatus::Completed.as_str());
        let count = count.and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok(Some((completed, count)))
    }

    /// The first `count` stored segments, read in pages outside any script so that a
    /// large session never holds Redis for everyone else. Segments are only ever
    /// appended, so the first `count` are a consistent snapshot.
    async fn read_segments(&self, id: &str, count: u64) -> StoreResult<Vec<Segment>> {
        self.read_segments_between(id, 0, count).await
    }

    /// The stored segments with `first <= seq < count` (a segment's seq is its index in
    /// the list), read as [`Self::read_segments`] does.
    async fn read_segments_between(
        &self,
        id: &str,
        first: u64,
        count: u64,
    ) -> StoreResult<Vec<Segment>> {
        let key = self.keys.segments(id);
        let wanted = count.saturating_sub(first);
        let mut out = Vec::with_capacity(wanted.min(SEGMENT_PAGE * 4) as usize);
        while (out.len() as u64) < wanted {
            let from = first + out.len() as u64;
            let to = (from + SEGMENT_PAGE).min(count) - 1;
            let page = self
                .conns
                .query::<Vec<String>>(redis::cmd("LRANGE").arg(&key).arg(from).arg(to))
                .await?;
            if page.is_empty() {
                break; // deleted meanwhile
            }
            for json in &page {
                out.push(parse_segment(json)?);
            }
        }
        Ok(out)
    }

    /// The transcript of a completed session: the cache entry, or rebuilt from the
    /// segments and cached again.
    async fn completed_transcript(&self, id: &str, count: u64) -> StoreResult<Transcript> {
        let cached = self
            .conns
            .query::<Option<String>>(redis::cmd("GET").arg(self.keys.cached_transcript(id)))
            .await?;
        if let Some(json) = cached {
            return serde_json::from_str(&json)
                .map_err(|e| StoreError::Protocol(format!("bad cached transcript: {e}")));
        }
        let t = transcript_of(id, self.read_segments(id, count).await?);
        self.cache(&t).await?;
        Ok(t)
    }

    async fn cache(&self, t: &Transcript) -> StoreResult<()> {
        let key = self.keys.cached_transcript(&t.session_id);
        let json = serde_json::to_string(t)
            .map_err(|e| StoreError::Protocol(format!("transcript JSON: {e}")))?;
        let ttl = ttl_ms(self.config.cache_ttl);
        self.conns
            .query::<Value>(redis::cmd("SET").arg(key).arg(json).arg("PX").arg(ttl))
            .await?;
        Ok(())
    }

    pub(super) async fn complete_session_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<CompleteOutcome> {
        for _ in 0..COMPLETE_ATTEMPTS {
            let Some((completed, count)) = self.head(tenant, id).await? else {
                return Ok(CompleteOutcome::NotFound);
            };
            if completed {
                return self.already_completed(tenant, id, count).await;
            }
            let t = transcript_of(id, self.read_segments(id, count).await?);
            let texts: Vec<&str> = t.segments.iter().map(|s| s.text.as_str()).collect();
            let (text, truncated) = completed_transcript(&texts);
            let event = event_fields(
                id,
                tenant,
                EventKind::TranscriptCompleted {
                    transcript: text,
                    segment_count: count,
                    transcript_truncated: truncated,
                },
            );
            let k = self.keys;
            let keys = [
                k.metadata(id),
                k.transcript(id),
                k.segments(id),
                k.tenant_sessions(tenant, id),
                k.event_stream(id),
                k.idempotency(id),
            ];
            let args = [
                tenant.to_owned(),
                now_rfc3339(),
                session_ttl_ms(&self.config).to_string(),
                self.maxlen().to_string(),
                count.to_string(),
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
            match parts.next().map(reply::int).transpose()? {
                Some(0) => return Ok(CompleteOutcome::NotFound),
                // Completed or appended to meanwhile: look again.
                Some(1) | Some(3) => continue,
                Some(2) => {
                    let hash = parts
                        .next()
                        .ok_or_else(|| StoreError::Protocol("short complete reply".into()))?;
                    let session = session_from(id, hash)?.ok_or_else(|| {
                        StoreError::Protocol("completed session has no metadata".into())
                    })?;
                    self.cache(&t).await?;
                    return Ok(CompleteOutcome::Completed {
                        session,
                        transcript: t.text,
                        newly_completed: true,
                    });
                }
                _ => return Err(StoreError::Protocol("unexpected complete reply".into())),
            }
        }
        Err(StoreError::Unavailable(
            "the session kept changing while it was being completed; retry".into(),
        ))
    }

    async fn already_completed(
        &self,
        tenant: &str,
        id: &str,
        count: u64,
    ) -> StoreResult<CompleteOutcome> {
        let t = self.completed_transcript(id, count).await?;
        Ok(match self.get_session_impl(tenant, id).await? {
            Some(session) => CompleteOutcome::Completed {
                session,
                transcript: t.text,
                newly_completed: false,
            },
            None => CompleteOutcome::NotFound,
        })
    }

    pub(super) async fn segments_from_impl(
        &self,
        tenant: &str,
        id: &str,
        from: u64,
    ) -> StoreResult<Option<Vec<Segment>>> {
        let Some((_, count)) = self.head(tenant, id).await? else {
            return Ok(None);
        };
        self.read_segments_between(id, from, count).await.map(Some)
    }

    pub(super) async fn transcript_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<Transcript>> {
        let Some((completed, count)) = self.head(tenant, id).await? else {
            return Ok(None);
        };
        if completed {
            return self.completed_transcript(id, count).await.map(Some);
        }
        Ok(Some(transcript_of(
            id,
            self.read_segments(id, count).await?,
        )))
    }
}
