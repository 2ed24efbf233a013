//! One live stream: sends a script at real-time pace on an absolute schedule and
//! timestamps every server message on arrival.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::material::{Script, RATE};

/// Bounds on every wait.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const COMPLETED_TIMEOUT: Duration = Duration::from_secs(60);
/// A 1013 this soon after opening, before any transcript, is a refusal at admission.
const REFUSED_WITHIN: f64 = 2.0;

/// A `final` as it arrived (`at`: seconds since the stream's start).
#[derive(Debug, Clone)]
pub struct FinalMsg {
    pub at: f64,
    pub seq: u64,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Completed,
    /// Closed with 1013 `overloaded` at open, or the upgrade was refused.
    Refused(String),
    Failed(String),
}

/// What the client saw; every time is seconds since the stream's start.
#[derive(Debug, Clone)]
pub struct StreamRun {
    pub outcome: Outcome,
    /// Send time of each audio frame that went out (frame i holds audio [i·100, i·100+100) ms).
    pub frames_sent: Vec<f64>,
    pub finals: Vec<FinalMsg>,
    /// Arrival time and text of each partial.
    pub partials: Vec<(f64, String)>,
    pub finalize_sent: Option<f64>,
    pub completed_at: Option<f64>,
}

#[derive(Default)]
struct Seen {
    finals: Vec<FinalMsg>,
    partials: Vec<(f64, String)>,
    completed_at: Option<f64>,
    errors: Vec<(f64, String)>,
    close: Option<(f64, u16, String)>,
}

/// Runs one stream that starts at `start`; `speed` > 1 replays faster than real time.
pub async fn run(url: String, script: Arc<Script>, speed: f64, start: Instant) -> StreamRun {
    sleep_until(start).await;
    let t0 = Instant::now();
    let secs = move || t0.elapsed().as_secs_f64();
    let mut run = StreamRun {
        outcome: Outcome::Completed,
        frames_sent: Vec::new(),
        finals: Vec::new(),
        partials: Vec::new(),
        finalize_sent: None,
        completed_at: None,
    };
    let ws = match timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let status = resp.status();
            run.outcome = if status.as_u16() == 503 || status.as_u16() == 429 {
                Outcome::Refused(format!("HTTP {status} at upgrade"))
            } else {
                Outcome::Failed(format!("HTTP {status} at upgrade"))
            };
            return run;
        }
        Ok(Err(e)) => {
            run.outcome = Outcome::Failed(format!("connect: {e}"));
            return run;
        }
        Err(_) => {
            run.outcome = Outcome::Failed("connect: no answer in 10 s".into());
            return run;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let closed = Arc::new(AtomicBool::new(false));
    let reader = {
        let (seen, closed) = (seen.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(msg) = rx.next().await {
                let at = secs();
                let Ok(msg) = msg else { break };
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                match msg {
                    Message::Text(t) => record(&mut seen, at, &t),
                    Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        seen.close = Some((at, code, reason));
                        break;
                    }
                    _ => {}
                }
            }
            closed.store(true, Ordering::SeqCst);
        })
    };

    let frame_samples = RATE as usize / 10;
    let period = Duration::from_secs_f64(0.1 / speed);
    let mut send_error = None;
    for (i, chunk) in script.samples.chunks(frame_samples).enumerate() {
        // Absolute schedule: a late frame never pushes the later ones back.
        sleep_until(t0 + period * i as u32).await;
        if closed.load(Ordering::SeqCst) {
            break;
        }
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        run.frames_sent.push(secs());
        match timeout(SEND_TIMEOUT, tx.send(Message::Binary(bytes.into()))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                send_error = Some(format!("send: {e}"));
                break;
            }
            Err(_) => {
                send_error = Some("send blocked for 10 s".into());
                break;
            }
        }
    }
    if send_error.is_none() && !closed.load(Ordering::SeqCst) {
        run.finalize_sent = Some(secs());
        if let Err(e) = tx
            .send(Message::Text(r#"{"type":"finalize"}"#.into()))
            .await
        {
            send_error = Some(format!("finalize: {e}"));
        }
    }
    let reader_done = timeout(COMPLETED_TIMEOUT, reader).await.is_ok();
    let _ = timeout(Duration::from_secs(2), tx.close()).await;

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let transcript_seen = !seen.finals.is_empty() || !seen.partials.is_empty();
    run.outcome = match (&seen.close, seen.completed_at) {
        (Some((at, 1013, reason)), _) if *at < REFUSED_WITHIN && !transcript_seen => {
            Outcome::Refused(format!("1013 {reason} at open"))
        }
        (Some((at, code, reason)), _) if *code != 1000 => {
            Outcome::Failed(format!("closed {code} {reason} at {at:.1} s"))
        }
        (_, Some(_)) if reader_done => Outcome::Completed,
        _ if !reader_done => Outcome::Failed("no completed and close within 60 s".into()),
        _ => Outcome::Failed(
            send_error
                .or_else(|| {
                    seen.errors
                        .first()
                        .map(|(at, e)| format!("{e} at {at:.1} s"))
                })
                .unwrap_or_else(|| "closed without completed".into()),
        ),
    };
    run.finals = seen.finals;
    run.partials = seen.partials;
    run.completed_at = seen.completed_at;
    run
}

fn record(seen: &mut Seen, at: f64, text: &str) {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    match v["type"].as_str() {
        Some("partial") => seen
            .partials
            .push((at, v["text"].as_str().unwrap_or("").to_owned())),
        Some("final") => seen.finals.push(FinalMsg {
            at,
            seq: v["seq"].as_u64().unwrap_or(0),
            text: v["text"].as_str().unwrap_or("").to_owned(),
            start_ms: v["start_ms"].as_i64().unwrap_or(0),
            end_ms: v["end_ms"].as_i64().unwrap_or(0),
        }),
        Some("completed") => seen.completed_at = Some(at),
        Some("error") => seen
            .errors
            .push((at, v["code"].as_str().unwrap_or("error").to_owned())),
        _ => {}
    }
}
