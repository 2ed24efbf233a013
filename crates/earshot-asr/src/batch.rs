//! Whole-file transcription (`earshot transcribe`, the OpenAI-compatible upload).
//!
//! Audio up to [`BatchOptions::max_window_ms`] is one decode. Longer audio is cut into windows
//! *at pauses* (the longest run of non-speech frames in the last
//! [`BatchOptions::search_ms`] of each window, else its quietest frame) and the windows are
//! decoded one after the other with the previous window's text as prompt. Windows do not
//! overlap and are cut where nobody speaks, so no word is dropped or repeated at a boundary
//! (whisper.cpp's own 30 s seeking loses or doubles words there: see shared/models/README).

use std::ops::Range;

use crate::audio::TARGET_RATE;
use crate::engine::{DecodeOptions, DetectedLanguage, Engine, EngineError, Transcript};
use crate::vad::{Aggressiveness, Vad, VadConfig, FRAME_SAMPLES};
use crate::Segment;

/// Batch settings.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Longest window decoded at once (≤ 30 s).
    pub max_window_ms: u64,
    /// How far back from a window's end to look for a pause to cut at.
    pub search_ms: u64,
    /// Prompt each window with the previous window's text.
    pub condition_on_previous_text: bool,
    /// Temperature fallback on low-confidence windows.
    pub temperature_fallback: bool,
    /// Temperature of each window's first pass (0 = greedy).
    pub temperature: f32,
    /// The caller's prompt, before every window's context (see
    /// [`DecodeOptions::user_prompt`]).
    pub prompt: Option<String>,
    /// Spoken language (see [`DecodeOptions::language`]). With
    /// [`crate::engine::AUTO_LANGUAGE`] it is detected once, in the first window with
    /// speech, and that language is kept for the windows after it.
    pub language: Option<String>,
    /// Output English (whisper's translate task).
    pub translate: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_window_ms: 28_000,
            search_ms: 10_000,
            condition_on_previous_text: true,
            temperature_fallback: true,
            temperature: 0.0,
            prompt: None,
            language: None,
            translate: false,
        }
    }
}

/// A whole file's result.
#[derive(Debug, Clone, Default)]
pub struct BatchTranscript {
    /// Every kept segment, in order.
    pub segments: Vec<Segment>,
    /// The language detected in the first window with speech, when it was asked for.
    pub detected_language: Option<DetectedLanguage>,
}

/// What the windows decoded so far decide for the next one: its prompt and the language
/// pinned by detection. One source for the blocking path and the scheduler's.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    prompt: Option<String>,
    pub(crate) out: BatchTranscript,
}

impl Progress {
    /// The decode options of the window starting at sample `start`.
    pub(crate) fn window_options(&self, opts: &BatchOptions, start: usize) -> DecodeOptions {
        let language = match &self.out.detected_language {
            Some(d) => Some(d.code.clone()),
            None => opts.language.clone(),
        };
        DecodeOptions {
            prompt: if opts.condition_on_previous_text {
                self.prompt.clone()
            } else {
                None
            },
            user_prompt: opts.prompt.clone(),
            language,
            translate: opts.translate,
            temperature: opts.temperature,
            offset_ms: (start as i64 * 1000) / TARGET_RATE as i64,
            temperature_fallback: opts.temperature_fallback,
            ..DecodeOptions::default()
        }
    }

    /// Add one window's result: its segments, the running prompt, a detected language.
    pub(crate) fn add(&mut self, t: Transcript) {
        if self.out.detected_language.is_none() {
            self.out.detected_language = t.detected_language;
        }
        if !t.segments.is_empty() {
            self.prompt = Some(crate::text::join_segments(&t.segments));
        }
        self.out.segments.extend(t.segments);
    }
}

/// Transcribe 16 kHz mono samples with default options (blocking).
pub fn transcribe(engine: &Engine, samples: &[f32]) -> Result<Vec<Segment>, EngineError> {
    transcribe_with(engine, samples, &BatchOptions::default(), &mut |_, _| {})
}

