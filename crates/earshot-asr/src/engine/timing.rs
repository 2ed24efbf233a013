//! Word times from whisper's token times and the audio itself.
//!
//! whisper.cpp gives each token two kinds of time: `t0`/`t1` from the probabilities of
//! timestamp tokens (a heuristic that, measured on synthesized speech with known word
//! positions, is often hundreds of ms off and puts a lone short word at the end of the
//! window), and `t_dtw`, from the DTW alignment over the alignment heads' attention
//! (when the model has a head preset, see [`super::alignment`]). The decoder's attention
//! while it emits a token looks at the audio of the *next* token, so a token's `t_dtw` is
//! where the next token's audio begins, i.e. where this token ends, pauses included. A
//! word therefore spans from the previous token's `t_dtw` to its own last spoken token's;
//! within that interval it is trimmed to the audio that actually sounds, so a word next to
//! a pause starts and ends where the voice does rather than somewhere in the pause.

use crate::audio::TARGET_RATE;
use crate::Word;

/// Energy frames of 10 ms: whisper's own time resolution.
const FRAME_MS: i64 = 10;
const FRAME: usize = TARGET_RATE as usize / 100;
/// Shortest word reported (ms): a zero-length word is a timing error, never speech.
pub const MIN_WORD_MS: i64 = 20;
/// How far before its DTW start a word may be extended through sounding audio.
const MAX_BACK_MS: i64 = 200;
/// Silences shorter than this inside a word's interval are part of the word (the closure
/// of a stop consonant lasts up to ~100 ms); longer ones separate it from its neighbours.
const WORD_GAP_MS: i64 = 120;

/// One token's contribution to a word.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    pub bytes: Vec<u8>,
    /// whisper's timestamp-token estimates (ms, on the decode's clock).
    pub t0: i64,
    pub t1: i64,
    /// The DTW time (ms), when DTW ran.
    pub dtw: Option<i64>,
    pub p: f32,
}

/// Where the audio of a decode sounds: 10 ms frames above a level set between the quiet
/// and loud parts of this very audio (so it works on a quiet line as on a loud one), or
/// `None` when the audio has no such contrast (noise throughout): then nothing is trimmed.
pub(crate) struct Sounding {
    voiced: Vec<bool>,
}

impl Sounding {
    pub fn of(samples: &[f32]) -> Option<Self> {
        let db: Vec<f32> = samples
            .chunks(FRAME)
            .map(|f| {
                let e = f.iter().map(|v| v * v).sum::<f32>() / f.len().max(1) as f32;
                10.0 * e.max(1e-10).log10()
            })
            .collect();
        if db.len() < 10 {
            return None;
        }
        let mut sorted = db.clone();
        sorted.sort_by(f32::total_cmp);
        let pct = |p: f32| sorted[((sorted.len() - 1) as f32 * p) as usize];
        let (floor, loud) = (pct(0.1), pct(0.95));
        if loud - floor < 15.0 {
            return None;
        }
        let threshold = (floor + 0.3 * (loud - floor)).max(loud - 45.0);
        Some(Sounding {
            voiced: db.iter().map(|d| *d > threshold).collect(),
        })
    }

    fn at(&self, ms: i64) -> bool {
        usize::try_from(ms / FRAME_MS)
            .ok()
            .and_then(|i| self.voiced.get(i))
            .copied()
            .unwrap_or(false)
    }

