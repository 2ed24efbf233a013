//! Speech whose word times are known: each word is synthesized on its own with `espeak-ng`,
//! resampled to 16 kHz with `sox`, trimmed to where its samples rise above -40 dBFS, and the
//! words are joined with silences of chosen lengths. Each word's true span then follows
//! from the sample counts, which is the reference the word timings are measured against.
//! The clip is made at test time into a temporary directory: no audio is committed.
//! `scripts/bootstrap.sh test` installs both tools.

use std::path::Path;
use std::process::Command;

/// 16 kHz.
pub const RATE: u32 = 16_000;
const SPM: usize = RATE as usize / 1000;

/// A samples' amplitude above which a word is sounding (-40 dBFS).
const SOUNDING: i16 = 328;

/// One word of a clip and where it really is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrueWord {
    /// The word as synthesized (lower case, no punctuation).
    pub text: String,
    /// First sounding sample (ms).
    pub start_ms: i64,
    /// Last sounding sample (ms).
    pub end_ms: i64,
}

/// The test script: (word, silence after it in ms). Phrases of words 120-200 ms apart,
/// pauses of 0.6-1.2 s between them, and single words alone between pauses (the case live
/// streams got wrong).
pub const SCRIPT: &[(&str, usize)] = &[
    ("please", 150),
    ("send", 150),
    ("the", 120),
    ("report", 700),
    ("to", 120),
    ("the", 120),
    ("office", 1000),
    ("yesterday", 900),
    ("seven", 200),
    ("green", 200),
    ("apples", 800),
    ("thank", 150),
    ("you", 1200),
    ("hello", 1000),
    ("the", 120),
    ("river", 150),
    ("flows", 150),
    ("north", 600),
    ("every", 150),
    ("morning", 800),
    ("coffee", 150),
    ("and", 150),
    ("toast", 1000),
    ("tomorrow", 900),
    ("open", 150),
    ("the", 120),
    ("window", 800),
    ("goodbye", 1000),
];

/// A synthesized clip and its reference.
#[derive(Debug, Clone)]
pub struct ForcedClip {
    /// 16 kHz mono.
    pub samples: Vec<i16>,
    /// Every word, in order.
    pub words: Vec<TrueWord>,
}

impl ForcedClip {
    /// Length (ms).
    pub fn duration_ms(&self) -> i64 {
        (self.samples.len() / SPM) as i64
    }

    /// The clip as a 16-bit mono WAV file's bytes.
    pub fn wav(&self) -> Vec<u8> {
        crate::audio::wav_claiming(RATE, &self.samples, (self.samples.len() * 2) as u32)
    }
}

/// Synthesizes `script`: (word, silence after it in ms) pairs, after `lead_ms` of silence,
/// in `voice` (an espeak-ng voice, e.g. `en-us`). Panics with a clear message when
/// espeak-ng or sox is missing: the tests that call it cannot mean anything without them.
pub fn build(voice: &str, lead_ms: usize, script: &[(&str, usize)], dir: &Path) -> ForcedClip {
    let mut samples = vec![0i16; lead_ms * SPM];
    let mut words = Vec::new();
    for (i, (word, gap_ms)) in script.iter().enumerate() {
        let audio = trimmed(&synthesize(voice, word, &dir.join(format!("w{i}.wav"))));
        let start = samples.len();
        samples.extend_from_slice(&audio);
        words.push(TrueWord {
            text: word.to_lowercase(),
            start_ms: (start / SPM) as i64,
            end_ms: (samples.len() / SPM) as i64,
        });
        samples.resize(samples.len() + gap_ms * SPM, 0);
    }
    ForcedClip { samples, words }
}

/// One word as 16 kHz samples.
fn synthesize(voice: &str, word: &str, wav: &Path) -> Vec<i16> {
    let espeak = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "165", "-w"])
        .arg(wav)
        .arg(word)
        .status()
        .unwrap_or_else(|e| {
            panic!("espeak-ng could not run ({e}): install it with scripts/bootstrap.sh test")
        });
    assert!(espeak.success(), "espeak-ng failed on {word:?}");
    let out = Command::new("sox")
        .arg(wav)
        .args([
            "-t",
            "raw",
            "-r",
            "16000",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("sox could not run ({e}): install it with scripts/bootstrap.sh test")
        });
    assert!(out.status.success(), "sox failed on {}", wav.display());
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The samples from the first to the last sounding one.
fn trimmed(samples: &[i16]) -> Vec<i16> {
    let loud = |s: &i16| s.unsigned_abs() > SOUNDING as u16;
    let first = samples.iter().position(loud).unwrap_or(0);
    let last = samples.iter().rposition(loud).map_or(0, |i| i + 1);
    samples[first..last.max(first)].to_vec()
}

