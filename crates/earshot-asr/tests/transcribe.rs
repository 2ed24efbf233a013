//! Batch transcription on real speech (shared/audio), other formats and rates, long-form
//! stitching, and the engine's guards. Skips (with a notice) without a model unless
//! `EARSHOT_REQUIRE_MODEL=1`.

mod common;

use std::sync::{Arc, OnceLock};

use earshot_asr::audio::i16_to_mulaw;
use earshot_asr::text::join_segments;
use earshot_asr::{decode_file, AudioEncoding, DecodeOptions, Engine, EngineConfig, StreamDecoder};

fn engine() -> Option<Arc<Engine>> {
    static E: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    E.get_or_init(|| {
        let p = common::model_path()?;
        Some(Engine::load(EngineConfig::new(p)).expect("model loads"))
    })
    .clone()
}

// Tests in this binary share one engine; whisper decodes run one at a time so that the
// suite's CPU use stays at `threads` cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn transcribe(e: &Engine, samples: &[f32]) -> String {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    join_segments(&earshot_asr::batch::transcribe(e, samples).expect("transcribe"))
}

#[test]
fn batch_wer_on_reference_clips() {
    let Some(e) = engine() else { return };
    let mut errors = 0;
    let mut words = 0;
    for (file, reference) in common::references() {
        let samples = common::load_clip(&file);
        let text = transcribe(&e, &samples);
        let (err, n) = common::clip_errors(&file, &reference, &text);
        println!("{file}: {text:?} ({err}/{n} errors)");
        errors += err;
        words += n;
    }
    if words == 0 {
        return;
    }
    let wer = errors as f64 / words as f64;
    println!("batch WER {:.1}% ({errors}/{words})", wer * 100.0);
    // whisper-cli with the same model: "Queen of Clothes" / "four of close" are the known
    // tiny.en confusions on cards-00x (2/36 = 5.6%).
    assert!(wer <= 0.15, "batch WER {wer}");
}

#[test]
fn other_containers_and_rates_transcribe() {
    let Some(e) = engine() else { return };
    let fx = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, reference) in [
        ("goforward-44k-stereo.flac", "go forward ten meters"),
        ("something-48k.ogg", "go somewhere and do something"),
    ] {
        let d = decode_file(fx.join(name)).unwrap();
        let text = transcribe(&e, &d.samples);
        let w = common::wer(reference, &text);
        println!("{name}: {text:?} WER {w:.2}");
        assert!(w <= 0.25, "{name}: {text:?}");
    }
    let d = decode_file(fx.join("numbers-16k.mp3")).unwrap();
    let text = transcribe(&e, &d.samples);
    let (err, _) = common::clip_errors("numbers.wav", "thirty three four six ninety two", &text);
    println!("numbers-16k.mp3: {text:?}");
    assert!(err <= 1, "{text:?}");
}

/// Upsample a 16 kHz clip to 48 kHz by the resampler, then feed it as s16le frames at
/// 48 kHz and as μ-law at 8 kHz through the stream decoder; both must transcribe.
#[test]
fn stream_decoder_48k_and_mulaw_8k_transcribe() {
    let Some(e) = engine() else { return };
    let clip = common::load_clip("goforward.wav");
    // 16 kHz -> 48 kHz by linear-phase sinc via the same resampler machinery in reverse is not
    // exposed; a 3x sample-and-hold followed by our 48k->16k path is a fair stress for the
    // decoder's anti-aliasing filter.
    let up: Vec<i16> = clip
        .iter()
        .flat_map(|v| std::iter::repeat_n((v * 32767.0) as i16, 3))
        .collect();
    let bytes: Vec<u8> = up.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut d = StreamDecoder::new(AudioEncoding::PcmS16le, 48_000).unwrap();
    let mut samples = Vec::new();
    for frame in bytes.chunks(48 * 2 * 20 + 1) {
        samples.extend(d.push(frame).unwrap());
    }
    samples.extend(d.finish().unwrap());
    assert!((samples.len() as i64 - clip.len() as i64).abs() <= 2);
    let text = transcribe(&e, &samples);
    println!("48k s16le: {text:?}");
    assert!(
        common::wer("go forward ten meters", &text) <= 0.25,
        "{text:?}"
    );

    // 8 kHz μ-law (telephone): decimate with our resampler, then companding.
    let down = earshot_asr::audio::resample_to_16k(&clip, 32_000).unwrap(); // 16k->8k
    let law: Vec<u8> = down
        .iter()
        .map(|v| i16_to_mulaw((v.clamp(-1.0, 1.0) * 32767.0) as i16))
        .collect();
    let mut d = StreamDecoder::new(AudioEncoding::PcmMulaw, 8_000).unwrap();
    let mut samples = Vec::new();
    for frame in law.chunks(160) {
        samples.extend(d.push(frame).unwrap());
    }
    samples.extend(d.finish().unwrap());
    let text = transcribe(&e, &samples);
    println!("8k mu-law: {text:?}");
    assert!(
        common::wer("go forward ten meters", &text) <= 0.25,
        "{text:?}"
    );
}

