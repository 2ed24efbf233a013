//! `/healthz` (the process runs), `/readyz` (the store answers and, when speech is
//! enabled, the models are loaded: it names them) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// 200 while the process runs.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when every dependency answers, else 503 with the reasons.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    let timeout = state.config.store.command_timeout;
    match tokio::time::timeout(timeout, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => reasons.push(format!("store ({}): {e}", state.store.backend())),
        Err(_) => reasons.push(format!(
            "store ({}): no answer within {timeout:?}",
            state.store.backend()
        )),
    }
    if let crate::speech::SpeechStatus::Unavailable(why) = &*state.speech {
        reasons.push(format!("model: {why}"));
    }
    if reasons.is_empty() {
        let mut body = json!({"status": "ready", "store": state.store.backend()});
        if let Ok((models, default)) = state.speech.loaded() {
            body["models"] = models.iter().map(|m| m.model_name.clone()).collect();
            body["default_model"] = models[default].model_name.clone().into();
        }
        Json(body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"status": "not_ready", "reasons": reasons})),
        )
            .into_response()
    }
}

/// Prometheus text format.
pub async fn metrics() -> Response {
    let body = crate::metrics::install().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
