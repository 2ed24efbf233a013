//! From whisper's tokens to our words and segments, with the hallucination guards that
//! decide which segments are kept.

use whisper_rs::WhisperState;

use super::timing::{self, Sounding, Tok};
use super::Engine;
use crate::text::{
    collapse_repeats, collapse_short_repeats, drop_stutters, is_repetitive, join_words, norm_text,
};
use crate::Segment;

impl Engine {
    /// `samples` is the audio given (without the padding whisper was fed); `dtw`: the
    /// state's context gives DTW token times.
    pub(super) fn collect(
        &self,
        state: &WhisperState,
        dtw: bool,
        offset_ms: i64,
        samples: &[f32],
        salvage: bool,
    ) -> Run {
        let audio_ms = (samples.len() as u64 * 1000 / crate::audio::TARGET_RATE as u64) as i64;
        let sounding = Sounding::of(samples);
        // Every segment's text tokens first (the guards below need the whole segment).
        let mut all: Vec<(whisper_rs::WhisperSegment<'_>, Vec<Tok>, f32, usize)> = Vec::new();
        for seg in state.as_iter() {
            let mut toks = Vec::new();
            let mut logp_sum = 0.0f32;
            let mut n_text = 0usize;
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let data = tok.token_data();
                if data.id >= self.token_eot {
                    continue; // special and timestamp tokens
                }
                let Ok(bytes) = tok.to_bytes() else { continue };
                logp_sum += data.plog;
                n_text += 1;
                toks.push(Tok {
                    bytes: bytes.to_vec(),
                    t0: data.t0 * 10,
                    t1: data.t1 * 10,
                    dtw: (dtw && data.t_dtw >= 0).then_some(data.t_dtw * 10),
                    p: data.p,
                });
            }
            all.push((seg, toks, logp_sum, n_text));
        }
        let mut kept = Vec::new();
        let mut dropped = 0;
        let mut repetitive = 0;
        // Where the next segment's first token may start: the DTW alignment runs over all
        // segments of the decode at once.
        let mut from = 0i64;
        for (seg, toks, logp_sum, n_text) in all {
            let no_speech = seg.no_speech_probability();
            let mut words = timing::words(&toks, from, audio_ms, sounding.as_ref());
            from = toks
                .last()
                .and_then(|t| t.dtw)
                .map_or(from, |end| end.max(from));
            for w in &mut words {
                w.start_ms += offset_ms;
                w.end_ms += offset_ms;
            }
            let text = seg
                .to_bytes()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            let avg_logprob = if n_text > 0 {
                logp_sum / n_text as f32
            } else {
                f32::NEG_INFINITY
            };
            let no_content = !text.chars().any(|c| c.is_alphanumeric());
            let unlikely = (no_speech > self.cfg.no_speech_thold
                && avg_logprob < self.cfg.logprob_thold)
                || avg_logprob < self.cfg.hard_logprob_floor;
            let mut looped = is_repetitive(&text, self.cfg.max_ngram_repeats);
            if looped {
                repetitive += 1;
            }
            let mut text = text;
            if looped && salvage {
                collapse_repeats(&mut words);
                collapse_short_repeats(&mut words, self.cfg.max_ngram_repeats);
                drop_stutters(&mut words);
                text = join_words(&words);
                looped = is_repetitive(&text, self.cfg.max_ngram_repeats);
            }
            if no_content || unlikely || looped {
                if !no_content {
                    tracing::debug!(%text, no_speech, avg_logprob, "dropping segment (hallucination guard)");
                }
                dropped += 1;
                continue;
            }
            // A phrase of 3+ words said twice in a row is almost always whisper echoing itself
            // (it happens when a short window ends in silence): keep one copy.
            let (words, text) = if collapse_repeats(&mut words) {
                let t = join_words(&words);
                (words, t)
            } else {
                (words, text)
            };
            let prev_same = kept.last().is_some_and(|p: &Segment| {
                p.words.len() >= 3 && norm_text(&p.text) == norm_text(&text)
            });
            if prev_same {
                repetitive += 1;
                dropped += 1;
                continue;
            }
            // The span covers the words (whisper's segment timestamps are coarser, and
            // past the audio when the input was padded), inside the audio given.
            let audio_end = offset_ms + audio_ms.max(0);
            let (start_ms, end_ms) = match (words.first(), words.last()) {
                (Some(a), Some(b)) => (a.start_ms, b.end_ms),
                _ => (
                    (offset_ms + seg.start_timestamp() * 10).min(audio_end),
                    (offset_ms + seg.end_timestamp() * 10).min(audio_end),
                ),
            };
            kept.push(Segment {
                text,
                start_ms,
                end_ms: end_ms.max(start_ms),
                words,
                no_speech_prob: no_speech,
                avg_logprob,
            });
        }
        Run {
            segments: kept,
            dropped,
            repetitive,
            hit_token_cap: false,
        }
    }
}

/// One whisper run's kept segments and guard counters.
pub(super) struct Run {
    pub segments: Vec<Segment>,
    pub dropped: usize,
    pub repetitive: usize,
    pub hit_token_cap: bool,
}
