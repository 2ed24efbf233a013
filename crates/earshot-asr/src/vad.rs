//! Voice activity detection on 16 kHz audio: per-frame speech flags plus debounced
//! `speech_started` / `utterance_end` events.
//!
//! # Why WebRTC's VAD (`webrtc-vad`, libfvad)
//!
//! * It builds from vendored C sources with `cc`: nothing is downloaded at build or run time.
//!   `voice_activity_detector` (Silero through ONNX Runtime) downloads the ONNX runtime in its
//!   build script, which cannot work offline; whisper.cpp's own VAD needs a Silero ggml model
//!   file that we do not ship.
//! * It is cheap (a few µs per 30 ms frame), so it runs inline on every stream.
//! * Its weakness, false positives on noise, matters less here: the VAD only *gates* whisper
//!   (no decode of pure silence) and drives endpointing; whisper's no-speech probability and
//!   our hallucination guards in [`crate::engine`] catch what it lets through. An energy floor
//!   additionally keeps near-digital-silence from counting as speech.
//!
//! Events are debounced: speech starts when [`VadConfig::start_voiced_frames`] of the last
//! [`VadConfig::start_window_frames`] frames are voiced (the start time is the first voiced
//! frame of that window), and an utterance ends after [`VadConfig::endpoint_silence_ms`] of
//! continuous non-speech (its time is the end of the last voiced frame).

use crate::audio::TARGET_RATE;

/// One VAD frame: 30 ms at 16 kHz (webrtc accepts 10, 20 or 30 ms).
pub const FRAME_SAMPLES: usize = 480;
/// Frame duration in ms.
pub const FRAME_MS: u64 = 30;

/// How aggressively non-speech is rejected (webrtc modes 0-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressiveness {
    /// Mode 0: keeps the most audio as speech.
    Quality,
    /// Mode 1.
    LowBitrate,
    /// Mode 2 (default).
    Aggressive,
    /// Mode 3: rejects the most.
    VeryAggressive,
}

/// VAD tuning.
#[derive(Debug, Clone)]
pub struct VadConfig {
    /// webrtc aggressiveness.
    pub aggressiveness: Aggressiveness,
    /// Silence (ms) after speech that ends an utterance (the "endpointing" setting).
    pub endpoint_silence_ms: u64,
    /// Window (frames) looked at for a speech start.
    pub start_window_frames: usize,
    /// Voiced frames needed inside that window to declare speech.
    pub start_voiced_frames: usize,
    /// Frames quieter than this RMS (dBFS) are never speech.
    pub energy_floor_dbfs: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            aggressiveness: Aggressiveness::Aggressive,
            endpoint_silence_ms: 600,
            start_window_frames: 8,
            start_voiced_frames: 4,
            energy_floor_dbfs: -55.0,
        }
    }
}

/// A VAD event with its time on the stream's audio clock (ms since the first sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at `at_ms`.
    SpeechStarted {
        /// Start of the first voiced frame.
        at_ms: u64,
    },
    /// The utterance ended: the last voiced frame ended at `at_ms`.
    UtteranceEnd {
        /// End of the last voiced frame.
        at_ms: u64,
    },
}

/// libfvad's handle. It is a plain heap object with no thread affinity.
struct FvadHandle(webrtc_vad::Vad);
// SAFETY: `webrtc_vad::Vad` holds a raw pointer to a libfvad instance that is only reached
// through `&mut self`; libfvad keeps no thread-local or global state, so moving the owner to
// another thread is sound. It is never shared (no `Sync`).
unsafe impl Send for FvadHandle {}

/// Streaming VAD over 16 kHz mono `f32`.
pub struct Vad {
    cfg: VadConfig,
    inner: FvadHandle,
    /// Samples not yet forming a full frame.
    pending: Vec<f32>,
    /// Index of the next frame.
    frame_index: u64,
    /// Recent voiced flags (for the start window).
    recent: std::collections::VecDeque<bool>,
    in_speech: bool,
    silence_frames: u64,
    last_voiced_end_ms: u64,
    i16buf: Vec<i16>,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("cfg", &self.cfg)
            .field("in_speech", &self.in_speech)
            .finish()
    }
}

/// Per-frame result, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecision {
    /// Frame number since the stream start.
    pub index: u64,
    /// webrtc + energy floor said "speech".
    pub voiced: bool,
    /// Inside an utterance after debouncing.
    pub in_speech: bool,
}