    /// Where the word whose interval is `[a, b)` sounds: the runs of sounding frames in
    /// it, joined across gaps shorter than [`WORD_GAP_MS`] into groups, and of those the
    /// group with the most sound (the interval may also hold the tail of the previous word
    /// or the onset of the next). Its start may move back through sounding audio by up to
    /// [`MAX_BACK_MS`], not before `floor`: DTW reaches a word a little late at times.
    /// `None` when nothing in the interval sounds.
    fn word_in(&self, a: i64, b: i64, floor: i64) -> Option<(i64, i64)> {
        let (fa, fb) = (
            a.div_euclid(FRAME_MS),
            (b + FRAME_MS - 1).div_euclid(FRAME_MS),
        );
        // (first frame, last frame, sounding frames) of each group.
        let mut groups: Vec<(i64, i64, i64)> = Vec::new();
        for f in fa..fb {
            if !self.at(f * FRAME_MS) {
                continue;
            }
            match groups.last_mut() {
                Some(g) if (f - g.1 - 1) * FRAME_MS < WORD_GAP_MS => {
                    g.1 = f;
                    g.2 += 1;
                }
                _ => groups.push((f, f, 1)),
            }
        }
        let (first, last, _) = groups.into_iter().max_by_key(|g| g.2)?;
        let mut start = first * FRAME_MS;
        let low = floor.max(start - MAX_BACK_MS);
        while start - FRAME_MS >= low && self.at(start - FRAME_MS) {
            start -= FRAME_MS;
        }
        Some((start, ((last + 1) * FRAME_MS).min(b.max(start))))
    }
}

/// Words of one segment from its tokens (times in ms on the decode's clock, i.e. 0 = the
/// first sample given). `from` is where the segment's first token may start (the end of
/// the previous segment's last token, or 0); `audio_ms` the audio given.
pub(crate) fn words(
    toks: &[Tok],
    from: i64,
    audio_ms: i64,
    sounding: Option<&Sounding>,
) -> Vec<Word> {
    let audio_ms = audio_ms.max(0);
    let dtw = toks.iter().all(|t| t.dtw.is_some());
    // Each token's span: with DTW, from the previous token's end to its own.
    let mut spans: Vec<(i64, i64)> = Vec::with_capacity(toks.len());
    let mut prev = from.clamp(0, audio_ms);
    for t in toks {
        let span = match t.dtw {
            Some(end) if dtw => (prev, end.clamp(prev, audio_ms)),
            _ => (t.t0.clamp(prev, audio_ms), t.t1.clamp(prev, audio_ms)),
        };
        prev = if dtw { span.1 } else { span.0 };
        spans.push(span);
    }
    // Group tokens into words: a token starting with a space starts a word. A word ends
    // with its last token that says something: trailing punctuation has no sound, and its
    // DTW end lies wherever the next word begins.
    let mut groups: Vec<(Vec<u8>, i64, i64, f32, usize)> = Vec::new();
    for (t, (a, b)) in toks.iter().zip(&spans) {
        let starts = t.bytes.first().is_some_and(|c| *c == b' ');
        let spoken = t
            .bytes
            .iter()
            .any(|c| c.is_ascii_alphanumeric() || *c >= 0x80);
        match groups.last_mut() {
            Some(g) if !starts => {
                g.0.extend_from_slice(&t.bytes);
                if spoken {
                    g.2 = g.2.max(*b);
                }
                g.3 += t.p;
                g.4 += 1;
            }
            _ => groups.push((t.bytes.clone(), *a, *b, t.p, 1)),
        }
    }
    groups.retain(|g| !String::from_utf8_lossy(&g.0).trim().is_empty());
    let mut out: Vec<Word> = Vec::with_capacity(groups.len());
    for (bytes, a, b, psum, n) in groups {
        let prev_end = out.last().map_or(0, |w: &Word| w.end_ms);
        let (mut s, mut e) = (a.max(prev_end), b.max(a.max(prev_end)));
        if let Some((a2, b2)) = sounding.and_then(|snd| snd.word_in(s, e, prev_end)) {
            (s, e) = (a2, b2);
        }
        // Never zero length, never past the audio.
        if e - s < MIN_WORD_MS {
            e = (s + MIN_WORD_MS).min(audio_ms);
            s = s.min((e - MIN_WORD_MS).max(prev_end));
        }
        out.push(Word {
            text: String::from_utf8_lossy(&bytes).trim().to_string(),
            start_ms: s,
            end_ms: e.max(s),
            prob: psum / n.max(1) as f32,
        });
    }
    out
}
