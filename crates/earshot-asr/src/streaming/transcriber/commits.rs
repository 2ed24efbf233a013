//! Commit decodes: the decodes whose words become final, at points fixed by the audio
//! (a window at its cap, an utterance end, a flush), and the checks that keep a bad decode
//! (a loop, an echo of the prompt) from ever reaching a final.

use super::StreamingTranscriber;
use crate::engine::{EngineError, Transcript, AUTO_LANGUAGE};
use crate::scheduler::Priority;
use crate::streaming::agreement::strip_committed;
use crate::streaming::config::StreamEvent;
use crate::text::collapse_repeats;
use crate::Word;

use super::SPM;

/// Context of the redo of a commit decode that looped: larger than the stream's, but half
/// the cost of whisper's full 30 s, which would not fit a decode's time budget.
pub(super) const RETRY_CTX: crate::engine::AudioCtx = crate::engine::AudioCtx::Adaptive {
    margin_ms: 5_000,
    floor_ms: 15_000,
};

/// Voiced audio (ms) after a final decode's last word that means the decoder stopped early:
/// longer than a breath or a trailing syllable VAD keeps, shorter than any clause.
pub(super) const STOPS_SHORT_MS: i64 = 1_500;

impl StreamingTranscriber {
    /// A commit decode of the window; `last` (an utterance's final decode) uses the
    /// final context policy. A partial in flight is stale after it and is dropped.
    async fn commit_decode(&mut self, last: bool) -> Result<Vec<Word>, EngineError> {
        let ctx = if last {
            self.cfg.final_audio_ctx
        } else {
            Some(self.cfg.audio_ctx)
        };
        let opts = self.decode_options(ctx, false);
        self.begin_commit();
        let t = self
            .sched
            .decode(Priority::Commit, self.buf.clone(), opts)
            .await?;
        self.stats.commit_decodes += 1;
        self.stats.ctx_frames += t.audio_ctx as u64;
        Ok(self.uncommitted_words(t))
    }

    /// An utterance's final decode once more, at [`RETRY_CTX`] and without the committed
    /// text as prompt (the user's prompt stays).
    async fn fresh_final_decode(&mut self) -> Result<Vec<Word>, EngineError> {
        let opts = crate::engine::DecodeOptions {
            prompt: None,
            ..self.decode_options(Some(RETRY_CTX), false)
        };
        self.begin_commit();
        let t = self
            .sched
            .decode(Priority::Commit, self.buf.clone(), opts)
            .await?;
        self.stats.commit_decodes += 1;
        self.stats.ctx_frames += t.audio_ctx as u64;
        Ok(self.uncommitted_words(t))
    }

    /// A commit decode's words are coming: a partial in flight is stale.
    pub(super) fn begin_commit(&mut self) {
        self.last_commit_at = self.total;
        self.generation += 1;
        if let Some(p) = self.pending.take() {
            p.drop_stale();
            self.stats.partials_dropped += 1;
        }
    }

    pub(super) fn uncommitted_words(&mut self, t: Transcript) -> Vec<Word> {
        if let Some(d) = t.detected_language {
            // The first detection is kept for the rest of the stream.
            if self.language.as_deref() == Some(AUTO_LANGUAGE) {
                self.language = Some(d.code.clone());
                self.detected = Some(d);
            }
        }
        let mut words: Vec<Word> = t.segments.into_iter().flat_map(|s| s.words).collect();
        collapse_repeats(&mut words);
        let mut new = strip_committed(&self.committed_in_window, self.last_committed_end_ms, words);
        let from = ((self.buf_start / SPM) as i64).max(self.last_committed_end_ms);
        if crate::streaming::timing::respread_if_collapsed(
            &mut new,
            from,
            (self.total / SPM) as i64,
        ) {
            metrics::counter!("earshot_asr_collapsed_word_times_total").increment(1);
        }
        new
    }

