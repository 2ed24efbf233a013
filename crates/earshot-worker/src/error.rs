//! The worker's failures. Only start-up problems are errors: once running, store
//! outages and sink failures are retried, counted and logged, never fatal.

use crate::sink::SinkSpecError;

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A configuration value that cannot work.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The sink could not be built (bad spec, unopenable file, missing secret).
    #[error(transparent)]
    Sink(#[from] SinkSpecError),
}
