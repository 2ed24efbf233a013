//! Shared test helpers: model/audio discovery and WER with the normalisation the references
//! need (case, punctuation, digits written as numbers vs words).
#![allow(dead_code)]

pub use earshot_testsupport::speech::*;

/// Read a 16 kHz mono WAV into f32 with earshot's own decoder.
pub fn load_clip(file: &str) -> Vec<f32> {
    earshot_asr::decode_file(audio_dir().join(file))
        .expect("decode clip")
        .samples
}

/// All clips joined with `gap_ms` of silence between them (and before/after), with the joined
/// reference text (numbers.wav's digits as in its reference).
pub fn concatenated(gap_ms: usize) -> (Vec<f32>, String, Vec<(String, String)>) {
    concatenated_rotated(gap_ms, 0)
}

/// [`concatenated`] with the clip order rotated left by `rotate` (another arrangement of the
/// same speech: other neighbours, other context).
pub fn concatenated_rotated(
    gap_ms: usize,
    rotate: usize,
) -> (Vec<f32>, String, Vec<(String, String)>) {
    let mut refs = references();
    if !refs.is_empty() {
        let k = rotate % refs.len();
        refs.rotate_left(k);
    }
    let gap = vec![0.0f32; gap_ms * 16];
    let mut all = gap.clone();
    let mut text = Vec::new();
    for (f, r) in &refs {
        all.extend(load_clip(f));
        all.extend(&gap);
        text.push(r.clone());
    }
    (all, text.join(" "), refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize("Go forward 10 meters."),
            normalize("go forward ten meters")
        );
        assert_eq!(digits_of("33 for 692."), "334692");
        assert_eq!(digits_of("thirty three four six ninety two"), "334692");
        assert_eq!(digits_of("33-4-692"), "334692");
    }
}
