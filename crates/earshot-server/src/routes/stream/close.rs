//! Why a stream ended, and what the client is told: the close-code table in one place.

use crate::ws_protocol::ServerMessage;

/// Why the stream loop ended.
#[derive(Debug)]
pub enum End {
    Finalize,
    ClientClosed,
    Idle,
    Shutdown,
    Overloaded,
    FrameTooLarge(String),
    BadInput { code: &'static str, message: String },
    SessionCompleted,
    SessionGone,
    SessionFull,
    LockLost,
    Engine(String),
    Store(String),
}

impl End {
    /// Whether the last words are still decoded and delivered before closing.
    pub fn delivers_tail(&self) -> bool {
        !matches!(
            self,
            End::Engine(_)
                | End::Store(_)
                | End::SessionCompleted
                | End::SessionGone
                | End::SessionFull
                | End::LockLost
        )
    }

    /// The error frame to send (if any), and the close code and reason. `Finalize` is
    /// answered by the caller (it completes the session first).
    pub fn close_frame(self, idle_secs: u64) -> (Option<ServerMessage>, u16, &'static str) {
        let retry = |code: &str, message: String, ms| ServerMessage::Error {
            code: code.into(),
            message,
            retry_after_ms: Some(ms),
        };
        match self {
            End::Finalize | End::ClientClosed => (None, 1000, "closed"),
            End::Idle => (
                Some(ServerMessage::error(
                    "idle_timeout",
                    format!("no audio or keepalive for {idle_secs} s; send {{\"type\":\"keepalive\"}} to keep an idle stream open"),
                )),
                1000,
                "idle_timeout",
            ),
            End::Shutdown => (
                Some(retry(
                    "shutting_down",
                    "the server is restarting; reconnect with resume_after_seq".into(),
                    1000,
                )),
                1012,
                "server restart",
            ),
            End::Overloaded => (
                Some(retry(
                    "overloaded",
                    "the decoding capacity is taken by the streams already running; retry shortly".into(),
                    2000,
                )),
                1013,
                "overloaded",
            ),
            End::FrameTooLarge(message) => (
                Some(ServerMessage::error("frame_too_large", message)),
                1009,
                "frame_too_large",
            ),
            End::BadInput { code, message } => {
                (Some(ServerMessage::error(code, message)), 1008, code)
            }
            End::SessionCompleted => (
                Some(ServerMessage::error(
                    "session_completed",
                    "the session was completed elsewhere",
                )),
                1008,
                "session_completed",
            ),
            End::SessionFull => (
                Some(ServerMessage::error(
                    "session_full",
                    "the session holds the most segments or text one session may; continue in a new session",
                )),
                1008,
                "session_full",
            ),
            End::SessionGone => (
                Some(ServerMessage::error(
                    "session_not_found",
                    "the session was deleted",
                )),
                1008,
                "session_not_found",
            ),
            End::LockLost => (
                Some(ServerMessage::error(
                    "stream_active",
                    "another connection took over this session",
                )),
                1008,
                "stream_active",
            ),
            End::Engine(e) => {
                tracing::error!(error = %e, "speech engine failed");
                (
                    Some(retry(
                        "asr_failed",
                        "speech recognition failed on the server".into(),
                        1000,
                    )),
                    1011,
                    "asr_failed",
                )
            }
            End::Store(e) => (
                Some(retry(
                    "store_unavailable",
                    format!("a final could not be stored: {e}; reconnect with resume_after_seq"),
                    1000,
                )),
                1011,
                "store_unavailable",
            ),
        }
    }
}
