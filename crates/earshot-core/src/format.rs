//! Transcript renderings shared by the API (`?format=`) and `earshot transcribe`:
//! plain text, SubRip (SRT) and WebVTT. Segments without times are laid end to end.

use crate::session::Segment;

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

/// SubRip: numbered cues with `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
pub fn to_srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, (s, (a, b))) in segments.iter().zip(cue_times(segments)).enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(a, ','),
            clock(b, ','),
            s.text.trim()
        ));
    }
    out
}

/// WebVTT: `WEBVTT` header and `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues.
pub fn to_vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (s, (a, b)) in segments.iter().zip(cue_times(segments)) {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            clock(a, '.'),
            clock(b, '.'),
            s.text.trim()
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
        }
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