/// Transcribe with options; `progress(done_ms, total_ms)` is called after each window.
pub fn transcribe_with(
    engine: &Engine,
    samples: &[f32],
    opts: &BatchOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<Segment>, EngineError> {
    Ok(transcribe_detailed(engine, samples, opts, progress)?.segments)
}

/// [`transcribe_with`], also reporting the detected language.
pub fn transcribe_detailed(
    engine: &Engine,
    samples: &[f32],
    opts: &BatchOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BatchTranscript, EngineError> {
    let total_ms = samples.len() as u64 * 1000 / TARGET_RATE as u64;
    let mut done = Progress::default();
    for w in plan_windows(samples, opts) {
        let dopts = done.window_options(opts, w.start);
        let t = engine.decode(&samples[w.clone()], &dopts)?;
        done.add(t);
        progress(w.end as u64 * 1000 / TARGET_RATE as u64, total_ms);
    }
    Ok(done.out)
}

/// Cut points for `samples`: consecutive, non-overlapping ranges covering everything.
pub fn plan_windows(samples: &[f32], opts: &BatchOptions) -> Vec<Range<usize>> {
    let max = (opts.max_window_ms.clamp(1_000, 30_000) * TARGET_RATE as u64 / 1000) as usize;
    let search = (opts.search_ms * TARGET_RATE as u64 / 1000) as usize;
    let search = search.clamp(FRAME_SAMPLES, max / 2);
    let mut out = Vec::new();
    let mut pos = 0;
    while samples.len() - pos > max {
        let hi = pos + max;
        let lo = hi - search;
        let cut = best_cut(&samples[lo..hi]) + lo;
        out.push(pos..cut);
        pos = cut;
    }
    if pos < samples.len() || out.is_empty() {
        out.push(pos..samples.len());
    }
    out
}

/// Index (in `region`) of the middle of its longest non-speech run, preferring later runs;
/// the quietest frame when every frame is speech.
fn best_cut(region: &[f32]) -> usize {
    let mut vad = Vad::new(VadConfig {
        aggressiveness: Aggressiveness::Aggressive,
        ..VadConfig::default()
    });
    let frames: Vec<(bool, f32)> = region
        .chunks_exact(FRAME_SAMPLES)
        .map(|f| {
            let e = f.iter().map(|v| v * v).sum::<f32>();
            (vad.frame_is_voiced(f), e)
        })
        .collect();
    if frames.is_empty() {
        return region.len();
    }
    let mut best: Option<(usize, usize)> = None; // (start, len)
    let mut i = 0;
    while i < frames.len() {
        if !frames[i].0 {
            let s = i;
            while i < frames.len() && !frames[i].0 {
                i += 1;
            }
            let len = i - s;
            if best.is_none_or(|(_, bl)| len >= bl) {
                best = Some((s, len));
            }
        } else {
            i += 1;
        }
    }
    let frame = match best {
        Some((s, len)) if len >= 2 => s + len / 2,
        _ => frames
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(i, _)| i)
            .unwrap_or(frames.len() - 1),
    };
    (frame * FRAME_SAMPLES + FRAME_SAMPLES / 2).min(region.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_audio_is_one_window() {
        let s = vec![0.0f32; 16000 * 5];
        assert_eq!(plan_windows(&s, &BatchOptions::default()), vec![0..s.len()]);
        assert_eq!(plan_windows(&[], &BatchOptions::default()), vec![0..0]);
    }

    #[test]
    fn long_audio_windows_cover_everything() {
        // 70 s of a tone with a silent gap every 7 s.
        let n = 16000 * 70;
        let s: Vec<f32> = (0..n)
            .map(|i| {
                if (i / 16000) % 7 == 6 {
                    0.0
                } else {
                    ((i as f32) * 0.05).sin() * 0.3
                }
            })
            .collect();
        let w = plan_windows(&s, &BatchOptions::default());
        assert!(w.len() >= 3);
        assert_eq!(w[0].start, 0);
        assert_eq!(w.last().unwrap().end, n);
        for pair in w.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(pair[0].len() <= 28 * 16000);
        }
    }
}
