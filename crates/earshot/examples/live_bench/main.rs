//! Live-capacity benchmark: how many concurrent real-time streams one `earshot serve`
//! carries, measured from the outside as a client sees them.
//!
//! Why: capacity claims made from inside the server (decode times, queue depths) have been
//! wrong before. This is a black-box client: it starts a fresh `earshot serve` per
//! concurrency level, opens N WebSockets that each send a ≥ 60 s script of utterances and
//! pauses at real-time pace (absolute schedule, 100 ms frames), timestamps every message on
//! arrival, and reports per level: final and per-utterance latency, finalize → completed
//! time, how many streams kept up, word error rate against the same script run alone,
//! out-of-order finals, partial cadence, server CPU per audio second, and refusals
//! (1013 `overloaded` at open is a valid outcome and is counted, not a crash).
//!
//! ```sh
//! export CARGO_TARGET_DIR=/work/main/target   # or leave unset for ./target
//! cargo build --release -p earshot
//! cargo run --release -p earshot --example live_bench -- \
//!     --levels 1,2,4,6,8 --material mixed --json live_bench.jsonl
//! # reuse the solo (one stream alone) results of an earlier run:
//! cargo run --release -p earshot --example live_bench -- --levels 4,6 --solo-from live_bench.jsonl
//! ```
//! Needs `espeak-ng` for `--material espeak|mixed`, Festival too for the held-out pools
//! (`unseen`, `unseen-b`), and Flite for `unseen-c` to `unseen-e` (the held-out one now)
//! (`apt-get install -y espeak-ng festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k flite`).
//! Environment: `EARSHOT_MODEL` (default `/work/shared/models/ggml-tiny.en.bin`) is passed to
//! the server; `--env KEY=VALUE` adds more server environment. Only 127.0.0.1 is used.

mod client;
mod material;
mod metrics;
mod report;
mod server;
mod unseen;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use material::{Material, Script};
use metrics::percentile;
use report::{load_solo, print_material, print_table, summarize, LevelRun, Solo};

