//! `earshot-asr`: earshot's speech path, free of Redis and HTTP.
//!
//! ```text
//! frames ─► audio (decode, resample to 16 kHz) ─► vad ─► streaming (finals at utterance ends)
//!                                                          │ decode requests by priority
//!                          scheduler (slots, admission) ─► engine (whisper.cpp)
//! files ─► audio::decode_file ─► batch::transcribe ──────► engine
//! ```
//!
//! * [`audio`]: [`decode_file`] / [`decode_bytes`] for whole files (WAV, MP3, FLAC, Ogg
//!   Vorbis), decoded block by block under a duration cap
//!   ([`audio::decode_bytes_limited`]), and [`StreamDecoder`] for raw WebSocket frames
//!   ([`AudioEncoding`]); typed [`AudioError`]s map to 415 / 413 / 422 / a WS error frame.
//! * [`vad`]: WebRTC VAD with debounced speech-start / utterance-end events.
//! * [`model`]: model lookup (`EARSHOT_MODEL`, data directories), [`model::list`],
//!   [`model::fetch`].
//! * [`engine`]: the shared whisper.cpp model ([`Engine`]) with a state pool, adaptive
//!   `audio_ctx` and hallucination guards.
//! * [`scheduler`]: decode slots by priority (commits before partials and uploads), stream
//!   admission from measured cost ([`Scheduler::try_admit`]) and metrics.
//! * [`streaming`]: [`LiveStream`] (one WebSocket stream), [`Backlog`] (its bounded,
//!   paced audio queue) and [`StreamingTranscriber`], the policy producing [`StreamEvent`]s.
//! * [`language`]: whisper's language codes and names.
//! * [`text`]: joining and normalising words, decoder-loop checks.
//! * [`batch`]: [`batch::transcribe`] for whole files, windowed at pauses.
//!
//! # Example
//!
//! ```no_run
//! use earshot_asr::{
//!     decode_file, AudioEncoding, Engine, EngineConfig, Scheduler, StreamConfig,
//!     StreamDecoder, StreamEvent, StreamingTranscriber,
//! };
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let path = earshot_asr::model::lookup(None)?; // EARSHOT_MODEL, then the data dirs
//! let engine = Engine::load(EngineConfig::new(path))?; // once per process
//!
//! // A whole file:
//! let audio = decode_file("talk.mp3")?;
//! for seg in earshot_asr::batch::transcribe(&engine, &audio.samples)? {
//!     println!("[{} - {}] {}", seg.start_ms, seg.end_ms, seg.text);
//! }
//!
//! // A live stream:
//! let sched = Scheduler::new(engine.clone());
//! let _permit = sched.try_admit().ok_or("overloaded")?; // None => close 1013
//! let mut decoder = StreamDecoder::new(AudioEncoding::PcmS16le, 48_000)?;
//! let mut stream = StreamingTranscriber::new(sched.clone(), StreamConfig::default());
//! # let frame: Vec<u8> = vec![];
//! let samples = decoder.push(&frame)?; // per WebSocket binary frame
//! for ev in stream.push(&samples).await? {
//!     if let StreamEvent::Final { text, .. } = ev {
//!         println!("{text}");
//!     }
//! }
//! let tail = decoder.finish()?;
//! stream.push(&tail).await?;
//! let last = stream.finish().await?; // always delivers the last words
//! # let _ = last;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod audio;
pub mod batch;
pub mod engine;
pub mod language;
mod loop_guard;
pub mod model;
pub mod scheduler;
pub mod streaming;
pub mod text;
pub mod vad;

pub use audio::{
    decode_bytes, decode_file, AudioEncoding, AudioError, DecodedAudio, StreamDecoder,
};
pub use engine::{AudioCtx, DecodeOptions, Engine, EngineConfig, EngineError, Transcript};
pub use scheduler::{
    AdmissionConfig, LoadSnapshot, Permit, Priority, Scheduler, SchedulerConfig, SharedSlots,
    UploadPermit, MAX_UPLOADS_PER_SLOT,
};
pub use streaming::{
    Backlog, BacklogPermit, FrameTooLarge, LiveError, LiveStream, StreamConfig, StreamEvent,
    StreamStats, StreamingTranscriber,
};

/// One recognised segment (times in ms on the caller's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Text, trimmed.
    pub text: String,
    /// Start.
    pub start_ms: i64,
    /// End.
    pub end_ms: i64,
    /// Words with their (approximate, token-timestamp based) times.
    pub words: Vec<Word>,
    /// whisper's no-speech probability for the window.
    pub no_speech_prob: f32,
    /// Mean token log-probability.
    pub avg_logprob: f32,
}

/// A word (one or more whisper tokens, split at leading spaces).
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Text including punctuation, no surrounding spaces.
    pub text: String,
    /// Start (ms).
    pub start_ms: i64,
    /// End (ms).
    pub end_ms: i64,
    /// Mean token probability.
    pub prob: f32,
}
