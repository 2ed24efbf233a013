//! Speech made at test time with `espeak-ng` (and `sox` to resample it to 16 kHz mono):
//! sentences in other languages, names and jargon the shared clips do not have.
//! A missing tool fails the test that asked for speech: CI installs both
//! (`scripts/bootstrap.sh test`).

use std::io::Write;
use std::process::{Command, Stdio};

/// `text` spoken by espeak-ng's `voice` (`"en-us"`, `"de"`, `"fr"`, `"es"`) as 16 kHz mono
/// 16-bit samples.
pub fn speak(voice: &str, text: &str) -> Vec<i16> {
    let wav = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "--stdout", text])
        .output()
        .unwrap_or_else(|e| panic!("espeak-ng is needed for this test ({e}); install it"));
    assert!(wav.status.success(), "espeak-ng failed: {wav:?}");
    let mut sox = Command::new("sox")
        .args([
            "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", "-t", "raw", "-e",
        ])
        .args(["signed-integer", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("sox is needed for this test ({e}); install it"));
    let mut stdin = sox.stdin.take().expect("sox stdin");
    let input = wav.stdout;
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = sox.wait_with_output().expect("sox runs");
    feeder.join().expect("feeder").expect("sox reads the wav");
    assert!(out.status.success(), "sox failed");
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `ms` of silence at 16 kHz.
pub fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 16]
}

/// 16 kHz mono 16-bit samples as a WAV file.
pub fn wav(samples: &[i16]) -> Vec<u8> {
    crate::audio::wav_claiming(16_000, samples, (samples.len() * 2) as u32)
}
