//! A minimal live-streaming client: sends 16 kHz mono s16le audio to
//! `/v1/sessions/{id}/stream` at real-time pace and prints partials and finals.
//!
//! ```sh
//! # a WAV file (any rate/channels are fine for the server; this example sends 16-bit WAV as is)
//! cargo run --example stream -- ../shared/audio/goforward.wav
//! # the microphone (ALSA's arecord), until Ctrl-C
//! arecord -q -f S16_LE -r 16000 -c 1 -t raw | cargo run --example stream -- -
//! ```
//! Environment: `EARSHOT_URL` (default `ws://127.0.0.1:8080`), `EARSHOT_API_KEY`,
//! `EARSHOT_SESSION` (default: a new id).

use std::io::Read;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let input = std::env::args()
        .nth(1)
        .ok_or("usage: stream <file.wav | ->")?;
    let base = std::env::var("EARSHOT_URL").unwrap_or_else(|_| "ws://127.0.0.1:8080".into());
    let session = std::env::var("EARSHOT_SESSION")
        .unwrap_or_else(|_| format!("example-{}", std::process::id()));
    let (rate, mut audio): (u32, Box<dyn Read + Send>) = if input == "-" {
        (16_000, Box::new(std::io::stdin()))
    } else {
        let reader = hound::WavReader::open(&input)?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.channels != 1 {
            return Err("this example sends 16-bit mono WAV; convert with sox first".into());
        }
        let samples: Vec<u8> = reader
            .into_samples::<i16>()
            .flat_map(|s| s.unwrap_or(0).to_le_bytes())
            .collect();
        (spec.sample_rate, Box::new(std::io::Cursor::new(samples)))
    };
    let url = format!("{base}/v1/sessions/{session}/stream?sample_rate={rate}&encoding=pcm_s16le");
    let mut req = url.into_client_request()?;
    if let Ok(key) = std::env::var("EARSHOT_API_KEY") {
        req.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut tx, mut rx) = ws.split();
    eprintln!("streaming into session {session}");

    let printer = tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    match v["type"].as_str() {
                        Some("partial") => {
                            eprint!("\r\x1b[2K… {}", v["text"].as_str().unwrap_or(""))
                        }
                        Some("final") => eprintln!(
                            "\r\x1b[2K[{}] {}",
                            v["seq"],
                            v["text"].as_str().unwrap_or("")
                        ),
                        Some("completed") => println!("{}", v["transcript"].as_str().unwrap_or("")),
                        _ => eprintln!("\r\x1b[2K{t}"),
                    }
                }
                Message::Close(c) => {
                    eprintln!("closed: {c:?}");
                    break;
                }
                _ => {}
            }
        }
    });

    // 100 ms frames at real-time pace.
    let frame_bytes = rate as usize / 10 * 2;
    let mut buf = vec![0u8; frame_bytes];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        let n = tokio::task::block_in_place(|| audio.read(&mut buf))?;
        if n == 0 {
            break;
        }
        tick.tick().await;
        tx.send(Message::Binary(buf[..n].to_vec().into())).await?;
    }
    tx.send(Message::Text(r#"{"type":"finalize"}"#.into()))
        .await?;
    printer.await?;
    Ok(())
}
