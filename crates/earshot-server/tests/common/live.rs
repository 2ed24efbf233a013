//! The WebSocket client of the live stream tests: connect with a key, send audio (paced
//! like a microphone, or faster) and text frames, collect every frame until the server
//! closes.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::TestApp;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path_and_query` as tenant `key`: the socket, or the HTTP status and error code
/// of a refused upgrade.
pub async fn open(app: &TestApp, path_and_query: &str, key: &str) -> Result<Ws, (u16, String)> {
    let url = format!("{}{}", app.base.replace("http://", "ws://"), path_and_query);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp.body().clone().unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            Err((status, v["error"]["code"].as_str().unwrap_or("").to_owned()))
        }
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// [`open`], for tests that look only at the status of a refused upgrade.
pub async fn connect(app: &TestApp, path_and_query: &str, key: &str) -> Result<Ws, u16> {
    open(app, path_and_query, key).await.map_err(|(s, _)| s)
}

/// What a client saw on one stream.
#[derive(Default, Debug)]
pub struct Seen {
    pub frames: Vec<Value>,
    pub close: Option<u16>,
    pub close_reason: Option<String>,
}

impl Seen {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["type"] == t).collect()
    }

    pub fn finals(&self) -> Vec<String> {
        self.of_type("final")
            .iter()
            .map(|f| f["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn finals_text(&self) -> String {
        self.finals().join(" ")
    }
}

/// One step of a scripted stream.
pub enum Step {
    /// Audio, sent in 100 ms frames at real time.
    Audio(Vec<i16>),
    /// Raw audio bytes in frames of `frame` bytes, `pause` apart.
    Paced {
        bytes: Vec<u8>,
        frame: usize,
        pause: Duration,
    },
    /// A text frame.
    Text(String),
    /// Wait until this many finals have arrived (at most 60 s).
    Finals(usize),
}

/// Collects every frame into `seen` until the server closes.
fn spawn_reader(mut rx: SplitStream<Ws>, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON frame");
                    seen.lock().await.frames.push(v);
                }
                Ok(Message::Close(c)) => {
                    let mut s = seen.lock().await;
                    s.close = c.as_ref().map(|c| u16::from(c.code));
                    s.close_reason = c.map(|c| c.reason.to_string());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
}

/// Plays `steps` and collects every frame until the server closes (at most 120 s).
pub async fn script(ws: Ws, steps: Vec<Step>) -> Seen {
    let (mut tx, rx) = ws.split();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = spawn_reader(rx, seen.clone());
    for step in steps {
        match step {
            Step::Audio(samples) => {
                let bytes = s16le(&samples);
                send_paced(&mut tx, &bytes, 3_200, Duration::from_millis(100)).await;
            }
            Step::Paced {
                bytes,
                frame,
                pause,
            } => send_paced(&mut tx, &bytes, frame, pause).await,
            Step::Text(t) => {
                let _ = tx.send(Message::Text(t.into())).await;
            }
            Step::Finals(n) => {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                while tokio::time::Instant::now() < deadline {
                    {
                        let s = seen.lock().await;
                        if s.of_type("final").len() >= n || s.close.is_some() {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("server closed the stream")
        .unwrap();
    let out = std::mem::take(&mut *seen.lock().await);
    out
}

/// Sends `bytes` in frames of `frame` bytes, `pause` apart; stops if the socket is gone.
async fn send_paced(
    tx: &mut futures::stream::SplitSink<Ws, Message>,
    bytes: &[u8],
    frame: usize,
    pause: Duration,
) {
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
}

/// Plays `steps`, sends `finalize`, and collects every frame until the server closes.
pub async fn play(ws: Ws, mut steps: Vec<Step>) -> Seen {
    steps.push(Step::Text(r#"{"type":"finalize"}"#.into()));
    script(ws, steps).await
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
    let mut steps = vec![Step::Paced {
        bytes,
        frame: bytes_per_ms * frame_ms,
        pause: Duration::from_secs_f64(frame_ms as f64 / 1000.0 / speed),
    }];
    if let Some(t) = then {
        steps.push(Step::Text(t.to_owned()));
    }
    script(ws, steps).await
}

pub fn s16le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}
