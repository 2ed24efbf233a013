//! `GET /v1/models` and `GET /v1/models/{id}`: the loaded speech models, in OpenAI's
//! list shape so `client.models.list()` of the OpenAI SDKs works, with what a client needs
//! to choose (the default, languages, weight type) beside OpenAI's fields.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::speech::{Speech, SpeechStatus};
use crate::state::AppState;

/// The list.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    if matches!(*state.speech, SpeechStatus::Disabled) {
        return Ok(Json(json!({"object": "list", "data": []})));
    }
    let models = {
        let (list, default) = state.speech.loaded()?;
        list.iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i == default))
            .collect()
    };
    let data = describe_all(models).await?;
    Ok(Json(json!({"object": "list", "data": data})))
}

/// One model, by its name (`whisper-1` is the default model).
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let wanted = state.speech.model(Some(&id)).map_err(|e| {
        if e.code == "unknown_model" {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "model_not_found",
                e.message,
            )
        } else {
            e
        }
    })?;
    let (list, default) = state.speech.loaded()?;
    let is_default = Arc::ptr_eq(&list[default], &wanted);
    let data = describe_all(vec![(wanted, is_default)]).await?;
    Ok(Json(data.into_iter().next().unwrap_or_default()))
}

/// Reads each model file's header (a few bytes) off the async threads.
async fn describe_all(models: Vec<(Arc<Speech>, bool)>) -> ApiResult<Vec<Value>> {
    tokio::task::spawn_blocking(move || {
        models
            .iter()
            .map(|(m, is_default)| describe(m, *is_default))
            .collect()
    })
    .await
    .map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "reading the model list failed",
        )
    })
}

fn describe(m: &Speech, is_default: bool) -> Value {
    let engine = m.scheduler.engine();
    let path = &engine.config().model_path;
    let created = std::fs::metadata(path)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let weights = earshot_ggml::read_hparams(path)
        .map(|i| i.weights.name())
        .unwrap_or_else(|_| "unknown".into());
    json!({
        "id": m.model_name,
        "object": "model",
        "created": created,
        "owned_by": "earshot",
        "default": is_default,
        "multilingual": !engine.is_english_only(),
        "weights": weights,
    })
}
