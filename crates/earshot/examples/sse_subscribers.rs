//! Opens N Server-Sent-Events subscriptions on `GET /v1/events` and counts the events
//! each one receives, for soak tests (`scripts/soak.sh`).
//!
//! ```sh
//! cargo run --release -p earshot --example sse_subscribers -- http://127.0.0.1:8080 KEY 200
//! ```
//!
//! Prints `connected <n>` once every subscription has answered 200, then runs until
//! SIGTERM/SIGINT. It then keeps reading until every connection has been quiet for
//! `SSE_DRAIN_QUIET_MS` (default 2000) or `SSE_DRAIN_MAX_S` (default 30) have passed,
//! so events still in flight are counted, and prints one summary line:
//!
//! `sse: connections=N events_total=T events_min=A events_max=B out_of_order=O errors=E`
//!
//! `out_of_order` counts ids that were not strictly greater than the previous one on the
//! same connection (a duplicate or a reordering); `errors` counts connections that
//! failed or ended early.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Conn {
    events: AtomicU64,
    out_of_order: AtomicU64,
    /// Milliseconds since `start` of the last byte received.
    last_byte_ms: AtomicU64,
}

fn parse_id(v: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Reads one subscription until `stop` (plus quiet) or the server ends it.
async fn subscribe(
    client: reqwest::Client,
    url: String,
    key: String,
    conn: Arc<Conn>,
    connected: Arc<AtomicUsize>,
    start: Instant,
    stop: CancellationToken,
) -> Result<(), String> {
    let mut resp = client
        .get(&url)
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    connected.fetch_add(1, Ordering::SeqCst);
    let mut carry: Vec<u8> = Vec::new();
    let mut last: Option<(u64, u64)> = None;
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c.map_err(|e| format!("read: {e}"))?,
            _ = stop.cancelled() => return Ok(()),
        };
        let Some(chunk) = chunk else {
            return if stop.is_cancelled() {
                Ok(())
            } else {
                Err("server ended the stream".into())
            };
        };
        conn.last_byte_ms
            .store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        carry.extend_from_slice(&chunk);
        let mut consumed = 0;
        while let Some(nl) = carry[consumed..].iter().position(|&b| b == b'\n') {
            let line = &carry[consumed..consumed + nl];
            if let Some(v) = line.strip_prefix(b"id:") {
                conn.events.fetch_add(1, Ordering::Relaxed);
                let id = parse_id(v);
                if id.is_none() || id <= last {
                    conn.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                last = id.max(last);
            }
            consumed += nl + 1;
        }
        carry.drain(..consumed);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: sse_subscribers BASE_URL API_KEY N");
        std::process::exit(2);
    }
    let url = format!("{}/v1/events", args[1].trim_end_matches('/'));
    let key = args[2].clone();
    let n: usize = args[3].parse().expect("N is a number");
    let quiet = Duration::from_millis(
        std::env::var("SSE_DRAIN_QUIET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    );

    let max_drain = Duration::from_secs(
        std::env::var("SSE_DRAIN_MAX_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let start = Instant::now();
    let stop = CancellationToken::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let conns: Vec<Arc<Conn>> = (0..n).map(|_| Arc::default()).collect();
    let tasks: Vec<_> = conns
        .iter()
        .map(|c| {
            tokio::spawn(subscribe(
                client.clone(),
                url.clone(),
                key.clone(),
                c.clone(),
                connected.clone(),
                start,
                stop.clone(),
            ))
        })
        .collect();

    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut announced = false;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let up = connected.load(Ordering::SeqCst);
        if !announced && up == n {
            println!("connected {n}");
            announced = true;
        }
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }

    // Drain: wait until every connection has been quiet for `quiet` (events published
    // just before the signal are still on their way), at most `max_drain`.
    let deadline = Instant::now() + max_drain;
    loop {
        let now_ms = start.elapsed().as_millis() as u64;
        let all_quiet = conns.iter().all(|c| {
            now_ms.saturating_sub(c.last_byte_ms.load(Ordering::Relaxed))
                >= quiet.as_millis() as u64
        });
        if all_quiet || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("subscriber: {e}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("subscriber task: {e}");
            }
        }
    }
    let counts: Vec<u64> = conns
        .iter()
        .map(|c| c.events.load(Ordering::Relaxed))
        .collect();
    let out_of_order: u64 = conns
        .iter()
        .map(|c| c.out_of_order.load(Ordering::Relaxed))
        .sum();
    println!(
        "sse: connections={n} events_total={} events_min={} events_max={} out_of_order={out_of_order} errors={errors}",
        counts.iter().sum::<u64>(),
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
}
