//! `GET /v1/sessions/{id}/stream`: live audio in over a WebSocket, partial and final
//! transcript segments out (api.md §4).
//!
//! One task reads the socket and timestamps frames; the handler task decodes audio,
//! runs the streaming policy and persists each final through the same
//! `Store::append_segment` as `POST …/segments` before sending it; an [`Outbox`] task
//! writes to the client. A `lock:session:<id>:stream` lock keeps one live stream per
//! session; a decode slot admission answers `overloaded` (1013) when the machine is full.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use earshot_asr::{
    AudioEncoding, AudioError, Permit, StreamDecoder, StreamEvent, StreamingTranscriber,
};
use earshot_core::{NewSegment, NewSession, SessionId, SessionStatus};
use earshot_store::{AppendOutcome, CompleteOutcome, CreateOutcome, DynStore, LockToken};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::outbox::Outbox;
use crate::routes::sessions::{completed_conflict, session_with_transcript};
use crate::speech::Speech;
use crate::state::AppState;
use crate::ws_protocol::{ClientMessage, ServerMessage, ENDPOINTING_RANGE};

/// Lock purpose for the one live stream of a session.
const LOCK_PURPOSE: &str = "stream";
/// Frames that may wait between the socket reader and the decoder (about 40 s of audio
/// in 20 ms frames) before the stream is declared overloaded.
const INBOX_FRAMES: usize = 2048;
/// Largest binary frame accepted (1 s of 48 kHz f32 is 192 kB).
const MAX_FRAME_BYTES: usize = 1 << 20;

/// Query of the stream route.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub sample_rate: Option<String>,
    pub encoding: Option<String>,
    pub resume_after_seq: Option<String>,
    pub language: Option<String>,
    pub endpointing_ms: Option<String>,
    // `api_key` is read by the `Tenant` extractor only: keeping it out of this `Debug`
    // struct keeps it out of any log line that prints the query.
}

/// Validated stream parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    pub sample_rate: u32,
    pub encoding: AudioEncoding,
    pub resume_after_seq: Option<u64>,
    pub language: String,
    pub endpointing_ms: Option<u32>,
}

impl StreamQuery {
    /// Checks every parameter before the upgrade, so bad requests get a plain HTTP error.
    pub fn validate(&self) -> ApiResult<StreamParams> {
        let sample_rate = match self.sample_rate.as_deref() {
            None => 16_000,
            Some(r) => r.parse::<u32>().map_err(|_| {
                ApiError::invalid("sample_rate must be an integer number of Hz (8000-48000)")
            })?,
        };
        if !(8_000..=48_000).contains(&sample_rate) {
            return Err(ApiError::invalid(format!(
                "sample_rate {sample_rate} is outside 8000-48000 Hz"
            )));
        }
        let encoding = match self.encoding.as_deref().unwrap_or("pcm_s16le") {
            "pcm_s16le" => AudioEncoding::PcmS16le,
            "pcm_f32le" => AudioEncoding::PcmF32le,
            "pcm_mulaw" => AudioEncoding::PcmMulaw,
            other => {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    format!(
                        "encoding {:?} is not supported; use pcm_s16le, pcm_f32le or pcm_mulaw",
                        crate::error::truncate(other, 32)
                    ),
                ))
            }
        };
        let resume_after_seq = self
            .resume_after_seq
            .as_deref()
            .map(|s| {
                s.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        "resume_after_seq must be a non-negative integer",
                    )
                })
            })
            .transpose()?;
        let endpointing_ms = self
            .endpointing_ms
            .as_deref()
            .map(|s| {
                let (min, max) = ENDPOINTING_RANGE;
                s.parse::<u32>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| ApiError::invalid(format!("endpointing_ms must be {min}-{max}")))
            })
            .transpose()?;
        Ok(StreamParams {
            sample_rate,
            encoding,
            resume_after_seq,
            language: crate::validate::language(self.language.as_deref())?,
            endpointing_ms,
        })
    }
}

