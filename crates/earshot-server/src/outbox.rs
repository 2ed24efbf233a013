//! The sending half of a WebSocket audio stream, on its own task, so a client that
//! reads slowly never blocks the audio path. Finals and events are queued in order and
//! never dropped; partials are dropped when a few are already waiting (a newer partial
//! replaces them anyway).
//!
//! The writer never outlives its connection: it stops when one frame cannot be written
//! within [`WRITE_TIMEOUT`] (the client stopped reading), when closing takes longer than
//! [`CLOSE_TIMEOUT`], and whenever the [`Outbox`] is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::ws_protocol::ServerMessage;

/// How many unsent partials may wait before new ones are dropped.
const MAX_QUEUED_PARTIALS: usize = 4;
/// Longest one frame may take to go out before the client counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `close` waits for what is queued to be written.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

enum Out {
    Text { text: String, partial: bool },
    Close { code: u16, reason: String },
}

/// Handle for queueing frames to the client.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued_partials: Arc<AtomicUsize>,
    writer: AbortOnDropHandle<()>,
}

impl Outbox {
    /// Spawns the writer task over the socket's sending half.
    pub fn spawn<S>(mut sink: S) -> Self
    where
        S: Sink<Message> + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        let queued_partials = Arc::new(AtomicUsize::new(0));
        let counter = queued_partials.clone();
        let writer = tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                match out {
                    Out::Text { text, partial } => {
                        if partial {
                            counter.fetch_sub(1, Ordering::Relaxed);
                        }
                        let sent = tokio::time::timeout(
                            WRITE_TIMEOUT,
                            sink.send(Message::Text(text.into())),
                        )
                        .await;
                        if !matches!(sent, Ok(Ok(()))) {
                            break; // the client is gone or stopped reading
                        }
                    }
                    Out::Close { code, reason } => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = tokio::time::timeout(
                            WRITE_TIMEOUT,
                            sink.send(Message::Close(Some(frame))),
                        )
                        .await;
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
        });
        Self {
            tx,
            queued_partials,
            writer: AbortOnDropHandle::new(writer),
        }
    }

    /// Queues a frame that must be delivered (finals, events, errors).
    pub fn send(&self, msg: &ServerMessage) {
        let _ = self.tx.send(Out::Text {
            text: msg.to_text(),
            partial: false,
        });
    }

    /// Queues a partial unless the client is already behind.
    pub fn partial(&self, msg: &ServerMessage) {
        if self.queued_partials.load(Ordering::Relaxed) >= MAX_QUEUED_PARTIALS {
            return;
        }
        self.queued_partials.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Out::Text {
            text: msg.to_text(),
            partial: true,
        });
    }

    /// Queues the close frame and waits (bounded) until everything queued was written;
    /// past [`CLOSE_TIMEOUT`] the writer is stopped.
    pub async fn close(mut self, code: u16, reason: &str) {
        let _ = self.tx.send(Out::Close {
            code,
            reason: reason.chars().take(120).collect(),
        });
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut self.writer).await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A client that never reads: every write waits forever. `alive` is shared with the
    /// test, so a strong count of 1 means the writer task (which owns the sink) is gone.
    struct Stuck {
        _alive: Arc<()>,
    }

    impl Sink<Message> for Stuck {
        type Error = std::io::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), Self::Error> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    fn stuck_outbox() -> (Outbox, Arc<()>) {
        let alive = Arc::new(());
        let out = Outbox::spawn(Stuck {
            _alive: alive.clone(),
        });
        out.send(&ServerMessage::error("x", "a frame the client never reads"));
        (out, alive)
    }

    async fn writer_gone(alive: &Arc<()>) -> bool {
        for _ in 0..100 {
            if Arc::strong_count(alive) == 1 {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }

    #[tokio::test]
    async fn the_writer_ends_with_the_outbox_even_if_the_client_never_reads() {
        let (out, alive) = stuck_outbox();
        tokio::task::yield_now().await;
        assert!(
            !writer_gone(&alive).await,
            "the writer is blocked on the client"
        );
        drop(out);
        assert!(
            writer_gone(&alive).await,
            "the writer outlived its connection"
        );
    }

    #[tokio::test]
    async fn close_stops_a_writer_that_cannot_finish() {
        let (out, alive) = stuck_outbox();
        out.close(1000, "bye").await;
        assert!(writer_gone(&alive).await, "the writer outlived close()");
    }
}
