//! Where a stream on a session that already has finals (a reconnect, on this node or
//! another) picks up: its time line continues after the session's last final, and the
//! finals the client has not seen are replayed first. Only the finals it needs are read.

use earshot_core::Segment;

use super::run::StreamCtx;
use crate::outbox::Outbox;
use crate::ws_protocol::ServerMessage;

/// Continues the time line after the session's last final and, with `resume_after_seq`,
/// replays the finals after it. Only those and the last final are read: a reconnect to a
/// long session does not read its whole transcript.
pub async fn resume(ctx: &mut StreamCtx, out: &Outbox) {
    let Some(last) = ctx.stored_finals.checked_sub(1) else {
        return;
    };
    let from = ctx
        .resume_after_seq
        .map_or(last, |after| after.saturating_add(1).min(last));
    let mut tail = match tail_from(ctx, from).await {
        Some(t) => t,
        None => return,
    };
    // Finals appended through the text API may carry no times; the time line then
    // continues after the latest final that has them, wherever it is.
    if from > 0 && tail.iter().all(|s| s.end_ms.is_none()) {
        tail = match tail_from(ctx, 0).await {
            Some(t) => t,
            None => return,
        };
    }
    let last_end = tail.iter().filter_map(|s| s.end_ms).max().unwrap_or(0);
    ctx.live.continue_after(last_end.max(0) as u64);
    let Some(after) = ctx.resume_after_seq else {
        return;
    };
    for s in tail.into_iter().filter(|s| s.seq > after) {
        out.send(&ServerMessage::Final {
            seq: s.seq,
            text: s.text,
            start_ms: s.start_ms.unwrap_or(0),
            end_ms: s.end_ms.unwrap_or(0),
            words: s.words,
        });
    }
}

/// The session's finals with `seq >= from`; `None` if they cannot be read (the stream then
/// starts its time line at 0 and replays nothing, as for a new session). `&mut` because
/// the context is `Send` but not `Sync`.
async fn tail_from(ctx: &mut StreamCtx, from: u64) -> Option<Vec<Segment>> {
    match ctx
        .sessions
        .store()
        .segments_from(&ctx.tenant, &ctx.session_id, from)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the session's finals to resume it");
            None
        }
    }
}
