//! The speech side of the server: the shared decode scheduler and the per-stream
//! settings, or the reason speech is not available (no model), which `/readyz`
//! reports and the speech routes answer with 503.

use std::sync::Arc;
use std::time::Duration;

use earshot_asr::{Scheduler, StreamConfig};

/// Settings and the shared engine for the speech routes.
pub struct Speech {
    /// Bounded decode slots and stream admission, over the one loaded model.
    pub scheduler: Scheduler,
    /// Per-stream policy settings (VAD, decode interval, window).
    pub stream: StreamConfig,
    /// A stream that sends nothing (not even keepalive) for this long is closed.
    pub idle_timeout: Duration,
    /// Name reported as the model in logs and verbose responses.
    pub model_name: String,
}

/// Whether the speech routes can serve.
pub enum SpeechStatus {
    /// Model loaded.
    Ready(Arc<Speech>),
    /// Speech is wanted but not possible, e.g. no model file: the reason.
    Unavailable(String),
    /// Speech was switched off (`--no-asr`): text-only server, `/readyz` ignores it.
    Disabled,
}

impl SpeechStatus {
    /// The loaded speech state, or the 503 to answer.
    pub fn ready(&self) -> Result<Arc<Speech>, crate::error::ApiError> {
        use axum::http::StatusCode;
        match self {
            SpeechStatus::Ready(s) => Ok(s.clone()),
            SpeechStatus::Unavailable(reason) => Err(crate::error::ApiError {
                retry_after: Some(30),
                ..crate::error::ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model_unavailable",
                    format!("speech recognition is not available: {reason}"),
                )
            }),
            SpeechStatus::Disabled => Err(crate::error::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "speech_disabled",
                "this server was started without speech recognition (--no-asr)",
            )),
        }
    }
}
