//! Measures what the report quotes, on `shared/audio/*.wav` with one model load:
//!
//! * `batch`: batch RTF (and WER) per `audio_ctx` policy, comparable with
//!   `shared/bench/asr_anchor.sh` (faster-whisper int8, same tiny.en weights, 2 threads);
//! * `stream`: one stream at real-time pace: final / first-partial latency p50/p95, WER;
//! * `concurrency`: N real-time streams on one scheduler: latency p50/p95 and lag per N;
//! * `cost`: one stream fed as fast as the CPU goes: CPU seconds per audio second, WER.
//!
//! ```text
//! cargo run --release -p earshot-asr --example asr_bench -- batch [--ctx full,adaptive:2000:5000]
//! cargo run --release -p earshot-asr --example asr_bench -- stream
//! cargo run --release -p earshot-asr --example asr_bench -- concurrency 1,2,3,4
//! ```
//! Env: `EARSHOT_MODEL` (default `shared/models/ggml-tiny.en.bin`), `THREADS` (threads per decode; default the engine's, 1;
//! use `THREADS=2` to match asr_anchor.sh's 2 threads in one decode),
//! `REPEAT` (batch passes, median reported; default 3), `DTW=0` (word times without DTW,
//! to measure what DTW costs); stream settings: see [`stream_config`].

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
    // DTW=0: words timed by whisper's timestamp-token estimates (to measure DTW's cost).
    if std::env::var("DTW").as_deref() == Ok("0") {
        cfg.dtw_word_times = false;
    }
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
                    let text = earshot_asr::text::join_segments(&segs);
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
        let text = earshot_asr::text::join_segments(&segs);
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
    partials_dropped: u64,
    ctx_frames: u64,
}

/// The stream settings, with `STREAM_PARTIALS=0`, `STREAM_INTERVAL_MS`, `STREAM_FIRST_MS`, `STREAM_MAX_WINDOW_MS`, `STREAM_GAP_MS`
/// `STREAM_CTX` and `STREAM_FINAL_CTX` (`full` or `adaptive:MARGIN:FLOOR`) overriding the
/// defaults.
fn stream_config() -> StreamConfig {
    let mut c = StreamConfig::default();
    let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(v) = num("STREAM_INTERVAL_MS") {
        c.decode_interval_ms = v;
    }
    if let Some(v) = num("STREAM_FIRST_MS") {
        c.first_decode_ms = v;
    }
    if let Some(v) = num("STREAM_MAX_WINDOW_MS") {
        c.max_window_ms = v;
    }
    if let Some(v) = num("STREAM_GAP_MS") {
        c.context_gap_ms = v;
    }
    if let Ok(v) = std::env::var("STREAM_CTX") {
        c.audio_ctx = parse_ctx(&v);
    }
    if let Ok(v) = std::env::var("STREAM_FINAL_CTX") {
        c.final_audio_ctx = Some(parse_ctx(&v));
    }
    if std::env::var("STREAM_PARTIALS").is_ok_and(|v| v == "0") {
        c.partials = false;
    }
    c
}

/// Streams `audio` in 20 ms frames at `speed` x real time, as the server does: every frame
/// that is due is fed (with the time it was due), then at most one decode runs, so a stream
/// that falls behind covers its backlog with one decode. `speed` 0 = unpaced, one frame at a
/// time (the decode cadence of an idle machine, as fast as the CPU goes).
async fn run_stream(
    sched: Scheduler,
    audio: Arc<Vec<f32>>,
    start_delay: Duration,
    speed: f64,
) -> StreamResult {
    tokio::time::sleep(start_delay).await;
    let mut st = StreamingTranscriber::new(sched, stream_config());
    let frame = 320; // 20 ms
    let frames: Vec<&[f32]> = audio.chunks(frame).collect();
    let t0 = tokio::time::Instant::now();
    let due = |i: usize| t0 + Duration::from_secs_f64(i as f64 * 0.02 / speed.max(1e-9));
    let mut finals = Vec::new();
    let take = |evs: Vec<StreamEvent>, finals: &mut Vec<String>| {
        for e in evs {
            if let StreamEvent::Final { text, .. } = e {
                finals.push(text);
            }
        }
    };
    let mut i = 0;
    while i < frames.len() {
        if speed > 0.0 {
            tokio::time::sleep_until(due(i)).await;
            let now = tokio::time::Instant::now();
            while i < frames.len() && due(i) <= now {
                let evs = st.feed(frames[i], due(i).into_std()).await.expect("feed");
                take(evs, &mut finals);
                i += 1;
            }
        } else {
            let evs = st.feed(frames[i], Instant::now()).await.expect("feed");
            take(evs, &mut finals);
            i += 1;
        }
        if st.start_partial_if_due() {
            take(st.partial_ready().await.expect("decode"), &mut finals);
        }
    }
    let end_due = if speed > 0.0 {
        due(frames.len())
    } else {
        tokio::time::Instant::now()
    };
    take(st.finish().await.expect("finish"), &mut finals);
    let lag = tokio::time::Instant::now().saturating_duration_since(end_due);
    let s = st.stats().clone();
    let decodes = s.decodes();
    StreamResult {
        finals,
        final_lat: s.final_latencies,
        first_partial: s.first_partial_latencies,
        lag,
        decodes,
        partials_dropped: s.partials_dropped,
        ctx_frames: s.ctx_frames,
    }
}

