//! What the engine is told (settings, per-call options) and what it answers (transcripts,
//! errors), apart from how it runs whisper.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::text::join_segments;
use crate::Segment;

/// Samples per encoder frame (20 ms at 16 kHz).
pub(crate) const SAMPLES_PER_CTX: usize = 320;
/// whisper's full context (30 s).
pub const FULL_AUDIO_CTX: usize = 1500;

/// How the encoder context is sized per decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AudioCtx {
    /// Always the full 30 s (whisper.cpp's default; slowest, the reference for accuracy).
    Full,
    /// `audio length + margin_ms`, at least `floor_ms`, rounded up to a multiple of 64
    /// frames, at most 30 s.
    Adaptive {
        /// Extra context after the audio.
        margin_ms: u32,
        /// Minimum context.
        floor_ms: u32,
    },
}

impl AudioCtx {
    /// The `audio_ctx` value (encoder frames) for `n_samples` of 16 kHz audio; 0 = full.
    pub fn frames_for(&self, n_samples: usize) -> usize {
        match *self {
            AudioCtx::Full => FULL_AUDIO_CTX,
            AudioCtx::Adaptive {
                margin_ms,
                floor_ms,
            } => {
                let audio = n_samples.div_ceil(SAMPLES_PER_CTX);
                let want = (audio + margin_ms as usize / 20).max(floor_ms as usize / 20);
                let rounded = want.div_ceil(64) * 64;
                rounded.min(FULL_AUDIO_CTX)
            }
        }
    }
}

impl Default for AudioCtx {
    fn default() -> Self {
        AudioCtx::Adaptive {
            margin_ms: 3000,
            floor_ms: 10_000,
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The ggml model file.
    pub model_path: PathBuf,
    /// CPU threads per decode. Default 1, measured: ggml's threads spin at a barrier after
    /// every graph node, so a 2-thread decode stalls whenever a neighbour takes one core; on
    /// the shared 2-core machine (load 3-7) one thread per decode was 1.3-3x faster than two
    /// (batch RTF 0.50 vs 1.33 at the default `audio_ctx`), and two 1-thread decode slots
    /// give the same throughput as one 2-thread slot when idle. Use 2 on a dedicated machine
    /// that serves one stream at a time.
    pub threads: usize,
    /// Spoken language (`"en"`); ignored by English-only models.
    pub language: String,
    /// Flash attention in whisper.cpp. Off by default: measured on the 2-core AVX2 machine
    /// (ctx_probe, 1 thread, idle), it made every decode slower: full 30 s context 1.79 vs
    /// 0.89 s per audio s, a 10 s context 0.27 vs 0.20. It is a GPU-side win.
    pub flash_attn: bool,
    /// Encoder context sizing.
    pub audio_ctx: AudioCtx,
    /// Beam size; 1 = greedy (fastest; same WER as beam 5 on tiny.en in our measurements).
    pub beam_size: usize,
    /// Drop segments with no-speech probability above this...
    pub no_speech_thold: f32,
    /// ...and mean token log-probability below this.
    pub logprob_thold: f32,
    /// Drop segments whose mean token log-probability is below this, whatever no-speech says.
    pub hard_logprob_floor: f32,
    /// Maximum characters of the initial prompt (the most recent committed text is kept).
    pub max_prompt_chars: usize,
    /// A segment that repeats an n-gram more often than this in a row is dropped.
    pub max_ngram_repeats: usize,
    /// Do not decode audio with less voiced audio than this (ms); 0 disables VAD gating.
    pub min_voiced_ms: u64,
    /// Decoding states kept in the pool for reuse.
    pub max_pooled_states: usize,
    /// Time words by DTW over the model's alignment heads (when whisper.cpp has a preset
    /// for the model and flash attention is off), else by whisper's timestamp-token
    /// estimates. Measured on synthesized speech with known word positions (README, "Word
    /// timings"), DTW is far closer to where the words are.
    pub dtw_word_times: bool,
    /// With DTW on, also load the model without it, for decodes that read no word times
    /// ([`DecodeOptions::untimed`]: a stream's partials). Costs the weights' memory once more.
    pub untimed_context: bool,
}

impl EngineConfig {
    /// Defaults for `model_path`.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        EngineConfig {
            model_path: model_path.into(),
            threads: 1,
            language: "en".into(),
            flash_attn: false,
            audio_ctx: AudioCtx::default(),
            beam_size: 1,
            no_speech_thold: 0.6,
            logprob_thold: -1.0,
            hard_logprob_floor: -2.0,
            max_prompt_chars: 200,
            max_ngram_repeats: 3,
            min_voiced_ms: 90,
            max_pooled_states: 4,
            dtw_word_times: true,
            untimed_context: true,
        }
    }
}