/// The upgrade handler: validates, finds or creates the session, takes the stream lock,
/// then hands the socket to [`run_stream`].
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
    let speech = state.speech.ready()?;
    // Per-tenant live stream limit (429 before upgrading); released when the task ends.
    let slot = state.limits.acquire_stream(&tenant)?;
    let decoder =
        StreamDecoder::new(params.encoding, params.sample_rate).map_err(audio_api_error)?;

    let existing = state
        .store
        .get_session(tenant.as_str(), id.as_str())
        .await?;
    match existing {
        Some(s) if s.status == SessionStatus::Completed => return Err(completed_conflict()),
        Some(_) => {}
        None => {
            let outcome = state
                .store
                .create_session(NewSession {
                    session_id: id.clone(),
                    tenant_id: tenant.clone(),
                    language: params.language.clone(),
                    metadata: [("source".to_owned(), "stream".to_owned())].into(),
                })
                .await?;
            if outcome == CreateOutcome::AlreadyExists
                && state
                    .store
                    .get_session(tenant.as_str(), id.as_str())
                    .await?
                    .is_none()
            {
                // Taken by another tenant: existence must not leak.
                return Err(ApiError::session_not_found(id.as_str()));
            }
        }
    }
    let lock_ttl = state.config.store.lock_ttl;
    let lock = state
        .store
        .try_lock(id.as_str(), LOCK_PURPOSE, lock_ttl)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "stream_active",
                "another connection is streaming into this session; close it or wait for its lock to expire",
            )
        })?;
    let permit = speech.scheduler.try_admit();
    let mut transcriber =
        StreamingTranscriber::new(speech.scheduler.clone(), speech.stream.clone());
    if let Some(ms) = params.endpointing_ms {
        transcriber.set_endpoint_silence_ms(ms as u64);
    }
    let ctx = StreamCtx {
        store: state.store.clone(),
        tenant: tenant.as_str().to_owned(),
        session_id: id.as_str().to_owned(),
        lock,
        lock_ttl,
        decoder,
        transcriber,
        speech,
        shutdown: state.shutdown.clone(),
        resume_after_seq: params.resume_after_seq,
        send_partials: true,
    };
    let tasks = state.tasks.clone();
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            tasks.track_future(async move {
                let _slot = slot;
                run_stream(ctx, socket, permit).await
            })
        }))
}

