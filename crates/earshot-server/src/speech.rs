//! The speech side of the server: the loaded models (each with its decode scheduler and
//! per-stream settings) and which one a request asked for, or the reason speech is not
//! available (no model), which `/readyz` reports and the speech routes answer with 503.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use earshot_asr::{Scheduler, StreamConfig};

use crate::error::ApiError;

/// The model name OpenAI's SDKs send: it means this server's default model.
pub const OPENAI_MODEL_ALIAS: &str = "whisper-1";

/// One loaded model: its engine's scheduler and the speech routes' settings for it.
pub struct Speech {
    /// Bounded decode slots and stream admission for this model (with several models the
    /// slots are shared and each model's cost is measured on its own).
    pub scheduler: Scheduler,
    /// Per-stream policy settings (VAD, decode interval, window).
    pub stream: StreamConfig,
    /// A stream that sends nothing (not even keepalive) for this long is closed.
    pub idle_timeout: Duration,
    /// The name requests choose the model by (`tiny.en`), reported in `/v1/models`, the
    /// session metadata and logs.
    pub model_name: String,
}

/// Several loaded models and the default one.
pub struct Models {
    list: Vec<Arc<Speech>>,
    default: usize,
}

impl Models {
    /// The models, the default named by `default` (`None`: the first). Names must be
    /// distinct.
    pub fn new(list: Vec<Speech>, default: Option<&str>) -> Result<Self, String> {
        if list.is_empty() {
            return Err("no models".into());
        }
        for (i, m) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|o| same_name(&o.model_name, &m.model_name))
            {
                return Err(format!("model name {:?} is given twice", m.model_name));
            }
        }
        let list: Vec<Arc<Speech>> = list.into_iter().map(Arc::new).collect();
        let default = match default {
            None => 0,
            Some(d) => list
                .iter()
                .position(|m| same_name(&m.model_name, d))
                .ok_or_else(|| {
                    format!(
                        "the default model {d:?} is not among the loaded ones ({})",
                        names(&list)
                    )
                })?,
        };
        Ok(Models { list, default })
    }

    /// The loaded models in configuration order.
    pub fn list(&self) -> &[Arc<Speech>] {
        &self.list
    }

    /// The default model.
    pub fn default_model(&self) -> &Arc<Speech> {
        &self.list[self.default]
    }
}

/// `tiny.en`, `ggml-tiny.en` and `ggml-tiny.en.bin` name the same model.
fn short(name: &str) -> &str {
    let n = name.trim();
    let n = n.strip_suffix(".bin").unwrap_or(n);
    n.strip_prefix("ggml-").unwrap_or(n)
}

fn same_name(a: &str, b: &str) -> bool {
    short(a) == short(b)
}

fn names(list: &[Arc<Speech>]) -> String {
    list.iter()
        .map(|m| m.model_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the speech routes can serve.
pub enum SpeechStatus {
    /// One model loaded: served under its name, and as the default.
    Ready(Arc<Speech>),
    /// Several models loaded (`EARSHOT_MODELS`).
    Models(Arc<Models>),
    /// Speech is wanted but not possible, e.g. no model file: the reason.
    Unavailable(String),
    /// Speech was switched off (`--no-asr`): text-only server, `/readyz` ignores it.
    Disabled,
}

impl SpeechStatus {
    /// The loaded models and the default's index, or the 503 to answer.
    pub fn loaded(&self) -> Result<(&[Arc<Speech>], usize), ApiError> {
        match self {
            SpeechStatus::Ready(s) => Ok((std::slice::from_ref(s), 0)),
            SpeechStatus::Models(m) => Ok((m.list(), m.default)),
            SpeechStatus::Unavailable(reason) => Err(ApiError {
                retry_after: Some(30),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model_unavailable",
                    format!("speech recognition is not available: {reason}"),
                )
            }),
            SpeechStatus::Disabled => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "speech_disabled",
                "this server was started without speech recognition (--no-asr)",
            )),
        }
    }

    /// The default model, or the 503 to answer.
    pub fn ready(&self) -> Result<Arc<Speech>, ApiError> {
        self.model(None)
    }

    /// The model a request named (`None`, empty or `whisper-1`: the default), or 400
    /// `unknown_model` listing the loaded ones, or the 503 to answer.
    pub fn model(&self, requested: Option<&str>) -> Result<Arc<Speech>, ApiError> {
        let (list, default) = self.loaded()?;
        let wanted = requested.map(str::trim).unwrap_or("");
        if wanted.is_empty() || wanted == OPENAI_MODEL_ALIAS {
            return Ok(list[default].clone());
        }
        list.iter()
            .find(|m| same_name(&m.model_name, wanted))
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "unknown_model",
                    format!(
                        "model {:?} is not loaded on this server; loaded: {} (default {}; \
                         {OPENAI_MODEL_ALIAS} means the default)",
                        crate::error::truncate(wanted, 64),
                        names(list),
                        list[default].model_name
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_with_or_without_the_file_decoration() {
        assert!(same_name("tiny.en", "ggml-tiny.en.bin"));
        assert!(same_name("ggml-base-q5_0", "base-q5_0"));
        assert!(!same_name("base", "base-q5_0"));
    }
}