/// A recognised word with its times, as any of earshot's outputs carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// How far recognised words are from the truth, over the words matched by text.
#[derive(Debug, Clone, Default)]
pub struct TimingErrors {
    /// |recognised midpoint - true midpoint| (ms) per matched word.
    pub midpoint: Vec<i64>,
    /// |start - true start| (ms).
    pub start: Vec<i64>,
    /// |end - true end| (ms).
    pub end: Vec<i64>,
    /// Reference words no recognised word matched.
    pub unmatched: usize,
    /// (reference index, recognised index) of each matched word, in order.
    pub pairs: Vec<(usize, usize)>,
}

impl TimingErrors {
    /// (median, p95, max) of the midpoint errors.
    pub fn midpoint_stats(&self) -> (i64, i64, i64) {
        stats(&self.midpoint)
    }

    /// One line for a test's output.
    pub fn summary(&self) -> String {
        let (m, p, x) = stats(&self.midpoint);
        let (sm, sp, sx) = stats(&self.start);
        let (em, ep, ex) = stats(&self.end);
        format!(
            "{} words matched, {} unmatched; |error| ms median/p95/max: midpoint {m}/{p}/{x}, \
             start {sm}/{sp}/{sx}, end {em}/{ep}/{ex}",
            self.midpoint.len(),
            self.unmatched
        )
    }
}

/// (median, p95, max) of `v`; zeros when empty.
pub fn stats(v: &[i64]) -> (i64, i64, i64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let pct = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    (pct(0.5), pct(0.95), s[s.len() - 1])
}

/// Matches `hyp` to `truth` by text (an edit-distance alignment over normalized words, so
/// an inserted or misrecognised word does not shift the rest) and measures the matched
/// words' time errors.
pub fn timing_errors(truth: &[TrueWord], hyp: &[TimedWord]) -> TimingErrors {
    let t: Vec<String> = truth.iter().map(|w| norm(&w.text)).collect();
    let h: Vec<String> = hyp.iter().map(|w| norm(&w.text)).collect();
    let (n, m) = (t.len(), h.len());
    // d[i][j]: distance of t[..i] and h[..j].
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[i - 1][j - 1] + usize::from(t[i - 1] != h[j - 1]);
            d[i][j] = sub.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    let mut out = TimingErrors::default();
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let same = t[i - 1] == h[j - 1];
        if d[i][j] == d[i - 1][j - 1] + usize::from(!same) {
            if same {
                let (tw, hw) = (&truth[i - 1], &hyp[j - 1]);
                let mid = |a: i64, b: i64| (a + b) / 2;
                out.midpoint
                    .push((mid(hw.start_ms, hw.end_ms) - mid(tw.start_ms, tw.end_ms)).abs());
                out.start.push((hw.start_ms - tw.start_ms).abs());
                out.end.push((hw.end_ms - tw.end_ms).abs());
                out.pairs.push((i - 1, j - 1));
            } else {
                out.unmatched += 1;
            }
            i -= 1;
            j -= 1;
        } else if d[i][j] == d[i - 1][j] + 1 {
            out.unmatched += 1;
            i -= 1;
        } else {
            j -= 1;
        }
    }
    out.unmatched += i;
    out.midpoint.reverse();
    out.start.reverse();
    out.end.reverse();
    out.pairs.reverse();
    out
}

fn norm(w: &str) -> String {
    w.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tw(text: &str, a: i64, b: i64) -> TrueWord {
        TrueWord {
            text: text.into(),
            start_ms: a,
            end_ms: b,
        }
    }

    fn hw(text: &str, a: i64, b: i64) -> TimedWord {
        TimedWord {
            text: text.into(),
            start_ms: a,
            end_ms: b,
        }
    }

    #[test]
    fn errors_follow_the_alignment() {
        let truth = [
            tw("red", 0, 400),
            tw("green", 1000, 1400),
            tw("blue", 2000, 2400),
        ];
        let hyp = [
            hw("Red,", 100, 500),
            hw("uh", 600, 700),
            hw("Blue.", 1900, 2300),
        ];
        let e = timing_errors(&truth, &hyp);
        assert_eq!(e.midpoint, vec![100, 100]);
        assert_eq!(e.unmatched, 1);
        assert_eq!(e.midpoint_stats(), (100, 100, 100));
    }

    #[test]
    fn trimming_keeps_the_sounding_part() {
        assert_eq!(trimmed(&[0, 5, 1000, -2000, 3, 0]), vec![1000, -2000]);
        assert!(trimmed(&[0, 1, 2]).is_empty());
    }
}
