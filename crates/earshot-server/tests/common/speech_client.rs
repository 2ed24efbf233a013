//! A speech app on a chosen model, and a plain WebSocket client that streams audio at
//! real time and keeps every frame the server sent: what the prompt and language tests
//! look at.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use earshot_asr::{Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig};
use earshot_server::{Speech, SpeechStatus};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::TestApp;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server on the embedded store with `engine` behind one decode slot.
pub async fn app_on(engine: Arc<Engine>, model_name: &str) -> TestApp {
    let speech = Speech {
        scheduler: Scheduler::with_config(
            engine,
            SchedulerConfig {
                decode_slots: 1,
                max_streams: 2,
                admission: Default::default(),
            },
        ),
        stream: StreamConfig::default(),
        idle_timeout: Duration::from_secs(30),
        model_name: model_name.into(),
    };
    TestApp::start_speech(SpeechStatus::Ready(Arc::new(speech))).await
}

/// Loads a model with the default settings.
pub fn load(path: &Path) -> Arc<Engine> {
    Engine::load(EngineConfig::new(path)).expect("model loads")
}

/// What a client saw on one stream.
#[derive(Default, Debug)]
pub struct Seen {
    pub frames: Vec<Value>,
    pub close: Option<(u16, String)>,
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
}

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

/// One step of a scripted stream.
pub enum Step {
    /// Audio, sent in 100 ms frames at real time.
    Audio(Vec<i16>),
    /// A text frame.
    Text(String),
    /// Wait until this many finals have arrived (at most 60 s).
    Finals(usize),
}

/// Plays `steps`, sends `finalize`, and collects every frame until the server closes.
pub async fn play(ws: Ws, steps: Vec<Step>) -> Seen {
    let (mut tx, mut rx) = ws.split();
    let seen = Arc::new(tokio::sync::Mutex::new(Seen::default()));
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(&t).expect("JSON frame");
                        seen.lock().await.frames.push(v);
                    }
                    Ok(Message::Close(c)) => {
                        seen.lock().await.close =
                            c.map(|c| (u16::from(c.code), c.reason.to_string()));
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
    };
    for step in steps {
        match step {
            Step::Audio(samples) => {
                for chunk in samples.chunks(1_600) {
                    let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                    if tx.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
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
    let _ = tx
        .send(Message::Text(r#"{"type":"finalize"}"#.into()))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(120), reader).await;
    let out = std::mem::take(&mut *seen.lock().await);
    out
}
