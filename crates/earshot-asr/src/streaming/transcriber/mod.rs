//! The policy of one stream over 16 kHz samples: VAD events, the window, commit decodes at
//! points fixed by the audio, optional partial decodes in the background.

mod output;
mod window;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::agreement::strip_committed;
use super::config::{StreamConfig, StreamEvent, StreamStats};
use crate::audio::TARGET_RATE;
use crate::engine::{DecodeOptions, DetectedLanguage, EngineError, Transcript, AUTO_LANGUAGE};
use crate::scheduler::{Priority, Scheduler};
use crate::text::collapse_repeats;
use crate::vad::{Vad, VadEvent, FRAME_SAMPLES};
use crate::Word;

const SPM: u64 = TARGET_RATE as u64 / 1000; // samples per ms

/// Context of the redo of a commit decode that looped: larger than the stream's, but half
/// the cost of whisper's full 30 s, which would not fit a decode's time budget.
const RETRY_CTX: crate::engine::AudioCtx = crate::engine::AudioCtx::Adaptive {
    margin_ms: 5_000,
    floor_ms: 15_000,
};

type PartialResult = Result<Option<Transcript>, EngineError>;

/// A partial decode in flight.
struct Pending {
    /// `generation` when it started: a commit since then makes its words stale.
    generation: u64,
    handle: JoinHandle<PartialResult>,
    /// Stops the decode inside whisper (see [`Pending::drop_stale`]).
    cancel: Arc<AtomicBool>,
}

impl Pending {
    /// Give the partial up: a commit made it stale, or the stream ended. Aborting the task
    /// alone would leave whisper running to the end in its slot, delaying the very commit
    /// that made it stale.
    fn drop_stale(self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.handle.abort();
    }
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

    /// Start a partial decode in the background if speech is active, none is in flight, and
    /// enough audio came since the last decode. Call it when the stream has caught up with
    /// its audio; the result comes from [`partial_ready`](Self::partial_ready).
    pub fn start_partial_if_due(&mut self) -> bool {
        if !self.cfg.partials || !self.in_utterance || self.pending.is_some() {
            return false;
        }
        let interval = if self.first_partial_pending.is_some() {
            self.cfg.first_decode_ms.min(self.cfg.decode_interval_ms)
        } else {
            self.cfg.decode_interval_ms
        };
        let since = self.total - self.last_partial_at.max(self.last_commit_at);
        if since < interval * SPM || self.buf.is_empty() {
            return false;
        }
        // The language is detected by the first commit decode, whose audio is fixed by the
        // stream (a partial's depends on timing): until then there are no partials, so the
        // same audio always gets the same language.
        if self.language.as_deref() == Some(AUTO_LANGUAGE) {
            return false;
        }
        self.last_partial_at = self.total;
        let cancel = Arc::new(AtomicBool::new(false));
        let opts = DecodeOptions {
            cancel: Some(cancel.clone()),
            ..self.decode_options(Some(self.cfg.audio_ctx), true)
        };
        let (sched, samples) = (self.sched.clone(), self.buf.clone());
        let wait = Duration::from_millis(self.cfg.partial_max_wait_ms);
        let handle = tokio::spawn(async move { sched.decode_partial(samples, opts, wait).await });
        self.pending = Some(Pending {
            generation: self.generation,
            handle,
            cancel,
        });
        true
    }

