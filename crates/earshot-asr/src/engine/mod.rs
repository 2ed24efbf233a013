//! The whisper.cpp engine (through `whisper-rs`): one model loaded once per process and
//! shared (with and without DTW word alignment, see [`contexts`]), pools of decoding
//! states, and the hallucination guards.
//!
//! # Speed: `audio_ctx` sized to the audio
//!
//! whisper.cpp always runs its encoder over a full 30 s window (1500 encoder frames of 20 ms),
//! so a 2 s clip costs as much as a 30 s one. Streaming decodes are short (a window of a few
//! seconds, re-decoded every ~second), so we set `audio_ctx` to the audio length plus a
//! margin, with a floor ([`AudioCtx::Adaptive`]). Whisper was trained on 30 s windows and
//! degrades (drops the last words, or stops early) when the context is cut too tightly, which
//! is why there is a margin and a floor; the defaults were chosen by measuring WER and RTF on
//! the shared speech clips with the crate's `asr_bench` example.
//!
//! # Hallucination guards
//!
//! * VAD gating: audio with less than [`EngineConfig::min_voiced_ms`] of voiced frames is
//!   never decoded (whisper invents text on silence);
//! * no-speech / avg-logprob thresholds: a segment whose no-speech probability is above
//!   [`EngineConfig::no_speech_thold`] *and* whose mean token log-probability is below
//!   [`EngineConfig::logprob_thold`] is dropped (the faster-whisper rule), as is any segment
//!   whose mean log-probability is below [`EngineConfig::hard_logprob_floor`];
//! * a capped initial prompt ([`EngineConfig::max_prompt_chars`]) of committed text, so the
//!   decoder keeps context without being led into loops by a long prompt;
//! * a decoder loop is cut while it happens (a logits filter forces end-of-text once the
//!   generated tokens end in a repeated n-gram), so a loop costs a dozen tokens, not a hundred;
//! * a repetition check ([`crate::text::is_repetitive`]): a segment that repeats an n-gram (n ≤ 4) more
//!   than [`EngineConfig::max_ngram_repeats`] times in a row is dropped;
//! * non-speech tokens (`[Music]`, `(laughs)`) are suppressed and blank starts are suppressed.

mod alignment;
mod collect;
mod config;
mod contexts;
mod stop;
mod timing;
pub use timing::MIN_WORD_MS;

use std::sync::Arc;
use std::time::Instant;

use contexts::{Contexts, Pooled};
use parking_lot::Mutex;
use stop::Stop;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContextParameters, WhisperState};

use config::SAMPLES_PER_CTX;
pub use config::{
    AudioCtx, DecodeOptions, DetectedLanguage, EngineConfig, EngineError, Transcript,
    AUTO_LANGUAGE, FULL_AUDIO_CTX,
};

use crate::audio::TARGET_RATE;
use crate::text::compose_prompt;
use crate::vad::{self, Aggressiveness};
use collect::Run;

/// A loaded model plus pools of decoding states. Share it as `Arc<Engine>`; `decode` is
/// blocking (run it on a blocking thread, see [`crate::Scheduler`]).
pub struct Engine {
    contexts: Contexts,
    cfg: EngineConfig,
    /// The state language detection runs in, never used for `full`: whisper.cpp detects
    /// with the encoder context of the state's last `full` call, so a pooled state would
    /// detect with whatever context its last decode used. This one always uses the full
    /// 30 s, the context whisper's detection was trained on.
    detect_state: Mutex<Option<WhisperState>>,
    token_eot: i32,
    english_only: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("cfg", &self.cfg).finish()
    }
}

static LOG_HOOK: std::sync::Once = std::sync::Once::new();

