//! Turning decided words into events: finals (monotonic times, latency measured from the
//! arrival of their audio) and partials.

use std::time::Instant;

use super::{StreamingTranscriber, SPM};
use crate::engine::MIN_WORD_MS;
use crate::streaming::config::StreamEvent;
use crate::text::{join_words, norm_word};
use crate::Word;

/// `words` (in order, each decode's times) made monotonic and fitted into
/// `[floor, audio_end]` with none of zero length: the span of a final is its words' span,
/// so this is what keeps a final from being empty or after its speech.
pub(super) fn fit_words(mut words: Vec<Word>, floor: i64, audio_end: i64) -> Vec<Word> {
    let mut prev = floor.max(0);
    for w in &mut words {
        let start = w.start_ms.max(prev).min(audio_end);
        let end = w.end_ms.max(start + MIN_WORD_MS).min(audio_end);
        w.start_ms = start.min(end);
        w.end_ms = end;
        prev = end;
    }
    words
}

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
        // A final never starts before the last one ended, nor ends past the audio given.
        let words = fit_words(
            words,
            self.last_final_end_ms as i64,
            (self.total / SPM) as i64,
        );
        let start_ms = words[0].start_ms as u64;
        let end_ms = words[words.len() - 1].end_ms as u64;
        self.last_final_end_ms = end_ms;
        self.last_committed_end_ms = words[words.len() - 1].end_ms;
        self.committed_in_window.extend(words.iter().cloned());
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
            words,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: i64, b: i64) -> Word {
        Word {
            text: "w".into(),
            start_ms: a,
            end_ms: b,
            prob: 1.0,
        }
    }

    #[test]
    fn words_are_fitted_after_the_last_final_and_inside_the_audio() {
        // A lone word whose decode put it before the previous final's end.
        let f = fit_words(vec![w(7390, 7400)], 7500, 9000);
        assert_eq!((f[0].start_ms, f[0].end_ms), (7500, 7500 + MIN_WORD_MS));
        // Out of order, past the audio.
        let f = fit_words(vec![w(100, 300), w(200, 250), w(900, 1200)], 0, 1000);
        let spans: Vec<_> = f.iter().map(|w| (w.start_ms, w.end_ms)).collect();
        assert_eq!(
            spans,
            vec![(100, 300), (300, 300 + MIN_WORD_MS), (900, 1000)]
        );
    }
}
