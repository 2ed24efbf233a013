//! The sending half of a WebSocket audio stream, on its own task, so a client that
//! reads slowly never blocks the audio path. Finals and events are queued in order and
//! never dropped; partials are dropped when a few are already waiting (a newer partial
//! replaces them anyway).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ws_protocol::ServerMessage;

/// How many unsent partials may wait before new ones are dropped.
const MAX_QUEUED_PARTIALS: usize = 4;

enum Out {
    Text { text: String, partial: bool },
    Close { code: u16, reason: String },
}

/// Handle for queueing frames to the client.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued_partials: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
}

impl Outbox {
    /// Spawns the writer task over the socket's sending half.
    pub fn spawn(mut sink: SplitSink<WebSocket, Message>) -> Self {
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
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break; // the client is gone; nothing more to deliver
                        }
                    }
                    Out::Close { code, reason } => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        });
        Self {
            tx,
            queued_partials,
            writer,
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

    /// Queues the close frame and waits (bounded) until everything queued was written.
    pub async fn close(self, code: u16, reason: &str) {
        let _ = self.tx.send(Out::Close {
            code,
            reason: reason.chars().take(120).collect(),
        });
        drop(self.tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.writer).await;
    }
}
