//! Live streams: VAD-gated decoding of a sliding window, with commits decided by the audio
//! alone, so what becomes final does not depend on how loaded the machine is.
//!
//! Push 16 kHz samples in, get [`StreamEvent`]s out:
//!
//! * the VAD gives `SpeechStarted` / `UtteranceEnd` and gates decoding (silence is never
//!   decoded: while nobody speaks only a short pre-roll is kept);
//! * **commit decodes** run at points fixed by the audio: at each utterance end (VAD
//!   silence of [`crate::vad::VadConfig::endpoint_silence_ms`]; the whole utterance is
//!   decoded once and becomes `Final`), and when speech without a pause fills the window
//!   ([`StreamConfig::max_window_ms`]; the words that end at least
//!   [`StreamConfig::stable_margin_ms`] before its end become `Final`). They run at
//!   [`crate::Priority::Commit`] and are never skipped, so the same audio gives the same
//!   finals alone, under load, or replayed faster than real time. One decode of a whole
//!   utterance is also both cheaper and more accurate than re-deciding it every second;
//! * **partial decodes** show the words not yet final (`Partial`, increasing `rev`) about
//!   every [`StreamConfig::decode_interval_ms`]. They are optional: they run at
//!   [`crate::Priority::Partial`], only when the stream has caught up with its audio, and are
//!   given up when no slot frees quickly, so a loaded machine shows partials less often
//!   while finals stay prompt;
//! * committed text before the window is the decoder prompt.
//!
//! [`LiveStream`] drives one WebSocket stream (raw frames, partial decodes in flight,
//! `flush`, `finish`); [`Backlog`] bounds and paces the audio waiting for it;
//! [`StreamingTranscriber`] is the policy over 16 kHz samples.

mod agreement;
mod backlog;
mod config;
mod live;
mod timing;
mod transcriber;

pub use backlog::{Backlog, BacklogPermit, FrameTooLarge};
pub use config::{StreamConfig, StreamEvent, StreamStats};
pub use live::{LiveError, LiveStream};
pub use transcriber::StreamingTranscriber;
