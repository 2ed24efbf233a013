//! Transcripts: completing a session (once, publishing `transcript_completed`) and
//! reading a session's transcript, cached once the session is completed.

use earshot_core::event::completed_transcript;
use earshot_core::{EventKind, Segment, SessionStatus, Transcript};

use super::MemoryStore;
use crate::api::*;

impl MemoryStore {
    pub(super) fn complete_session_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<CompleteOutcome> {
        self.run("complete_session", |st, now| {
            let already = match st.keys.session_of(tenant, id) {
                None => return Ok(CompleteOutcome::NotFound),
                Some(rec) => rec.session.status == SessionStatus::Completed,
            };
            if already {
                let Some(rec) = st.keys.session(id) else {
                    return Ok(CompleteOutcome::NotFound);
                };
                let transcript = match st.keys.cached(id) {
                    Some(t) => t.text.clone(),
                    None => rec.transcript().text,
                };
                return Ok(CompleteOutcome::Completed {
                    session: rec.session.clone(),
                    transcript,
                    newly_completed: false,
                });
            }
            let Some(rec) = st.keys.session_of_mut(tenant, id) else {
                return Ok(CompleteOutcome::NotFound);
            };
            rec.session.status = SessionStatus::Completed;
            rec.session.completed_at = Some(earshot_core::time::now_rfc3339());
            let session = rec.session.clone();
            let transcript = rec.transcript();
            let texts: Vec<&str> = transcript
                .segments
                .iter()
                .map(|s| s.text.as_str())
                .collect();
            let (text, truncated) = completed_transcript(&texts);
            let event = self.session_event(
                &session,
                EventKind::TranscriptCompleted {
                    transcript: text,
                    segment_count: session.segment_count,
                    transcript_truncated: truncated,
                },
            );
            st.keys.touch_session(id, self.session_deadline(now));
            let text = transcript.text.clone();
            st.keys
                .put_cache(id, transcript, now + self.config.cache_ttl);
            st.publish(&event, self.config.maxlen());
            Ok(CompleteOutcome::Completed {
                session,
                transcript: text,
                newly_completed: true,
            })
        })
    }

    pub(super) fn transcript_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<Transcript>> {
        self.run("transcript", |st, now| {
            let Some(rec) = st.keys.session_of(tenant, id) else {
                return Ok(None);
            };
            if rec.session.status != SessionStatus::Completed {
                return Ok(Some(rec.transcript()));
            }
            if let Some(t) = st.keys.cached(id) {
                return Ok(Some(t.clone()));
            }
            let t = rec.transcript();
            st.keys
                .put_cache(id, t.clone(), now + self.config.cache_ttl);
            Ok(Some(t))
        })
    }

    pub(super) fn segments_from_impl(
        &self,
        tenant: &str,
        id: &str,
        from: u64,
    ) -> StoreResult<Option<Vec<Segment>>> {
        self.run("segments_from", |st, _| {
            Ok(st.keys.session_of(tenant, id).map(|rec| {
                let from = usize::try_from(from).unwrap_or(usize::MAX);
                rec.segments.iter().skip(from).cloned().collect()
            }))
        })
    }
}
