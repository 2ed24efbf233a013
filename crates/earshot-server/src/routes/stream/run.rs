//! The loop of one live stream: the socket reader queues frames (paced by the stream's
//! [`Backlog`]), the loop feeds them to the [`LiveStream`] and hands its events to
//! [`emit`](super::emit) (finals stored before they are sent), and an [`Outbox`] task
//! writes to the client.

use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use earshot_asr::{Backlog, BacklogPermit, LiveError, LiveStream};
use earshot_store::CompleteOutcome;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::claims::Claims;
use super::close::End;
use super::emit::emit;
use crate::outbox::Outbox;
use crate::service::SessionService;
use crate::views::session_with_transcript;
use crate::ws_protocol::{ClientMessage, ServerMessage};

/// Messages that may wait between the socket reader and the loop; audio is bounded by the
/// backlog, this only bounds the count of tiny frames.
const INBOX_MESSAGES: usize = 1024;

pub struct StreamCtx {
    pub sessions: SessionService,
    /// Names this connection in the idempotency keys of its finals.
    pub key_scope: String,
    /// Finals persisted so far: the ordinal in the next final's idempotency key.
    pub finals: u64,
    pub tenant: String,
    pub session_id: String,
    pub live: LiveStream,
    pub backlog: Backlog,
    pub idle_timeout: Duration,
    pub shutdown: CancellationToken,
    pub resume_after_seq: Option<u64>,
    /// Finals the session held when the stream opened: without any, there is no time line
    /// to continue and nothing to replay, so no final is read.
    pub stored_finals: u64,
    /// Whether partials are sent (`configure` can turn them off).
    pub send_partials: bool,
    /// The loaded model cannot translate (`configure` is checked against it).
    pub english_only: bool,
    /// The model's prompt cap, the bound of a prompt set by `configure`.
    pub max_prompt_chars: usize,
}

/// What the socket reader hands to the loop.
enum Inbound {
    Audio(Vec<u8>, Instant, BacklogPermit),
    Text(String),
    Closed,
    TooLarge(String),
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

pub async fn run(mut ctx: StreamCtx, socket: WebSocket, claims: Claims) {
    let (sink, mut source) = socket.split();
    let out = Outbox::spawn(sink);
    if claims.permit.is_none() {
        close(&mut ctx, out, End::Overloaded, claims).await;
        return;
    }
    let _active = ActiveStream::new();
    super::resume::resume(&mut ctx, &out).await;

    let (tx, mut rx) = mpsc::channel::<Inbound>(INBOX_MESSAGES);
    let backlog = ctx.backlog.clone();
    let reader = tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            let inbound = match msg {
                Ok(Message::Binary(b)) => {
                    // Waits while the backlog is full: the socket is not read, which paces
                    // the client.
                    match backlog.reserve(b.len()).await {
                        Ok(permit) => Inbound::Audio(b.to_vec(), Instant::now(), permit),
                        Err(e) => Inbound::TooLarge(e.to_string()),
                    }
                }
                Ok(Message::Text(t)) => Inbound::Text(t.to_string()),
                Err(e) => match too_long(e) {
                    // The socket refused the frame unread: past it the connection is
                    // useless, but the client is told why, as for a frame of too much audio.
                    Some(size) => Inbound::TooLarge(format!(
                        "a frame of {size} bytes is larger than a frame may be ({} bytes of \
                         audio at most)",
                        backlog.max_frame_bytes()
                    )),
                    None => break,
                },
                Ok(Message::Close(_)) => break,
                Ok(_) => continue, // ping/pong are answered by the library
            };
            if tx.send(inbound).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Inbound::Closed).await;
    });

    let keeper = claims.lock.keep();
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break match drain(&mut ctx, &out, &mut rx).await {
                Ok(()) => End::Shutdown,
                Err(end) => end,
            },
            _ = keeper.lost.cancelled() => break End::LockLost,
            msg = tokio::time::timeout(ctx.idle_timeout, rx.recv()) => msg,
            partial = ctx.live.next_partial() => {
                match partial {
                    Ok(events) => match emit(&mut ctx, &out, events).await {
                        Ok(()) => continue,
                        Err(end) => break end,
                    },
                    Err(e) => break End::Engine(e.to_string()),
                }
            }
        };
        let step = match next {
            Err(_) => Err(End::Idle),
            Ok(None) | Ok(Some(Inbound::Closed)) => Err(End::ClientClosed),
            Ok(Some(Inbound::TooLarge(message))) => Err(End::FrameTooLarge(message)),
            Ok(Some(Inbound::Audio(bytes, at, permit))) => {
                let step = on_audio(&mut ctx, &out, &bytes, at).await;
                drop(permit);
                if rx.is_empty() {
                    ctx.live.caught_up();
                }
                step
            }
            Ok(Some(Inbound::Text(text))) => on_text(&mut ctx, &out, &text).await,
        };
        if let Err(end) = step {
            break end;
        }
    };
    reader.abort();
    drop(keeper);
    wind_down(&mut ctx, out, end, claims).await;
}