    /// The window is full in the middle of speech: words followed by at least
    /// `stable_margin_ms` of decoded audio become final, the window is cut after them, and
    /// the rest waits for the next commit.
    pub(super) async fn commit_at_cap(
        &mut self,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), EngineError> {
        // The window is at its cap mostly with committed context (a long utterance, a
        // short pause, a new one just begun): a decode could commit only the words a
        // stable margin before the end of a few seconds of speech, and a decode of the
        // whole window is the dearest kind there is. Cutting committed context alone
        // brings the window under the cap and keeps every uncommitted sample (the cut
        // stays before the last third of the cap); the utterance's words come with its
        // next commit.
        let uncommitted_ms = (self.total / SPM).saturating_sub(self.uncommitted_from_ms());
        if uncommitted_ms <= self.cfg.max_window_ms / 3 {
            metrics::counter!("earshot_asr_cap_commits_skipped_total").increment(1);
            self.enforce_window_cap(events);
            return Ok(());
        }
        let new = match self.commit_decode(false).await {
            Ok(new) => new,
            // The window is still made smaller, so the next decode is no dearer than this one.
            Err(EngineError::OverBudget) => {
                self.shrink_after_failed_decode(events);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !self.plausible(&new) {
            // An echo of the prompt or of committed text, or a loop: this decode tells us
            // nothing. The window is still made smaller, as when over budget: left at its
            // cap, it would be decoded again on every frame (each decode seeing the same
            // echo) while the stream falls further behind with every one.
            metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
            tracing::debug!(
                window_from = self.buf_start / SPM,
                window_to = self.total / SPM,
                last_committed_end_ms = self.last_committed_end_ms,
                in_window = %crate::text::join_words(&self.committed_in_window),
                new = %crate::text::join_words(&new),
                first_word_ms = new.first().map(|w| w.start_ms),
                "implausible commit at cap"
            );
            self.shrink_after_failed_decode(events);
            return Ok(());
        }
        let stable_end = (self.total / SPM).saturating_sub(self.cfg.stable_margin_ms) as i64;
        let n = new.iter().take_while(|w| w.end_ms <= stable_end).count();
        let commit: Vec<Word> = new[..n].to_vec();
        self.tail = new[n..].to_vec();
        self.hypothesis = self.tail.clone();
        let window_from = self.buf_start / SPM;
        self.commit(commit, events);
        self.emit_partial(events);
        self.enforce_window_cap(events);
        tracing::debug!(
            window_from,
            window_to = self.total / SPM,
            stable_end,
            committed = %crate::text::join_words(&new[..n]),
            tail = %crate::text::join_words(&self.tail),
            first_word_ms = new.first().map(|w| w.start_ms),
            cut_to = self.buf_start / SPM,
            "commit at cap"
        );
        Ok(())
    }

    /// The commit decode at the cap gave nothing usable. Dropping the committed context
    /// loses no words; only if the uncommitted audio alone fills the window is it cut, its
    /// oldest words committed as the last good decode saw them.
    fn shrink_after_failed_decode(&mut self, events: &mut Vec<StreamEvent>) {
        self.drop_committed_context();
        self.enforce_window_cap(events);
    }

    /// Decode the window one last time and commit everything in it.
    pub(super) async fn commit_all(
        &mut self,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), EngineError> {
        let has_something = self.in_utterance || !self.tail.is_empty();
        if has_something && !self.buf.is_empty() {
            let mut decoded = match self.take_early_final().await {
                Some(early) => early,
                None => self.commit_decode(true).await,
            };
            // An echo or a loop, or words that stop well before the speech does (tiny.en
            // sometimes ends its output with the committed context's last sentence), where
            // the window holds committed context: decode the utterance once more without
            // that context rather than lose it.
            // With no committed context to blame, a decode that stops short went wrong on
            // the utterance alone (a junk segment, the prompt continued instead): it is
            // heard once more at the wider context of a loop's redo, without the prompt.
            let echo = matches!(&decoded, Ok(new) if !self.plausible(new));
            let short = matches!(&decoded, Ok(new) if !echo && self.stops_short(new));
            let had_context = (echo || short) && self.drop_committed_context();
            if had_context || short {
                metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
                let again = if had_context {
                    self.commit_decode(true).await
                } else {
                    self.fresh_final_decode().await
                };
                decoded = match (decoded, again) {
                    // The redo heard less than the first decode: keep the first.
                    (Ok(first), Ok(again))
                        if short && self.heard_to(&again) < self.heard_to(&first) =>
                    {
                        Ok(first)
                    }
                    (_, again) => again,
                };
                tracing::debug!(
                    echo,
                    short,
                    had_context,
                    words = decoded.as_ref().map_or(0, |w| w.len()),
                    "final decode redone"
                );
            }
            let commit = match decoded {
                Ok(new) if !self.plausible(&new) => {
                    metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
                    std::mem::take(&mut self.tail)
                }
                // The last decode saw nothing new: keep what the previous commit decode saw.
                Ok(new) if new.is_empty() => std::mem::take(&mut self.tail),
                Ok(new) => new,
                Err(e) => {
                    tracing::warn!(error = %e, "final decode failed; committing what the last decode saw");
                    std::mem::take(&mut self.tail)
                }
            };
            self.commit(commit, events);
        } else {
            let t = std::mem::take(&mut self.tail);
            self.commit(t, events);
        }
        self.tail.clear();
        self.hypothesis.clear();
        self.emit_partial(events);
        self.last_commit_at = self.total;
        Ok(())
    }

    /// Where the words of a decode (after the committed ones) end: the last committed word's
    /// end when it has none.
    pub(super) fn heard_to(&self, new: &[Word]) -> i64 {
        new.last()
            .map_or(self.last_committed_end_ms, |w| w.end_ms)
            .max(self.last_committed_end_ms)
    }

    /// Whether a final decode's words stop more than [`STOPS_SHORT_MS`] before the last
    /// voiced audio: the decoder ended early and the rest of the utterance is missing.
    fn stops_short(&self, new: &[Word]) -> bool {
        self.vad.last_voiced_end_ms() as i64 - self.heard_to(new) > STOPS_SHORT_MS
    }

    /// Whether `new` (a decode's words after the committed ones) could have been said in the
    /// uncommitted audio: at most 2 + 5 words per second (300 words a minute is fast
    /// speech). tiny.en with a short context sometimes re-reads its prompt or the committed
    /// words of the window; committing that would duplicate text already final.
    pub(super) fn plausible(&self, new: &[Word]) -> bool {
        let window_end_ms = self.total / SPM;
        let secs = window_end_ms.saturating_sub(self.uncommitted_from_ms()) as f64 / 1000.0;
        (new.len() as f64) <= 2.0 + 5.0 * secs
    }

    /// Where the window's audio not yet committed starts (ms).
    pub(super) fn uncommitted_from_ms(&self) -> u64 {
        let window_from = self.buf_start / SPM;
        if self.last_committed_end_ms >= 0 {
            (self.last_committed_end_ms as u64).max(window_from)
        } else {
            window_from
        }
    }
}
