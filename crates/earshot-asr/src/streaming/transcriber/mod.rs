//! The policy of one stream over 16 kHz samples: VAD events, the window, commit decodes at
//! points fixed by the audio, optional partial decodes in the background.

mod commits;
mod early;
mod output;
mod partials;
mod window;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::{StreamConfig, StreamEvent, StreamStats};
use crate::audio::TARGET_RATE;
use crate::engine::{DecodeOptions, DetectedLanguage, EngineError};
use crate::scheduler::Scheduler;
use crate::vad::{Vad, VadEvent, FRAME_SAMPLES};
use crate::Word;

use commits::RETRY_CTX;
use early::Early;
use partials::Pending;

const SPM: u64 = TARGET_RATE as u64 / 1000; // samples per ms

/// One live stream's transcription state. Push 16 kHz mono samples; decoding goes through the
/// shared [`Scheduler`].
pub struct StreamingTranscriber {
    cfg: StreamConfig,
    sched: Scheduler,
    vad: Vad,
    /// The window (audio not yet trimmed).
    buf: Vec<f32>,
    /// Stream sample index of `buf[0]`.
    buf_start: u64,
    /// Samples pushed so far.
    total: u64,
    in_utterance: bool,
    /// `total` at the last commit decode (or speech start).
    last_commit_at: u64,
    /// `total` at the last partial decode's start (or speech start).
    last_partial_at: u64,
    /// Committed words whose audio is still in the window.
    committed_in_window: Vec<Word>,
    /// End (ms) of the last committed word.
    last_committed_end_ms: i64,
    /// End (ms) of the last final sent: no final starts before it.
    last_final_end_ms: u64,
    /// Uncommitted words of the last commit decode.
    tail: Vec<Word>,
    /// What the partial shows: uncommitted words of the newest decode of either kind.
    hypothesis: Vec<Word>,
    /// Committed text before the window (the prompt), tail only.
    prompt_text: String,
    /// The user's prompt (names, jargon), before the committed text in every decode.
    user_prompt: Option<String>,
    /// Spoken language for the engine; [`AUTO_LANGUAGE`] until a decode detects it.
    language: Option<String>,
    /// Output English (whisper's translate task).
    translate: bool,
    /// The language detected and pinned, not yet taken by [`Self::take_detected_language`].
    detected: Option<DetectedLanguage>,
    rev: u64,
    last_partial: String,
    /// Bumped by every commit decode.
    generation: u64,
    pending: Option<Pending>,
    /// An utterance's final decode started in a pause, before the end is certain.
    early: Option<Early>,
    arrivals: VecDeque<(u64, Instant)>,
    /// Speech start (sample) awaiting its first partial.
    first_partial_pending: Option<u64>,
    /// Audio (ms) not yet counted in the scheduler's load meter: reported a second at a
    /// time, not per frame, since the meter is shared by every stream behind one lock.
    unreported_ms: u64,
    stats: StreamStats,
}

impl std::fmt::Debug for StreamingTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingTranscriber")
            .field("total_ms", &(self.total / SPM))
            .field("in_utterance", &self.in_utterance)
            .finish()
    }
}

impl Drop for StreamingTranscriber {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.drop_stale();
        }
        if let Some(e) = self.early.take() {
            e.cancel();
        }
    }
}

impl StreamingTranscriber {
    /// A new stream decoding through `sched`.
    pub fn new(sched: Scheduler, cfg: StreamConfig) -> Self {
        StreamingTranscriber {
            vad: Vad::new(cfg.vad.clone()),
            cfg,
            sched,
            buf: Vec::new(),
            buf_start: 0,
            total: 0,
            in_utterance: false,
            last_commit_at: 0,
            last_partial_at: 0,
            committed_in_window: Vec::new(),
            last_committed_end_ms: -1,
            last_final_end_ms: 0,
            tail: Vec::new(),
            hypothesis: Vec::new(),
            prompt_text: String::new(),
            user_prompt: None,
            language: None,
            translate: false,
            detected: None,
            rev: 0,
            last_partial: String::new(),
            generation: 0,
            pending: None,
            early: None,
            arrivals: VecDeque::new(),
            first_partial_pending: None,
            unreported_ms: 0,
            stats: StreamStats::default(),
        }
    }

    /// Change the endpointing silence (the `configure` message).
    pub fn set_endpoint_silence_ms(&mut self, ms: u64) {
        self.cfg.vad.endpoint_silence_ms = ms;
        self.vad.set_endpoint_silence_ms(ms);
    }

    /// Turn partials on or off.
    pub fn set_partials(&mut self, on: bool) {
        self.cfg.partials = on;
    }

    /// The user's prompt for every following decode (`None` or empty: none).
    pub fn set_prompt(&mut self, prompt: Option<String>) {
        self.user_prompt = prompt.filter(|p| !p.trim().is_empty());
    }

    /// The spoken language (`None`: the engine's; [`AUTO_LANGUAGE`]: detect it in the next
    /// decode with speech and keep it).
    pub fn set_language(&mut self, language: Option<String>) {
        self.language = language;
    }

    /// Output English whatever the spoken language.
    pub fn set_translate(&mut self, translate: bool) {
        self.translate = translate;
    }

