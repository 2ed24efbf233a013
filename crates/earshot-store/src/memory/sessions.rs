//! Session writes and reads by id, and the tenant listing: create, get, list, append,
//! set the language, delete. Transcripts and completion are in `transcripts`.

use std::collections::HashMap;

use chrono::Utc;
use earshot_core::keys::STREAM_LOCK;
use earshot_core::time::format_rfc3339;
use earshot_core::{EventKind, NewSegment, NewSession, Segment, Session, SessionStatus};

use super::keyspace::SessionRec;
use super::MemoryStore;
use crate::api::*;
use crate::common::{clamp_limit, segment_fingerprint};
use crate::cursor::Position;

impl MemoryStore {
    pub(super) fn create_session_impl(&self, new: NewSession) -> StoreResult<CreateOutcome> {
        self.run("create_session", |st, now| {
            let id = new.session_id.as_str();
            if st.keys.session(id).is_some() {
                return Ok(CreateOutcome::AlreadyExists);
            }
            let started = Utc::now();
            let session = Session {
                session_id: id.to_owned(),
                tenant_id: new.tenant_id.as_str().to_owned(),
                language: new.language.clone(),
                status: SessionStatus::Active,
                started_at: format_rfc3339(started),
                completed_at: None,
                segment_count: 0,
                metadata: new.metadata.clone(),
            };
            let event = self.session_event(
                &session,
                EventKind::SessionStarted {
                    language: session.language.clone(),
                },
            );
            st.keys.insert_session(SessionRec {
                session: session.clone(),
                score: started.timestamp_millis().max(0) as u64,
                segments: Vec::new(),
                text_bytes: 0,
                idempotency: HashMap::new(),
                expires: self.session_deadline(now),
            });
            st.publish(&event, self.config.maxlen());
            Ok(CreateOutcome::Created(session))
        })
    }

    pub(super) fn get_session_impl(&self, tenant: &str, id: &str) -> StoreResult<Option<Session>> {
        self.run("get_session", |st, _| {
            Ok(st.keys.session_of(tenant, id).map(|r| r.session.clone()))
        })
    }

    pub(super) fn list_sessions_impl(
        &self,
        tenant: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Result<SessionPage, BadCursor>> {
        let after = match cursor.map(Position::decode).transpose() {
            Ok(after) => after,
            Err(bad) => return self.run("list_sessions", |_, _| Ok(Err(bad))),
        };
        let limit = clamp_limit(limit);
        self.run("list_sessions", |st, _| {
            let found = st.keys.page(
                tenant,
                after.as_ref().map(|p| (p.score, p.id.as_str())),
                limit + 1,
            );
            let more = found.len() > limit;
            let page: Vec<(u64, Session)> = found
                .into_iter()
                .take(limit)
                .map(|(score, r)| (score, r.session.clone()))
                .collect();
            let next_cursor = match (more, page.last()) {
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
                sessions: page.into_iter().map(|(_, s)| s).collect(),
                next_cursor,
            }))
        })
    }

    pub(super) fn append_segment_impl(
        &self,
        tenant: &str,
        id: &str,
        segment: &NewSegment,
        key: Option<&str>,
    ) -> StoreResult<AppendOutcome> {
        let fingerprint = segment_fingerprint(segment);
        self.run("append_segment", |st, now| {
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(AppendOutcome::NotFound);
            };
            if let Some((seq, seen)) = key.and_then(|k| rec.idempotency.get(k)) {
                return Ok(if *seen == fingerprint {
                    AppendOutcome::Repeated { seq: *seq }
                } else {
                    AppendOutcome::KeyReused
                });
            }
            if rec.session.status == SessionStatus::Completed {
                return Ok(AppendOutcome::Completed);
            }
            let bytes = rec.text_bytes + segment.text.len() as u64;
            if rec.session.segment_count >= self.config.max_session_segments
                || bytes > self.config.max_session_bytes
            {
                return Ok(AppendOutcome::Full);
            }
            let seq = rec.session.segment_count;
            rec.session.segment_count += 1;
            rec.text_bytes = bytes;
            if let Some(k) = key {
                rec.idempotency.insert(k.to_owned(), (seq, fingerprint));
            }
            rec.segments.push(Segment {
                seq,
                text: segment.text.clone(),
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                words: segment.words.clone(),
            });
            let event = self.session_event(
                &rec.session,
                EventKind::TranscriptSegment {
                    seq,
                    text: segment.text.clone(),
                    start_ms: segment.start_ms,
                    end_ms: segment.end_ms,
                },
            );
            st.keys.touch_session(id, self.session_deadline(now));
            let event_id = st.publish(&event, self.config.maxlen());
            Ok(AppendOutcome::Appended { seq, event_id })
        })
    }

    pub(super) fn set_language_impl(
        &self,
        tenant: &str,
        id: &str,
        language: &str,
    ) -> StoreResult<bool> {
        self.run("set_language", |st, _| {
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(false);
            };
            rec.session.language = language.to_owned();
            let event = self.session_event(
                &rec.session,
                EventKind::LanguageDetected {
                    language: language.to_owned(),
                },
            );
            st.publish(&event, self.config.maxlen());
            Ok(true)
        })
    }

    pub(super) fn delete_session_impl(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        self.run("delete_session", |st, _| {
            let Some(rec) = st.keys.session_of(tenant, id) else {
                return Ok(false);
            };
            let event = self.session_event(&rec.session, EventKind::SessionDeleted);
            st.keys.drop_session(id);
            st.keys.drop_lock(&self.keys.lock(id, STREAM_LOCK));
            st.publish(&event, self.config.maxlen());
            Ok(true)
        })
    }
}