async fn streams(ns: &[usize], speed: f64) {
    let e = engine(AudioCtx::default());
    let (audio, reference, _) = common::concatenated(1000);
    let audio = Arc::new(audio);
    let audio_s = audio.len() as f64 / 16000.0;
    // Batch on the very same audio, for "streaming WER vs batch WER".
    let batch_text = earshot_asr::text::join_segments(
        &earshot_asr::batch::transcribe(&e, &audio).expect("batch"),
    );
    println!(
        "  batch on the same audio: WER={:.1}% text={batch_text}",
        100.0 * common::wer(&reference, &batch_text)
    );
    for &n in ns {
        let slots = SchedulerConfig::for_threads(e.config().threads).decode_slots;
        let sched = Scheduler::with_config(
            e.clone(),
            SchedulerConfig {
                decode_slots: slots,
                max_streams: n,
                admission: Default::default(),
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
        let mut partials_dropped = 0;
        let mut ctx_frames = 0;
        for h in handles {
            let r = h.await.expect("task");
            fl.extend(r.final_lat);
            fp.extend(r.first_partial);
            lags.push(r.lag);
            decodes += r.decodes;
            partials_dropped += r.partials_dropped;
            ctx_frames += r.ctx_frames;
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
            "{:?} threads={} slots={slots} streams={n} speed={speed}x audio={audio_s:.1}s final_latency p50={:.2}s p95={:.2}s (n={}) first_partial p50={:.2}s p95={:.2}s end_lag_max={:.2}s decodes={decodes} partials_dropped={partials_dropped} mean_ctx_s={:.1} WER mean={:.1}% max={:.1}%",
            stream_config(),
            e.config().threads,
            pct(&mut fl.clone(), 0.5),
            pct(&mut fl, 0.95),
            fl.len(),
            pct(&mut fp.clone(), 0.5),
            pct(&mut fp, 0.95),
            max_lag.as_secs_f64(),
            ctx_frames as f64 * 0.02 / decodes.max(1) as f64,
            100.0 * wers.iter().sum::<f64>() / wers.len() as f64,
            100.0 * wers.iter().cloned().fold(0.0, f64::max),
        );
    }
}

/// One unpaced stream and one batch transcription over four arrangements of the clips (gaps
/// of 0.4-2 s, rotated order): total streaming and batch word errors, CPU per audio second.
async fn cost_arrangements() {
    let e = engine(AudioCtx::default());
    let sched = Scheduler::new(e.clone());
    let (mut s_err, mut b_err, mut n_words, mut audio_s, mut cpu) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut decodes = 0;
    let mut ctx_frames = 0;
    for (gap, rot) in [(1000, 0), (400, 3), (2000, 5), (700, 6)] {
        let (audio, reference, _) = common::concatenated_rotated(gap, rot);
        let words = reference.split_whitespace().count() as f64;
        let secs = audio.len() as f64 / 16000.0;
        let audio = Arc::new(audio);
        let cpu0 = cpu_seconds();
        let r = run_stream(sched.clone(), audio.clone(), Duration::ZERO, 0.0).await;
        cpu += cpu_seconds() - cpu0;
        decodes += r.decodes;
        ctx_frames += r.ctx_frames;
        let stream_text = r.finals.join(" ");
        let batch_text = earshot_asr::text::join_segments(
            &earshot_asr::batch::transcribe(&e, &audio).expect("batch"),
        );
        if std::env::var("VERBOSE").is_ok() {
            println!("  gap={gap} rot={rot}\n    ref:    {reference}\n    stream: {}\n    batch:  {batch_text}", r.finals.join(" | "));
        }
        s_err += common::wer(&reference, &stream_text) * words;
        b_err += common::wer(&reference, &batch_text) * words;
        n_words += words;
        audio_s += secs;
    }
    println!(
        "cost4 {:?}: stream WER={:.1}% batch WER={:.1}% ({n_words} words) stream cpu={:.3} core-s per audio-s over {audio_s:.0}s, decodes={decodes} mean_ctx_s={:.1}",
        stream_config(),
        100.0 * s_err / n_words,
        100.0 * b_err / n_words,
        cpu / audio_s,
        ctx_frames as f64 * 0.02 / decodes.max(1) as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // RUST_LOG=earshot_asr=debug shows each full-context retry and dropped segment.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
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
        // CPU cost per audio second at the idle-machine decode cadence, and WER: fast.
        "cost" => streams(&[1], 0.0).await,
        // The same over four arrangements of the clips (more words, less noise in the WER).
        "cost4" => cost_arrangements().await,
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
