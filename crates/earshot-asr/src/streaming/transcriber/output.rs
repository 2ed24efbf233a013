//! Turning decided words into events: finals (monotonic times, latency measured from the
//! arrival of their audio) and partials.

use std::time::Instant;

use super::{StreamingTranscriber, SPM};
use crate::streaming::config::StreamEvent;
use crate::text::{join_words, norm_word};
use crate::Word;

impl StreamingTranscriber {
    pub(super) fn commit(&mut self, words: Vec<Word>, events: &mut Vec<StreamEvent>) {
        let words: Vec<Word> = words
            .into_iter()
            .filter(|w| !norm_word(&w.text).is_empty() || !w.text.trim().is_empty())
            .collect();
        if words.is_empty() {
            return;
        }
        let text = join_words(&words);
        // Word times are whisper's estimates; a final never starts before the last one ended.
        let start_ms = (words[0].start_ms.max(0) as u64).max(self.last_final_end_ms);
        let end_ms = (words[words.len() - 1].end_ms.max(0) as u64).max(start_ms);
        self.last_final_end_ms = end_ms;
        self.last_committed_end_ms = words[words.len() - 1].end_ms;
        self.committed_in_window.extend(words);
        let now = Instant::now();
        if let Some(arr) = self.arrival_of(end_ms * SPM) {
            let lat = now.saturating_duration_since(arr);
            metrics::histogram!("earshot_asr_final_latency_seconds").record(lat.as_secs_f64());
            self.stats.final_latencies.push(lat);
        }
        self.note_first_output(now);
        events.push(StreamEvent::Final {
            text,
            start_ms,
            end_ms,
        });
    }

    pub(super) fn note_first_output(&mut self, now: Instant) {
        if let Some(start) = self.first_partial_pending.take() {
            if let Some(arr) = self.arrival_of(start) {
                let lat = now.saturating_duration_since(arr);
                metrics::histogram!("earshot_asr_first_partial_latency_seconds")
                    .record(lat.as_secs_f64());
                self.stats.first_partial_latencies.push(lat);
            }
        }
    }

    pub(super) fn emit_partial(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.cfg.partials {
            return;
        }
        let text = join_words(&self.hypothesis);
        if text == self.last_partial {
            return;
        }
        self.rev += 1;
        let start_ms = self
            .hypothesis
            .first()
            .map(|w| (w.start_ms.max(0) as u64).max(self.last_final_end_ms))
            .unwrap_or(self.total / SPM);
        if !text.is_empty() {
            self.note_first_output(Instant::now());
        }
        self.last_partial = text.clone();
        events.push(StreamEvent::Partial {
            rev: self.rev,
            text,
            start_ms,
        });
    }

    pub(super) fn arrival_of(&self, sample: u64) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|(end, _)| *end >= sample)
            .map(|(_, t)| *t)
    }

    pub(super) fn prune_arrivals(&mut self) {
        let oldest_needed = self
            .first_partial_pending
            .unwrap_or(u64::MAX)
            .min(self.buf_start)
            .min(
                self.tail
                    .first()
                    .map(|w| (w.start_ms.max(0) as u64) * SPM)
                    .unwrap_or(u64::MAX),
            );
        while self.arrivals.len() > 1 {
            match self.arrivals.get(1) {
                Some((end, _)) if *end < oldest_needed => {
                    self.arrivals.pop_front();
                }
                _ => break,
            }
        }
        while self.arrivals.len() > 100_000 {
            self.arrivals.pop_front();
        }
    }
}
