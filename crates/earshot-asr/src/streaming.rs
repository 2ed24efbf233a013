//! The per-connection streaming policy: VAD + LocalAgreement-2 over a sliding window, as in
//! whisper_streaming (Macháček et al., 2023).
//!
//! Push 16 kHz samples in, get [`StreamEvent`]s out:
//!
//! * the VAD gives `SpeechStarted` / `UtteranceEnd` and gates decoding (silence is never
//!   decoded: while nobody speaks only a short pre-roll is kept);
//! * while speech is active, the window (audio since the utterance start, or since the last
//!   trim) is re-decoded every [`StreamConfig::decode_interval_ms`] of new audio. Words that two
//!   consecutive decodes agree on (the longest common prefix of their uncommitted parts)
//!   become a `Final`; the rest is the `Partial` hypothesis, with an increasing `rev`;
//! * at the utterance end (VAD silence of [`crate::vad::VadConfig::endpoint_silence_ms`]) the
//!   window is decoded one last time and everything is committed, then the window restarts;
//! * a window that grows beyond [`StreamConfig::max_window_ms`] (long speech without a pause)
//!   is trimmed at the end of its last committed word;
//! * the committed text before the window is the decoder prompt (capped by the engine);
//! * `flush()` finalizes everything heard so far; `finish()` (stream close) always delivers
//!   the last words.
//!
//! Latencies are measured against the wall-clock arrival of the audio (the stream is assumed
//! to arrive in real time) and recorded as `earshot_asr_final_latency_seconds` and
//! `earshot_asr_first_partial_latency_seconds`; [`StreamingTranscriber::stats`] exposes them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::TARGET_RATE;
use crate::engine::{norm_word, AudioCtx, DecodeOptions, EngineError};
use crate::scheduler::Scheduler;
use crate::vad::{Vad, VadConfig, VadEvent, FRAME_SAMPLES};
use crate::Word;

const SPM: u64 = TARGET_RATE as u64 / 1000; // samples per ms

/// Streaming settings.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// VAD settings, including the endpointing silence.
    pub vad: VadConfig,
    /// New audio (ms) between two decodes while speech is active.
    pub decode_interval_ms: u64,
    /// The same, while the utterance has shown no text yet: its first words should appear
    /// within a second of speaking, and a decode of a short window is cheap.
    pub first_decode_ms: u64,
    /// Hard cap of the decoded window (ms). Every decode's cost grows with the window, and a
    /// stream decodes every second: 8 s (trimmed to 2/3 at the cap) measured 0.39 core-s per
    /// audio-s against 0.72 for 12 s, at the same WER (`asr_bench cost4`).
    pub max_window_ms: u64,
    /// Audio kept before the detected speech start (ms).
    pub preroll_ms: u64,
    /// Emit partials.
    pub partials: bool,
    /// Utterances separated by less silence than this are decoded in one window, so whisper
    /// hears the previous words again; after a longer pause the window restarts (the
    /// committed text stays as the prompt). Measured over four arrangements of the clips
    /// (`asr_bench cost4`): 1 s gave 11.8 % WER at 0.40 core-s per audio-s, 3 s 16.0 % at
    /// 0.50: a longer window made tiny.en re-read its prompt more often than it helped.
    pub context_gap_ms: u64,
    /// Encoder context of the interval decodes. Tighter than the engine's (batch) policy: a
    /// stream re-decodes its window every second, and LocalAgreement only commits words two
    /// decodes agree on, so a last word a short context misses is simply seen by the next
    /// decode. The final decode of an utterance (nothing comes after it) uses the engine's.
    pub audio_ctx: AudioCtx,
    /// Encoder context of an utterance's final decode (`None`: the engine's policy).
    pub final_audio_ctx: Option<AudioCtx>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            vad: VadConfig::default(),
            decode_interval_ms: 1_000,
            first_decode_ms: 500,
            max_window_ms: 8_000,
            preroll_ms: 300,
            partials: true,
            context_gap_ms: 1_000,
            audio_ctx: AudioCtx::Adaptive {
                margin_ms: 2_000,
                floor_ms: 5_000,
            },
            final_audio_ctx: None,
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
    /// Committed text (immutable). The server assigns `seq` and persists it.
    Final {
        /// Text.
        text: String,
        /// Start of its first word.
        start_ms: u64,
        /// End of its last word.
        end_ms: u64,
    },
}

