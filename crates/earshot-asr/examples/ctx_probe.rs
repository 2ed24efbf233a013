//! Probe one decode per clip for an audio_ctx policy: time, audio_ctx, text.
#[path = "../tests/common/mod.rs"]
mod common;
use earshot_asr::{AudioCtx, DecodeOptions, Engine, EngineConfig};
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let margin: u32 = args.first().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let floor: u32 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(5000);
    let threads: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(2);
    let fallback = args.get(3).map(|v| v == "1").unwrap_or(true);
    let mut cfg = EngineConfig::new(common::model_path().unwrap());
    cfg.threads = threads;
    if std::env::var("FLASH").is_ok_and(|v| v == "0") {
        cfg.flash_attn = false;
    }
    cfg.audio_ctx = if margin == 0 {
        AudioCtx::Full
    } else {
        AudioCtx::Adaptive {
            margin_ms: margin,
            floor_ms: floor,
        }
    };
    let e = Engine::load(cfg).unwrap();
    let mut total = 0.0;
    let mut audio = 0.0;
    let mut errs = 0;
    let mut words = 0;
    for (f, r) in common::references() {
        let s = common::load_clip(&f);
        let t = e
            .decode(
                &s,
                &DecodeOptions {
                    temperature_fallback: fallback,
                    ..Default::default()
                },
            )
            .unwrap();
        let text = t.text();
        let (er, n) = common::clip_errors(&f, &r, &text);
        errs += er;
        words += n;
        total += t.elapsed.as_secs_f64();
        audio += s.len() as f64 / 16000.0;
        println!(
            "{f}: ctx={} retry={} {:.3}s dropped={} {:?}",
            t.audio_ctx,
            t.retried_wider_ctx,
            t.elapsed.as_secs_f64(),
            t.dropped_segments,
            text
        );
    }
    println!("margin={margin} floor={floor} threads={threads} fallback={fallback} rtf={:.3} WER={errs}/{words}", total / audio);
}
