//! The final decode of an utterance, started in a pause before its end is certain.
//!
//! An utterance ends after the endpointing silence, but its words are all there once the
//! speaker stops: the silence only tells a pause from an end. Half way through that
//! silence a final decode starts in the background on the window as it is then.
//! - If the pause becomes the end, its words are the utterance's final words, ready (or
//!   well on their way) instead of waiting for a decode started only now, behind other
//!   streams' commits.
//! - If speech resumes, the decode still heard everything before the pause followed by
//!   silence, which is what makes words safe to commit: they become final there and then,
//!   instead of waiting for the window to reach its cap (seconds later, and a decode of the
//!   whole window).
//!
//! Both are decided at points fixed by the audio (the frame where the silence reaches
//! half the endpointing, the frame where speech resumes), so the same audio gives the same
//! finals however fast it arrives and however busy the machine is. At an utterance end the
//! early decode hears less of the trailing silence than a decode started at the end would:
//! the words are the same, their times may move by a frame or two. (Padding its audio with
//! digital silence to the same length moved a first word by 300 ms on the shared clips.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::commits::STOPS_SHORT_MS;
use super::StreamingTranscriber;
use crate::engine::{DecodeOptions, EngineError, Transcript};
use crate::scheduler::Priority;
use crate::streaming::config::StreamEvent;
use crate::Word;

use super::SPM;

/// A final decode started in a pause.
pub(super) struct Early {
    /// The last voiced audio (ms) when it started: a later voiced frame makes it stale.
    voiced_end_ms: u64,
    /// `generation` when it started: a commit since makes it stale.
    generation: u64,
    handle: JoinHandle<Result<Transcript, EngineError>>,
    cancel: Arc<AtomicBool>,
}

impl Early {
    /// Stop it inside whisper too, so its slot goes to a decode somebody waits for.
    pub(super) fn cancel(self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.handle.abort();
    }
}

impl StreamingTranscriber {
    /// Once per VAD frame: commit at a pause the early decode heard (speech resumed after
    /// it), drop one a commit made stale, and start one when the silence reaches half the
    /// endpointing silence.
    pub(super) async fn early_final_step(&mut self, events: &mut Vec<StreamEvent>) {
        let voiced_end_ms = self.vad.last_voiced_end_ms();
        if let Some(e) = &self.early {
            if e.voiced_end_ms == voiced_end_ms && e.generation == self.generation {
                return;
            }
            if e.generation == self.generation && self.in_utterance && self.worth_a_pause_commit() {
                self.commit_at_pause(events).await;
            } else {
                self.drop_early();
            }
        }
        if !self.cfg.early_final || !self.in_utterance || self.buf.is_empty() {
            return;
        }
        let silent_ms = (self.total / SPM).saturating_sub(voiced_end_ms);
        let endpoint = self.cfg.vad.endpoint_silence_ms;
        if silent_ms * 2 < endpoint || silent_ms >= endpoint {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let opts = DecodeOptions {
            cancel: Some(cancel.clone()),
            ..self.decode_options(self.cfg.final_audio_ctx, false)
        };
        let (sched, samples) = (self.sched.clone(), self.buf.clone());
        let handle =
            tokio::spawn(async move { sched.decode(Priority::Commit, samples, opts).await });
        self.early = Some(Early {
            voiced_end_ms,
            generation: self.generation,
            handle,
            cancel,
        });
    }

    /// The words of the early final decode, if one started for exactly the audio that ends
    /// now (nothing voiced or committed since); `None` when a decode must run now.
    pub(super) async fn take_early_final(&mut self) -> Option<Result<Vec<Word>, EngineError>> {
        let e = self.early.as_ref()?;
        if e.voiced_end_ms != self.vad.last_voiced_end_ms() || e.generation != self.generation {
            self.drop_early();
            return None;
        }
        let e = self.early.take()?;
        let t = match e.handle.await {
            Ok(Ok(t)) => t,
            // Cancelled or lost with its task: decode again rather than lose the words.
            Ok(Err(EngineError::Cancelled)) | Err(_) => return None,
            Ok(Err(err)) => return Some(Err(err)),
        };
        metrics::counter!("earshot_asr_early_finals_total", "outcome" => "used").increment(1);
        self.begin_commit();
        self.stats.early_finals_used += 1;
        self.stats.commit_decodes += 1;
        self.stats.ctx_frames += t.audio_ctx as u64;
        Some(Ok(self.uncommitted_words(t)))
    }

    /// Whether the words before this pause should become final at it: only a stretch of
    /// more than a third of the window's cap. A shorter one waits for the utterance's end
    /// or the cap like any other words: whisper hears a short phrase best with what follows
    /// it, and the finals before it shape the prompt of every later decode.
    fn worth_a_pause_commit(&self) -> bool {
        let Some(e) = &self.early else { return false };
        self.cfg.commit_at_pause
            && e.voiced_end_ms.saturating_sub(self.uncommitted_from_ms())
                > self.cfg.max_window_ms / 3
    }

    /// Speech resumed after a pause the early decode heard: its words (all spoken before
    /// the pause, and followed by silence in its audio) become final now. A decode that
    /// failed, echoed or stopped short of the pause commits nothing; the words wait for
    /// the next commit as they would have without it.
    async fn commit_at_pause(&mut self, events: &mut Vec<StreamEvent>) {
        let Some(e) = self.early.take() else { return };
        let paused_at = e.voiced_end_ms as i64;
        let t = match e.handle.await {
            Ok(Ok(t)) => t,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "decode at a pause failed; nothing committed");
                self.count_dropped();
                return;
            }
            Err(_) => {
                self.count_dropped();
                return;
            }
        };
        self.begin_commit();
        self.stats.commit_decodes += 1;
        self.stats.ctx_frames += t.audio_ctx as u64;
        let new = self.uncommitted_words(t);
        if new.is_empty()
            || !self.plausible(&new)
            || paused_at - self.heard_to(&new) > STOPS_SHORT_MS
        {
            self.count_dropped();
            return;
        }
        metrics::counter!("earshot_asr_early_finals_total", "outcome" => "at_pause").increment(1);
        self.stats.pause_commits += 1;
        self.commit(new, events);
        // What the partial showed is final now; the words after the pause come with the
        // next decode.
        self.tail.clear();
        self.hypothesis.clear();
        self.emit_partial(events);
    }

    /// Give the early decode up: speech resumed or a commit came first.
    fn drop_early(&mut self) {
        if let Some(e) = self.early.take() {
            e.cancel();
            self.count_dropped();
        }
    }

    fn count_dropped(&mut self) {
        self.stats.early_finals_dropped += 1;
        metrics::counter!("earshot_asr_early_finals_total", "outcome" => "dropped").increment(1);
    }
}
