//! Figures computed from what a client saw: latencies, word error rate, ordering.

use crate::client::{Outcome, StreamRun};
use crate::material::Script;
use earshot_testsupport::speech::edit_distance;
use earshot_testsupport::spoken::normalize_spoken;

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
        s.wer = Some(wer(&script.reference, &normalize_spoken(&s.transcript)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_edits() {
        let r = normalize_spoken("go forward ten meters");
        assert_eq!(wer(&r, &normalize_spoken("Go forward, 10 meters.")), 0.0);
        assert_eq!(wer(&r, &normalize_spoken("go ten meters now")), 50.0);
    }
}
