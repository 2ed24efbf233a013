//! Session writes and reads by id: create, get, append, delete. Listing is in
//! `index`, transcripts and completion in `transcripts`.

use chrono::Utc;
use earshot_core::keys::STREAM_LOCK;
use earshot_core::time::{format_rfc3339, now_rfc3339};
use earshot_core::{Event, EventKind, NewSegment, NewSession, Segment, Session, SessionStatus};
use redis::Value;

use super::{reply, scripts, RedisStore};
use crate::api::*;
use crate::common::{segment_fingerprint, session_ttl_ms};

pub(super) fn event_fields(
    session_id: &str,
    tenant: &str,
    kind: EventKind,
) -> Vec<(&'static str, String)> {
    Event {
        session_id: session_id.to_owned(),
        tenant_id: tenant.to_owned(),
        timestamp: now_rfc3339(),
        kind,
    }
    .to_fields()
}

pub(super) fn session_from(id: &str, hash: Value) -> StoreResult<Option<Session>> {
    let pairs = reply::pairs(hash)?;
    Ok(Session::from_hash(
        id,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

pub(super) fn parse_segment(json: &str) -> StoreResult<Segment> {
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
            k.idempotency(&id),
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
        let hash = self
            .conns
            .query::<Value>(redis::cmd("HGETALL").arg(self.keys.metadata(id)))
            .await?;
        Ok(session_from(id, hash)?.filter(|s| s.tenant_id == tenant))
    }

    pub(super) async fn append_segment_impl(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome> {
        let k = self.keys;
        let keys = [
            k.metadata(id),
            k.transcript(id),
            k.segments(id),
            k.tenant_sessions(tenant, id),
            k.event_stream(id),
            k.idempotency(id),
        ];
        // The event as `Event::to_fields` lays it out; the script fills in the seq.
        let event = event_fields(
            id,
            tenant,
            EventKind::TranscriptSegment {
                seq: 0,
                text: segment.text.clone(),
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
            },
        );
        let seq_slot = event
            .iter()
            .position(|(f, _)| *f == "seq")
            .map(|i| 2 * i + 2)
            .ok_or_else(|| StoreError::Protocol("segment event without seq".into()))?;
        let args = [
            tenant.to_owned(),
            segment.text.clone(),
            Segment::json_tail(segment),
            session_ttl_ms(&self.config).to_string(),
            self.maxlen().to_string(),
            key.unwrap_or_default().to_owned(),
            segment_fingerprint(segment),
            self.config.max_session_segments.to_string(),
            self.config.max_session_bytes.to_string(),
            seq_slot.to_string(),
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
                for (f, v) in &event {
                    inv.arg(*f).arg(v);
                }
                inv.invoke_async::<Value>(&mut c).await
            })
            .await?;
        let mut parts = reply::array(r)?.into_iter();
        let code = parts.next().map(reply::int).transpose()?;
        let seq = |v: Value| reply::int(v).map(|n| n.max(0) as u64);
        match (code, parts.next(), parts.next()) {
            (Some(0), _, _) => Ok(AppendOutcome::NotFound),
            (Some(1), _, _) => Ok(AppendOutcome::Completed),
            (Some(2), Some(n), Some(event_id)) => Ok(AppendOutcome::Appended {
                seq: seq(n)?,
                event_id: reply::stream_id(event_id)?,
            }),
            (Some(3), Some(n), _) => Ok(AppendOutcome::Repeated { seq: seq(n)? }),
            (Some(4), _, _) => Ok(AppendOutcome::KeyReused),
            (Some(5), _, _) => Ok(AppendOutcome::Full),
            _ => Err(StoreError::Protocol("unexpected append reply".into())),
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
            k.idempotency(id),
            k.lock(id, STREAM_LOCK),
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

    pub(super) async fn set_language_impl(
        &self,
        tenant: &str,
        id: &str,
        language: &str,
    ) -> StoreResult<bool> {
        let keys = [self.keys.metadata(id), self.keys.event_stream(id)];
        let event = event_fields(
            id,
            tenant,
            EventKind::LanguageDetected {
                language: language.to_owned(),
            },
        );
        let args = [
            tenant.to_owned(),
            language.to_owned(),
            self.maxlen().to_string(),
        ];
        let r = self
            .conns
            .run(|mut c| async move {
                let mut inv = scripts::SET_LANGUAGE.prepare_invoke();
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