#[derive(Debug, Parser)]
#[command(about = "Live-capacity benchmark of earshot serve (black-box WebSocket client)")]
struct Args {
    /// Concurrency levels, each on a fresh server.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,6,8")]
    levels: Vec<usize>,
    /// Utterance material: clips, espeak, mixed, or a held-out pool (unseen, unseen-b ... unseen-e).
    #[arg(long, default_value = "mixed")]
    material: Material,
    /// earshot binary (default: $CARGO_TARGET_DIR/release/earshot or target/release/earshot).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Extra server environment, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// Delay between the starts of consecutive streams.
    #[arg(long, default_value_t = 500)]
    stagger_ms: u64,
    /// Replay speed (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Minimum script length per stream, seconds.
    #[arg(long, default_value_t = 60.0)]
    script_secs: f64,
    /// Seed of the script order and pauses.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Which scripts the streams send (default 0, 1, 2, …): e.g. `--scripts 4 --levels 1`
    /// replays script 4 alone, to look into it with `--env RUST_LOG=earshot_asr=debug`.
    #[arg(long, value_delimiter = ',')]
    scripts: Vec<usize>,
    /// Directory of the shared clips and references.tsv.
    #[arg(long, default_value = "/work/shared/audio")]
    audio_dir: PathBuf,
    /// Append one JSON line per solo script and per level to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Take the solo results from an earlier run's --json file instead of running them.
    #[arg(long)]
    solo_from: Option<PathBuf>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("--env wants KEY=VALUE, not {s:?}"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("live_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| target.join("release/earshot"));
    let model = std::env::var("EARSHOT_MODEL")
        .unwrap_or_else(|_| "/work/shared/models/ggml-tiny.en.bin".into());
    let log_dir = target.join("live_bench_logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    if args.speed <= 0.0 || args.levels.contains(&0) {
        return Err("--speed and every level must be > 0".into());
    }

    let pool = material::load_pool(
        args.material,
        &args.audio_dir,
        &target.join("live_bench_material"),
    )?;
    let max_n = args.levels.iter().copied().max().unwrap_or(1);
    let indices: Vec<usize> = if args.scripts.is_empty() {
        (0..max_n).collect()
    } else if args.scripts.len() >= max_n {
        args.scripts.clone()
    } else {
        return Err(format!(
            "--scripts names fewer scripts than the {max_n} streams asked"
        ));
    };
    let scripts: Vec<Arc<Script>> = indices
        .into_iter()
        .map(|k| {
            Arc::new(material::build_script(
                &pool,
                k,
                args.seed,
                args.script_secs,
            ))
        })
        .collect();
    print_material(&args, &pool, &scripts, &bin, &model);

    let mut json_out = match &args.json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let mut emit = |v: serde_json::Value| {
        if let Some(f) = json_out.as_mut() {
            let _ = writeln!(f, "{v}");
        }
    };

    // Solo pass: every script alone on a fresh server, the baseline of the WER delta.
    let mut solo: BTreeMap<usize, Solo> = match &args.solo_from {
        Some(p) => load_solo(p, &scripts)?,
        None => BTreeMap::new(),
    };
    for script in &scripts {
        if solo.contains_key(&script.index) {
            continue;
        }
        eprintln!("solo: script {} ({:.1} s)", script.index, script.seconds());
        let label = format!("solo-{}", script.index);
        let level = run_level(&args, &bin, &model, &log_dir, &label, vec![script.clone()]).await?;
        let s = &level.streams[0];
        if let Some(f) = &s.failure {
            eprintln!("solo: script {} failed: {f}", script.index);
        }
        emit(json!({
            "kind": "solo",
            "script": script.index,
            "fingerprint": script.fingerprint,
            "material": args.material.to_string(),
            "audio_secs": s.audio_secs,
            "server_cpu_secs": level.server_cpu,
            "wall_secs": level.wall_secs,
            "wer": s.wer,
            "final_p50_s": percentile(&s.final_latencies, 50.0),
            "kept_up": s.kept_up,
            "failure": s.failure,
            "transcript": s.transcript,
        }));
        solo.insert(script.index, Solo { wer: s.wer });
    }
    println!();
    println!("solo (each script alone):");
    for (k, s) in &solo {
        println!("  script {k}: WER {}", report::fmt_pct(s.wer));
    }
    println!();

    let mut rows = Vec::new();
    for &n in &args.levels {
        eprintln!("level {n}: {n} streams");
        let level = match run_level(
            &args,
            &bin,
            &model,
            &log_dir,
            &format!("level-{n}"),
            scripts[..n].to_vec(),
        )
        .await
        {
            Ok(level) => level,
            Err(e) => {
                // Keep the levels already measured: print them, then fail.
                print_table(&rows);
                return Err(format!("level {n}: {e}"));
            }
        };
        let mut row = summarize(n, &level, &solo);
        row["material"] = json!(args.material.to_string());
        row["seed"] = json!(args.seed);
        row["speed"] = json!(args.speed);
        row["stagger_ms"] = json!(args.stagger_ms);
        row["env"] = json!(args
            .envs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>());
        row["model"] = json!(model);
        row["scripts"] = json!(scripts[..n]
            .iter()
            .map(|s| s.fingerprint.clone())
            .collect::<Vec<_>>());
        emit(row.clone());
        for s in &level.streams {
            if let Some(f) = &s.failure {
                eprintln!("level {n}: script {}: {f}", s.script);
            }
        }
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

/// Runs `scripts` concurrently, staggered, on a fresh server.
async fn run_level(
    args: &Args,
    bin: &std::path::Path,
    model: &str,
    log_dir: &std::path::Path,
    label: &str,
    scripts: Vec<Arc<Script>>,
) -> Result<LevelRun, String> {
    let log = log_dir.join(format!("{label}.log"));
    let mut server = server::Server::start(bin, model, &args.envs, log).await?;
    let cpu0 = server.cpu_secs();
    let busy0 = server::machine_busy_secs();
    let wall0 = std::time::Instant::now();
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let tasks: Vec<_> = scripts
        .iter()
        .enumerate()
        .map(|(i, script)| {
            let url = format!(
                "ws://127.0.0.1:{}/v1/sessions/bench-{nonce}-{label}-{i}/stream?sample_rate=16000&encoding=pcm_s16le",
                server.port
            );
            let at = start + Duration::from_millis(args.stagger_ms * i as u64);
            tokio::spawn(client::run(url, script.clone(), args.speed, at))
        })
        .collect();
    let mut streams = Vec::new();
    let mut timeline =
        String::from("stream\tscript\tevent\tat_s\tseq\tstart_ms\tend_ms\tlatency_s\ttext\n");
    for (i, (task, script)) in tasks.into_iter().zip(&scripts).enumerate() {
        let run = task.await.map_err(|e| format!("stream task: {e}"))?;
        report::timeline(&mut timeline, i, script, &run);
        streams.push(metrics::stream_stats(&run, script));
    }
    let path = log_dir.join(format!("{label}-timeline.tsv"));
    std::fs::write(&path, timeline).map_err(|e| format!("{}: {e}", path.display()))?;
    let wall_secs = wall0.elapsed().as_secs_f64();
    let server_cpu = match (cpu0, server.cpu_secs()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let machine_busy = match (busy0, server::machine_busy_secs()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    server.stop();
    Ok(LevelRun {
        streams,
        wall_secs,
        server_cpu,
        machine_busy,
    })
}