#[test]
fn long_form_is_windowed_without_dropping_or_repeating() {
    let Some(e) = engine() else { return };
    // All clips twice with 1.2 s pauses: ~45 s, so at least two windows.
    let (one, reference, _) = common::concatenated(1200);
    let mut long = one.clone();
    long.extend(&one);
    let reference = format!("{reference} {reference}");
    let text = transcribe(&e, &long);
    let w = common::wer(&reference, &text);
    println!(
        "long-form ({:.1}s): WER {:.1}% {text:?}",
        long.len() as f64 / 16000.0,
        w * 100.0
    );
    assert!(w <= 0.2, "long-form WER {w}: {text:?}");
}

#[test]
fn silence_and_noise_give_no_text() {
    let Some(e) = engine() else { return };
    let silence = vec![0.0f32; 16000 * 5];
    assert_eq!(transcribe(&e, &silence), "");
    // Very quiet hiss: under the VAD energy floor, never decoded.
    let mut x: u32 = 12345;
    let hiss: Vec<f32> = (0..16000 * 3)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            ((x >> 16) as f32 / 65536.0 - 0.5) * 0.002
        })
        .collect();
    assert_eq!(transcribe(&e, &hiss), "");
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = e.decode(&silence, &DecodeOptions::default()).unwrap();
    assert!(t.skipped_silence);
}

#[test]
fn tiny_and_odd_inputs_do_not_fail() {
    let Some(e) = engine() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for n in [0usize, 1, 160, 479, 481, 16000] {
        let s: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.3).sin() * 0.5).collect();
        let opts = DecodeOptions {
            skip_vad_gate: true,
            ..Default::default()
        };
        e.decode(&s, &opts)
            .expect("decode never errors on short input");
    }
}

#[test]
fn timestamps_are_offset_and_ordered() {
    let Some(e) = engine() else { return };
    let s = common::load_clip("something.wav");
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = e
        .decode(
            &s,
            &DecodeOptions {
                offset_ms: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(!t.segments.is_empty());
    for seg in &t.segments {
        assert!(
            seg.start_ms >= 10_000 && seg.end_ms <= 13_000 + 50,
            "{seg:?}"
        );
        for w in &seg.words {
            assert!(w.start_ms <= w.end_ms && w.start_ms >= 10_000, "{w:?}");
        }
    }
}

/// A decode whose result is no longer wanted stops inside whisper and says so; the same
/// engine then decodes normally (the abandoned state was not reused).
#[test]
fn a_cancelled_decode_stops_and_the_engine_goes_on() {
    use std::sync::atomic::AtomicBool;
    let Some(e) = engine() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let samples = common::load_clip("goforward.wav");
    let cancelled = DecodeOptions {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..Default::default()
    };
    assert!(matches!(
        e.decode(&samples, &cancelled),
        Err(earshot_asr::EngineError::Cancelled)
    ));
    let wanted = DecodeOptions {
        cancel: Some(Arc::new(AtomicBool::new(false))),
        ..Default::default()
    };
    let text = e.decode(&samples, &wanted).expect("decode").text();
    assert!(
        common::clip_errors("goforward.wav", "go forward ten meters", &text).0 <= 1,
        "{text}"
    );
}
