//! Per-level figures and their printing: the markdown table and the JSON lines.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use crate::client::StreamRun;
use crate::material::{Script, Utterance};
use crate::metrics::{percentile, StreamStats};
use crate::Args;

/// Solo result of one script: its WER alone, for the WER delta under load.
#[derive(Debug, Clone)]
pub struct Solo {
    pub wer: Option<f64>,
}

pub struct LevelRun {
    pub streams: Vec<StreamStats>,
    pub wall_secs: f64,
    pub server_cpu: Option<f64>,
    pub machine_busy: Option<f64>,
}

pub fn summarize(n: usize, level: &LevelRun, solo: &BTreeMap<usize, Solo>) -> serde_json::Value {
    let s = &level.streams;
    let pool = |f: fn(&StreamStats) -> &Vec<f64>| -> Vec<f64> {
        s.iter().flat_map(|x| f(x).iter().copied()).collect()
    };
    let finals = pool(|x| &x.final_latencies);
    let utts = pool(|x| &x.utterance_latencies);
    let gaps = pool(|x| &x.partial_gaps);
    let f2c: Vec<f64> = s.iter().filter_map(|x| x.finalize_to_completed).collect();
    let wers: Vec<f64> = s.iter().filter_map(|x| x.wer).collect();
    let deltas: Vec<f64> = s
        .iter()
        .filter_map(|x| Some(x.wer? - solo.get(&x.script)?.wer?))
        .collect();
    let audio: f64 = s.iter().map(|x| x.audio_secs).sum();
    let served = s.iter().filter(|x| !x.refused).count();
    let other = match (level.machine_busy, level.server_cpu) {
        (Some(m), Some(c)) => Some(((m - c) / level.wall_secs).max(0.0)),
        _ => None,
    };
    json!({
        "kind": "level",
        "streams": n,
        "refused": s.iter().filter(|x| x.refused).count(),
        "failed": s.iter().filter(|x| x.failure.is_some() && !x.refused).count(),
        "kept_up": s.iter().filter(|x| x.kept_up).count(),
        "final_latency_s": triple(&finals),
        "utterance_latency_s": triple(&utts),
        "utterances_missed": s.iter().map(|x| x.utterances_missed).sum::<usize>(),
        "finalize_to_completed_s": {"p50": percentile(&f2c, 50.0), "max": percentile(&f2c, 100.0)},
        "wer_pct": {"mean": mean(&wers), "max": percentile(&wers, 100.0), "per_stream": s.iter().map(|x| x.wer).collect::<Vec<_>>()},
        "wer_delta_max_pts": percentile(&deltas, 100.0),
        "non_monotonic_finals": s.iter().map(|x| x.non_monotonic).sum::<usize>(),
        "finals": s.iter().map(|x| x.finals).sum::<usize>(),
        "partials_per_stream": if served > 0 { Some(s.iter().map(|x| x.partials).sum::<usize>() as f64 / served as f64) } else { None },
        "partial_gap_p50_s": percentile(&gaps, 50.0),
        "audio_secs": audio,
        "wall_secs": level.wall_secs,
        "server_cpu_secs": level.server_cpu,
        "cpu_per_audio_sec": level.server_cpu.filter(|_| audio > 0.0).map(|c| c / audio),
        "other_load_cores": other,
        "failures": s.iter().filter_map(|x| x.failure.clone()).collect::<Vec<_>>(),
    })
}

fn triple(v: &[f64]) -> serde_json::Value {
    json!({"p50": percentile(v, 50.0), "p95": percentile(v, 95.0), "max": percentile(v, 100.0)})
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn load_solo(
    path: &std::path::Path,
    scripts: &[Arc<Script>],
) -> Result<BTreeMap<usize, Solo>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(k) = v["script"].as_u64().map(|k| k as usize) else {
            continue;
        };
        if v["kind"] != "solo" || v["failure"].is_string() {
            continue;
        }
        // Only a solo run of the very same script counts.
        let script = scripts.iter().find(|s| s.index == k);
        if script.map(|s| s.fingerprint.as_str()) == v["fingerprint"].as_str() {
            out.insert(
                k,
                Solo {
                    wer: v["wer"].as_f64(),
                },
            );
        }
    }
    eprintln!(
        "solo: {} of {} scripts taken from {}",
        out.len(),
        scripts.len(),
        path.display()
    );
    Ok(out)
}

