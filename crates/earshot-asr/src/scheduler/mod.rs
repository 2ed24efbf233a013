//! Decode scheduling: a bounded number of concurrent decodes ("slots") handed out by
//! priority, admission of live streams from their measured cost, and the scheduler metrics.
//!
//! Why slots: a *decode slot* is one whisper decode running on `threads` cores; running more
//! decodes than `cores / threads` at once makes ggml's worker threads fight over cores (they
//! spin at a barrier after every graph node), which is slower for everyone.
//!
//! Why priorities ([`slots`]): a stream's commit decodes (their words become finals) must
//! never wait behind optional partial decodes or a long upload.
//!
//! Why measured admission ([`load`]): what a stream costs depends on the speech, the model
//! and the machine. [`Scheduler::try_admit`] returns `None` when one more stream would
//! push the predicted commit load past the target, and the server answers `overloaded`
//! (WS close 1013) instead of letting every stream fall behind.
//!
//! Why shared slots ([`shared`]): several models in one process share the cores, so their
//! schedulers share one slot pool, while each measures its own model's cost.
//!
//! Decodes run on tokio's blocking pool (`spawn_blocking`), never on the async workers.
//! Metrics: `earshot_asr_queue_wait_seconds{priority}` (wait for a slot),
//! `earshot_asr_slots_in_use`, `earshot_asr_partials_skipped_total`, and the load gauges of
//! [`load`]; `earshot_asr_realtime_factor` is recorded by the engine.

mod load;
mod shared;
mod slots;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use load::{AdmissionConfig, LoadSnapshot};
pub use shared::SharedSlots;
pub use slots::Priority;

use crate::batch::{self, BatchOptions};
use crate::engine::{DecodeOptions, Engine, EngineError, Transcript};
use crate::Segment;
use load::LoadMeter;
use slots::Slots;

/// Scheduler capacity.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Concurrent decodes.
    pub decode_slots: usize,
    /// Hard cap on streams admitted at once, whatever the measured cost allows.
    pub max_streams: usize,
    /// Admission from measured cost.
    pub admission: AdmissionConfig,
}

impl SchedulerConfig {
    /// Hard cap of streams per decode slot; admission from cost decides below it.
    pub const MAX_STREAMS_PER_SLOT: usize = 16;

    /// Defaults for an engine using `threads_per_decode` threads on this machine:
    /// `max(1, cores / threads)` slots; streams admitted by measured cost, at most 16 per
    /// slot.
    pub fn for_threads(threads_per_decode: usize) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let slots = (cores / threads_per_decode.max(1)).max(1);
        SchedulerConfig {
            decode_slots: slots,
            max_streams: slots * Self::MAX_STREAMS_PER_SLOT,
            admission: AdmissionConfig::default(),
        }
    }
}

/// Uploads in flight per decode slot: one decoding, one waiting its turn. More would only
/// wait in memory, each holding its whole decoded audio, so they are refused with a time
/// to retry instead.
pub const MAX_UPLOADS_PER_SLOT: usize = 2;

struct Inner {
    engine: Arc<Engine>,
    slots: Slots,
    load: Arc<LoadMeter>,
    /// Set when other models' schedulers share the slots.
    shared: Option<SharedSlots>,
    cfg: SchedulerConfig,
    /// Uploads admitted and not yet finished (over all models sharing the slots).
    uploads: Arc<AtomicUsize>,
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
pub struct Permit {
    sched: Scheduler,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.sched.inner.load.release();
    }
}

/// Admission of one upload; dropping it frees the place.
pub struct UploadPermit {
    sched: Scheduler,
}