impl Vad {
    /// A VAD with `cfg`.
    pub fn new(cfg: VadConfig) -> Self {
        let mode = match cfg.aggressiveness {
            Aggressiveness::Quality => webrtc_vad::VadMode::Quality,
            Aggressiveness::LowBitrate => webrtc_vad::VadMode::LowBitrate,
            Aggressiveness::Aggressive => webrtc_vad::VadMode::Aggressive,
            Aggressiveness::VeryAggressive => webrtc_vad::VadMode::VeryAggressive,
        };
        let inner =
            webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate16kHz, mode);
        Vad {
            cfg,
            inner: FvadHandle(inner),
            pending: Vec::with_capacity(FRAME_SAMPLES),
            frame_index: 0,
            recent: std::collections::VecDeque::new(),
            in_speech: false,
            silence_frames: 0,
            last_voiced_end_ms: 0,
            i16buf: vec![0; FRAME_SAMPLES],
        }
    }

    /// Change the endpointing silence mid-stream.
    pub fn set_endpoint_silence_ms(&mut self, ms: u64) {
        self.cfg.endpoint_silence_ms = ms.max(FRAME_MS);
    }

    /// The current endpointing silence.
    pub fn endpoint_silence_ms(&self) -> u64 {
        self.cfg.endpoint_silence_ms
    }

    /// True inside an utterance.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// End (ms) of the last voiced frame seen.
    pub fn last_voiced_end_ms(&self) -> u64 {
        self.last_voiced_end_ms
    }

    /// Classify one 30 ms frame by itself (no debouncing), e.g. to test a buffer for speech.
    pub fn frame_is_voiced(&mut self, frame: &[f32]) -> bool {
        if frame.len() != FRAME_SAMPLES {
            return false;
        }
        let energy = frame.iter().map(|v| v * v).sum::<f32>() / frame.len() as f32;
        let dbfs = 10.0 * (energy.max(1e-12)).log10();
        if dbfs < self.cfg.energy_floor_dbfs {
            return false;
        }
        for (d, s) in self.i16buf.iter_mut().zip(frame) {
            *d = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
        }
        self.inner.0.is_voice_segment(&self.i16buf).unwrap_or(false)
    }

    /// Feed samples; returns per-frame decisions and the events they caused, in order.
    pub fn push(&mut self, samples: &[f32]) -> (Vec<FrameDecision>, Vec<VadEvent>) {
        let mut frames = Vec::new();
        let mut events = Vec::new();
        self.pending.extend_from_slice(samples);
        let mut off = 0;
        while self.pending.len() - off >= FRAME_SAMPLES {
            let frame: Vec<f32> = self.pending[off..off + FRAME_SAMPLES].to_vec();
            off += FRAME_SAMPLES;
            let voiced = self.frame_is_voiced(&frame);
            let ev = self.step(voiced);
            frames.push(FrameDecision {
                index: self.frame_index - 1,
                voiced,
                in_speech: self.in_speech,
            });
            events.extend(ev);
        }
        self.pending.drain(..off);
        (frames, events)
    }

    fn step(&mut self, voiced: bool) -> Option<VadEvent> {
        let idx = self.frame_index;
        self.frame_index += 1;
        let frame_start_ms = idx * FRAME_MS;
        self.recent.push_back(voiced);
        while self.recent.len() > self.cfg.start_window_frames.max(1) {
            self.recent.pop_front();
        }
        if voiced {
            self.last_voiced_end_ms = frame_start_ms + FRAME_MS;
        }
        if !self.in_speech {
            let n_voiced = self.recent.iter().filter(|v| **v).count();
            if voiced && n_voiced >= self.cfg.start_voiced_frames.max(1) {
                self.in_speech = true;
                self.silence_frames = 0;
                let first = self.recent.iter().position(|v| *v).unwrap_or(0) as u64;
                let window_start = idx + 1 - self.recent.len() as u64;
                return Some(VadEvent::SpeechStarted {
                    at_ms: (window_start + first) * FRAME_MS,
                });
            }
            None
        } else {
            if voiced {
                self.silence_frames = 0;
                return None;
            }
            self.silence_frames += 1;
            if self.silence_frames * FRAME_MS >= self.cfg.endpoint_silence_ms {
                self.in_speech = false;
                self.silence_frames = 0;
                self.recent.clear();
                return Some(VadEvent::UtteranceEnd {
                    at_ms: self.last_voiced_end_ms,
                });
            }
            None
        }
    }

    /// End of stream: an open utterance ends at the last voiced frame.
    pub fn finish(&mut self) -> Option<VadEvent> {
        self.pending.clear();
        if self.in_speech {
            self.in_speech = false;
            self.silence_frames = 0;
            self.recent.clear();
            Some(VadEvent::UtteranceEnd {
                at_ms: self.last_voiced_end_ms,
            })
        } else {
            None
        }
    }
}

/// Milliseconds of voiced audio in a 16 kHz buffer (a standalone check used to gate decodes
/// of whole files: whisper is never run on pure silence).
pub fn voiced_ms(samples: &[f32], aggressiveness: Aggressiveness) -> u64 {
    let mut vad = Vad::new(VadConfig {
        aggressiveness,
        ..VadConfig::default()
    });
    samples
        .chunks_exact(FRAME_SAMPLES)
        .filter(|f| vad.frame_is_voiced(f))
        .count() as u64
        * FRAME_MS
}

/// Samples per millisecond at 16 kHz.
pub const SAMPLES_PER_MS: u64 = TARGET_RATE as u64 / 1000;
