//! From whisper's tokens to our words and segments, with the hallucination guards that
//! decide which segments are kept.

use whisper_rs::WhisperState;

use super::Engine;
use crate::text::{
    collapse_repeats, collapse_short_repeats, drop_stutters, is_repetitive, join_words, norm_text,
};
use crate::{Segment, Word};

impl Engine {
    pub(super) fn collect(
        &self,
        state: &WhisperState,
        offset_ms: i64,
        audio_ms: i64,
        salvage: bool,
    ) -> Run {
        let mut kept = Vec::new();
        let mut dropped = 0;
        let mut repetitive = 0;
        for seg in state.as_iter() {
            let no_speech = seg.no_speech_probability();
            let mut words: Vec<Word> = Vec::new();
            #[allow(clippy::type_complexity)]
            let mut cur: Option<(Vec<u8>, i64, i64, f32, usize)> = None;
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
                let t0 = data.t0 * 10;
                let t1 = data.t1 * 10;
                let starts_word = bytes.first().is_some_and(|b| *b == b' ');
                match &mut cur {
                    Some((b, _s, e, p, n)) if !starts_word => {
                        b.extend_from_slice(bytes);
                        *e = (*e).max(t1);
                        *p += data.p;
                        *n += 1;
                    }
                    _ => {
                        if let Some(w) = cur.take() {
                            push_word(&mut words, w, offset_ms, audio_ms);
                        }
                        cur = Some((bytes.to_vec(), t0, t1, data.p, 1));
                    }
                }
            }
            if let Some(w) = cur.take() {
                push_word(&mut words, w, offset_ms, audio_ms);
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
            let start_ms = offset_ms + seg.start_timestamp() * 10;
            let end_ms = (offset_ms + seg.end_timestamp() * 10).min(offset_ms + audio_ms.max(0));
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

fn push_word(
    words: &mut Vec<Word>,
    (bytes, t0, t1, psum, n): (Vec<u8>, i64, i64, f32, usize),
    offset_ms: i64,
    audio_ms: i64,
) {
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if text.is_empty() {
        return;
    }
    let end_cap = offset_ms + audio_ms.max(0);
    let start = (offset_ms + t0).min(end_cap);
    let end = (offset_ms + t1).min(end_cap).max(start);
    words.push(Word {
        text,
        start_ms: start,
        end_ms: end,
        prob: psum / n.max(1) as f32,
    });
}
