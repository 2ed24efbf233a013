//! `GET /v1/sessions/{id}/stream`: live audio in over a WebSocket, partial and final
//! transcript segments out.
//!
//! The route is the socket, the lock, persistence and messages; how the audio is
//! transcribed is [`earshot_asr::LiveStream`]'s job.
//!
//! * [`query`]: the query string, checked before the upgrade;
//! * [`lock`]: one live stream per session (`lock:session:<id>:stream`);
//! * [`run`]: the loop between the socket, the live stream and the store;
//! * [`resume`]: where a reconnect picks up (its time line, the finals to replay);
//! * [`emit`]: the stream's events to the client, each final stored before it is sent;
//! * [`close`]: why a stream ended and the close code the client gets;
//! * [`claims`]: what a running stream holds, given back before the client hears the end.

mod claims;
mod close;
mod emit;
mod lock;
mod query;
mod resume;
mod run;

use std::time::Duration;

use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::response::Response;
use earshot_asr::{Backlog, LiveStream};
use earshot_core::SessionId;

pub use query::{StreamParams, StreamQuery};

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use lock::StreamLock;

/// Audio a stream may have waiting for transcription; past it the socket is no longer read,
/// which paces a client that sends faster than real time.
const MAX_BACKLOG: Duration = Duration::from_secs(10);
/// Audio one binary frame may hold; a longer frame closes the stream with an error frame
/// and 1009.
const MAX_FRAME_AUDIO: Duration = Duration::from_secs(2);
/// What the socket reads of one message at most, whatever the format (2 s of 48 kHz
/// `pcm_f32le` is 384 kB): past it the WebSocket layer itself refuses the message.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The upgrade handler: validates, finds or creates the session, takes the stream lock,
/// then hands the socket to [`run::run`].
pub async fn stream(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(raw_id): Path<String>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let id = SessionId::parse(&raw_id)
        .map_err(|e| ApiError::invalid(format!("{e} (session ids match [A-Za-z0-9_-]{{1,64}})")))?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let params = q.validate()?;
    let ws = ws.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this route expects a WebSocket upgrade (GET with Upgrade: websocket)",
        )
    })?;
    let speech = state.speech.model(params.model.as_deref())?;
    let engine = speech.scheduler.engine().clone();
    let speech_opts = q.speech(engine.is_english_only(), engine.config().max_prompt_chars)?;
    // Per-tenant live stream limit, counted across nodes (429 before upgrading).
    let tenant_slot = state
        .limits
        .acquire_stream(&state.store, &tenant, state.config.store.lock_ttl)
        .await?;
    let mut live = LiveStream::new(
        speech.scheduler.clone(),
        speech.stream.clone(),
        params.encoding,
        params.sample_rate,
    )
    .map_err(ApiError::from)?;
    if let Some(ms) = params.endpointing_ms {
        live.configure(Some(ms as u64), None);
    }
    live.configure_speech(
        speech_opts.prompt.clone(),
        speech_opts.language.engine.clone(),
        Some(speech_opts.translate),
    );
    let backlog = Backlog::new(
        params.encoding,
        params.sample_rate,
        MAX_BACKLOG,
        MAX_FRAME_AUDIO,
    );

    let session = state
        .sessions
        .find_or_create(
            &tenant,
            &id,
            &speech_opts.language.session,
            [
                ("source".to_owned(), "stream".to_owned()),
                ("model".to_owned(), speech.model_name.clone()),
            ]
            .into(),
        )
        .await?;
    let lock = StreamLock::take(
        state.store.clone(),
        id.as_str(),
        state.config.store.lock_ttl,
    )
    .await?;
    let claims = claims::Claims {
        lock,
        permit: speech.scheduler.try_admit(),
        tenant_slot,
    };
    let ctx = run::StreamCtx {
        sessions: state.sessions.clone(),
        key_scope: emit::key_scope(),
        finals: 0,
        tenant: tenant.as_str().to_owned(),
        session_id: id.as_str().to_owned(),
        live,
        backlog,
        idle_timeout: speech.idle_timeout,
        shutdown: state.shutdown.clone(),
        resume_after_seq: params.resume_after_seq,
        stored_finals: session.segment_count,
        send_partials: true,
        english_only: engine.is_english_only(),
        max_prompt_chars: engine.config().max_prompt_chars,
    };
    let tasks = state.tasks.clone();
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| tasks.track_future(run::run(ctx, socket, claims))))
}