/// Maps an audio error to 415 (format) or 422 (values).
pub fn audio_api_error(e: AudioError) -> ApiError {
    let status = if e.is_unsupported_format() {
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    ApiError::new(status, e.code(), e.to_string())
}

struct StreamCtx {
    store: DynStore,
    tenant: String,
    session_id: String,
    lock: LockToken,
    lock_ttl: Duration,
    decoder: StreamDecoder,
    transcriber: StreamingTranscriber,
    speech: Arc<Speech>,
    shutdown: CancellationToken,
    resume_after_seq: Option<u64>,
    /// Whether partials are sent (`configure` can turn them off).
    send_partials: bool,
}

/// What the socket reader hands to the decoder.
enum Inbound {
    Audio(Vec<u8>, Instant),
    Text(String),
    Closed,
    Overflow,
}

/// Why the main loop ended.
#[derive(Debug)]
enum End {
    Finalize,
    ClientClosed,
    Idle,
    Shutdown,
    Overloaded,
    BadInput { code: &'static str, message: String },
    SessionCompleted,
    SessionGone,
    LockLost,
    Engine(String),
    Store(String),
}

/// Keeps `earshot_active_streams` right however the stream ends.
struct ActiveStream;

impl ActiveStream {
    fn new() -> Self {
        metrics::gauge!("earshot_active_streams").increment(1.0);
        Self
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        metrics::gauge!("earshot_active_streams").decrement(1.0);
    }
}

async fn run_stream(mut ctx: StreamCtx, socket: WebSocket, permit: Option<Permit>) {
    let (sink, mut source) = socket.split();
    let out = Outbox::spawn(sink);
    let Some(_permit) = permit else {
        out.send(&ServerMessage::Error {
            code: "overloaded".into(),
            message: "every decoding slot is busy; retry shortly".into(),
            retry_after_ms: Some(2000),
        });
        out.close(1013, "overloaded").await;
        release(&mut ctx).await;
        return;
    };
    let _active = ActiveStream::new();

    if let Some(after) = ctx.resume_after_seq {
        match ctx.store.transcript(&ctx.tenant, &ctx.session_id).await {
            Ok(Some(t)) => {
                for s in t.segments.into_iter().filter(|s| s.seq > after) {
                    out.send(&ServerMessage::Final {
                        seq: s.seq,
                        text: s.text,
                        start_ms: s.start_ms.unwrap_or(0),
                        end_ms: s.end_ms.unwrap_or(0),
                    });
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "replay of finals failed"),
        }
    }

    let (tx, mut rx) = mpsc::channel::<Inbound>(INBOX_FRAMES);
    let reader = tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            let inbound = match msg {
                Ok(Message::Binary(b)) => Inbound::Audio(b.to_vec(), Instant::now()),
                Ok(Message::Text(t)) => Inbound::Text(t.to_string()),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue, // ping/pong are answered by the library
            };
            if tx.try_send(inbound).is_err() {
                let _ = tx.send(Inbound::Overflow).await;
                return;
            }
        }
        let _ = tx.send(Inbound::Closed).await;
    });

    let idle = ctx.speech.idle_timeout;
    // The lock is kept alive by its own task: a long decode on a busy machine must not
    // let it expire under a live stream.
    let lock_lost = CancellationToken::new();
    let keeper = tokio::spawn(keep_lock(
        ctx.store.clone(),
        ctx.session_id.clone(),
        ctx.lock.clone(),
        ctx.lock_ttl,
        lock_lost.clone(),
    ));
    // A message taken off the queue while catching up on audio, to be handled next.
    let mut held: Option<Inbound> = None;
    let end = loop {
        let shutdown = ctx.shutdown.clone();
        let lost = lock_lost.clone();
        let next = if let Some(m) = held.take() {
            Ok(Some(m))
        } else {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break End::Shutdown,
                _ = lost.cancelled() => break End::LockLost,
                msg = tokio::time::timeout(idle, rx.recv()) => msg,
            }
        };
        let step = match next {
            Err(_) => Err(End::Idle),
            Ok(None) | Ok(Some(Inbound::Closed)) => Err(End::ClientClosed),
            Ok(Some(Inbound::Overflow)) => Err(End::Overloaded),
            Ok(Some(Inbound::Audio(bytes, at))) => {
                on_audio(&mut ctx, &out, &mut rx, &mut held, bytes, at).await
            }
            Ok(Some(Inbound::Text(text))) => on_text(&mut ctx, &out, &text).await,
        };
        if let Err(end) = step {
            break end;
        }
    };
    reader.abort();
    wind_down(&mut ctx, out, end).await;
    keeper.abort();
    release(&mut ctx).await;
}

/// Feeds this frame and every audio frame already queued behind it (frames pile up while a
/// decode runs), then runs at most one decode: a stream that fell behind catches up with one
/// decode over its backlog instead of one per second of it. The first non-audio message met
/// is put in `held`, to be handled next, in order.
async fn on_audio(
    ctx: &mut StreamCtx,
    out: &Outbox,
    rx: &mut mpsc::Receiver<Inbound>,
    held: &mut Option<Inbound>,
    bytes: Vec<u8>,
    at: Instant,
) -> Result<(), End> {
    let mut frame = Some((bytes, at));
    while let Some((bytes, at)) = frame.take() {
        let samples = ctx.decoder.push(&bytes).map_err(|e| End::BadInput {
            code: e.code(),
            message: e.to_string(),
        })?;
        let events = ctx
            .transcriber
            .feed(&samples, at)
            .await
            .map_err(|e| End::Engine(e.to_string()))?;
        emit(ctx, out, events).await?;
        match rx.try_recv() {
            Ok(Inbound::Audio(b, t)) => frame = Some((b, t)),
            Ok(other) => *held = Some(other),
            Err(_) => {}
        }
    }
    let events = ctx
        .transcriber
        .decode_if_due()
        .await
        .map_err(|e| End::Engine(e.to_string()))?;
    emit(ctx, out, events).await
}

