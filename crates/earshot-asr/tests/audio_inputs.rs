//! Audio decoding without a model: every bad-input case gives a typed error (never a panic),
//! every supported format decodes to 16 kHz mono of the right length, and the streaming frame
//! decoder is independent of how frames are split.

mod common;

use earshot_asr::audio::{i16_to_mulaw, resample_to_16k, TARGET_RATE};
use earshot_asr::{decode_bytes, decode_file, AudioEncoding, AudioError, StreamDecoder};
use proptest::prelude::*;

fn wav_bytes(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cur = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for s in samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn zero_bytes_is_empty() {
    let e = decode_bytes(&[]).unwrap_err();
    assert!(matches!(e, AudioError::Empty), "{e:?}");
    assert!(!e.is_unsupported_format());
    assert_eq!(e.code(), "empty_audio");
}

#[test]
fn garbage_is_unsupported_format() {
    let garbage =
        b"this is definitely not audio, just some text pretending to be a file\n".repeat(50);
    let e = decode_bytes(&garbage).unwrap_err();
    assert!(e.is_unsupported_format(), "{e:?}");
    assert!(e.to_string().contains("supported"), "{e}");
}

#[test]
fn truncated_wav_header() {
    let wav = wav_bytes(16000, 1, &[0; 100]);
    for cut in [4usize, 12, 20, 30, 43] {
        let e = decode_bytes(&wav[..cut]).unwrap_err();
        assert!(
            matches!(e, AudioError::TruncatedHeader(_)),
            "cut {cut}: {e:?}"
        );
        assert!(!e.is_unsupported_format());
    }
}

#[test]
fn wav_header_without_samples_is_empty() {
    let wav = wav_bytes(16000, 1, &[]);
    let e = decode_bytes(&wav).unwrap_err();
    assert!(matches!(e, AudioError::Empty), "{e:?}");
}

#[test]
fn wav_with_short_body_keeps_what_was_read() {
    let wav = wav_bytes(16000, 1, &[1000; 1600]);
    let d = decode_bytes(&wav[..wav.len() - 1000])
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    assert_eq!(d.samples.len(), 1600 - 500);
}

#[test]
fn wav_with_corrupt_format_chunk() {
    let mut wav = wav_bytes(16000, 1, &[0; 1000]);
    // Format tag 0x1234 (unknown codec) -> unsupported, not a panic.
    wav[20] = 0x34;
    wav[21] = 0x12;
    let e = decode_bytes(&wav).unwrap_err();
    assert!(
        e.is_unsupported_format() || matches!(e, AudioError::Malformed(_)),
        "{e:?}"
    );
    // Zero channels.
    let mut wav = wav_bytes(16000, 1, &[0; 1000]);
    wav[22] = 0;
    wav[23] = 0;
    assert!(decode_bytes(&wav).is_err());
}

#[test]
fn stereo_48k_wav_downmixes_and_resamples() {
    let n = 48000; // one second of stereo frames
    let mut s = Vec::with_capacity(n * 2);
    for i in 0..n {
        let v = ((i as f32 * 440.0 * 2.0 * std::f32::consts::PI / 48000.0).sin() * 8000.0) as i16;
        s.push(v);
        s.push(v);
    }
    let d = decode_bytes(&wav_bytes(48000, 2, &s)).unwrap();
    assert_eq!(d.source_rate, 48000);
    assert_eq!(d.source_channels, 2);
    assert_eq!(d.samples.len(), 16000);
    // A 440 Hz tone keeps its amplitude through the resampler (no aliasing loss/gain).
    let peak = d.samples[2000..14000]
        .iter()
        .fold(0.0f32, |a, b| a.max(b.abs()));
    assert!((peak - 8000.0 / 32768.0).abs() < 0.02, "peak {peak}");
}

#[test]
fn compressed_formats_decode() {
    for (name, seconds) in [
        ("goforward-44k-stereo.flac", 2.79),
        ("something-48k.ogg", 3.00),
        ("numbers-16k.mp3", 4.02),
    ] {
        let d = decode_file(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = d.samples.len() as f64 / TARGET_RATE as f64;
        // mp3 adds encoder delay/padding frames; allow 0.15 s.
        assert!((got - seconds).abs() < 0.15, "{name}: {got} s");
        assert!(d.samples.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    }
}

#[test]
fn truncated_compressed_files_do_not_panic() {
    for name in [
        "goforward-44k-stereo.flac",
        "something-48k.ogg",
        "numbers-16k.mp3",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [1usize, 4, 16, 40, 100, 1000, bytes.len() / 2] {
            // Either a typed error or (for a cut body) the audio decoded so far.
            let _ = decode_bytes(&bytes[..cut.min(bytes.len())]);
        }
    }
}

#[test]
fn missing_file_is_io_error() {
    let e = decode_file("/nonexistent/earshot/clip.wav").unwrap_err();
    assert!(matches!(e, AudioError::Io(_)));
}

#[test]
fn stream_rates_are_checked() {
    for bad in [0u32, 7999, 48001, 96000] {
        let e = StreamDecoder::new(AudioEncoding::PcmS16le, bad).unwrap_err();
        assert!(
            matches!(e, AudioError::BadSampleRate { .. }),
            "{bad}: {e:?}"
        );
        assert!(e.to_string().contains("8000"), "{e}");
    }
    for good in [8000u32, 11025, 16000, 22050, 44100, 48000, 44099] {
        StreamDecoder::new(AudioEncoding::PcmMulaw, good).unwrap();
    }
}

#[test]
fn stream_encoding_names() {
    assert_eq!(
        "pcm_s16le".parse::<AudioEncoding>().unwrap(),
        AudioEncoding::PcmS16le
    );
    assert_eq!(
        "pcm_f32le".parse::<AudioEncoding>().unwrap(),
        AudioEncoding::PcmF32le
    );
    assert_eq!(
        "pcm_mulaw".parse::<AudioEncoding>().unwrap(),
        AudioEncoding::PcmMulaw
    );
    let e = "opus".parse::<AudioEncoding>().unwrap_err();
    assert!(e.is_unsupported_format());
    assert!(StreamDecoder::from_names("aac", 16000).is_err());
}

#[test]
fn f32_stream_sanitises_nan_and_inf() {
    let mut d = StreamDecoder::new(AudioEncoding::PcmF32le, 16000).unwrap();
    let mut bytes = Vec::new();
    for v in [f32::NAN, f32::INFINITY, -5.0, 0.5] {
        bytes.extend(v.to_le_bytes());
    }
    let out = d.push(&bytes).unwrap();
    assert_eq!(out, vec![0.0, 0.0, -1.0, 0.5]);
}

#[test]
fn odd_trailing_byte_is_carried_not_dropped() {
    let samples: Vec<i16> = (0..1000).map(|i| (i * 31 % 20000) as i16 - 10000).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut d = StreamDecoder::new(AudioEncoding::PcmS16le, 16000).unwrap();
    let mut out = d.push(&bytes[..101]).unwrap(); // odd split
    assert_eq!(out.len(), 50);
    assert_eq!(d.pending_bytes(), 1);
    out.extend(d.push(&bytes[101..102]).unwrap());
    assert_eq!(d.pending_bytes(), 0);
    out.extend(d.push(&bytes[102..]).unwrap());
    let expect: Vec<f32> = samples.iter().map(|s| *s as f32 / 32768.0).collect();
    assert_eq!(out, expect);
    // An empty frame is fine.
    assert!(d.push(&[]).unwrap().is_empty());
}

fn decode_stream(enc: AudioEncoding, rate: u32, bytes: &[u8], splits: &[usize]) -> Vec<f32> {
    let mut d = StreamDecoder::new(enc, rate).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    for s in splits {
        let end = (pos + s).min(bytes.len());
        out.extend(d.push(&bytes[pos..end]).unwrap());
        pos = end;
    }
    out.extend(d.push(&bytes[pos..]).unwrap());
    out.extend(d.finish().unwrap());
    out
}

#[test]
fn resampled_stream_matches_whole_file_resampling() {
    let rate = 44100;
    let x: Vec<i16> = (0..rate * 2)
        .map(|i| ((i as f32 * 0.031).sin() * 9000.0) as i16)
        .collect();
    let bytes: Vec<u8> = x.iter().flat_map(|s| s.to_le_bytes()).collect();
    let a = decode_stream(
        AudioEncoding::PcmS16le,
        rate as u32,
        &bytes,
        &[7, 3001, 1, 999],
    );
    let b = decode_stream(AudioEncoding::PcmS16le, rate as u32, &bytes, &[1764; 100]);
    let whole: Vec<f32> = x.iter().map(|s| *s as f32 / 32768.0).collect();
    let c = resample_to_16k(&whole, rate as u32).unwrap();
    assert_eq!(a.len(), 32000);
    assert_eq!(a, b);
    assert_eq!(a.len(), c.len());
    let max_diff = a
        .iter()
        .zip(&c)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max);
    assert!(max_diff < 1e-4, "{max_diff}");
}

#[test]
fn mulaw_stream_decodes_speech_levels() {
    let x: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.05).sin() * 12000.0) as i16)
        .collect();
    let bytes: Vec<u8> = x.iter().map(|s| i16_to_mulaw(*s)).collect();
    let y = decode_stream(AudioEncoding::PcmMulaw, 8000, &bytes, &[160; 49]);
    assert_eq!(y.len(), 16000);
    let peak = y[1000..15000].iter().fold(0.0f32, |a, b| a.max(b.abs()));
    assert!((peak - 12000.0 / 32768.0).abs() < 0.03, "{peak}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Arbitrary bytes (and arbitrary bytes behind real magic numbers) never panic.
    #[test]
    fn decode_arbitrary_bytes_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        magic in 0usize..6,
    ) {
        let prefixes: [&[u8]; 6] = [b"", b"RIFF\x24\x08\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x03\x00", b"\xff\xfb\x90\x00"];
        let mut bytes = prefixes[magic].to_vec();
        bytes.extend(body);
        let _ = decode_bytes(&bytes);
    }

    /// Any split of the same bytes gives the same samples, for every encoding and rate.
    #[test]
    fn stream_split_invariance(
        bytes in proptest::collection::vec(any::<u8>(), 0..6000),
        splits in proptest::collection::vec(0usize..700, 0..20),
        enc in 0usize..3,
        rate in prop::sample::select(vec![8000u32, 16000, 22050, 44100, 48000]),
    ) {
        let enc = [AudioEncoding::PcmS16le, AudioEncoding::PcmF32le, AudioEncoding::PcmMulaw][enc];
        let a = decode_stream(enc, rate, &bytes, &splits);
        let b = decode_stream(enc, rate, &bytes, &[]);
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() < 1e-5);
            prop_assert!(x.is_finite() && x.abs() <= 1.0);
        }
    }
}