/// The size of a message the socket refused as larger than it reads, if that is what
/// ended the read (else the connection failed).
fn too_long(e: axum::Error) -> Option<usize> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match e.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(CapacityError::MessageTooLong { size, .. })) => Some(*size),
        _ => None,
    }
}

/// How long a stream keeps reading its client once the server shuts down, waiting for
/// the `flush` that says the client has stopped sending.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The server is shutting down. Audio the client already sent must not be dropped unread,
/// yet the client keeps sending until it hears of the shutdown. So the client is told
/// (`draining`): it stops sending, keeps its audio for the next connection, and sends
/// `flush`. Everything read before that `flush` (or for [`DRAIN_GRACE`], for a client that
/// does not answer) is transcribed like any other audio.
async fn drain(
    ctx: &mut StreamCtx,
    out: &Outbox,
    rx: &mut mpsc::Receiver<Inbound>,
) -> Result<(), End> {
    out.send(&ServerMessage::Draining {
        grace_ms: DRAIN_GRACE.as_millis() as u64,
    });
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) | Ok(None) | Ok(Some(Inbound::Closed)) => return Ok(()),
            Ok(Some(Inbound::TooLarge(message))) => return Err(End::FrameTooLarge(message)),
            Ok(Some(Inbound::Audio(bytes, at, permit))) => {
                on_audio(ctx, out, &bytes, at).await?;
                drop(permit);
            }
            Ok(Some(Inbound::Text(text))) => match ClientMessage::parse(&text) {
                Ok(ClientMessage::Flush) => return Ok(()),
                Ok(ClientMessage::Finalize) => return Err(End::Finalize),
                _ => {}
            },
        }
    }
}

fn live_end(e: LiveError) -> End {
    match e {
        LiveError::Audio(a) => End::BadInput {
            code: a.code(),
            message: a.to_string(),
        },
        LiveError::Engine(e) => End::Engine(e.to_string()),
    }
}

async fn on_audio(ctx: &mut StreamCtx, out: &Outbox, bytes: &[u8], at: Instant) -> Result<(), End> {
    let events = ctx.live.audio(bytes, at).await.map_err(live_end)?;
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
            prompt,
            vocabulary,
            translate,
        }) => {
            let refused = |e: crate::error::ApiError| End::BadInput {
                code: e.code,
                message: e.message,
            };
            if translate == Some(true) && ctx.english_only {
                return Err(End::BadInput {
                    code: "unsupported_language",
                    message: "translation needs a multilingual model; the loaded model is \
                              English-only"
                        .into(),
                });
            }
            let prompt = match (prompt, vocabulary) {
                (Some(p), _) => Some(
                    crate::speech_request::prompt(&p, ctx.max_prompt_chars)
                        .map_err(refused)?
                        .unwrap_or_default(),
                ),
                (None, Some(v)) => Some(
                    crate::speech_request::vocabulary(&v, ctx.max_prompt_chars)
                        .map_err(refused)?
                        .unwrap_or_default(),
                ),
                (None, None) => None,
            };
            ctx.live.configure_speech(prompt, None, translate);
            ctx.live.configure(endpointing_ms.map(u64::from), partials);
            if let Some(p) = partials {
                ctx.send_partials = p;
            }
            Ok(())
        }
        Ok(ClientMessage::Flush) => {
            let events = ctx.live.flush().await.map_err(live_end)?;
            emit(ctx, out, events).await
        }
        Ok(ClientMessage::Finalize) => Err(End::Finalize),
    }
}

/// Ends the stream: delivers the last words whenever the engine still works, then the
/// closing frames that say why.
async fn wind_down(ctx: &mut StreamCtx, out: Outbox, end: End, claims: Claims) {
    let mut end = end;
    if end.delivers_tail() {
        let tail = match ctx.live.finish().await {
            Ok(events) => emit(ctx, &out, events).await,
            Err(e) => Err(live_end(e)),
        };
        if let Err(e) = tail {
            end = e;
        }
    }
    close(ctx, out, end, claims).await;
}

/// Sends the closing frames for `end`; `finalize` completes the session first. The
/// claims are given back after the last message and before the close frame.
async fn close(ctx: &mut StreamCtx, out: Outbox, end: End, claims: Claims) {
    if !matches!(end, End::Finalize) {
        let (msg, code, reason) = end.close_frame(ctx.idle_timeout.as_secs());
        if let Some(m) = msg {
            out.send(&m);
        }
        claims.release().await;
        out.close(code, reason).await;
        return;
    }
    let (code, reason) = match ctx
        .sessions
        .store()
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
            (1000, "completed")
        }
        Ok(CompleteOutcome::NotFound) => {
            out.send(&ServerMessage::error(
                "session_not_found",
                "the session was deleted",
            ));
            (1008, "session_not_found")
        }
        Err(e) => {
            out.send(&ServerMessage::Error {
                code: "store_unavailable".into(),
                message: format!("could not complete the session: {e}"),
                retry_after_ms: Some(1000),
            });
            (1011, "store_unavailable")
        }
    };
    claims.release().await;
    out.close(code, reason).await;
}