async fn on_text(ctx: &mut StreamCtx, out: &Outbox, text: &str) -> Result<(), End> {
    match ClientMessage::parse(text) {
        Err(e) => Err(End::BadInput {
            code: "invalid_message",
            message: e.to_string(),
        }),
        Ok(ClientMessage::Keepalive) => Ok(()),
        Ok(ClientMessage::Configure {
            endpointing_ms,
            partials,
        }) => {
            if let Some(ms) = endpointing_ms {
                ctx.transcriber.set_endpoint_silence_ms(ms as u64);
            }
            if let Some(p) = partials {
                ctx.send_partials = p;
            }
            Ok(())
        }
        Ok(ClientMessage::Flush) => {
            let events = ctx
                .transcriber
                .flush()
                .await
                .map_err(|e| End::Engine(e.to_string()))?;
            emit(ctx, out, events).await
        }
        Ok(ClientMessage::Finalize) => Err(End::Finalize),
    }
}

/// Sends events; persists each final first and sends it only once it is stored.
async fn emit(ctx: &mut StreamCtx, out: &Outbox, events: Vec<StreamEvent>) -> Result<(), End> {
    for ev in events {
        match ev {
            StreamEvent::SpeechStarted { at_ms } => {
                out.send(&ServerMessage::SpeechStarted { at_ms })
            }
            StreamEvent::UtteranceEnd { at_ms } => out.send(&ServerMessage::UtteranceEnd { at_ms }),
            StreamEvent::Partial {
                rev,
                text,
                start_ms,
            } => {
                if ctx.send_partials {
                    out.partial(&ServerMessage::Partial {
                        rev,
                        text,
                        start_ms,
                    })
                }
            }
            StreamEvent::Final {
                text,
                start_ms,
                end_ms,
            } => {
                let text = text.trim().to_owned();
                if text.is_empty() {
                    continue;
                }
                let segment = NewSegment {
                    text,
                    start_ms: Some(start_ms as i64),
                    end_ms: Some(end_ms as i64),
                };
                let seq = persist(ctx, &segment).await?;
                out.send(&ServerMessage::Final {
                    seq,
                    text: segment.text,
                    start_ms: start_ms as i64,
                    end_ms: end_ms as i64,
                });
            }
        }
    }
    Ok(())
}

/// `append_segment` with a few retries over a short store outage.
async fn persist(ctx: &mut StreamCtx, segment: &NewSegment) -> Result<u64, End> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ctx
            .store
            .append_segment(&ctx.tenant, &ctx.session_id, segment)
            .await
        {
            Ok(AppendOutcome::Appended { seq, .. }) => return Ok(seq),
            Ok(AppendOutcome::Completed) => return Err(End::SessionCompleted),
            Ok(AppendOutcome::NotFound) => return Err(End::SessionGone),
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, attempt, "persisting a final failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 3;
            }
            Err(e) => return Err(End::Store(e.to_string())),
        }
    }
}

