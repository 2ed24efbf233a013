//! The fake microphone's speech: clips from `shared/audio` joined with pauses, as a person
//! would speak several sentences, plus the reference text of the whole.

use std::path::Path;

use earshot_testsupport::speech::{audio_dir, references};

const RATE: u32 = 16_000;
/// 16 kHz clips → 48 kHz file.
const UP: u32 = 3;

fn silence(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

/// Writes a 48 kHz mono WAV (a microphone's usual rate, which Chromium's fake capture plays
/// as is) of `clips` separated by 1.2 s pauses (2 s before, 3 s after, so the last words end
/// well before the audio does); returns its reference text and where each clip starts and
/// ends in the speech (ms).
pub fn speech_wav(clips: &[&str], out: &Path) -> (String, Vec<(u64, u64)>) {
    let refs = references();
    let mut samples = silence(2000);
    let mut reference = Vec::new();
    let mut spans = Vec::new();
    let ms = |n: usize| n as u64 * 1000 / u64::from(RATE);
    for (i, clip) in clips.iter().enumerate() {
        if i > 0 {
            samples.extend(silence(1200));
        }
        let mut r = hound::WavReader::open(audio_dir().join(clip))
            .unwrap_or_else(|e| panic!("read {clip}: {e}"));
        assert_eq!(r.spec().sample_rate, RATE, "{clip} is 16 kHz");
        let start = samples.len();
        samples.extend(r.samples::<i16>().map(|s| s.unwrap()));
        spans.push((ms(start), ms(samples.len())));
        let text = refs
            .iter()
            .find(|(f, _)| f == clip)
            .unwrap_or_else(|| panic!("no reference for {clip}"));
        reference.push(text.1.clone());
    }
    samples.extend(silence(3000));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE * UP,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(out, spec).unwrap();
    // Linear interpolation: its images above 8 kHz are what the page's low-pass removes.
    for (i, &s) in samples.iter().enumerate() {
        let next = samples.get(i + 1).copied().unwrap_or(0) as f32;
        for k in 0..UP {
            let v = s as f32 + (next - s as f32) * k as f32 / UP as f32;
            w.write_sample(v.round() as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    (reference.join(" "), spans)
}