/// Engine failures.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file is missing or not a whisper ggml model.
    #[error("cannot load whisper model {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// whisper.cpp failed while decoding.
    #[error("whisper decode failed: {0}")]
    Decode(String),
    /// The decode spent its [`DecodeOptions::time_budget`] and was given up.
    #[error("decode gave up after its time budget")]
    OverBudget,
    /// The caller set [`DecodeOptions::cancel`]: the result was no longer wanted.
    #[error("decode cancelled")]
    Cancelled,
    /// The decode task died (panic in a blocking thread, runtime shutting down).
    #[error("decode task failed: {0}")]
    Task(String),
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Context text (committed text before this audio); capped by the engine.
    pub prompt: Option<String>,
    /// The caller's own prompt (names, jargon, a vocabulary): put before the context and
    /// counted with it against [`EngineConfig::max_prompt_chars`], of which it takes at most
    /// three quarters when there is context; a longer one keeps its end, the context is cut
    /// from its oldest end (see [`crate::text::compose_prompt`]).
    pub user_prompt: Option<String>,
    /// Spoken language as whisper's code (`"de"`), [`AUTO_LANGUAGE`] to detect it before
    /// this decode, or `None` for [`EngineConfig::language`]. English-only models ignore it.
    pub language: Option<String>,
    /// Output English whatever the spoken language (whisper's translate task).
    pub translate: bool,
    /// Sampling temperature of the first pass: 0 is greedy (the default); above 0 samples
    /// at that temperature. With [`temperature_fallback`](Self::temperature_fallback) a
    /// low-confidence result is decoded again at rising temperatures.
    pub temperature: f32,
    /// Added to every timestamp (ms): where this audio starts on the caller's clock.
    pub offset_ms: i64,
    /// Temperature fallback on low-confidence output (better accuracy on hard audio, but up
    /// to 6x the cost; streaming turns it off since it re-decodes anyway).
    pub temperature_fallback: bool,
    /// Skip the VAD gate (the caller already knows there is speech).
    pub skip_vad_gate: bool,
    /// Keep a looped segment cut back to one copy of its repeated phrase, instead of dropping
    /// it and redoing the decode with the full 30 s context. Streams use this: a
    /// full-context decode costs as much as four to six of their decodes and stalls a slot
    /// for ~2 s (the p95 of final latency), while the loop guard has already stopped the loop
    /// right after the words that were said; a stream re-decodes its window anyway.
    pub salvage_loops: bool,
    /// Encoder context policy for this call (`None`: the engine's
    /// [`EngineConfig::audio_ctx`]). Streaming uses a tighter one: it re-decodes the same
    /// audio every second, so a word a short context misses is picked up by the next decode.
    pub audio_ctx: Option<AudioCtx>,
    /// One pass over the audio (whisper.cpp's `single_segment`). Without it whisper seeks
    /// through the audio segment by segment, re-encoding from each segment's end; a decode
    /// whose timestamps advance a little at a time then encodes the same window again and
    /// again, which held a stream's finals back for half a minute. A stream's window is a
    /// few seconds: one pass reads all of it.
    pub single_pass: bool,
    /// Context of the redo of a decode that looped (`None`: the full 30 s). Streams use a
    /// smaller one: a full-context decode costs several of theirs.
    pub retry_ctx: Option<AudioCtx>,
    /// Give the decode (and its redo) up once its thread has spent this much CPU time:
    /// what one decode may cost, whatever the audio. CPU time, not wall time, so that a busy
    /// machine does not change what a decode returns.
    pub time_budget: Option<Duration>,
    /// Set by the caller once the result is no longer wanted (a partial made stale by a
    /// commit): whisper stops at its next check and the slot and the core go to work that
    /// still matters, instead of finishing a decode nobody will read.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Nobody reads this decode's word times (a partial shows only text): it may run
    /// without DTW alignment, on the engine's untimed context. Its words are then timed
    /// by whisper's timestamp-token estimates.
    pub untimed: bool,
}

/// The `language` value that asks the engine to detect the spoken language.
pub const AUTO_LANGUAGE: &str = "auto";

/// A language whisper detected.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedLanguage {
    /// whisper's code (`"de"`).
    pub code: String,
    /// whisper's probability for it (0..=1).
    pub probability: f32,
}

/// The result of one decode.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Kept segments.
    pub segments: Vec<Segment>,
    /// Audio duration decoded (ms).
    pub audio_ms: u64,
    /// Wall time spent in whisper.
    pub elapsed: Duration,
    /// True if the VAD gate skipped the decode.
    pub skipped_silence: bool,
    /// Segments removed by the hallucination guards.
    pub dropped_segments: usize,
    /// The `audio_ctx` used (1500 = full).
    pub audio_ctx: usize,
    /// The short-context decode looked degenerate and was redone with a wider context.
    pub retried_wider_ctx: bool,
    /// The language detected before this decode (only when [`DecodeOptions::language`] was
    /// [`AUTO_LANGUAGE`] and the audio had speech).
    pub detected_language: Option<DetectedLanguage>,
}

impl Transcript {
    /// All kept text, space-joined.
    pub fn text(&self) -> String {
        join_segments(&self.segments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_sizes() {
        let a = AudioCtx::Adaptive {
            margin_ms: 2000,
            floor_ms: 5000,
        };
        assert_eq!(a.frames_for(16000), 256); // 1 s -> floor 250 -> 256
        assert_eq!(a.frames_for(16000 * 10), 640); // 10 s + 2 s = 600 -> 640
        assert_eq!(AudioCtx::default().frames_for(16000 * 3), 512); // floor 10 s
        assert_eq!(AudioCtx::default().frames_for(16000 * 12), 768); // 15 s
        assert_eq!(a.frames_for(16000 * 40), 1500);
        assert_eq!(AudioCtx::Full.frames_for(1), 1500);
    }
}
