//! A transcribed file recorded as a completed session, and the one conversion from a
//! recognised segment to a stored one (uploads and live finals both use it).

use std::collections::BTreeMap;

use earshot_core::{NewSegment, NewSession, Segment, SessionId, TenantId, Word};

use super::{IdempotencyKey, SessionService};
use crate::error::ApiResult;

/// The segment stored for recognised text: trimmed, with its times and words; `None` when
/// only whitespace is left (nothing to store, and no `seq` is used up).
pub fn segment_from_asr(
    text: &str,
    start_ms: i64,
    end_ms: i64,
    words: &[earshot_asr::Word],
) -> Option<NewSegment> {
    let text = text.trim();
    (!text.is_empty()).then(|| NewSegment {
        text: text.to_owned(),
        start_ms: Some(start_ms),
        end_ms: Some(end_ms),
        words: words_from_asr(words),
    })
}

/// Recognised words as stored and sent: probabilities rounded to 3 decimals (whisper's
/// are not more precise than that, and the JSON stays short).
pub fn words_from_asr(words: &[earshot_asr::Word]) -> Vec<Word> {
    words
        .iter()
        .map(|w| Word {
            word: w.text.clone(),
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            probability: (w.prob.clamp(0.0, 1.0) * 1000.0).round() / 1000.0,
        })
        .collect()
}

/// What an upload left in the store.
#[derive(Debug, Clone)]
pub struct RecordedUpload {
    pub session_id: SessionId,
    /// The segments as stored, with their `seq`s.
    pub segments: Vec<Segment>,
}

impl RecordedUpload {
    /// The transcript text: the stored segments joined by one space.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self.segments.iter().map(|s| s.text.as_str()).collect();
        earshot_core::Transcript::join_chunks(&texts)
    }
}

impl SessionService {
    /// Stores a transcribed file as a new completed session (so its events flow like
    /// any other session's). If a step fails, the half-written session is deleted
    /// rather than left active.
    pub async fn record_upload(
        &self,
        tenant: &TenantId,
        language: &str,
        metadata: BTreeMap<String, String>,
        recognised: &[earshot_asr::Segment],
    ) -> ApiResult<RecordedUpload> {
        let id = SessionId::random();
        self.create(NewSession {
            session_id: id.clone(),
            tenant_id: tenant.clone(),
            language: language.to_owned(),
            metadata,
        })
        .await?;
        match self.fill_and_complete(tenant, &id, recognised).await {
            Ok(segments) => Ok(RecordedUpload {
                session_id: id,
                segments,
            }),
            Err(e) => {
                if let Err(del) = self
                    .store
                    .delete_session(tenant.as_str(), id.as_str())
                    .await
                {
                    tracing::warn!(error = %del, session_id = id.as_str(), "could not delete a half-recorded upload");
                }
                Err(e)
            }
        }
    }

    async fn fill_and_complete(
        &self,
        tenant: &TenantId,
        id: &SessionId,
        recognised: &[earshot_asr::Segment],
    ) -> ApiResult<Vec<Segment>> {
        let mut stored = Vec::with_capacity(recognised.len());
        for (i, s) in recognised.iter().enumerate() {
            let Some(segment) = segment_from_asr(&s.text, s.start_ms, s.end_ms, &s.words) else {
                continue;
            };
            let key = IdempotencyKey::ordinal("upload", i as u64);
            let seq = self
                .append(tenant.as_str(), id.as_str(), &segment, Some(&key))
                .await
                .map_err(|e| e.into_api(id.as_str()))?;
            stored.push(Segment {
                seq,
                text: segment.text,
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                words: segment.words,
            });
        }
        self.complete(tenant.as_str(), id.as_str()).await?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognised_text_is_trimmed_and_blank_text_is_not_stored() {
        let words = [earshot_asr::Word {
            text: "hello".into(),
            start_ms: 100,
            end_ms: 400,
            prob: 0.87654,
        }];
        let s = segment_from_asr("  hello there \n", 100, 900, &words).unwrap();
        assert_eq!(s.text, "hello there");
        assert_eq!((s.start_ms, s.end_ms), (Some(100), Some(900)));
        assert_eq!(s.words[0].probability, 0.877);
        assert_eq!((s.words[0].start_ms, s.words[0].end_ms), (100, 400));
        assert_eq!(segment_from_asr(" \t ", 0, 1, &[]), None);
    }
}
