//! A WebSocket client for the live stream tests: connect with a key, send audio paced
//! like a microphone, collect every frame until the server closes.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::TestApp;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp, path_and_query: &str, key: &str) -> Result<Ws, u16> {
    let url = format!("{}{}", app.base.replace("http://", "ws://"), path_and_query);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// What a client saw on one stream.
#[derive(Default, Debug)]
pub struct Seen {
    pub frames: Vec<Value>,
    pub close: Option<u16>,
}

impl Seen {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["type"] == t).collect()
    }
    pub fn finals_text(&self) -> String {
        self.of_type("final")
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Sends `bytes` in frames of `frame_ms` of audio at `speed`× real time, then the given
/// control message (if any), and collects everything until the server closes.
pub async fn run_stream(
    ws: Ws,
    bytes: Vec<u8>,
    bytes_per_ms: usize,
    frame_ms: usize,
    speed: f64,
    then: Option<&str>,
) -> Seen {
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut seen = Seen::default();
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Text(t)) => seen.frames.push(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(c)) => {
                    seen.close = c.map(|c| u16::from(c.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seen
    });
    let frame = bytes_per_ms * frame_ms;
    let pause = Duration::from_secs_f64(frame_ms as f64 / 1000.0 / speed);
    for chunk in bytes.chunks(frame) {
        if tx
            .send(Message::Binary(chunk.to_vec().into()))
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    if let Some(t) = then {
        let _ = tx.send(Message::Text(t.into())).await;
    }
    tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("server closed the stream")
        .unwrap()
}

pub fn s16le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}
