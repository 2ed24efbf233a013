//! Measures what the report quotes, on `shared/audio/*.wav` with one model load:
//!
//! * `batch`: batch RTF (and WER) per `audio_ctx` policy, comparable with
//!   `shared/bench/asr_anchor.sh` (faster-whisper int8, same tiny.en weights, 2 threads);
//! * `stream`: one stream at real-time pace: final / first-partial latency p50/p95, WER;
//! * `concurrency`: N real-time streams on one scheduler: latency p50/p95 and lag per N.
//!
//! ```text
//! cargo run --release -p earshot-asr --example asr_bench -- batch [--ctx full,adaptive:2000:5000]
//! cargo run --release -p earshot-asr --example asr_bench -- stream
//! cargo run --release -p earshot-asr --example asr_bench -- concurrency 1,2,3,4
//! ```
//! Env: `EARSHOT_MODEL` (default `shared/models/ggml-tiny.en.bin`), `THREADS` (threads per decode; default the engine's, 1;
//! use `THREADS=2` to match asr_anchor.sh's 2 threads in one decode),
//! `REPEAT` (batch passes, median reported; default 3).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use earshot_asr::{
    AudioCtx, Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig, StreamEvent,
    StreamingTranscriber,
};

fn parse_ctx(s: &str) -> AudioCtx {
    if s == "full" {
        return AudioCtx::Full;
    }
    let parts: Vec<&str> = s.split(':').collect();
    AudioCtx::Adaptive {
        margin_ms: parts.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000),
        floor_ms: parts.get(2).and_then(|v| v.parse().ok()).unwrap_or(5000),
    }
}

fn engine(ctx: AudioCtx) -> Arc<Engine> {
    let model = common::model_path().expect("model");
    let mut cfg = EngineConfig::new(model);
    if let Some(t) = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()) {
        cfg.threads = t;
    }
    cfg.audio_ctx = ctx;
    Engine::load(cfg).expect("load")
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (Linux). Unlike
/// wall time it barely depends on what the neighbours on a shared machine are doing.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after ")": state(0) ... utime(11) stime(12), in clock ticks (100 Hz on Linux)
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64()
}

fn batch(ctxs: &[AudioCtx]) {
    let refs = common::references();
    let clips: Vec<(String, String, Vec<f32>)> = refs
        .iter()
        .map(|(f, r)| (f.clone(), r.clone(), common::load_clip(f)))
        .collect();
    let audio_s: f64 = clips.iter().map(|c| c.2.len() as f64 / 16000.0).sum();
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for ctx in ctxs {
        let e = engine(*ctx);
        // warm-up
        let _ = earshot_asr::batch::transcribe(&e, &clips[0].2);
        let cpu0 = cpu_seconds();
        let mut totals = Vec::new();
        let mut errs = 0;
        let mut words = 0;
        let mut texts = Vec::new();
        for pass in 0..repeat {
            let mut total = Duration::ZERO;
            for (f, r, s) in &clips {
                let t0 = Instant::now();
                let segs = earshot_asr::batch::transcribe(&e, s).expect("transcribe");
                total += t0.elapsed();
                if pass == 0 {
                    let text = earshot_asr::engine::join_segments(&segs);
                    let (er, n) = common::clip_errors(f, r, &text);
                    errs += er;
                    words += n;
                    texts.push(format!("  {f}: {text}"));
                }
            }
            totals.push(total);
        }
        let cpu_rtf = (cpu_seconds() - cpu0) / (repeat as f64 * audio_s);
        let med = pct(&mut totals, 0.5);
        println!(
            "batch ctx={ctx:?} rtf={:.4} (median of {repeat}: {:.3}s / {:.2}s audio) cpu-s/audio-s={cpu_rtf:.3} WER={:.1}% ({errs}/{words})",
            med / audio_s,
            med,
            audio_s,
            100.0 * errs as f64 / words as f64
        );
        for t in texts {
            println!("{t}");
        }
        // Long-form: all clips with 1.5 s gaps (> 28 s, so two windows).
        let (long, reference, _) = common::concatenated(1500);
        let t0 = Instant::now();
        let segs = earshot_asr::batch::transcribe(&e, &long).expect("long");
        let dt = t0.elapsed().as_secs_f64();
        let text = earshot_asr::engine::join_segments(&segs);
        println!(
            "batch-long ctx={ctx:?} audio={:.1}s rtf={:.4} WER={:.1}% text={text}",
            long.len() as f64 / 16000.0,
            dt / (long.len() as f64 / 16000.0),
            100.0 * common::wer(&reference, &text)
        );
    }
}

struct StreamResult {
    finals: Vec<String>,
    final_lat: Vec<Duration>,
    first_partial: Vec<Duration>,
    lag: Duration,
    decodes: u64,
}

