//! Transcript renderings shared by the API (`?format=`) and `earshot transcribe`:
//! plain text, SubRip (SRT) and WebVTT. Segments without times are laid end to end.
//! A segment longer than a subtitle should be ([`MAX_CUE_MS`], [`MAX_CUE_CHARS`]) is split
//! into several cues at word boundaries when it carries word times, each cue timed by its
//! words: a 20 s segment as one cue would stay on screen long after its first words were
//! said.

use crate::session::{Segment, Word};

/// Longest cue (ms) before a timed segment is split: about what a reader needs for two
/// full subtitle lines.
pub const MAX_CUE_MS: i64 = 7_000;
/// Longest cue text (characters) before a timed segment is split: two lines of 42, the
/// common subtitle guideline.
pub const MAX_CUE_CHARS: usize = 84;

/// Output formats of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    Json,
    Txt,
    Srt,
    Vtt,
}

impl std::str::FromStr for TranscriptFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "txt" | "text" => Ok(Self::Txt),
            "srt" => Ok(Self::Srt),
            "vtt" => Ok(Self::Vtt),
            other => Err(format!(
                "unknown format {:?}: expected json, txt, srt or vtt",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

fn clock(ms: i64, sep: char) -> String {
    let ms = ms.max(0);
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// Start and end of each segment; missing times continue from the previous end and
/// last 2 s, so cues are always ordered and non-empty. Saturating: stored times are not
/// trusted to be small.
fn cue_times(segments: &[Segment]) -> Vec<(i64, i64)> {
    let mut prev_end = 0i64;
    segments
        .iter()
        .map(|s| {
            let start = s.start_ms.unwrap_or(prev_end).max(0);
            let end = s
                .end_ms
                .filter(|e| *e > start)
                .unwrap_or(start.saturating_add(2000));
            prev_end = end;
            (start, end)
        })
        .collect()
}

/// One subtitle cue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: i64,
    pub end_ms: i64,
    pub text: String,
}

/// The cues of a transcript: one per segment, except that a segment too long for one cue
/// and carrying words is split at word boundaries (see the module docs). Cues are ordered
/// and never empty.
pub fn cues(segments: &[Segment]) -> Vec<Cue> {
    let mut out = Vec::new();
    for (s, (a, b)) in segments.iter().zip(cue_times(segments)) {
        let text = s.text.trim();
        let long = b.saturating_sub(a) > MAX_CUE_MS || text.chars().count() > MAX_CUE_CHARS;
        if long && s.words.len() > 1 {
            split_cue(&s.words, a, b, &mut out);
        } else {
            out.push(Cue {
                start_ms: a,
                end_ms: b,
                text: text.to_owned(),
            });
        }
    }
    out
}

/// Cues of `words` inside the segment's `[a, b]`: each takes words while it stays within
/// both limits. The first cue starts at `a`, the last ends at `b`; the ones between run
/// from their first word's start to their last word's end.
fn split_cue(words: &[Word], a: i64, b: i64, out: &mut Vec<Cue>) {
    let mut groups: Vec<&[Word]> = Vec::new();
    let mut from = 0;
    let mut chars = 0;
    for (i, w) in words.iter().enumerate() {
        let len = w.word.chars().count();
        let would_be = if i == from { len } else { chars + 1 + len };
        let too_long = w.end_ms.saturating_sub(words[from].start_ms) > MAX_CUE_MS;
        if i > from && (would_be > MAX_CUE_CHARS || too_long) {
            groups.push(&words[from..i]);
            from = i;
            chars = len;
        } else {
            chars = would_be;
        }
    }
    groups.push(&words[from..]);
    let n = groups.len();
    let mut prev_end = a;
    for (k, g) in groups.into_iter().enumerate() {
        let start = if k == 0 {
            a
        } else {
            g[0].start_ms.clamp(prev_end, b)
        };
        let end = if k + 1 == n {
            b
        } else {
            g[g.len() - 1].end_ms.clamp(start, b)
        };
        // Word times are trusted no further than to keep the cues ordered and non-empty.
        let end = end.max(start.saturating_add(1));
        let text: Vec<&str> = g.iter().map(|w| w.word.trim()).collect();
        out.push(Cue {
            start_ms: start,
            end_ms: end,
            text: text.join(" "),
        });
        prev_end = end;
    }
}

/// SubRip: numbered cues with `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
pub fn to_srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, c) in cues(segments).iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(c.start_ms, ','),
            clock(c.end_ms, ','),
            c.text
        ));
    }
    out
}