/// Ends the stream: delivers the last words whenever the engine still works, then the
/// closing frames that say why.
async fn wind_down(ctx: &mut StreamCtx, out: Outbox, end: End) {
    let deliver_tail = !matches!(
        end,
        End::Engine(_) | End::Store(_) | End::SessionCompleted | End::SessionGone | End::LockLost
    );
    let mut end = end;
    if deliver_tail {
        if let Err(e) = flush_tail(ctx, &out).await {
            end = e;
        }
    }
    let (code, reason) = match end {
        End::Finalize => {
            match ctx
                .store
                .complete_session(&ctx.tenant, &ctx.session_id)
                .await
            {
                Ok(CompleteOutcome::Completed {
                    session,
                    transcript,
                    ..
                }) => {
                    out.send(&ServerMessage::Completed {
                        session: session_with_transcript(&session, transcript.clone()),
                        transcript,
                    });
                    (1000, "completed".to_owned())
                }
                Ok(CompleteOutcome::NotFound) => {
                    out.send(&ServerMessage::error(
                        "session_not_found",
                        "the session was deleted",
                    ));
                    (1008, "session_not_found".to_owned())
                }
                Err(e) => {
                    out.send(&ServerMessage::Error {
                        code: "store_unavailable".into(),
                        message: format!("could not complete the session: {e}"),
                        retry_after_ms: Some(1000),
                    });
                    (1011, "store_unavailable".to_owned())
                }
            }
        }
        End::ClientClosed => (1000, "closed".to_owned()),
        End::Idle => {
            let secs = ctx.speech.idle_timeout.as_secs();
            out.send(&ServerMessage::error(
                "idle_timeout",
                format!("no audio or keepalive for {secs} s; send {{\"type\":\"keepalive\"}} to keep an idle stream open"),
            ));
            (1000, "idle_timeout".to_owned())
        }
        End::Shutdown => {
            out.send(&ServerMessage::Error {
                code: "shutting_down".into(),
                message: "the server is restarting; reconnect with resume_after_seq".into(),
                retry_after_ms: Some(1000),
            });
            (1012, "server restart".to_owned())
        }
        End::Overloaded => {
            out.send(&ServerMessage::Error {
                code: "overloaded".into(),
                message: "audio arrives faster than it can be transcribed".into(),
                retry_after_ms: Some(2000),
            });
            (1013, "overloaded".to_owned())
        }
        End::BadInput { code, message } => {
            out.send(&ServerMessage::error(code, message));
            (1008, code.to_owned())
        }
        End::SessionCompleted => {
            out.send(&ServerMessage::error(
                "session_completed",
                "the session was completed elsewhere",
            ));
            (1008, "session_completed".to_owned())
        }
        End::SessionGone => {
            out.send(&ServerMessage::error(
                "session_not_found",
                "the session was deleted",
            ));
            (1008, "session_not_found".to_owned())
        }
        End::LockLost => {
            out.send(&ServerMessage::error(
                "stream_active",
                "another connection took over this session",
            ));
            (1008, "stream_active".to_owned())
        }
        End::Engine(e) => {
            tracing::error!(error = %e, "speech engine failed");
            out.send(&ServerMessage::Error {
                code: "asr_failed".into(),
                message: "speech recognition failed on the server".into(),
                retry_after_ms: Some(1000),
            });
            (1011, "asr_failed".to_owned())
        }
        End::Store(e) => {
            out.send(&ServerMessage::Error {
                code: "store_unavailable".into(),
                message: format!(
                    "a final could not be stored: {e}; reconnect with resume_after_seq"
                ),
                retry_after_ms: Some(1000),
            });
            (1011, "store_unavailable".to_owned())
        }
    };
    out.close(code, &reason).await;
}

/// Decodes what is left in the decoder and the window, so the last words are final.
async fn flush_tail(ctx: &mut StreamCtx, out: &Outbox) -> Result<(), End> {
    let tail = ctx.decoder.finish().unwrap_or_default();
    let mut events = ctx
        .transcriber
        .push(&tail)
        .await
        .map_err(|e| End::Engine(e.to_string()))?;
    events.extend(
        ctx.transcriber
            .finish()
            .await
            .map_err(|e| End::Engine(e.to_string()))?,
    );
    emit(ctx, out, events).await
}

/// Extends the stream lock every third of its TTL until aborted; cancels `lost` if
/// another owner holds it now. Store errors are retried at the next tick (the lock
/// survives a short outage since its TTL is three ticks).
async fn keep_lock(
    store: DynStore,
    session_id: String,
    token: LockToken,
    ttl: Duration,
    lost: CancellationToken,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        match store
            .extend_lock(&session_id, LOCK_PURPOSE, &token, ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not extend the stream lock; will retry"),
        }
    }
}

async fn release(ctx: &mut StreamCtx) {
    if let Err(e) = ctx
        .store
        .unlock(&ctx.session_id, LOCK_PURPOSE, &ctx.lock)
        .await
    {
        tracing::warn!(error = %e, "could not release the stream lock; it expires by itself");
    }
}