/// Latency and work counters of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Per final: arrival of the end of its audio → final emitted.
    pub final_latencies: Vec<Duration>,
    /// Per utterance: arrival of its speech start → first partial (or final) emitted.
    pub first_partial_latencies: Vec<Duration>,
    /// Decodes run.
    pub decodes: u64,
    /// Wall time in decodes (incl. waiting for a slot).
    pub decode_time: Duration,
    /// Audio pushed (ms).
    pub audio_ms: u64,
    /// Decodes redone with the full 30 s context after degenerate output.
    pub full_ctx_retries: u64,
    /// Sum of the encoder contexts of all decodes (frames of 20 ms): the main cost driver.
    pub ctx_frames: u64,
}

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
    /// `total` at the last decode.
    last_decode_at: u64,
    /// Committed words whose audio is still in the window.
    committed_in_window: Vec<Word>,
    /// End (ms) of the last committed word.
    last_committed_end_ms: i64,
    /// Uncommitted words of the previous decode.
    hypothesis: Vec<Word>,
    /// Committed text before the window (the prompt), tail only.
    prompt_text: String,
    rev: u64,
    last_partial: String,
    arrivals: VecDeque<(u64, Instant)>,
    /// Speech start (sample) awaiting its first partial.
    first_partial_pending: Option<u64>,
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
            last_decode_at: 0,
            committed_in_window: Vec::new(),
            last_committed_end_ms: -1,
            hypothesis: Vec::new(),
            prompt_text: String::new(),
            rev: 0,
            last_partial: String::new(),
            arrivals: VecDeque::new(),
            first_partial_pending: None,
            stats: StreamStats::default(),
        }
    }

    /// Change the endpointing silence (the `configure` message).
    pub fn set_endpoint_silence_ms(&mut self, ms: u64) {
        self.cfg.vad.endpoint_silence_ms = ms;
        self.vad.set_endpoint_silence_ms(ms);
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

    /// Push 16 kHz mono samples (any amount); returns the events they caused, in order.
    pub async fn push(&mut self, samples: &[f32]) -> Result<Vec<StreamEvent>, EngineError> {
        self.push_received(samples, Instant::now()).await
    }

    /// [`push`](Self::push) with the time the audio was received (e.g. when the WebSocket
    /// frame arrived, if it waited in a queue while a decode ran), so latencies are measured
    /// from the real arrival. Equivalent to [`feed`](Self::feed) then
    /// [`decode_if_due`](Self::decode_if_due).
    pub async fn push_received(
        &mut self,
        samples: &[f32],
        received_at: Instant,
    ) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = self.feed(samples, received_at).await?;
        events.extend(self.decode_if_due().await?);
        Ok(events)
    }

    /// Take in audio without running the periodic decode (only an utterance end, or a window
    /// at its cap, decodes here). A caller that fell behind (frames queued while a decode
    /// ran) feeds everything queued and then calls [`decode_if_due`](Self::decode_if_due)
    /// once: one decode covers the backlog, so a loaded stream decodes less often instead of
    /// falling further behind.
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
            // Feed up to the next VAD frame boundary so events are handled in stream order.
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
                        self.finalize_utterance(&mut events).await?;
                        events.push(StreamEvent::UtteranceEnd { at_ms });
                        self.in_utterance = false;
                    }
                }
            }
            // A large backlog must not grow the window past its cap undecoded.
            if self.in_utterance && (self.buf.len() as u64) >= self.cfg.max_window_ms * SPM {
                self.decode_and_agree(&mut events).await?;
            }
            if !self.in_utterance {
                self.trim_idle();
            }
        }
        self.stats.audio_ms = self.total / SPM;
        self.prune_arrivals();
        Ok(events)
    }

    /// Run the periodic decode if speech is active and at least
    /// [`StreamConfig::decode_interval_ms`] of audio came in since the last one
    /// ([`StreamConfig::first_decode_ms`] until the utterance has shown text).
    pub async fn decode_if_due(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        if self.in_utterance && self.total - self.last_decode_at >= self.interval_ms() * SPM {
            self.decode_and_agree(&mut events).await?;
            self.prune_arrivals();
        }
        Ok(events)
    }

    /// Audio (ms) the next periodic decode waits for.
    fn interval_ms(&self) -> u64 {
        if self.first_partial_pending.is_some() {
            self.cfg.first_decode_ms.min(self.cfg.decode_interval_ms)
        } else {
            self.cfg.decode_interval_ms
        }
    }

    /// Finalize everything heard so far (the `flush` message); the stream stays open.
    pub async fn flush(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        self.finalize_window(&mut events).await?;
        Ok(events)
    }

    /// End of stream: finalize and deliver the last words (plus `UtteranceEnd` if speech was
    /// still going on).
    pub async fn finish(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let mut events = Vec::new();
        let end = self.vad.finish();
        self.finalize_window(&mut events).await?;
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
        if self.hypothesis.is_empty() && self.committed_in_window.is_empty() {
            self.trim_to(keep_from);
        }
        self.last_decode_at = self.total;
        self.first_partial_pending = Some(start_sample);
        events.push(StreamEvent::SpeechStarted { at_ms });
    }

    fn trim_idle(&mut self) {
        if !self.hypothesis.is_empty() {
            return;
        }
        if !self.committed_in_window.is_empty() {
            // Keep the previous utterance as context unless the pause got long.
            let silent_ms = (self.total / SPM).saturating_sub(self.vad.last_voiced_end_ms());
            if silent_ms < self.cfg.context_gap_ms
                && (self.buf.len() as u64) < self.cfg.max_window_ms * SPM
            {
                return;
            }
            self.retire_committed();
        }
        // Pre-roll plus the VAD's start window (the start is reported up to that far back).
        let keep = (self.cfg.preroll_ms + 30 * self.cfg.vad.start_window_frames as u64 + 60) * SPM;
        if self.total > self.buf_start + keep {
            self.trim_to(self.total - keep);
        }
    }

    /// Drop window audio before stream sample `s`.
    fn trim_to(&mut self, s: u64) {
        if s <= self.buf_start {
            return;
        }
        let n = ((s - self.buf_start) as usize).min(self.buf.len());
        self.buf.drain(..n);
        self.buf_start += n as u64;
    }

    fn window_offset_ms(&self) -> i64 {
        (self.buf_start / SPM) as i64
    }

    /// Decode the window; `last` (an utterance's final decode) uses the engine's context
    /// policy instead of the stream's tighter one.
    async fn run_decode(&mut self, last: bool) -> Result<Vec<Word>, EngineError> {
        let opts = DecodeOptions {
            audio_ctx: if last {
                self.cfg.final_audio_ctx
            } else {
                Some(self.cfg.audio_ctx)
            },
            salvage_loops: true,
            prompt: if self.prompt_text.is_empty() {
                None
            } else {
                Some(self.prompt_text.clone())
            },
            offset_ms: self.window_offset_ms(),
            temperature_fallback: false,
            skip_vad_gate: false,
        };
        self.last_decode_at = self.total;
        let t0 = Instant::now();
        let t = self.sched.decode(self.buf.clone(), opts).await?;
        self.stats.decodes += 1;
        self.stats.full_ctx_retries += u64::from(t.retried_full_ctx);
        self.stats.ctx_frames += t.audio_ctx as u64;
        self.stats.decode_time += t0.elapsed();
        let mut words: Vec<Word> = t.segments.into_iter().flat_map(|s| s.words).collect();
        crate::engine::collapse_repeats(&mut words);
        Ok(words)
    }

    /// Remove from `new` the words already committed (LocalAgreement's `insert`).
    fn strip_committed(&self, mut new: Vec<Word>) -> Vec<Word> {
        let c = &self.committed_in_window;
        if c.is_empty() {
            return new;
        }
        // The window starts where the committed words start, so a new decode begins with
        // them again, possibly revised ("close" -> "clubs") or with a word more or less:
        // align the committed words to a prefix of the new decode by edit distance.
        let cw: Vec<String> = c.iter().map(|w| norm_word(&w.text)).collect();
        let nw: Vec<String> = new.iter().map(|w| norm_word(&w.text)).collect();
        let (k, dist) = aligned_prefix(&cw, &nw);
        if dist <= (cw.len() / 2).max(1) {
            new.drain(..k);
            return new;
        }
        // Otherwise by time, then by n-gram overlap with the committed tail (whisper_streaming).
        new.retain(|w| w.start_ms > self.last_committed_end_ms - 100);
        if let Some(first) = new.first() {
            if (first.start_ms - self.last_committed_end_ms).abs() < 1000 {
                let max_n = c.len().min(new.len()).min(5);
                for i in (1..=max_n).rev() {
                    let tail: Vec<String> = c[c.len() - i..]
                        .iter()
                        .map(|w| norm_word(&w.text))
                        .collect();
                    let head: Vec<String> = new[..i].iter().map(|w| norm_word(&w.text)).collect();
                    if tail == head {
                        new.drain(..i);
                        break;
                    }
                }
            }
        }
        new
    }

    async fn decode_and_agree(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), EngineError> {
        let words = self.run_decode(false).await?;
        let new = self.strip_committed(words);
        if !self.plausible(&new) {
            // An echo of the prompt or of committed text: this decode tells us nothing.
            metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
            return Ok(());
        }
        let agreed = self
            .hypothesis
            .iter()
            .zip(&new)
            .take_while(|(a, b)| norm_word(&a.text) == norm_word(&b.text))
            .count();
        let commit: Vec<Word> = new[..agreed].to_vec();
        self.hypothesis = new[agreed..].to_vec();
        self.commit(commit, events);
        self.emit_partial(events);
        self.enforce_window_cap(events);
        Ok(())
    }

    /// Utterance end: commit everything, but keep the window (and its committed words) as
    /// context for the next utterance (see [`StreamConfig::context_gap_ms`]).
    async fn finalize_utterance(
        &mut self,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), EngineError> {
        self.commit_all(events).await?;
        self.last_decode_at = self.total;
        Ok(())
    }

    /// Decode the window one last time, commit everything and restart the window (flush,
    /// finish).
    async fn finalize_window(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), EngineError> {
        self.commit_all(events).await?;
        // The window restarts after this point.
        self.move_window_past_committed(self.total);
        Ok(())
    }

    async fn commit_all(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), EngineError> {
        let has_something = self.in_utterance || !self.hypothesis.is_empty();
        if has_something && !self.buf.is_empty() {
            let commit = match self.run_decode(true).await {
                Ok(words) => {
                    let new = self.strip_committed(words);
                    if !self.plausible(&new) {
                        metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
                        std::mem::take(&mut self.hypothesis)
                    } else if new.is_empty() {
                        // The last decode saw nothing new: keep what the previous one saw.
                        std::mem::take(&mut self.hypothesis)
                    } else {
                        new
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "final decode failed; committing the last hypothesis");
                    std::mem::take(&mut self.hypothesis)
                }
            };
            self.hypothesis.clear();
            self.commit(commit, events);
        } else if !self.hypothesis.is_empty() {
            let h = std::mem::take(&mut self.hypothesis);
            self.commit(h, events);
        }
        self.emit_partial(events);
        Ok(())
    }

    /// Whether `new` (a decode's words after the committed ones) could have been said in the
    /// uncommitted audio: at most 2 + 5 words per second (300 words a minute is fast
    /// speech). tiny.en with a short context sometimes re-reads its prompt or the committed
    /// words of the window; committing that would duplicate text already final.
    fn plausible(&self, new: &[Word]) -> bool {
        let window_end_ms = self.total / SPM;
        let uncommitted_from = if self.last_committed_end_ms >= 0 {
            (self.last_committed_end_ms as u64).max(self.buf_start / SPM)
        } else {
            self.buf_start / SPM
        };
        let secs = window_end_ms.saturating_sub(uncommitted_from) as f64 / 1000.0;
        (new.len() as f64) <= 2.0 + 5.0 * secs
    }

    /// Committed words leave the window: they become prompt context.
    fn retire_committed(&mut self) {
        self.retire_first(self.committed_in_window.len());
    }

    /// The first `n` committed words leave the window.
    fn retire_first(&mut self, n: usize) {
        let n = n.min(self.committed_in_window.len());
        if n == 0 {
            return;
        }
        let gone: Vec<Word> = self.committed_in_window.drain(..n).collect();
        let text = join_words(&gone);
        if !self.prompt_text.is_empty() {
            self.prompt_text.push(' ');
        }
        self.prompt_text.push_str(&text);
        if self.prompt_text.len() > 2000 {
            let cut = self.prompt_text.len() - 1000;
            let cut = (cut..self.prompt_text.len())
                .find(|i| self.prompt_text.is_char_boundary(*i))
                .unwrap_or(self.prompt_text.len());
            self.prompt_text.drain(..cut);
        }
    }

    fn move_window_past_committed(&mut self, to_sample: u64) {
        self.retire_committed();
        self.hypothesis.clear();
        // Mid-utterance (a flush while someone speaks) the audio before this point is all
        // committed: keeping a pre-roll would decode its last word a second time.
        let keep = if self.in_utterance {
            0
        } else {
            self.cfg.preroll_ms * SPM
        };
        self.trim_to(to_sample.saturating_sub(keep).max(self.buf_start));
        // Anything before the new window start is committed context for the prompt.
        self.last_decode_at = self.total;
    }

    fn commit(&mut self, words: Vec<Word>, events: &mut Vec<StreamEvent>) {
        let words: Vec<Word> = words
            .into_iter()
            .filter(|w| !norm_word(&w.text).is_empty() || !w.text.trim().is_empty())
            .collect();
        if words.is_empty() {
            return;
        }
        let text = join_words(&words);
        let start_ms = words.first().map(|w| w.start_ms).unwrap_or(0).max(0) as u64;
        let end_ms = words
            .last()
            .map(|w| w.end_ms)
            .unwrap_or(0)
            .max(start_ms as i64) as u64;
        self.last_committed_end_ms = words
            .last()
            .map(|w| w.end_ms)
            .unwrap_or(self.last_committed_end_ms);
        self.committed_in_window.extend(words);
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
        });
    }

    fn note_first_output(&mut self, now: Instant) {
        if let Some(start) = self.first_partial_pending.take() {
            if let Some(arr) = self.arrival_of(start) {
                let lat = now.saturating_duration_since(arr);
                metrics::histogram!("earshot_asr_first_partial_latency_seconds")
                    .record(lat.as_secs_f64());
                self.stats.first_partial_latencies.push(lat);
            }
        }
    }

    fn emit_partial(&mut self, events: &mut Vec<StreamEvent>) {
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
            .map(|w| w.start_ms.max(0) as u64)
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

    /// Keep the window under `max_window_ms`: cut after the last committed word, or (if
    /// nothing is committed) force-commit the hypothesis words that are old enough.
    fn enforce_window_cap(&mut self, events: &mut Vec<StreamEvent>) {
        let max = self.cfg.max_window_ms * SPM;
        if (self.buf.len() as u64) <= max {
            return;
        }
        let target = self.total.saturating_sub(max * 2 / 3);
        // Force-commit hypothesis words that end before the target.
        let n_old = self
            .hypothesis
            .iter()
            .take_while(|w| (w.end_ms.max(0) as u64) * SPM <= target)
            .count();
        if n_old > 0
            && self
                .committed_in_window
                .last()
                .is_none_or(|w| (w.end_ms.max(0) as u64) * SPM < target)
        {
            let old: Vec<Word> = self.hypothesis.drain(..n_old).collect();
            self.commit(old, events);
        }
        // Cut after the last committed word that ends before the target (keeping the
        // most recent committed words as context), else after the last committed word.
        let before_target = self
            .committed_in_window
            .iter()
            .rposition(|w| (w.end_ms.max(0) as u64) * SPM <= target);
        let (n_retire, cut) = match before_target {
            Some(i) => (
                i + 1,
                (self.committed_in_window[i].end_ms.max(0) as u64) * SPM,
            ),
            None => (
                self.committed_in_window.len(),
                self.committed_in_window
                    .last()
                    .map(|w| (w.end_ms.max(0) as u64) * SPM)
                    .unwrap_or(target),
            ),
        };
        let cut = cut.min(self.total);
        let cut = if cut <= self.buf_start { target } else { cut };
        self.retire_first(n_retire);
        self.trim_to(cut);
        // Words of the hypothesis that began before the cut are partly gone: drop them.
        let cut_ms = (cut / SPM) as i64;
        self.hypothesis.retain(|w| w.start_ms >= cut_ms);
    }

    fn arrival_of(&self, sample: u64) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|(end, _)| *end >= sample)
            .map(|(_, t)| *t)
    }

    fn prune_arrivals(&mut self) {
        let oldest_needed = self
            .first_partial_pending
            .unwrap_or(u64::MAX)
            .min(self.buf_start)
            .min(
                self.hypothesis
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

/// The prefix `new[..k]` that best matches `committed` (word edit distance; ties go to the `k`
/// closest to `committed.len()`), and that distance.
pub fn aligned_prefix(committed: &[String], new: &[String]) -> (usize, usize) {
    let m = committed.len();
    // prev[j] = distance(committed[..i], new[..j])
    let mut prev: Vec<usize> = (0..=new.len()).collect();
    for i in 1..=m {
        let mut cur = vec![i; new.len() + 1];
        for j in 1..=new.len() {
            let sub = prev[j - 1] + usize::from(committed[i - 1] != new[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    let mut best = (0usize, usize::MAX);
    for (k, d) in prev.iter().enumerate() {
        let closer = k.abs_diff(m) < best.0.abs_diff(m);
        if *d < best.1 || (*d == best.1 && closer) {
            best = (k, *d);
        }
    }
    best
}

/// Join words with single spaces.
pub fn join_words(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        let t = w.text.trim();
        if t.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(t);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::aligned_prefix;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn alignment() {
        assert_eq!(
            aligned_prefix(&v("ten of close"), &v("ten of clubs seven of clubs")),
            (3, 1)
        );
        assert_eq!(aligned_prefix(&v("a b c"), &v("a b c d")), (3, 0));
        assert_eq!(aligned_prefix(&v("a b c"), &v("a x b c d")), (4, 1));
        assert_eq!(aligned_prefix(&v("a b c"), &v("c d e")), (1, 2));
        assert_eq!(aligned_prefix(&v("a b"), &v("")), (0, 2));
    }
}
