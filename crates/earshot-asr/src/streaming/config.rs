//! A stream's settings, what it reports, and its counters: the types the server and the
//! benchmarks see.

use std::time::Duration;

use crate::engine::AudioCtx;
use crate::vad::VadConfig;

/// Streaming settings.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// VAD settings, including the endpointing silence.
    pub vad: VadConfig,
    /// When speech fills the window without a pause, a commit decode makes final the words
    /// that end at least this long (ms) before the window's end: whisper has heard what
    /// follows them.
    pub stable_margin_ms: u64,
    /// New audio (ms) between two partial decodes while speech is active.
    pub decode_interval_ms: u64,
    /// The same, while the utterance has shown no text yet: its first words should appear
    /// within a second of speaking, and a decode of a short window is cheap.
    pub first_decode_ms: u64,
    /// A partial decode that finds no free slot within this long is given up.
    pub partial_max_wait_ms: u64,
    /// A decode that spends more than this (ms) of CPU time is given up: a commit then keeps
    /// what the first pass saw, a partial is skipped. The work of one decode is bounded
    /// anyway (one pass over at most the window plus its margin, a token cap, one redo at a
    /// 15 s context: about 2 s of one core for tiny.en); this is the guard against audio
    /// that defeats those bounds. It counts CPU time, not wall time, so that finals depend
    /// on the audio only, never on how busy the machine is.
    pub decode_budget_ms: u64,
    /// Hard cap of the decoded window (ms); every decode's cost grows with the window. Speech
    /// that fills it without a pause is committed up to `stable_margin_ms` before its end,
    /// and the window is cut to at most half of it (about a third, usually).
    pub max_window_ms: u64,
    /// Audio kept before the detected speech start (ms).
    pub preroll_ms: u64,
    /// Emit partials.
    pub partials: bool,
    /// Utterances separated by less silence than this are decoded in one window, so whisper
    /// hears the previous words again; after a longer pause the window restarts (the
    /// committed text stays as the prompt).
    pub context_gap_ms: u64,
    /// Encoder context of the partial and interval commit decodes: tighter than the
    /// engine's, since the words near the window's end are not committed by them anyway.
    pub audio_ctx: AudioCtx,
    /// Encoder context of an utterance's final decode (`None`: the engine's policy).
    pub final_audio_ctx: Option<AudioCtx>,
    /// Start an utterance's final decode half way through the endpointing silence, so its
    /// words are ready when the end is certain.
    pub early_final: bool,
    /// When speech resumes after such a decode started, its words become final at the
    /// pause rather than at the next utterance end or the window's cap.
    pub commit_at_pause: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            vad: VadConfig::default(),
            stable_margin_ms: 1_000,
            decode_interval_ms: 1_000,
            first_decode_ms: 500,
            partial_max_wait_ms: 400,
            decode_budget_ms: 10_000,
            max_window_ms: 10_000,
            preroll_ms: 300,
            partials: true,
            context_gap_ms: 1_000,
            audio_ctx: AudioCtx::Adaptive {
                margin_ms: 2_000,
                floor_ms: 5_000,
            },
            final_audio_ctx: None,
            early_final: true,
            commit_at_pause: true,
        }
    }
}

/// What a stream reports. Times are ms on the stream's audio clock (0 = first sample).
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The VAD heard speech begin.
    SpeechStarted {
        /// Start of speech.
        at_ms: u64,
    },
    /// The VAD heard the utterance end (sent after its finals).
    UtteranceEnd {
        /// End of the last voiced audio.
        at_ms: u64,
    },
    /// The unstable hypothesis of the not-yet-final tail; a higher `rev` replaces a lower one.
    /// An empty `text` clears the previous partial.
    Partial {
        /// Revision, increasing over the whole stream.
        rev: u64,
        /// Hypothesis text.
        text: String,
        /// Start of its first word.
        start_ms: u64,
    },
    /// The stream's language was detected (once, from its first speech) and is kept for
    /// the rest of the stream. Sent before the finals of the decode that detected it.
    LanguageDetected {
        /// whisper's code (`"fr"`).
        language: String,
        /// whisper's probability for it.
        probability: f32,
    },
    /// Committed text (immutable). The server assigns `seq` and persists it. `start_ms`
    /// never goes below the previous final's `end_ms`.
    Final {
        /// Text.
        text: String,
        /// Start of its first word.
        start_ms: u64,
        /// End of its last word.
        end_ms: u64,
        /// Its words, in order, with times inside `start_ms..=end_ms`.
        words: Vec<crate::Word>,
    },
}

impl StreamEvent {
    /// Moves the event's times `ms` later: a stream that continues a session counts from
    /// where the session's audio got to, not from 0.
    pub fn shift(&mut self, ms: u64) {
        match self {
            StreamEvent::SpeechStarted { at_ms } | StreamEvent::UtteranceEnd { at_ms } => {
                *at_ms += ms
            }
            StreamEvent::Partial { start_ms, .. } => *start_ms += ms,
            StreamEvent::LanguageDetected { .. } => {}
            StreamEvent::Final {
                start_ms,
                end_ms,
                words,
                ..
            } => {
                *start_ms += ms;
                *end_ms += ms;
                for w in words {
                    w.start_ms += ms as i64;
                    w.end_ms += ms as i64;
                }
            }
        }
    }
}

/// Latency and work counters of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Per final: arrival of the end of its audio → final emitted.
    pub final_latencies: Vec<Duration>,
    /// Per utterance: arrival of its speech start → first partial (or final) emitted.
    pub first_partial_latencies: Vec<Duration>,
    /// Commit decodes run.
    pub commit_decodes: u64,
    /// Partial decodes run.
    pub partial_decodes: u64,
    /// Partial decodes given up (no slot in time) or made stale by a commit.
    pub partials_dropped: u64,
    /// Audio pushed (ms).
    pub audio_ms: u64,
    /// Final decodes started in a pause and used at the utterance's end.
    pub early_finals_used: u64,
    /// Early decodes whose words became final where speech resumed after the pause.
    pub pause_commits: u64,
    /// Final decodes started in a pause and given up: stale, failed, or echoing.
    pub early_finals_dropped: u64,
    /// Sum of the encoder contexts of all decodes (frames of 20 ms): the main cost driver.
    pub ctx_frames: u64,
}

impl StreamStats {
    /// All decodes run.
    pub fn decodes(&self) -> u64 {
        self.commit_decodes + self.partial_decodes
    }
}