async fn run_stream(
    sched: Scheduler,
    audio: Arc<Vec<f32>>,
    start_delay: Duration,
    speed: f64,
) -> StreamResult {
    tokio::time::sleep(start_delay).await;
    let mut st = StreamingTranscriber::new(sched, StreamConfig::default());
    let frame = 320; // 20 ms
    let t0 = tokio::time::Instant::now();
    let mut finals = Vec::new();
    for (i, chunk) in audio.chunks(frame).enumerate() {
        let due = t0 + Duration::from_secs_f64(i as f64 * 0.02 / speed);
        tokio::time::sleep_until(due).await;
        let evs = st.push_received(chunk, due.into_std()).await.expect("push");
        for e in evs {
            if let StreamEvent::Final { text, .. } = e {
                finals.push(text);
            }
        }
    }
    let end_due = t0 + Duration::from_secs_f64(audio.len() as f64 / 16000.0 / speed);
    for e in st.finish().await.expect("finish") {
        if let StreamEvent::Final { text, .. } = e {
            finals.push(text);
        }
    }
    let lag = tokio::time::Instant::now().saturating_duration_since(end_due);
    let s = st.stats().clone();
    StreamResult {
        finals,
        final_lat: s.final_latencies,
        first_partial: s.first_partial_latencies,
        lag,
        decodes: s.decodes,
    }
}

async fn streams(ns: &[usize], speed: f64) {
    let e = engine(AudioCtx::default());
    let (audio, reference, _) = common::concatenated(1000);
    let audio = Arc::new(audio);
    let audio_s = audio.len() as f64 / 16000.0;
    for &n in ns {
        let slots = SchedulerConfig::for_threads(e.config().threads).decode_slots;
        let sched = Scheduler::with_config(
            e.clone(),
            SchedulerConfig {
                decode_slots: slots,
                max_streams: n,
            },
        );
        let cpu0 = cpu_seconds();
        let mut handles = Vec::new();
        for k in 0..n {
            // Stagger starts so streams do not decode in lock-step.
            let delay = Duration::from_millis((k as u64 * 1000 / n as u64) % 1000);
            handles.push(tokio::spawn(run_stream(
                sched.clone(),
                audio.clone(),
                delay,
                speed,
            )));
        }
        let mut fl = Vec::new();
        let mut fp = Vec::new();
        let mut lags = Vec::new();
        let mut wers = Vec::new();
        let mut decodes = 0;
        for h in handles {
            let r = h.await.expect("task");
            fl.extend(r.final_lat);
            fp.extend(r.first_partial);
            lags.push(r.lag);
            decodes += r.decodes;
            let text = r.finals.join(" ");
            wers.push(common::wer(&reference, &text));
            if n == ns[0] {
                println!("  finals: {}", r.finals.join(" | "));
            }
        }
        let max_lag = lags.iter().max().copied().unwrap_or_default();
        let cpu = cpu_seconds() - cpu0;
        let cores = std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1) as f64;
        println!(
            "  cpu: {cpu:.1} s for {n} x {audio_s:.1} s of audio = {:.3} core-s per audio-s per stream -> {:.1} real-time streams fit on {cores} cores (compute bound, idle machine)",
            cpu / (n as f64 * audio_s),
            cores / (cpu / (n as f64 * audio_s))
        );
        println!(
            "threads={} slots={slots} streams={n} speed={speed}x audio={audio_s:.1}s final_latency p50={:.2}s p95={:.2}s (n={}) first_partial p50={:.2}s p95={:.2}s end_lag_max={:.2}s decodes={decodes} WER mean={:.1}% max={:.1}%",
            e.config().threads,
            pct(&mut fl.clone(), 0.5),
            pct(&mut fl, 0.95),
            fl.len(),
            pct(&mut fp.clone(), 0.5),
            pct(&mut fp, 0.95),
            max_lag.as_secs_f64(),
            100.0 * wers.iter().sum::<f64>() / wers.len() as f64,
            100.0 * wers.iter().cloned().fold(0.0, f64::max),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("all");
    let ctxs: Vec<AudioCtx> = args
        .iter()
        .position(|a| a == "--ctx")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(parse_ctx).collect())
        .unwrap_or_else(|| vec![AudioCtx::Full, AudioCtx::default()]);
    match mode {
        "batch" => batch(&ctxs),
        "stream" => streams(&[1], 1.0).await,
        "stream10x" => streams(&[1], 10.0).await,
        "concurrency" => {
            let ns: Vec<usize> = args
                .get(1)
                .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 2, 3, 4]);
            streams(&ns, 1.0).await
        }
        _ => {
            batch(&ctxs);
            streams(&[1, 2, 3, 4], 1.0).await;
        }
    }
}