    /// Wait for the partial decode in flight (forever if there is none) and return the
    /// partial it gives. Cancel-safe: dropped early, the decode stays in flight.
    pub async fn partial_ready(&mut self) -> Result<Vec<StreamEvent>, EngineError> {
        let Some(p) = self.pending.as_mut() else {
            return std::future::pending().await;
        };
        let joined = (&mut p.handle).await;
        let generation = p.generation;
        self.pending = None;
        let result = match joined.map_err(|e| EngineError::Task(e.to_string()))? {
            Ok(r) => r,
            // A partial is optional: a failed one is skipped, the stream goes on.
            Err(e) => {
                tracing::debug!(error = %e, "partial decode failed; skipped");
                None
            }
        };
        let mut events = Vec::new();
        match result {
            Some(t) if generation == self.generation && self.in_utterance => {
                self.stats.partial_decodes += 1;
                self.stats.ctx_frames += t.audio_ctx as u64;
                let new = self.uncommitted_words(t);
                if self.plausible(&new) {
                    self.hypothesis = new;
                    self.emit_partial(&mut events);
                }
            }
            _ => self.stats.partials_dropped += 1,
        }
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
        }
    }

    /// A commit decode of the window; `last` (an utterance's final decode) uses the
    /// final context policy. A partial in flight is stale after it and is dropped.
    async fn commit_decode(&mut self, last: bool) -> Result<Vec<Word>, EngineError> {
        let ctx = if last {
            self.cfg.final_audio_ctx
        } else {
            Some(self.cfg.audio_ctx)
        };
        let opts = self.decode_options(ctx, false);
        self.last_commit_at = self.total;
        self.generation += 1;
        if let Some(p) = self.pending.take() {
            p.drop_stale();
            self.stats.partials_dropped += 1;
        }
        let t = self
            .sched
            .decode(Priority::Commit, self.buf.clone(), opts)
            .await?;
        self.stats.commit_decodes += 1;
        self.stats.ctx_frames += t.audio_ctx as u64;
        Ok(self.uncommitted_words(t))
    }

    fn uncommitted_words(&mut self, t: Transcript) -> Vec<Word> {
        if let Some(d) = t.detected_language {
            // The first detection is kept for the rest of the stream.
            if self.language.as_deref() == Some(AUTO_LANGUAGE) {
                self.language = Some(d.code.clone());
                self.detected = Some(d);
            }
        }
        let mut words: Vec<Word> = t.segments.into_iter().flat_map(|s| s.words).collect();
        collapse_repeats(&mut words);
        let mut new = strip_committed(&self.committed_in_window, self.last_committed_end_ms, words);
        let from = ((self.buf_start / SPM) as i64).max(self.last_committed_end_ms);
        if super::timing::respread_if_collapsed(&mut new, from, (self.total / SPM) as i64) {
            metrics::counter!("earshot_asr_collapsed_word_times_total").increment(1);
        }
        new
    }

    /// The window is full in the middle of speech: words followed by at least
    /// `stable_margin_ms` of decoded audio become final, the window is cut after them, and
    /// the rest waits for the next commit.
    async fn commit_at_cap(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), EngineError> {
        let new = match self.commit_decode(false).await {
            Ok(new) => new,
            // The window is still cut (its oldest words committed as the last decode saw
            // them), so the next decode is no dearer than this one.
            Err(EngineError::OverBudget) => {
                self.enforce_window_cap(events);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !self.plausible(&new) {
            // An echo of the prompt or of committed text: this decode tells us nothing. The
            // window is still cut, as when over budget: left at its cap, it would be
            // decoded again on every frame (each decode seeing the same echo) while the
            // stream falls further behind with every one.
            metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
            self.enforce_window_cap(events);
            return Ok(());
        }
        let stable_end = (self.total / SPM).saturating_sub(self.cfg.stable_margin_ms) as i64;
        let n = new.iter().take_while(|w| w.end_ms <= stable_end).count();
        let commit: Vec<Word> = new[..n].to_vec();
        self.tail = new[n..].to_vec();
        self.hypothesis = self.tail.clone();
        let window_from = self.buf_start / SPM;
        self.commit(commit, events);
        self.emit_partial(events);
        self.enforce_window_cap(events);
        tracing::debug!(
            window_from,
            window_to = self.total / SPM,
            stable_end,
            committed = %crate::text::join_words(&new[..n]),
            tail = %crate::text::join_words(&self.tail),
            first_word_ms = new.first().map(|w| w.start_ms),
            cut_to = self.buf_start / SPM,
            "commit at cap"
        );
        Ok(())
    }

    /// Decode the window one last time and commit everything in it.
    async fn commit_all(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), EngineError> {
        let has_something = self.in_utterance || !self.tail.is_empty();
        if has_something && !self.buf.is_empty() {
            let commit = match self.commit_decode(true).await {
                Ok(new) if !self.plausible(&new) => {
                    metrics::counter!("earshot_asr_implausible_decodes_total").increment(1);
                    std::mem::take(&mut self.tail)
                }
                // The last decode saw nothing new: keep what the previous commit decode saw.
                Ok(new) if new.is_empty() => std::mem::take(&mut self.tail),
                Ok(new) => new,
                Err(e) => {
                    tracing::warn!(error = %e, "final decode failed; committing what the last decode saw");
                    std::mem::take(&mut self.tail)
                }
            };
            self.commit(commit, events);
        } else {
            let t = std::mem::take(&mut self.tail);
            self.commit(t, events);
        }
        self.tail.clear();
        self.hypothesis.clear();
        self.emit_partial(events);
        self.last_commit_at = self.total;
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
}
