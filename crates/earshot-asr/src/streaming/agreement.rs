//! Where a new decode of the window starts to say something new: the window still holds the
//! audio of committed words (as context for whisper), so each decode repeats them, possibly
//! revised ("close" -> "clubs") or with a word more or less.

use crate::text::norm_word;
use crate::Word;

/// The words of `new` (a decode of the whole window) after the ones already committed from
/// this window. `last_committed_end_ms` is the end of the last committed word.
pub fn strip_committed(
    committed: &[Word],
    last_committed_end_ms: i64,
    mut new: Vec<Word>,
) -> Vec<Word> {
    if committed.is_empty() {
        return new;
    }
    // Align the committed words to a prefix of the new decode by edit distance.
    let cw: Vec<String> = committed.iter().map(|w| norm_word(&w.text)).collect();
    let nw: Vec<String> = new.iter().map(|w| norm_word(&w.text)).collect();
    let distances = prefix_distances(&cw, &nw);
    let dist = distances.iter().copied().min().unwrap_or(usize::MAX);
    // Among equally good prefixes, the one that ends where the committed words ended. With
    // few committed words the edit distance alone is ambiguous: "x" against "a b" is one
    // edit whether "a" is a revision of "x" or a new word, and taking the wrong one would
    // drop a new word.
    let boundary = |k: usize| match k {
        0 => new.first().map(|w| w.start_ms),
        _ => Some(new[k - 1].end_ms),
    };
    let k = (0..distances.len())
        .filter(|&k| distances[k] == dist)
        .min_by_key(|&k| {
            let off = boundary(k).map_or(i64::MAX, |b| (b - last_committed_end_ms).abs());
            (off, k.abs_diff(cw.len()))
        })
        .unwrap_or(0);
    if dist <= (cw.len() / 2).max(1) {
        new.drain(..k);
        return new;
    }
    // Otherwise by time, then by n-gram overlap with the committed tail (whisper_streaming).
    new.retain(|w| w.start_ms > last_committed_end_ms - 100);
    if let Some(first) = new.first() {
        if (first.start_ms - last_committed_end_ms).abs() < 1000 {
            let max_n = committed.len().min(new.len()).min(5);
            for i in (1..=max_n).rev() {
                let tail = &cw[cw.len() - i..];
                let head: Vec<String> = new[..i].iter().map(|w| norm_word(&w.text)).collect();
                if tail == head.as_slice() {
                    new.drain(..i);
                    break;
                }
            }
        }
    }
    new
}

/// Word edit distance between `committed` and each prefix `new[..k]`, indexed by `k`.
fn prefix_distances(committed: &[String], new: &[String]) -> Vec<usize> {
    let m = committed.len();
    // prev[j] = distance(committed[..i], new[..j])
    let mut prev: Vec<usize> = (0..=new.len()).collect();
    for i in 1..=m {
        let mut cur = vec![i; new.len() + 1];
        for j in 1..=new.len() {
            let sub = prev[j - 1] + usize::from(committed[i - 1] != new[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev
}

#[cfg(test)]
mod tests {
    use super::strip_committed;
    use crate::Word;

    fn words(spec: &[(&str, i64, i64)]) -> Vec<Word> {
        spec.iter()
            .map(|&(text, start_ms, end_ms)| Word {
                text: text.into(),
                start_ms,
                end_ms,
                prob: 1.0,
            })
            .collect()
    }

    fn texts(w: &[Word]) -> Vec<&str> {
        w.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn one_committed_word_misheard_again_is_told_from_a_new_word_by_time() {
        let committed = words(&[("harbour", 1000, 1500)]);
        // The next decode no longer hears "harbour" (its audio starts the window) and goes
        // straight on with the new words: none of them may be taken for the committed one.
        let new = words(&[("tonight", 1600, 2000), ("we", 2050, 2200)]);
        assert_eq!(
            texts(&strip_committed(&committed, 1500, new)),
            ["tonight", "we"]
        );
        // It hears it, revised: that revision is the committed word, not a new one.
        let new = words(&[("harbor", 1000, 1480), ("tonight", 1600, 2000)]);
        assert_eq!(texts(&strip_committed(&committed, 1500, new)), ["tonight"]);
    }

    /// Words `spec` spoken one after another, 300 ms each, from `from_ms`.
    fn spoken(spec: &str, from_ms: i64) -> Vec<Word> {
        let w: Vec<(&str, i64, i64)> = spec
            .split_whitespace()
            .enumerate()
            .map(|(i, t)| (t, from_ms + 300 * i as i64, from_ms + 300 * (i as i64 + 1)))
            .collect();
        words(&w)
    }

    fn stripped(committed: &str, new: &str) -> Vec<String> {
        let committed = spoken(committed, 0);
        let end = committed.last().map_or(-1, |w| w.end_ms);
        let new = spoken(new, 0);
        texts(&strip_committed(&committed, end, new))
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn committed_words_are_found_again_revised_or_with_a_word_more() {
        // Revised ("close" -> "clubs"): the first three words are the committed ones.
        assert_eq!(
            stripped("ten of close", "ten of clubs seven of clubs"),
            ["seven", "of", "clubs"]
        );
        assert_eq!(stripped("a b c", "a b c d"), ["d"]);
        // A word more among the committed ones is theirs, not new.
        let committed = spoken("a b c", 0);
        let new = words(&[
            ("a", 0, 300),
            ("x", 300, 450),
            ("b", 450, 600),
            ("c", 600, 900),
            ("d", 900, 1200),
        ]);
        assert_eq!(texts(&strip_committed(&committed, 900, new)), ["d"]);
        // Too far from the committed words to be them: only what starts after them is new.
        let new = spoken("c d e", 600);
        assert_eq!(texts(&strip_committed(&committed, 900, new)), ["d", "e"]);
        assert!(stripped("a b", "").is_empty());
    }
}