impl Engine {
    /// Load the model (once per process; share the `Arc`).
    pub fn load(cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        LOG_HOOK.call_once(whisper_rs::install_logging_hooks);
        let path = cfg.model_path.clone();
        let load_err = |reason: String| EngineError::Load {
            path: path.clone(),
            reason,
        };
        let meta = std::fs::metadata(&path).map_err(|e| load_err(e.to_string()))?;
        if !meta.is_file() {
            return Err(load_err("not a file".into()));
        }
        // whisper.cpp's loader trusts the header; reject obvious non-models before it.
        let mut magic = [0u8; 4];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(&path).map_err(|e| load_err(e.to_string()))?;
            f.read_exact(&mut magic)
                .map_err(|_| load_err("file too short to be a ggml model".into()))?;
        }
        if u32::from_le_bytes(magic) != 0x6767_6d6c {
            return Err(load_err(
                "not a whisper.cpp ggml model (bad magic); get one with `earshot model fetch tiny.en`".into(),
            ));
        }
        // whisper.cpp cannot combine DTW with flash attention.
        let dtw_preset = alignment::read_hparams(&path)
            .and_then(alignment::preset)
            .filter(|_| cfg.dtw_word_times && !cfg.flash_attn);
        let params = |dtw: bool| {
            let mut params = WhisperContextParameters::default();
            params.use_gpu(false);
            params.flash_attn(cfg.flash_attn);
            if let (true, Some(model_preset)) = (dtw, dtw_preset.clone()) {
                params.dtw_parameters(whisper_rs::DtwParameters {
                    mode: whisper_rs::DtwMode::ModelPreset { model_preset },
                    // whisper.cpp allocates this per decode, and aborts the process if its
                    // tensors do not fit: the largest need (448 tokens x 1500 frames x 8
                    // heads, a few copies) is about 100 MB. Only what is used is touched.
                    dtw_mem_size: 256 * 1024 * 1024,
                });
            }
            params
        };
        let path_str = path
            .to_str()
            .ok_or_else(|| load_err("path is not UTF-8".into()))?;
        let dtw = dtw_preset.is_some();
        let pooled = |dtw: bool| {
            Pooled::load(path_str, params(dtw), dtw, cfg.max_pooled_states).map_err(load_err)
        };
        let contexts = Contexts {
            timed: pooled(dtw)?,
            untimed: match Contexts::wants_untimed(&cfg, dtw) {
                true => Some(pooled(false)?),
                false => None,
            },
        };
        let token_eot = contexts.timed.context().token_eot();
        let english_only = !contexts.timed.context().is_multilingual();
        contexts.timed.warm()?;
        if let Some(u) = &contexts.untimed {
            u.warm()?;
        }
        Ok(Arc::new(Engine {
            contexts,
            cfg,
            detect_state: Mutex::new(None),
            token_eot,
            english_only,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// True for `.en` models.
    pub fn is_english_only(&self) -> bool {
        self.english_only
    }

    /// Detect the spoken language of (the first 30 s of) 16 kHz `samples`: one encoder pass
    /// over a full 30 s context and one decoder step. Blocking. English-only models have
    /// nothing to detect and answer English.
    pub fn detect_language(&self, samples: &[f32]) -> Result<DetectedLanguage, EngineError> {
        if self.english_only {
            return Ok(DetectedLanguage {
                code: "en".into(),
                probability: 1.0,
            });
        }
        let mut slot = self.detect_state.lock();
        if slot.is_none() {
            *slot = Some(self.contexts.timed.new_state()?);
        }
        let Some(state) = slot.as_mut() else {
            return Err(EngineError::Decode("no detection state".into()));
        };
        let threads = self.cfg.threads.max(1);
        let failed =
            |e: whisper_rs::WhisperError| EngineError::Decode(format!("language detection: {e}"));
        state.pcm_to_mel(samples, threads).map_err(failed)?;
        let (id, probs) = state.lang_detect(0, threads).map_err(failed)?;
        let code = whisper_rs::get_lang_str(id)
            .ok_or_else(|| EngineError::Decode(format!("language detection gave id {id}")))?;
        Ok(DetectedLanguage {
            code: code.to_owned(),
            probability: probs.get(id as usize).copied().unwrap_or(0.0),
        })
    }

    /// Decode one window of 16 kHz mono audio (≤ 30 s for a single encoder pass; longer audio
    /// is handled by whisper's own seeking, but [`crate::batch`] windows it better). Blocking.
    pub fn decode(&self, samples: &[f32], opts: &DecodeOptions) -> Result<Transcript, EngineError> {
        let audio_ms = (samples.len() as u64 * 1000) / TARGET_RATE as u64;
        let mut out = Transcript {
            audio_ms,
            ..Default::default()
        };
        if samples.is_empty() {
            out.skipped_silence = true;
            return Ok(out);
        }
        if !opts.skip_vad_gate
            && self.cfg.min_voiced_ms > 0
            && vad::voiced_ms(samples, Aggressiveness::Aggressive) < self.cfg.min_voiced_ms
        {
            out.skipped_silence = true;
            return Ok(out);
        }
        // Detection happens here, past the VAD gate, so that silence never picks a language.
        let mut opts = std::borrow::Cow::Borrowed(opts);
        if opts.language.as_deref() == Some(AUTO_LANGUAGE) && !self.english_only {
            let detected = self.detect_language(samples)?;
            tracing::debug!(language = %detected.code, p = detected.probability, "language detected");
            opts.to_mut().language = Some(detected.code.clone());
            out.detected_language = Some(detected);
        }
        let opts = opts.as_ref();
        // whisper.cpp warns below 1 s and is unreliable on very short input: pad with silence.
        let min_len = TARGET_RATE as usize * 1200 / 1000;
        let padded: std::borrow::Cow<'_, [f32]> = if samples.len() < min_len {
            let mut v = samples.to_vec();
            v.resize(min_len, 0.0);
            v.into()
        } else {
            samples.into()
        };
        let audio_ctx = if padded.len() > (FULL_AUDIO_CTX - 50) * SAMPLES_PER_CTX {
            FULL_AUDIO_CTX
        } else {
            opts.audio_ctx
                .unwrap_or(self.cfg.audio_ctx)
                .frames_for(padded.len())
        };
        let t0 = Instant::now();
        // One budget for the decode and its retry: it bounds the whole call.
        let stop = Stop::new(opts.time_budget, opts.cancel.clone());
        let mut run = self.run_whisper(&padded, opts, audio_ctx, audio_ms as i64, &stop)?;
        out.audio_ctx = audio_ctx;
        // A shortened context sometimes sends tiny.en into a loop (a segment that runs into
        // the token cap, or one our repetition check drops). Whisper was trained on 30 s
        // windows: redo that decode with a larger context rather than return garbage. If the
        // redo runs out of time, the first run's result stands (its looped segments dropped).
        let retry_ctx = opts.retry_ctx.map_or(FULL_AUDIO_CTX, |c| {
            c.frames_for(padded.len()).max(audio_ctx)
        });
        if retry_ctx > audio_ctx && !opts.salvage_loops && (run.hit_token_cap || run.repetitive > 0)
        {
            tracing::debug!(
                audio_ctx,
                retry_ctx,
                hit_token_cap = run.hit_token_cap,
                repetitive = run.repetitive,
                "degenerate output with a short audio_ctx; retrying with a larger context"
            );
            metrics::counter!("earshot_asr_full_context_retries_total").increment(1);
            match self.run_whisper(&padded, opts, retry_ctx, audio_ms as i64, &stop) {
                Ok(r) => {
                    run = r;
                    out.retried_wider_ctx = true;
                    out.audio_ctx = retry_ctx;
                }
                Err(EngineError::OverBudget) => {}
                Err(e) => return Err(e),
            }
        }
        out.elapsed = t0.elapsed();
        out.segments = run.segments;
        out.dropped_segments = run.dropped;
        if audio_ms > 0 {
            metrics::histogram!("earshot_asr_realtime_factor")
                .record(out.elapsed.as_secs_f64() / (audio_ms as f64 / 1000.0));
        }
        Ok(out)
    }

    fn run_whisper(
        &self,
        padded: &[f32],
        opts: &DecodeOptions,
        audio_ctx: usize,
        audio_ms: i64,
        stop: &Stop,
    ) -> Result<Run, EngineError> {
        let strategy = if self.cfg.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: self.cfg.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let language = opts
            .language
            .as_deref()
            .filter(|l| *l != AUTO_LANGUAGE)
            .unwrap_or(self.cfg.language.as_str());
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.cfg.threads.max(1) as i32);
        if !self.english_only {
            params.set_language(Some(language));
        }
        // An English-only model has no translate task: its output is English anyway.
        params.set_translate(opts.translate && !self.english_only);
        params.set_temperature(opts.temperature.clamp(0.0, 1.0));
        params.set_no_context(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_no_speech_thold(self.cfg.no_speech_thold);
        params.set_logprob_thold(self.cfg.logprob_thold);
        if !opts.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        // Bound a looping decoder: nobody says more than ~5 tokens/s for long.
        let secs = padded.len() / TARGET_RATE as usize + 1;
        let max_tokens = (40 + 6 * secs).min(200);
        params.set_max_tokens(max_tokens as i32);
        params.set_audio_ctx(if audio_ctx >= FULL_AUDIO_CTX {
            0
        } else {
            audio_ctx as i32
        });
        let prompt = compose_prompt(
            opts.user_prompt.as_deref(),
            opts.prompt.as_deref(),
            self.cfg.max_prompt_chars,
        );
        if !prompt.is_empty() {
            params.set_initial_prompt(&prompt);
        }
        params.set_single_segment(opts.single_pass);
        // SAFETY: `cut_loops` only reads the token records and writes the logits whisper.cpp
        // hands it, and uses no user data.
        unsafe {
            params.set_filter_logits_callback(Some(crate::loop_guard::cut_loops));
        }
        if stop.is_armed() {
            // SAFETY: `should_stop` reads the `Stop` behind the pointer, which the caller
            // keeps alive past the `full` call below; it touches nothing of whisper's.
            unsafe {
                params.set_abort_callback(Some(stop::should_stop));
                params.set_abort_callback_user_data(stop as *const Stop as *mut std::ffi::c_void);
            }
        }
        let pooled = self.contexts.for_decode(opts.untimed);
        let mut state = pooled.take()?;
        if let Err(e) = state.full(params, padded) {
            if stop.cancelled() {
                return Err(EngineError::Cancelled);
            }
            if stop.over_budget() {
                metrics::counter!("earshot_asr_decodes_over_budget_total").increment(1);
                return Err(EngineError::OverBudget);
            }
            // A failed state may hold garbage: do not return it to the pool.
            return Err(EngineError::Decode(e.to_string()));
        }
        let hit_token_cap = state
            .as_iter()
            .any(|seg| seg.n_tokens() as usize >= max_tokens);
        let given = (audio_ms.max(0) as usize * (TARGET_RATE as usize / 1000)).min(padded.len());
        let run = self.collect(
            &state,
            pooled.dtw,
            opts.offset_ms,
            &padded[..given],
            opts.salvage_loops,
        );
        pooled.give_back(state);
        Ok(Run {
            hit_token_cap,
            ..run
        })
    }
}
