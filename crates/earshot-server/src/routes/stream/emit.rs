//! The stream's events to the client: each final is stored (with its idempotency key,
//! through the same session service as `POST …/segments`) before it is sent, so a client
//! never sees a final the session does not have; the other events go out as they come.

use earshot_asr::StreamEvent;
use earshot_core::NewSegment;

use super::close::End;
use super::run::StreamCtx;
use crate::outbox::Outbox;
use crate::service::{segment_from_asr, AppendError, IdempotencyKey, SessionService};
use crate::ws_protocol::ServerMessage;

/// Sends events; persists each final first and sends it only once it is stored.
pub(super) async fn emit(
    ctx: &mut StreamCtx,
    out: &Outbox,
    events: Vec<StreamEvent>,
) -> Result<(), End> {
    for ev in events {
        match ev {
            StreamEvent::SpeechStarted { at_ms } => {
                out.send(&ServerMessage::SpeechStarted { at_ms })
            }
            StreamEvent::UtteranceEnd { at_ms } => out.send(&ServerMessage::UtteranceEnd { at_ms }),
            StreamEvent::LanguageDetected {
                language,
                probability,
            } => {
                record_language(&ctx.sessions, &ctx.tenant, &ctx.session_id, &language).await;
                out.send(&ServerMessage::LanguageDetected {
                    language,
                    probability,
                })
            }
            StreamEvent::Partial {
                rev,
                text,
                start_ms,
            } => {
                if ctx.send_partials {
                    out.partial(&ServerMessage::Partial {
                        rev,
                        text,
                        start_ms,
                    })
                }
            }
            StreamEvent::Final {
                text,
                start_ms,
                end_ms,
                words,
            } => {
                let Some(segment) = segment_from_asr(&text, start_ms as i64, end_ms as i64, &words)
                else {
                    continue;
                };
                let seq = persist(ctx, &segment).await?;
                out.send(&ServerMessage::Final {
                    seq,
                    text: segment.text,
                    start_ms: start_ms as i64,
                    end_ms: end_ms as i64,
                    words: segment.words,
                });
            }
        }
    }
    Ok(())
}

/// Records a detected language as the session's. Best effort: the transcript does not
/// depend on it, so a store hiccup here is logged, not fatal to the stream.
async fn record_language(sessions: &SessionService, tenant: &str, id: &str, language: &str) {
    if let Err(e) = sessions.store().set_language(tenant, id, language).await {
        tracing::warn!(error = %e, "could not record the detected language");
    }
}

/// A fresh scope for one connection's keys: a final retried within the connection
/// keeps its key; a reconnect to the same session starts new keys.
pub fn key_scope() -> String {
    format!("live:{}", uuid::Uuid::new_v4().simple())
}

/// Stores a final through the session service with its idempotency key, so the
/// service's retries over a short store outage can never store it twice.
async fn persist(ctx: &mut StreamCtx, segment: &NewSegment) -> Result<u64, End> {
    let key = IdempotencyKey::ordinal(&ctx.key_scope, ctx.finals);
    let seq = ctx
        .sessions
        .append(&ctx.tenant, &ctx.session_id, segment, Some(&key))
        .await
        .map_err(|e| match e {
            AppendError::Completed => End::SessionCompleted,
            AppendError::NotFound => End::SessionGone,
            AppendError::Full => End::SessionFull,
            e @ (AppendError::KeyReused | AppendError::Store(_)) => End::Store(e.to_string()),
        })?;
    ctx.finals += 1;
    Ok(seq)
}