pub fn print_material(
    args: &Args,
    pool: &[Utterance],
    scripts: &[Arc<Script>],
    bin: &std::path::Path,
    model: &str,
) {
    println!("# live_bench");
    println!(
        "server: {} serve, model {model}, embedded store, extra env {:?}",
        bin.display(),
        args.envs
    );
    println!(
        "material: {}, {} distinct utterances in the pool, seed {}, speed {}x, stagger {} ms",
        args.material,
        pool.len(),
        args.seed,
        args.speed,
        args.stagger_ms
    );
    println!("| script | seconds | utterances | words | fingerprint |");
    println!("| ---: | ---: | ---: | ---: | --- |");
    for s in scripts {
        println!(
            "| {} | {:.1} | {} | {} | {} |",
            s.index,
            s.seconds(),
            s.utterances.len(),
            s.reference.len(),
            s.fingerprint
        );
    }
}

pub fn print_table(rows: &[serde_json::Value]) {
    println!();
    println!("| streams | refused/failed | kept up | final latency p50/p95/max s | utterance latency p50/p95/max s (missed) | finalize→completed p50/max s | WER mean/max % | ΔWER max pts | non-monotonic | partials/stream, gap p50 s | server CPU s per audio s | other load, cores |");
    println!("| ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: |");
    for r in rows {
        let n = r["streams"].as_u64().unwrap_or(0);
        let t = |v: &serde_json::Value| {
            format!("{}/{}/{}", f2(&v["p50"]), f2(&v["p95"]), f2(&v["max"]))
        };
        println!(
            "| {n} | {}/{} | {}/{n} | {} | {} ({}) | {}/{} | {}/{} | {} | {} | {}, {} | {} | {} |",
            r["refused"],
            r["failed"],
            r["kept_up"],
            t(&r["final_latency_s"]),
            t(&r["utterance_latency_s"]),
            r["utterances_missed"],
            f2(&r["finalize_to_completed_s"]["p50"]),
            f2(&r["finalize_to_completed_s"]["max"]),
            f1(&r["wer_pct"]["mean"]),
            f1(&r["wer_pct"]["max"]),
            f1(&r["wer_delta_max_pts"]),
            r["non_monotonic_finals"],
            f1(&r["partials_per_stream"]),
            f2(&r["partial_gap_p50_s"]),
            f2(&r["cpu_per_audio_sec"]),
            f2(&r["other_load_cores"]),
        );
    }
}

fn f1(v: &serde_json::Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.1}"))
}

fn f2(v: &serde_json::Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.2}"))
}

pub fn fmt_pct(v: Option<f64>) -> String {
    v.map_or("– (failed)".into(), |x| format!("{x:.1} %"))
}

/// Appends one stream's events to a TSV timeline (for looking into a level by hand):
/// scripted utterance ends, partials, finals with their latency, finalize and completed.
pub fn timeline(out: &mut String, stream: usize, script: &Script, run: &StreamRun) {
    use std::fmt::Write;
    let sent = |ms: i64| -> Option<f64> {
        let last = run.frames_sent.len().checked_sub(1)?;
        let i = ((ms.max(1) + 99) / 100 - 1).clamp(0, last as i64) as usize;
        Some(run.frames_sent[i])
    };
    let k = script.index;
    for u in &script.utterances {
        if let Some(t) = sent(u.end_ms as i64) {
            let _ = writeln!(
                out,
                "{stream}\t{k}\tutterance_end\t{t:.3}\t\t\t{}\t\t{}",
                u.end_ms, u.name
            );
        }
    }
    for f in &run.finals {
        let lat = sent(f.end_ms).map_or(String::new(), |t| format!("{:.3}", f.at - t));
        let _ = writeln!(
            out,
            "{stream}\t{k}\tfinal\t{:.3}\t{}\t{}\t{}\t{lat}\t{}",
            f.at, f.seq, f.start_ms, f.end_ms, f.text
        );
    }
    for (at, text) in &run.partials {
        let _ = writeln!(out, "{stream}\t{k}\tpartial\t{at:.3}\t\t\t\t\t{text}");
    }
    if let Some(t) = run.finalize_sent {
        let _ = writeln!(out, "{stream}\t{k}\tfinalize\t{t:.3}\t\t\t\t\t");
    }
    if let Some(t) = run.completed_at {
        let _ = writeln!(out, "{stream}\t{k}\tcompleted\t{t:.3}\t\t\t\t\t");
    }
}
