//! Figures computed from what a client saw: latencies, word error rate, ordering.

use crate::client::{Outcome, StreamRun};
use crate::material::Script;

/// Lower case words, punctuation dropped (apostrophes vanish, other marks split words),
/// digit groups spelled out the way they are read ("33" → thirty three, "692" → six
/// ninety two, "1998" → nineteen ninety eight).
pub fn normalize_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['\'', '’'], "");
    // "3,000" is one number, not "3" and "000".
    let chars: Vec<char> = lower.chars().collect();
    let lower: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            !(c == ','
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        })
        .map(|(_, &c)| c)
        .collect();
    let mut out = Vec::new();
    for token in lower.split(|c: char| !c.is_alphanumeric()) {
        if token.is_empty() {
            continue;
        }
        // Split "4pm" / "7am" style tokens into digit and letter runs.
        let mut run = String::new();
        let mut digits = false;
        for c in token.chars() {
            if !run.is_empty() && c.is_ascii_digit() != digits {
                push_run(&run, digits, &mut out);
                run.clear();
            }
            digits = c.is_ascii_digit();
            run.push(c);
        }
        push_run(&run, digits, &mut out);
    }
    out
}

fn push_run(run: &str, digits: bool, out: &mut Vec<String>) {
    if digits {
        out.extend(number_words(run).split(' ').map(str::to_owned));
    } else {
        out.push(run.to_owned());
    }
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn two(n: usize) -> String {
    match n {
        0..=19 => ONES[n].to_owned(),
        _ if n.is_multiple_of(10) => TENS[n / 10].to_owned(),
        _ => format!("{} {}", TENS[n / 10], ONES[n % 10]),
    }
}

/// Spoken form of a digit string: 0–99 as words, 100–999 as "six ninety two" (or "two
/// hundred"), four digits as two pairs ("nineteen ninety eight", "two thousand five"),
/// anything longer digit by digit.
pub fn number_words(digits: &str) -> String {
    let Ok(n) = digits.parse::<usize>() else {
        return digits.to_owned();
    };
    if digits.len() > 1 && digits.starts_with('0') || digits.len() > 4 {
        return digits
            .chars()
            .map(|c| ONES[c.to_digit(10).unwrap_or(0) as usize])
            .collect::<Vec<_>>()
            .join(" ");
    }
    match n {
        0..=99 => two(n),
        100..=999 if n.is_multiple_of(100) => format!("{} hundred", ONES[n / 100]),
        100..=999 => format!("{} {}", ONES[n / 100], two(n % 100)),
        _ if n.is_multiple_of(1000) => format!("{} thousand", two(n / 1000)),
        2000..=2009 => format!("two thousand {}", ONES[n % 1000]),
        _ if n.is_multiple_of(100) => format!("{} hundred", two(n / 100)),
        _ if n % 100 < 10 => format!("{} oh {}", two(n / 100), ONES[n % 100]),
        _ => format!("{} {}", two(n / 100), two(n % 100)),
    }
}

/// Word edit distance (substitutions + deletions + insertions).
pub fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Word error rate in percent.
pub fn wer(reference: &[String], hypothesis: &[String]) -> f64 {
    100.0 * edit_distance(reference, hypothesis) as f64 / reference.len().max(1) as f64
}

/// Nearest-rank percentile of unsorted values (`None` when empty).
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// What one stream's run amounts to.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub script: usize,
    pub refused: bool,
    pub failure: Option<String>,
    pub audio_secs: f64,
    /// Seconds from sending the frame holding a final's `end_ms` to the final's arrival.
    pub final_latencies: Vec<f64>,
    /// Seconds from sending a scripted utterance's end to the first final reaching it.
    pub utterance_latencies: Vec<f64>,
    /// Scripted utterances no final ever reached.
    pub utterances_missed: usize,
    pub finalize_to_completed: Option<f64>,
    pub kept_up: bool,
    pub wer: Option<f64>,
    pub non_monotonic: usize,
    pub finals: usize,
    pub partials: usize,
    pub partial_gaps: Vec<f64>,
    pub transcript: String,
}