/// WebVTT: `WEBVTT` header and `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues.
pub fn to_vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues(segments) {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            clock(c.start_ms, '.'),
            clock(c.end_ms, '.'),
            c.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u64, text: &str, a: Option<i64>, b: Option<i64>) -> Segment {
        Segment {
            seq,
            text: text.into(),
            start_ms: a,
            end_ms: b,
            words: Vec::new(),
        }
    }

    fn word(w: &str, a: i64, b: i64) -> Word {
        Word {
            word: w.into(),
            start_ms: a,
            end_ms: b,
            probability: 0.9,
        }
    }

    #[test]
    fn long_timed_segments_split_at_word_boundaries() {
        // 12 words over 15 s: two cues of at most 7 s each would not hold it, three do.
        let words: Vec<Word> = (0..12)
            .map(|i| word(&format!("w{i}"), 1000 + i * 1250, 1000 + i * 1250 + 900))
            .collect();
        let text = words
            .iter()
            .map(|w| w.word.clone())
            .collect::<Vec<_>>()
            .join(" ");
        let mut s = seg(0, &text, Some(1000), Some(16_000));
        s.words = words;
        let c = cues(&[s]);
        assert!(c.len() >= 3, "{c:?}");
        assert_eq!(c[0].start_ms, 1000);
        assert_eq!(c.last().unwrap().end_ms, 16_000);
        let joined = c
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(joined, text, "no word lost or repeated");
        for pair in c.windows(2) {
            assert!(pair[0].end_ms <= pair[1].start_ms, "{c:?}");
        }
        for cue in &c {
            assert!(cue.end_ms > cue.start_ms);
            assert!(cue.end_ms - cue.start_ms <= MAX_CUE_MS, "{cue:?}");
        }
        // The second cue starts where its first word starts.
        let second_first = c[1].text.split(' ').next().unwrap();
        let i: i64 = second_first[1..].parse().unwrap();
        assert_eq!(c[1].start_ms, 1000 + i * 1250);
        assert!(to_srt(&[seg(0, "x", Some(0), Some(1))]).starts_with("1\n"));
    }

    #[test]
    fn long_text_splits_by_characters_and_untimed_segments_stay_whole() {
        let words: Vec<Word> = (0..30)
            .map(|i| word("abcdefgh", i * 100, i * 100 + 90))
            .collect();
        let text = vec!["abcdefgh"; 30].join(" ");
        let mut s = seg(0, &text, Some(0), Some(3000));
        s.words = words;
        let c = cues(&[s]);
        assert!(
            c.len() >= 3 && c.iter().all(|c| c.text.len() <= MAX_CUE_CHARS),
            "{c:?}"
        );
        // Without words there is nothing to split at.
        let c = cues(&[seg(0, &text, Some(0), Some(30_000))]);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn srt_and_vtt_cues() {
        let segs = [
            seg(0, "hello", Some(0), Some(1500)),
            seg(1, "world", Some(3_723_004), Some(3_724_000)),
        ];
        assert_eq!(
            to_srt(&segs),
            "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n01:02:03,004 --> 01:02:04,000\nworld\n\n"
        );
        assert!(to_vtt(&segs).starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\n"));
    }

    #[test]
    fn untimed_segments_follow_each_other() {
        let segs = [seg(0, "a", None, None), seg(1, "b", None, None)];
        assert_eq!(cue_times(&segs), vec![(0, 2000), (2000, 4000)]);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let segs = [
            seg(0, "a", Some(i64::MAX), None),
            seg(1, "b", None, None),
            seg(2, "c", Some(i64::MIN), Some(i64::MIN)),
        ];
        let cues = cue_times(&segs);
        assert_eq!(cues[0], (i64::MAX, i64::MAX));
        assert_eq!(cues[1], (i64::MAX, i64::MAX));
        assert_eq!(cues[2], (0, 2000));
        assert!(to_srt(&segs).contains("2562047788015:12:55,807"));
        assert!(to_vtt(&segs).contains("00:00:00.000 --> 00:00:02.000"));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("vtt".parse::<TranscriptFormat>(), Ok(TranscriptFormat::Vtt));
        assert!("pdf".parse::<TranscriptFormat>().is_err());
    }
}
