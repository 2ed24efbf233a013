//! Partial decodes: the optional, cancellable guesses at the unstable tail of an
//! utterance, run in the background so they never hold back the audio or a commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::StreamingTranscriber;
use crate::engine::{DecodeOptions, EngineError, Transcript, AUTO_LANGUAGE};
use crate::streaming::config::StreamEvent;

use super::SPM;

type PartialResult = Result<Option<Transcript>, EngineError>;

/// A partial decode in flight.
pub(super) struct Pending {
    /// `generation` when it started: a commit since then makes its words stale.
    generation: u64,
    handle: JoinHandle<PartialResult>,
    /// Stops the decode inside whisper (see [`Pending::drop_stale`]).
    cancel: Arc<AtomicBool>,
}

impl Pending {
    /// Give the partial up: a commit made it stale, or the stream ended. Aborting the task
    /// alone would leave whisper running to the end in its slot, delaying the very commit
    /// that made it stale.
    pub(super) fn drop_stale(self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.handle.abort();
    }
}

impl StreamingTranscriber {
    /// Start a partial decode in the background if speech is active, none is in flight, and
    /// enough audio came since the last decode. Call it when the stream has caught up with
    /// its audio; the result comes from [`partial_ready`](Self::partial_ready).
    pub fn start_partial_if_due(&mut self) -> bool {
        if !self.cfg.partials || !self.in_utterance || self.pending.is_some() {
            return false;
        }
        let interval = if self.first_partial_pending.is_some() {
            self.cfg.first_decode_ms.min(self.cfg.decode_interval_ms)
        } else {
            self.cfg.decode_interval_ms
        };
        let since = self.total - self.last_partial_at.max(self.last_commit_at);
        if since < interval * SPM || self.buf.is_empty() {
            return false;
        }
        // The speaker has paused: if the pause goes on, the utterance ends within the
        // endpointing silence and its final decode makes this partial stale before it is
        // done (work thrown away while other streams wait); if speech resumes, the partial
        // comes with it, and has something new to show.
        let silent_ms = (self.total / SPM).saturating_sub(self.vad.last_voiced_end_ms());
        if silent_ms * 3 >= self.cfg.vad.endpoint_silence_ms {
            return false;
        }
        // The language is detected by the first commit decode, whose audio is fixed by the
        // stream (a partial's depends on timing): until then there are no partials, so the
        // same audio always gets the same language.
        if self.language.as_deref() == Some(AUTO_LANGUAGE) {
            return false;
        }
        self.last_partial_at = self.total;
        let cancel = Arc::new(AtomicBool::new(false));
        // A partial shows text only: its words' times serve at most to tell them from the
        // committed ones, which whisper's own timestamps do well enough.
        let opts = DecodeOptions {
            cancel: Some(cancel.clone()),
            untimed: true,
            ..self.decode_options(Some(self.cfg.audio_ctx), true)
        };
        let (sched, samples) = (self.sched.clone(), self.buf.clone());
        let wait = Duration::from_millis(self.cfg.partial_max_wait_ms);
        let handle = tokio::spawn(async move { sched.decode_partial(samples, opts, wait).await });
        self.pending = Some(Pending {
            generation: self.generation,
            handle,
            cancel,
        });
        true
    }

    /// Wait for the partial decode in flight (forever if there is none) and return the
    /// partial it gives. Cancel-safe: dropped early, the decode stays in flight.
    pub async fn partial_ready(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let Some(p) = self.pending.as_mut() else {
            return std::future::pending().await;
        };
        let joined = (&mut p.handle).await;
        let generation = p.generation;
        self.pending = None;
        let result = match joined.map_err(|e| EngineError::Task(e.to_string()))? {
            Ok(r) => r,
            // A partial is optional: a failed one is skipped, the stream goes on.
            Err(e) => {
                tracing::debug!(error = %e, "partial decode failed; skipped");
                None
            }
        };
        let mut events = Vec::new();
        match result {
            Some(t) if generation == self.generation && self.in_utterance => {
                self.stats.partial_decodes += 1;
                self.stats.ctx_frames += t.audio_ctx as u64;
                let new = self.uncommitted_words(t);
                if self.plausible(&new) {
                    self.hypothesis = new;
                    self.emit_partial(&mut events);
                }
            }
            _ => self.stats.partials_dropped += 1,
        }
        Ok(events)
    }
}
