//! The window: how much audio a stream keeps for its next decode, and which committed
//! words leave it to become the decoder prompt.

use super::{StreamingTranscriber, SPM};
use crate::streaming::config::StreamEvent;
use crate::text::join_words;
use crate::Word;

impl StreamingTranscriber {
    pub(super) fn trim_idle(&mut self) {
        if !self.tail.is_empty() {
            return;
        }
        if !self.committed_in_window.is_empty() {
            // Keep the previous utterance as context unless the pause got long.
            let silent_ms = (self.total / SPM).saturating_sub(self.vad.last_voiced_end_ms());
            if silent_ms < self.cfg.context_gap_ms
                && (self.buf.len() as u64) < self.cfg.max_window_ms * SPM
            {
                return;
            }
            self.retire_first(self.committed_in_window.len());
        }
        // Pre-roll plus the VAD's start window (the start is reported up to that far back).
        let keep = (self.cfg.preroll_ms + 30 * self.cfg.vad.start_window_frames as u64 + 60) * SPM;
        if self.total > self.buf_start + keep {
            self.trim_to(self.total - keep);
        }
    }

    /// A decode of the window told nothing usable (an echo, a loop, over budget): drop the
    /// committed context from the window, which is what whisper most often echoes, and
    /// keep every uncommitted sample. Whether anything was dropped.
    pub(super) fn drop_committed_context(&mut self) -> bool {
        let Some(last) = self.committed_in_window.last() else {
            return false;
        };
        let cut = (last.end_ms.max(0) as u64) * SPM;
        self.retire_first(self.committed_in_window.len());
        self.trim_to(cut);
        true
    }

    /// Drop window audio before stream sample `s`.
    pub(super) fn trim_to(&mut self, s: u64) {
        if s <= self.buf_start {
            return;
        }
        let n = ((s - self.buf_start) as usize).min(self.buf.len());
        self.buf.drain(..n);
        self.buf_start += n as u64;
    }

    /// The first `n` committed words leave the window: they become prompt context.
    pub(super) fn retire_first(&mut self, n: usize) {
        let n = n.min(self.committed_in_window.len());
        if n == 0 {
            return;
        }
        let gone: Vec<Word> = self.committed_in_window.drain(..n).collect();
        let text = join_words(&gone);
        if !self.prompt_text.is_empty() {
            self.prompt_text.push(' ');
        }
        self.prompt_text.push_str(&text);
        if self.prompt_text.len() > 2000 {
            let cut = self.prompt_text.len() - 1000;
            let cut = (cut..self.prompt_text.len())
                .find(|i| self.prompt_text.is_char_boundary(*i))
                .unwrap_or(self.prompt_text.len());
            self.prompt_text.drain(..cut);
        }
    }

    pub(super) fn move_window_past_committed(&mut self, to_sample: u64) {
        self.retire_first(self.committed_in_window.len());
        self.tail.clear();
        self.hypothesis.clear();
        // Mid-utterance (a flush while someone speaks) the audio before this point is all
        // committed: keeping a pre-roll would decode its last word a second time.
        let keep = if self.in_utterance {
            0
        } else {
            self.cfg.preroll_ms * SPM
        };
        self.trim_to(to_sample.saturating_sub(keep).max(self.buf_start));
        self.last_commit_at = self.total;
    }

    /// Keep the window under `max_window_ms`: cut after the committed words that end early
    /// enough (the most recent ones stay as context), force-committing the oldest
    /// uncommitted words if nothing was committed.
    pub(super) fn enforce_window_cap(&mut self, events: &mut Vec<StreamEvent>) {
        let max = self.cfg.max_window_ms * SPM;
        if (self.buf.len() as u64) < max {
            return;
        }
        // Cut deep: the window keeps about a third of the cap (the stable margin's
        // uncommitted words and a little committed context), so that speech going on
        // without a pause reaches the cap again only after two thirds of it. Each commit at
        // the cap is a decode of the whole window, the dearest kind there is.
        let target = self.total.saturating_sub(max / 3);
        let n_old = self
            .tail
            .iter()
            .take_while(|w| (w.end_ms.max(0) as u64) * SPM <= target)
            .count();
        if n_old > 0
            && self
                .committed_in_window
                .last()
                .is_none_or(|w| (w.end_ms.max(0) as u64) * SPM < target)
        {
            let old: Vec<Word> = self.tail.drain(..n_old).collect();
            self.commit(old, events);
        }
        let before_target = self
            .committed_in_window
            .iter()
            .rposition(|w| (w.end_ms.max(0) as u64) * SPM <= target);
        let (n_retire, cut) = match before_target {
            Some(i) => (
                i + 1,
                (self.committed_in_window[i].end_ms.max(0) as u64) * SPM,
            ),
            None => (
                self.committed_in_window.len(),
                self.committed_in_window
                    .last()
                    .map(|w| (w.end_ms.max(0) as u64) * SPM)
                    .unwrap_or(target),
            ),
        };
        // However the words fall, the window shrinks to at most half the cap: cutting a
        // little at a time would run a commit decode on every frame after this one.
        let floor = self.total.saturating_sub(max / 2);
        let cut = cut.min(self.total).max(floor);
        let n_retire = n_retire.max(
            self.committed_in_window
                .iter()
                .take_while(|w| (w.end_ms.max(0) as u64) * SPM <= cut)
                .count(),
        );
        self.retire_first(n_retire);
        self.trim_to(cut);
        // Words that began before the cut are partly gone: drop them.
        let cut_ms = (cut / SPM) as i64;
        self.tail.retain(|w| w.start_ms >= cut_ms);
        self.hypothesis.retain(|w| w.start_ms >= cut_ms);
    }
}
