//! One live stream as the server drives it: raw frames in, events out.
//!
//! The route only moves messages; this type owns how a stream is driven: frames are decoded
//! to 16 kHz ([`StreamDecoder`]), commit decodes run in order as the audio reaches them,
//! and a partial decode runs in the background only once the stream has caught up with its
//! audio (the route says so with [`LiveStream::caught_up`] after draining its queue), so a
//! stream that falls behind spends the machine on finals, not on partials nobody will see.

use std::time::Instant;

use super::config::{StreamConfig, StreamEvent, StreamStats};
use super::transcriber::StreamingTranscriber;
use crate::audio::{AudioEncoding, AudioError, StreamDecoder};
use crate::engine::EngineError;
use crate::scheduler::Scheduler;

/// Why a live stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The client's audio is not what it declared.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The speech engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A live stream: frame decoder plus transcription policy.
#[derive(Debug)]
pub struct LiveStream {
    decoder: StreamDecoder,
    transcriber: StreamingTranscriber,
    /// Where this stream's audio starts in its session (see [`LiveStream::continue_after`]).
    origin_ms: u64,
}

impl LiveStream {
    /// A stream of `encoding` at `sample_rate` Hz, decoding through `sched`.
    pub fn new(
        sched: Scheduler,
        cfg: StreamConfig,
        encoding: AudioEncoding,
        sample_rate: u32,
    ) -> Result<Self, AudioError> {
        Ok(LiveStream {
            decoder: StreamDecoder::new(encoding, sample_rate)?,
            transcriber: StreamingTranscriber::new(sched, cfg),
            origin_ms: 0,
        })
    }

    /// This stream continues a session whose audio so far ended at `ms` (a reconnect, on
    /// this node or another): every time it reports counts from there, so a session's
    /// times never go backwards across connections.
    pub fn continue_after(&mut self, ms: u64) {
        self.origin_ms = ms;
    }

    /// Change the endpointing silence and whether partials are decoded.
    pub fn configure(&mut self, endpointing_ms: Option<u64>, partials: Option<bool>) {
        if let Some(ms) = endpointing_ms {
            self.transcriber.set_endpoint_silence_ms(ms);
        }
        if let Some(p) = partials {
            self.transcriber.set_partials(p);
        }
    }

    /// Speech settings for every following decode: the user's prompt (`Some("")` clears
    /// it), the language (`Some(AUTO_LANGUAGE)` detects it once) and translation.
    pub fn configure_speech(
        &mut self,
        prompt: Option<String>,
        language: Option<String>,
        translate: Option<bool>,
    ) {
        if let Some(p) = prompt {
            self.transcriber.set_prompt(Some(p));
        }
        if let Some(l) = language {
            self.transcriber.set_language(Some(l));
        }
        if let Some(t) = translate {
            self.transcriber.set_translate(t);
        }
    }

    /// The events of the last call on the session's time line, after the language
    /// detected during it (if any).
    fn on_session_timeline(&mut self, mut events: Vec<StreamEvent>) -> Vec<StreamEvent> {
        if self.origin_ms > 0 {
            for e in &mut events {
                e.shift(self.origin_ms);
            }
        }
        if let Some(d) = self.transcriber.take_detected_language() {
            events.insert(
                0,
                StreamEvent::LanguageDetected {
                    language: d.code,
                    probability: d.probability,
                },
            );
        }
        events
    }

    /// One binary frame, received at `received_at`: its finals (commit decodes due in it
    /// run now) and VAD events.
    pub async fn audio(
        &mut self,
        frame: &[u8],
        received_at: Instant,
    ) -> Result<Vec<StreamEvent>, LiveError> {
        let samples = self.decoder.push(frame)?;
        let events = self.transcriber.feed(&samples, received_at).await?;
        Ok(self.on_session_timeline(events))
    }

    /// The stream has no audio waiting: start a partial decode if one is due.
    pub fn caught_up(&mut self) {
        self.transcriber.start_partial_if_due();
    }

    /// The partial of the decode in flight; pending forever when there is none.
    /// Cancel-safe, for a `select!` beside the socket.
    pub async fn next_partial(&mut self) -> Result<Vec<StreamEvent>, LiveError> {
        let events = self.transcriber.partial_ready().await?;
        Ok(self.on_session_timeline(events))
    }

    /// Finalize everything heard so far; the stream goes on.
    pub async fn flush(&mut self) -> Result<Vec<StreamEvent>, LiveError> {
        let events = self.transcriber.flush().await?;
        Ok(self.on_session_timeline(events))
    }

    /// End of the stream: the last samples in the decoder, then every last word.
    pub async fn finish(&mut self) -> Result<Vec<StreamEvent>, LiveError> {
        let tail = self.decoder.finish().unwrap_or_default();
        let mut events = self.transcriber.feed(&tail, Instant::now()).await?;
        events.extend(self.transcriber.finish().await?);
        Ok(self.on_session_timeline(events))
    }

    /// Latency and work counters.
    pub fn stats(&self) -> &StreamStats {
        self.transcriber.stats()
    }
}
