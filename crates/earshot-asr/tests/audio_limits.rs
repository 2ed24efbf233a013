//! Audio is bounded by what it really holds, never by what its header claims: a small
//! file that decodes to hours is refused as soon as decoding passes the cap, and a
//! header's length is never trusted either way.

use std::time::{Duration, Instant};

use earshot_asr::audio::{decode_bytes_limited, decode_file_limited, TARGET_RATE};
use earshot_asr::AudioError;
use earshot_testsupport::audio::{constant_flac, wav_claiming};

#[test]
fn a_small_flac_of_three_hours_is_refused_at_the_cap_without_decoding_the_rest() {
    let flac = constant_flac(48_000, 3 * 3600);
    assert!(
        flac.len() < 200_000,
        "the attack file is small: {}",
        flac.len()
    );
    let t = Instant::now();
    let e = decode_bytes_limited(&flac, Some("flac"), 60).unwrap_err();
    assert!(matches!(e, AudioError::TooLong(60)), "{e:?}");
    assert_eq!(e.code(), "audio_too_long");
    // Decoding all three hours (and resampling them) takes far longer than this; the cap
    // stops after the first minute's packets.
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn audio_under_the_cap_decodes_whole() {
    let flac = constant_flac(48_000, 30);
    let d = decode_bytes_limited(&flac, None, 60).unwrap();
    assert_eq!(d.source_rate, 48_000);
    let secs = d.samples.len() as f64 / TARGET_RATE as f64;
    assert!((secs - 30.0).abs() < 0.01, "{secs}");
    // The constant level survives the resampler (1000 / 32768).
    let mid = d.samples[d.samples.len() / 2];
    assert!((mid - 1000.0 / 32768.0).abs() < 1e-3, "{mid}");
}

#[test]
fn the_same_cap_applies_to_files_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.flac");
    std::fs::write(&path, constant_flac(8_000, 120)).unwrap();
    let e = decode_file_limited(&path, 60).unwrap_err();
    assert!(matches!(e, AudioError::TooLong(60)), "{e:?}");
    let d = decode_file_limited(&path, 121).unwrap();
    assert_eq!(d.samples.len(), 120 * TARGET_RATE as usize);
}

#[test]
fn a_wav_header_claiming_hours_decodes_what_is_really_there() {
    // A streamed WAV's placeholder size claims ~37 hours; one second is really there.
    let one_second: Vec<i16> = (0..16_000).map(|i| ((i % 100) * 100) as i16).collect();
    let wav = wav_claiming(16_000, &one_second, u32::MAX - 64);
    let d = decode_bytes_limited(&wav, None, 60).expect("the claim is not the content");
    assert_eq!(d.samples.len(), 16_000);
}

#[test]
fn a_wav_that_really_holds_more_than_the_cap_is_refused() {
    let samples = vec![100i16; 16_000 * 3];
    let wav = wav_claiming(16_000, &samples, (samples.len() * 2) as u32);
    let e = decode_bytes_limited(&wav, None, 2).unwrap_err();
    assert!(matches!(e, AudioError::TooLong(2)), "{e:?}");
    assert_eq!(
        decode_bytes_limited(&wav, None, 3).unwrap().samples.len(),
        48_000
    );
}
