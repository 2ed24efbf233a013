//! A live-stream client for the multi-node tests: opens a session's WebSocket on a node,
//! sends 16 kHz `pcm_s16le` audio and collects what the server says on a channel, so a
//! test can keep sending while it watches for finals (and kill the node in between).

use std::time::Duration;

use futures::stream::{SplitSink, StreamExt};
use futures::SinkExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why an upgrade was refused: the HTTP status and the JSON error body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
}

/// What the server sent, as the reader task saw it.
#[derive(Debug)]
pub enum Heard {
    Msg(Value),
    /// The connection ended: a close frame (code) or an error (`None`).
    Closed(Option<u16>),
}

pub struct LiveClient {
    tx: SplitSink<Ws, Message>,
    pub rx: mpsc::UnboundedReceiver<Heard>,
}

impl LiveClient {
    /// Opens `url`; `Err` when the server refused the upgrade (409, 429, ...).
    pub async fn connect(url: &str) -> Result<Self, Refused> {
        let ws = match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp.body().as_deref().unwrap_or_default();
                return Err(Refused {
                    status: resp.status().as_u16(),
                    body: serde_json::from_slice(body).unwrap_or(Value::Null),
                    retry_after: resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse().ok()),
                });
            }
            Err(e) => panic!("WebSocket connect to {url}: {e}"),
        };
        let (tx, mut source) = ws.split();
        let (heard, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(msg) = source.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let v = serde_json::from_str(&t).unwrap_or(Value::Null);
                        let _ = heard.send(Heard::Msg(v));
                    }
                    Ok(Message::Close(frame)) => {
                        let _ = heard.send(Heard::Closed(frame.map(|f| u16::from(f.code))));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = heard.send(Heard::Closed(None));
        });
        Ok(Self { tx, rx })
    }

    /// Sends samples as one binary frame; false once the connection is gone.
    pub async fn send(&mut self, samples: &[i16]) -> bool {
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.tx.send(Message::Binary(bytes.into())).await.is_ok()
    }

    pub async fn send_text(&mut self, text: &str) -> bool {
        self.tx.send(Message::Text(text.into())).await.is_ok()
    }

    /// Everything heard until the connection ends (bounded against hangs).
    pub async fn until_closed(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut msgs = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(120), self.rx.recv())
                .await
                .expect("the stream ended within 120 s")
            {
                Some(Heard::Msg(v)) => msgs.push(v),
                Some(Heard::Closed(code)) => return (msgs, code),
                None => return (msgs, None),
            }
        }
    }
}

/// The messages of one `type`.
pub fn of_type<'a>(msgs: &'a [Value], t: &str) -> Vec<&'a Value> {
    msgs.iter().filter(|m| m["type"] == t).collect()
}