    /// The language detected since the last call, once.
    pub fn take_detected_language(&mut self) -> Option<DetectedLanguage> {
        self.detected.take()
    }

    /// The settings.
    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    /// Latency and work counters so far.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Audio pushed so far (ms).
    pub fn position_ms(&self) -> u64 {
        self.total / SPM
    }

    /// [`feed`](Self::feed) audio received now, then wait for a partial decode if one is due
    /// (the simple way to drive a stream from a file or a test).
    pub async fn push(&mut self, samples: &[f32]) -> Result<Vec<StreamEvent>, EngineError> {
        self.push_received(samples, Instant::now()).await
    }

    /// [`push`](Self::push) with the time the audio was received.
    pub async fn push_received(
        &mut self,
        samples: &[f32],
        received_at: Instant,
    ) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = self.feed(samples, received_at).await?;
        if self.start_partial_if_due() {
            events.extend(self.partial_ready().await?);
        }
        Ok(events)
    }

    /// Take in audio. Commit decodes due at this point of the audio (an interval commit, a
    /// window at its cap, an utterance end) run here, in order, at commit priority; partial
    /// decodes do not (see [`start_partial_if_due`](Self::start_partial_if_due)).
    pub async fn feed(
        &mut self,
        samples: &[f32],
        received_at: Instant,
    ) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        if samples.is_empty() {
            return Ok(events);
        }
        self.arrivals
            .push_back((self.total + samples.len() as u64, received_at));
        let mut rest = samples;
        while !rest.is_empty() {
            // Up to the next VAD frame boundary, so every decision falls on the same sample
            // however the audio was cut into frames.
            let to_boundary = FRAME_SAMPLES - (self.total as usize % FRAME_SAMPLES);
            let n = to_boundary.min(rest.len());
            let (chunk, r) = rest.split_at(n);
            rest = r;
            self.buf.extend_from_slice(chunk);
            self.total += n as u64;
            let (_, vad_events) = self.vad.push(chunk);
            for ev in vad_events {
                match ev {
                    VadEvent::SpeechStarted { at_ms } => self.on_speech_started(at_ms, &mut events),
                    VadEvent::UtteranceEnd { at_ms } => {
                        self.commit_all(&mut events).await?;
                        events.push(StreamEvent::UtteranceEnd { at_ms });
                        self.in_utterance = false;
                    }
                }
            }
            if !self.total.is_multiple_of(FRAME_SAMPLES as u64) {
                continue; // the rest of this frame comes with the next push
            }
            if self.in_utterance && self.buf.len() as u64 >= self.cfg.max_window_ms * SPM {
                self.commit_at_cap(&mut events).await?;
            }
            self.early_final_step(&mut events).await;
            if !self.in_utterance {
                self.trim_idle();
            }
        }
        self.unreported_ms += samples.len() as u64 / SPM;
        if self.unreported_ms >= 1_000 {
            self.sched
                .stream_audio(std::mem::take(&mut self.unreported_ms));
        }
        self.stats.audio_ms = self.total / SPM;
        self.prune_arrivals();
        Ok(events)
    }

    /// Finalize everything heard so far (the `flush` message); the stream stays open.
    pub async fn flush(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        self.commit_all(&mut events).await?;
        self.move_window_past_committed(self.total);
        Ok(events)
    }

    /// End of stream: finalize and deliver the last words (plus `UtteranceEnd` if speech was
    /// still going on).
    pub async fn finish(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        let end = self.vad.finish();
        self.commit_all(&mut events).await?;
        self.move_window_past_committed(self.total);
        if let Some(VadEvent::UtteranceEnd { at_ms }) = end {
            events.push(StreamEvent::UtteranceEnd { at_ms });
        }
        self.in_utterance = false;
        Ok(events)
    }

    fn on_speech_started(&mut self, at_ms: u64, events: &mut Vec<StreamEvent>) {
        self.in_utterance = true;
        let start_sample = at_ms * SPM;
        // Keep the pre-roll before the speech start, drop older audio.
        let keep_from = start_sample.saturating_sub(self.cfg.preroll_ms * SPM);
        if self.tail.is_empty() && self.committed_in_window.is_empty() {
            self.trim_to(keep_from);
        }
        self.last_commit_at = self.total;
        self.last_partial_at = self.total;
        self.first_partial_pending = Some(start_sample);
        events.push(StreamEvent::SpeechStarted { at_ms });
    }

    fn decode_options(
        &self,
        audio_ctx: Option<crate::engine::AudioCtx>,
        salvage: bool,
    ) -> DecodeOptions {
        DecodeOptions {
            audio_ctx,
            // A partial may show a loop cut back to one copy; a commit never keeps one.
            salvage_loops: salvage,
            prompt: (!self.prompt_text.is_empty()).then(|| self.prompt_text.clone()),
            user_prompt: self.user_prompt.clone(),
            language: self.language.clone(),
            translate: self.translate,
            offset_ms: (self.buf_start / SPM) as i64,
            temperature_fallback: false,
            temperature: 0.0,
            skip_vad_gate: false,
            single_pass: true,
            retry_ctx: Some(RETRY_CTX),
            time_budget: Some(Duration::from_millis(self.cfg.decode_budget_ms)),
            cancel: None,
            untimed: false,
        }
    }
}
