//! Decode scheduling: a bounded number of concurrent decodes ("slots"), explicit admission of
//! new streams, and the scheduler metrics.
//!
//! Why two limits: a *decode slot* is one whisper decode running on `threads` cores; running
//! more decodes than `cores / threads` at once makes ggml's worker threads fight over cores
//! (they spin at a barrier after every graph node), which is slower for everyone. A *stream*
//! needs a decode only every ~second of speech, so several streams share a slot; the number
//! of streams admitted is a separate, measured capacity (`max_streams`). When it is reached,
//! [`Scheduler::try_admit`] returns `None` and the server answers `overloaded` (WS close 1013)
//! instead of letting every stream fall behind.
//!
//! Decodes run on tokio's blocking pool (`spawn_blocking`), never on the async workers.
//! Metrics: `earshot_asr_queue_wait_seconds` (histogram, wait for a slot),
//! `earshot_asr_slots_in_use` (gauge), `earshot_asr_realtime_factor` (histogram, recorded by
//! the engine for every decode).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batch::{self, BatchOptions};
use crate::engine::{DecodeOptions, Engine, EngineError, Transcript};
use crate::Segment;

/// Real-time streams one decode slot sustains with tiny.en at the default stream settings,
/// with margin: on 2 cores (2 one-thread slots), `asr_bench concurrency` measured final
/// latency p95 1.4 s with 3 streams, 1.8 s with 4 and 2.5 s with 5 (target 3 s).
pub const STREAMS_PER_SLOT: usize = 2;

/// Scheduler capacity.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Concurrent decodes.
    pub decode_slots: usize,
    /// Streams admitted at once.
    pub max_streams: usize,
}

impl SchedulerConfig {
    /// Defaults for an engine using `threads_per_decode` threads on this machine:
    /// `max(1, cores / threads)` slots, [`STREAMS_PER_SLOT`] streams per slot.
    pub fn for_threads(threads_per_decode: usize) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let slots = (cores / threads_per_decode.max(1)).max(1);
        SchedulerConfig {
            decode_slots: slots,
            max_streams: slots * STREAMS_PER_SLOT,
        }
    }
}

struct Inner {
    engine: Arc<Engine>,
    slots: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    cfg: SchedulerConfig,
    slots_in_use: AtomicUsize,
}

/// Shared decode scheduler (cheap to clone).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("cfg", &self.inner.cfg)
            .field("slots_in_use", &self.slots_in_use())
            .finish()
    }
}

/// Admission of one stream; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    _permit: OwnedSemaphorePermit,
}

struct SlotGuard {
    _permit: OwnedSemaphorePermit,
    inner: Arc<Inner>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let n = self.inner.slots_in_use.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("earshot_asr_slots_in_use").set(n as f64);
    }
}

impl Scheduler {
    /// A scheduler for `engine` with the default capacity for its thread count.
    pub fn new(engine: Arc<Engine>) -> Self {
        let cfg = SchedulerConfig::for_threads(engine.config().threads);
        Self::with_config(engine, cfg)
    }

    /// A scheduler with explicit capacity.
    pub fn with_config(engine: Arc<Engine>, cfg: SchedulerConfig) -> Self {
        let cfg = SchedulerConfig {
            decode_slots: cfg.decode_slots.max(1),
            max_streams: cfg.max_streams.max(1),
        };
        metrics::gauge!("earshot_asr_slots_in_use").set(0.0);
        Scheduler {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(cfg.decode_slots)),
                streams: Arc::new(Semaphore::new(cfg.max_streams)),
                engine,
                cfg,
                slots_in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// The capacity.
    pub fn config(&self) -> &SchedulerConfig {
        &self.inner.cfg
    }

    /// Admit a new stream, or `None` when at capacity (answer `overloaded`).
    pub fn try_admit(&self) -> Option<Permit> {
        self.inner
            .streams
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| Permit { _permit: p })
    }

    /// Streams currently admitted.
    pub fn streams_in_use(&self) -> usize {
        self.inner.cfg.max_streams - self.inner.streams.available_permits()
    }

    /// Decodes currently running.
    pub fn slots_in_use(&self) -> usize {
        self.inner.slots_in_use.load(Ordering::SeqCst)
    }

    async fn acquire_slot(&self) -> Result<SlotGuard, EngineError> {
        let t0 = Instant::now();
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| EngineError::Task(e.to_string()))?;
        metrics::histogram!("earshot_asr_queue_wait_seconds").record(t0.elapsed().as_secs_f64());
        let n = self.inner.slots_in_use.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("earshot_asr_slots_in_use").set(n as f64);
        Ok(SlotGuard {
            _permit: permit,
            inner: self.inner.clone(),
        })
    }

    /// Decode one window in a slot (waits for a free slot; runs on the blocking pool). The
    /// slot stays taken until whisper returns, even if the caller stops waiting.
    pub async fn decode(
        &self,
        samples: Vec<f32>,
        opts: DecodeOptions,
    ) -> Result<Transcript, EngineError> {
        let guard = self.acquire_slot().await?;
        let engine = self.inner.engine.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            engine.decode(&samples, &opts)
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?
    }

    /// Transcribe a whole file's samples, window by window, each window in a slot (so an
    /// upload shares the machine fairly with live streams).
    pub async fn transcribe(
        &self,
        samples: Arc<Vec<f32>>,
        opts: BatchOptions,
    ) -> Result<Vec<Segment>, EngineError> {
        let windows = batch::plan_windows(&samples, &opts);
        let mut segments = Vec::new();
        let mut prompt: Option<String> = None;
        for w in windows {
            let piece = samples[w.clone()].to_vec();
            let dopts = DecodeOptions {
                prompt: if opts.condition_on_previous_text {
                    prompt.clone()
                } else {
                    None
                },
                offset_ms: (w.start as i64 * 1000) / crate::audio::TARGET_RATE as i64,
                temperature_fallback: opts.temperature_fallback,
                skip_vad_gate: false,
                audio_ctx: None,
                salvage_loops: false,
            };
            let t = self.decode(piece, dopts).await?;
            batch::append_window(&mut segments, &mut prompt, t.segments);
        }
        Ok(segments)
    }
}
