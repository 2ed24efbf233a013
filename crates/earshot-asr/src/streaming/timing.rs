//! A guard on the word times of one decode before a stream decides anything from them.
//!
//! A stream cuts its window after the words it commits, and which words it commits depends
//! on where whisper says they end. Now and then (a window that starts mid-sentence, a slow
//! speaker) whisper's token timestamps collapse: a whole sentence of words is stamped within
//! a few hundred milliseconds at the end of the window. Taken at face value, no word looks
//! old enough to commit, the window is cut anyway (it is at its cap), and the words whose
//! audio was cut never come back. Speech is never faster than about six words a second, so
//! such times are known to be wrong, and spreading the words over the audio they came from,
//! in proportion to their length, is a far better estimate.

use crate::Word;

/// Faster than anyone speaks, in words per second.
const MAX_WORDS_PER_SEC: f64 = 8.0;
/// Fewer words than this are too few to judge a rate from.
const MIN_WORDS: usize = 4;

/// Whether `words` are stamped faster than speech goes.
pub fn collapsed(words: &[Word]) -> bool {
    let (Some(first), Some(last)) = (words.first(), words.last()) else {
        return false;
    };
    let span_s = (last.end_ms - first.start_ms).max(1) as f64 / 1000.0;
    words.len() >= MIN_WORDS && words.len() as f64 / span_s > MAX_WORDS_PER_SEC
}

/// If the times of `words` (one decode of audio `from_ms..to_ms`) collapsed, spreads the
/// words over that audio in proportion to their length; returns whether it did. Often only
/// the last words collapse: the longest collapsed run at the end is spread over the audio
/// between the word before it and `to_ms`.
pub fn respread_if_collapsed(words: &mut [Word], from_ms: i64, to_ms: i64) -> bool {
    let Some(k) = (0..words.len()).find(|&k| collapsed(&words[k..])) else {
        return false;
    };
    let from = if k == 0 {
        from_ms
    } else {
        words[k - 1].end_ms.max(from_ms)
    };
    spread(&mut words[k..], from, to_ms)
}

fn spread(words: &mut [Word], from_ms: i64, to_ms: i64) -> bool {
    if to_ms <= from_ms {
        return false;
    }
    let weight = |w: &Word| w.text.chars().count().max(1) as i64 + 1;
    let total: i64 = words.iter().map(weight).sum();
    let span = to_ms - from_ms;
    let mut acc = 0;
    for w in words.iter_mut() {
        let start = from_ms + span * acc / total;
        acc += weight(w);
        let end = from_ms + span * acc / total;
        w.start_ms = start;
        w.end_ms = end.max(start + 1);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_ms: i64, end_ms: i64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            prob: 0.9,
        }
    }

    #[test]
    fn collapsed_times_are_spread_over_the_audio() {
        // Eight words stamped within 200 ms at the end of an 8 s window.
        let mut w: Vec<Word> = [
            "that",
            "some",
            "birds",
            "can",
            "remember",
            "thousands",
            "of",
            "hiding",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| word(t, 7_800 + i as i64 * 25, 7_825 + i as i64 * 25))
        .collect();
        assert!(respread_if_collapsed(&mut w, 0, 8_000));
        assert_eq!(w[0].start_ms, 0);
        assert_eq!(w.last().unwrap().end_ms, 8_000);
        for pair in w.windows(2) {
            assert!(pair[0].end_ms <= pair[1].start_ms && pair[0].start_ms < pair[0].end_ms);
        }
        assert!(
            w[5].end_ms - w[5].start_ms > w[6].end_ms - w[6].start_ms,
            "longer words get more time"
        );
    }

    #[test]
    fn a_collapsed_run_at_the_end_is_spread_after_the_last_good_word() {
        let mut w = vec![
            word("the", 1_000, 1_200),
            word("wind", 1_200, 1_600),
            word("turned", 1_600, 2_000),
        ];
        w.extend((0..5).map(|i| word("again", 7_950 + i * 5, 7_955 + i * 5)));
        assert!(respread_if_collapsed(&mut w, 0, 8_000));
        assert_eq!(w[2].end_ms, 2_000, "good times are kept");
        assert_eq!(w[3].start_ms, 2_000);
        assert_eq!(w.last().unwrap().end_ms, 8_000);
    }

    #[test]
    fn plausible_times_are_kept() {
        let mut w: Vec<Word> = (0..6)
            .map(|i| word("word", 1_000 + i * 400, 1_350 + i * 400))
            .collect();
        let before = w.clone();
        assert!(!respread_if_collapsed(&mut w, 0, 8_000));
        assert_eq!(w, before);
        let mut few = vec![word("a", 7_990, 7_995), word("b", 7_995, 8_000)];
        assert!(
            !respread_if_collapsed(&mut few, 0, 8_000),
            "too few to judge"
        );
    }
}