impl std::fmt::Debug for UploadPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadPermit")
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let n = self.sched.inner.uploads.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("earshot_asr_uploads_in_flight").set(n as f64);
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
            admission: cfg.admission,
        };
        metrics::gauge!("earshot_asr_slots_in_use").set(0.0);
        let load = LoadMeter::new(cfg.decode_slots, cfg.max_streams, cfg.admission.clone());
        Scheduler {
            inner: Arc::new(Inner {
                slots: Slots::new(cfg.decode_slots),
                load: Arc::new(load),
                shared: None,
                engine,
                cfg,
                uploads: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// A scheduler for one of several models (`model` labels its metrics): decodes take
    /// slots from `shared`, and admission charges this model's measured cost against what
    /// every model sharing it uses.
    pub fn with_shared(
        engine: Arc<Engine>,
        shared: &SharedSlots,
        admission: AdmissionConfig,
        model: &str,
    ) -> Self {
        metrics::gauge!("earshot_asr_slots_in_use").set(0.0);
        let load = shared.join(admission.clone(), model);
        Scheduler {
            inner: Arc::new(Inner {
                slots: shared.slots(),
                load,
                shared: Some(shared.clone()),
                uploads: shared.uploads(),
                engine,
                cfg: SchedulerConfig {
                    decode_slots: shared.decode_slots(),
                    max_streams: shared.max_streams(),
                    admission,
                },
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

    /// Admit a new stream, or `None` when one more would make the admitted streams late
    /// (answer `overloaded`).
    pub fn try_admit(&self) -> Option<Permit> {
        let admitted = match &self.inner.shared {
            Some(shared) => shared.try_admit(&self.inner.load),
            None => self.inner.load.try_admit(),
        };
        admitted.then(|| Permit {
            sched: self.clone(),
        })
    }

    /// Admit an upload, or `None` when [`MAX_UPLOADS_PER_SLOT`] per slot are in flight
    /// already (answer `overloaded` with a time to retry). Take it before decoding the
    /// file: decoding costs memory and CPU too.
    pub fn try_admit_upload(&self) -> Option<UploadPermit> {
        let max = self.inner.cfg.decode_slots * MAX_UPLOADS_PER_SLOT;
        match self
            .inner
            .uploads
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            }) {
            Ok(n) => {
                metrics::gauge!("earshot_asr_uploads_in_flight").set((n + 1) as f64);
                Some(UploadPermit {
                    sched: self.clone(),
                })
            }
            Err(_) => {
                metrics::counter!("earshot_asr_uploads_refused_total").increment(1);
                None
            }
        }
    }

    /// Streams currently admitted.
    pub fn streams_in_use(&self) -> usize {
        self.inner.load.snapshot().streams
    }

    /// The admission figures now (this model's streams and load; headroom beside every
    /// model sharing the slots).
    pub fn load(&self) -> LoadSnapshot {
        match &self.inner.shared {
            Some(shared) => self
                .inner
                .load
                .snapshot_beside(shared.others(&self.inner.load)),
            None => self.inner.load.snapshot(),
        }
    }

    /// Decodes currently running.
    pub fn slots_in_use(&self) -> usize {
        self.inner.slots.in_use()
    }

    /// Count `ms` of audio taken in by a live stream (the denominator of its cost).
    pub fn stream_audio(&self, ms: u64) {
        self.inner.load.stream_audio(ms as f64 / 1000.0);
    }

    /// Decode one window in a slot of `priority` (waits for the slot).
    pub async fn decode(
        &self,
        priority: Priority,
        samples: Vec<f32>,
        opts: DecodeOptions,
    ) -> Result<Transcript, EngineError> {
        let t0 = Instant::now();
        let guard = self.inner.slots.acquire(priority).await;
        metrics::histogram!("earshot_asr_queue_wait_seconds", "priority" => label(priority))
            .record(t0.elapsed().as_secs_f64());
        self.run(guard, priority, samples, opts).await
    }

    /// A partial decode: like [`decode`](Self::decode) at [`Priority::Partial`], but given up
    /// (`Ok(None)`) if no slot frees within `max_wait`: a partial that comes late is worth
    /// less than the slot.
    pub async fn decode_partial(
        &self,
        samples: Vec<f32>,
        opts: DecodeOptions,
        max_wait: Duration,
    ) -> Result<Option<Transcript>, EngineError> {
        let t0 = Instant::now();
        // With a cancel flag the partial gives its slot up to a commit that needs it.
        let acquire = self
            .inner
            .slots
            .acquire_with(Priority::Partial, opts.cancel.clone());
        let Ok(guard) = tokio::time::timeout(max_wait, acquire).await else {
            metrics::counter!("earshot_asr_partials_skipped_total").increment(1);
            return Ok(None);
        };
        metrics::histogram!("earshot_asr_queue_wait_seconds", "priority" => "partial")
            .record(t0.elapsed().as_secs_f64());
        self.run(guard, Priority::Partial, samples, opts)
            .await
            .map(Some)
    }

    /// Run one decode in the slot `guard` holds, on the blocking pool. The slot stays taken
    /// until whisper returns, even if the caller stops waiting.
    async fn run(
        &self,
        guard: slots::SlotGuard,
        priority: Priority,
        samples: Vec<f32>,
        opts: DecodeOptions,
    ) -> Result<Transcript, EngineError> {
        metrics::gauge!("earshot_asr_slots_in_use").set(self.inner.slots.in_use() as f64);
        let sched = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let out = sched.inner.engine.decode(&samples, &opts);
            let busy = started.elapsed();
            sched.inner.load.decoded(priority, busy);
            tracing::debug!(
                priority = label(priority),
                audio_ms = samples.len() / 16,
                busy_ms = busy.as_millis() as u64,
                audio_ctx = out.as_ref().map_or(0, |t| t.audio_ctx),
                retried = out.as_ref().is_ok_and(|t| t.retried_wider_ctx),
                words = out.as_ref().map_or(0, |t| t
                    .segments
                    .iter()
                    .map(|s| s.words.len())
                    .sum::<usize>()),
                error = out.as_ref().err().map(|e| e.to_string()),
                "decode"
            );
            drop(guard);
            metrics::gauge!("earshot_asr_slots_in_use").set(sched.inner.slots.in_use() as f64);
            out
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?
    }

    /// Transcribe a whole file's samples, window by window, each window in a slot of
    /// [`Priority::Batch`] (so an upload shares the machine fairly with live streams).
    pub async fn transcribe(
        &self,
        samples: Arc<Vec<f32>>,
        opts: BatchOptions,
    ) -> Result<Vec<Segment>, EngineError> {
        Ok(self.transcribe_detailed(samples, opts).await?.segments)
    }

    /// [`transcribe`](Self::transcribe), also reporting the language detected (when
    /// `opts.language` asked for detection).
    pub async fn transcribe_detailed(
        &self,
        samples: Arc<Vec<f32>>,
        opts: BatchOptions,
    ) -> Result<batch::BatchTranscript, EngineError> {
        let mut done = batch::Progress::default();
        for w in batch::plan_windows(&samples, &opts) {
            let piece = samples[w.clone()].to_vec();
            let dopts = done.window_options(&opts, w.start);
            let t = self.decode(Priority::Batch, piece, dopts).await?;
            done.add(t);
        }
        Ok(done.out)
    }
}

fn label(p: Priority) -> &'static str {
    match p {
        Priority::Commit => "commit",
        Priority::Batch => "batch",
        Priority::Partial => "partial",
    }
}
