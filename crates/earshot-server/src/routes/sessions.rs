//! `/v1/sessions…`: create, read, list, append segments, complete, transcript, delete.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use earshot_core::format::{to_srt, to_vtt, TranscriptFormat};
use earshot_core::{NewSession, Session};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Tenant;
use crate::body::{JsonBody, OptionalJson};
use crate::error::{ApiError, ApiResult};
use crate::service::IdempotencyKey;
use crate::state::AppState;
use crate::validate::{path_session_id, CreateSessionBody, ListQuery, SegmentBody};

/// The request header that makes an append safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /v1/sessions` → 201 session, 409 if the id exists.
pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    OptionalJson(body): OptionalJson<CreateSessionBody>,
) -> ApiResult<Response> {
    let req = body.unwrap_or_default().validate()?;
    let session = state
        .sessions
        .create(NewSession {
            session_id: req.session_id,
            tenant_id: tenant,
            language: req.language,
            metadata: req.metadata,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

/// `GET /v1/sessions/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
) -> ApiResult<Json<Session>> {
    let id = path_session_id(&raw_id)?;
    state
        .store
        .get_session(tenant.as_str(), id.as_str())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::session_not_found(id.as_str()))
}

/// `GET /v1/sessions?limit=&cursor=`: newest first, the caller's tenant only.
pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit()?;
    let page = state
        .store
        .list_sessions(tenant.as_str(), limit, q.cursor.as_deref())
        .await?
        .map_err(|_| {
            ApiError::bad_request("invalid_cursor", "cursor is not one this server issued")
        })?;
    Ok(Json(
        json!({"sessions": page.sessions, "next_cursor": page.next_cursor}),
    ))
}

/// `POST /v1/sessions/{id}/segments` → 201 `{"seq": n}`. With `Idempotency-Key`, a
/// repeat answers the first `seq` and stores nothing; the same key with another segment
/// is 422 `idempotency_key_reused`.
pub async fn append_segment(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SegmentBody>,
) -> ApiResult<Response> {
    let id = path_session_id(&raw_id)?;
    let segment = body.validate()?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyKey::parse(v.to_str().unwrap_or_default()))
        .transpose()?;
    let seq = state
        .sessions
        .append(tenant.as_str(), id.as_str(), &segment, key.as_ref())
        .await
        .map_err(|e| e.into_api(id.as_str()))?;
    Ok((StatusCode::CREATED, Json(json!({"seq": seq}))).into_response())
}

/// `POST /v1/sessions/{id}/complete` → 200 session with `transcript`; idempotent.
pub async fn complete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = path_session_id(&raw_id)?;
    let (session, transcript) = state
        .sessions
        .complete(tenant.as_str(), id.as_str())
        .await?;
    Ok(Json(crate::views::session_with_transcript(
        &session, transcript,
    )))
}

/// `?format=` of the transcript route.
#[derive(Debug, Deserialize)]
pub struct TranscriptQuery {
    pub format: Option<String>,
}

/// `GET /v1/sessions/{id}/transcript?format=json|txt|srt|vtt`.
pub async fn transcript(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
    query: Result<Query<TranscriptQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let id = path_session_id(&raw_id)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let format: TranscriptFormat = q
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_format", e))?;
    let t = state
        .store
        .transcript(tenant.as_str(), id.as_str())
        .await?
        .ok_or_else(|| ApiError::session_not_found(id.as_str()))?;
    let text_response = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    Ok(match format {
        TranscriptFormat::Json => Json(t).into_response(),
        TranscriptFormat::Txt => text_response("text/plain; charset=utf-8", t.text),
        TranscriptFormat::Srt => {
            text_response("application/x-subrip; charset=utf-8", to_srt(&t.segments))
        }
        TranscriptFormat::Vtt => text_response("text/vtt; charset=utf-8", to_vtt(&t.segments)),
    })
}

/// `DELETE /v1/sessions/{id}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_session_id(&raw_id)?;
    if state
        .store
        .delete_session(tenant.as_str(), id.as_str())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::session_not_found(id.as_str()))
    }
}