/// Allowed lag between the last audio and the last final for a stream that kept up.
const KEPT_UP_LAST_FINAL_SECS: f64 = 5.0;
/// Allowed finalize → completed time for a stream that kept up.
const KEPT_UP_COMPLETE_SECS: f64 = 2.0;
/// A final "reaches" a scripted utterance when its end is at most this much before it.
const UTTERANCE_SLACK_MS: i64 = 400;

pub fn stream_stats(run: &StreamRun, script: &Script) -> StreamStats {
    let mut s = StreamStats {
        script: script.index,
        refused: matches!(run.outcome, Outcome::Refused(_)),
        failure: match &run.outcome {
            Outcome::Completed => None,
            Outcome::Refused(why) | Outcome::Failed(why) => Some(why.clone()),
        },
        audio_secs: run.frames_sent.len() as f64 * 0.1,
        ..StreamStats::default()
    };
    if s.refused {
        // The few frames sent before the refusal arrived were not transcribed.
        s.audio_secs = 0.0;
        return s;
    }
    // Time the frame holding audio position `ms` was sent (the last sent frame if beyond).
    let sent_at = |ms: i64| -> Option<f64> {
        let last = run.frames_sent.len().checked_sub(1)?;
        let i = ((ms.max(1) + 99) / 100 - 1).clamp(0, last as i64) as usize;
        Some(run.frames_sent[i])
    };
    let mut prev_start = None;
    for f in &run.finals {
        if let Some(t) = sent_at(f.end_ms) {
            s.final_latencies.push(f.at - t);
        }
        if prev_start.is_some_and(|p| f.start_ms < p) {
            s.non_monotonic += 1;
        }
        prev_start = Some(f.start_ms);
    }
    s.finals = run.finals.len();
    for u in &script.utterances {
        let end = u.end_ms as i64;
        let hit = run
            .finals
            .iter()
            .find(|f| f.end_ms >= end - UTTERANCE_SLACK_MS);
        match (hit, sent_at(end)) {
            (Some(f), Some(t)) if (end as usize) <= run.frames_sent.len() * 100 => {
                s.utterance_latencies.push(f.at - t)
            }
            (None, _) if (end as usize) <= run.frames_sent.len() * 100 => s.utterances_missed += 1,
            _ => {}
        }
    }
    s.partials = run.partials.len();
    s.partial_gaps = run.partials.windows(2).map(|w| w[1].0 - w[0].0).collect();
    s.finalize_to_completed = match (run.finalize_sent, run.completed_at) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let last_audio = run.frames_sent.last().copied();
    let last_final = run.finals.last().map(|f| f.at);
    s.kept_up = s.failure.is_none()
        && matches!((last_final, last_audio), (Some(f), Some(a)) if f - a <= KEPT_UP_LAST_FINAL_SECS)
        && s.finalize_to_completed
            .is_some_and(|d| d <= KEPT_UP_COMPLETE_SECS);
    let mut finals = run.finals.clone();
    finals.sort_by_key(|f| f.seq);
    s.transcript = finals
        .iter()
        .map(|f| f.text.trim())
        .collect::<Vec<_>>()
        .join(" ");
    if s.failure.is_none() {
        s.wer = Some(wer(&script.reference, &normalize_words(&s.transcript)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_read_as_spoken() {
        assert_eq!(
            normalize_words("33, 4, 692").join(" "),
            "thirty three four six ninety two"
        );
        assert_eq!(
            normalize_words("In 1998, at 7:15 it's 4pm.").join(" "),
            "in nineteen ninety eight at seven fifteen its four pm"
        );
        assert_eq!(number_words("200"), "two hundred");
        assert_eq!(number_words("2005"), "two thousand five");
    }

    #[test]
    fn wer_counts_edits() {
        let r = normalize_words("go forward ten meters");
        assert_eq!(wer(&r, &normalize_words("Go forward, 10 meters.")), 0.0);
        assert_eq!(wer(&r, &normalize_words("go ten meters now")), 50.0);
    }
}
