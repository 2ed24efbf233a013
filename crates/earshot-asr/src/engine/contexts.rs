//! The model's whisper contexts, each with its pool of decoding states.
//!
//! whisper.cpp turns DTW word alignment on per context, not per decode, and after the
//! encoder it is the dearest part of a short decode: a second decoder pass over every token
//! of the decode, logits and all, then the alignment itself. A stream's partial decodes
//! (about half of its decodes) show text whose word times nobody reads, so they run on a
//! second context of the same model without DTW. That loads the weights twice (tens of MB
//! for tiny and base), which [`EngineConfig::untimed_context`] can turn off.

use parking_lot::Mutex;
use whisper_rs::{WhisperContext, WhisperContextParameters, WhisperState};

use super::config::{EngineConfig, EngineError};

/// One whisper context and the states decodes on it reuse.
pub(super) struct Pooled {
    ctx: WhisperContext,
    pool: Mutex<Vec<WhisperState>>,
    max_pooled: usize,
    /// Its decodes give DTW token times.
    pub(super) dtw: bool,
}

impl Pooled {
    pub(super) fn load(
        path: &str,
        params: WhisperContextParameters<'_>,
        dtw: bool,
        max_pooled: usize,
    ) -> Result<Self, String> {
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| e.to_string())?;
        Ok(Pooled {
            ctx,
            pool: Mutex::new(Vec::new()),
            max_pooled,
            dtw,
        })
    }

    pub(super) fn context(&self) -> &WhisperContext {
        &self.ctx
    }

    pub(super) fn new_state(&self) -> Result<WhisperState, EngineError> {
        self.ctx
            .create_state()
            .map_err(|e| EngineError::Decode(format!("create state: {e}")))
    }

    /// A state from the pool, or a new one.
    pub(super) fn take(&self) -> Result<WhisperState, EngineError> {
        if let Some(s) = self.pool.lock().pop() {
            return Ok(s);
        }
        self.new_state()
    }

    /// Back to the pool after a successful decode (a failed one may hold garbage).
    pub(super) fn give_back(&self, st: WhisperState) {
        let mut p = self.pool.lock();
        if p.len() < self.max_pooled {
            p.push(st);
        }
    }

    /// One state up front, so that the first decode does not pay for it.
    pub(super) fn warm(&self) -> Result<(), EngineError> {
        let st = self.new_state()?;
        self.pool.lock().push(st);
        Ok(())
    }
}

/// The timed context every decode may use, and the untimed one for decodes that read no
/// word times (when DTW is on and the second context is wanted).
pub(super) struct Contexts {
    pub(super) timed: Pooled,
    pub(super) untimed: Option<Pooled>,
}

impl Contexts {
    /// The context for a decode: the untimed one when its word times are not read.
    pub(super) fn for_decode(&self, untimed: bool) -> &Pooled {
        match &self.untimed {
            Some(u) if untimed => u,
            _ => &self.timed,
        }
    }

    /// Whether a second, untimed context is loaded for `cfg` when the timed one has DTW.
    pub(super) fn wants_untimed(cfg: &EngineConfig, dtw: bool) -> bool {
        dtw && cfg.untimed_context
    }
}
