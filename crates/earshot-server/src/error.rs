//! The API's one error shape: `{"error":{"code","message"}}` with the right
//! status. Every handler returns `ApiError` on failure, so no path can answer with an
//! HTML page, an empty 500 or a panic.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use earshot_store::StoreError;
use serde_json::json;

/// A failed request, rendered as the JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503, 429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: malformed JSON or query.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: missing or unknown API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown API key: send Authorization: Bearer <key>",
        )
    }

    /// 404 for a session that does not exist or belongs to another tenant.
    pub fn session_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            format!("no session {:?}", truncate(id, 80)),
        )
    }

    /// 409: the request conflicts with the session's state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 409: the session is completed and takes no more segments or streams.
    pub fn session_completed() -> Self {
        Self::conflict(
            "session_completed",
            "the session is completed and accepts no more segments",
        )
    }

    /// 409: the session holds as much as one session may (`EARSHOT_MAX_SESSION_SEGMENTS`,
    /// `EARSHOT_MAX_SESSION_BYTES`).
    pub fn session_full() -> Self {
        Self::conflict(
            "session_full",
            "the session holds the most segments or text one session may; complete it and \
             continue in a new session",
        )
    }

    /// 422: well-formed request with invalid values.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 503 with `Retry-After`: every place for an upload is taken; it would only wait.
    pub fn uploads_busy() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is transcribing as many uploads as it can take; retry shortly",
            )
        }
    }

    /// 503 with `Retry-After`: the store did not answer.
    pub fn store_unavailable() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is unavailable; retry shortly",
            )
        }
    }
}

/// Cuts untrusted input before echoing it in a message.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// Audio the server could not or would not decode: 415 for a format it does not read,
/// 413 for more audio than it accepts, 422 for broken content.
impl From<earshot_asr::AudioError> for ApiError {
    fn from(e: earshot_asr::AudioError) -> Self {
        let status = if e.is_unsupported_format() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else if e.is_too_long() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, kind = e.kind(), "store call failed; answering 503");
        Self::store_unavailable()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;
