//! Word-level text helpers shared by the engine, the streaming policy and batch: joining,
//! normalising for comparisons, capping prompts, and recognising decoder loops.

use crate::{Segment, Word};

/// Join words with single spaces.
pub fn join_words(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        let t = w.text.trim();
        if t.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(t);
    }
    s
}

/// Join segment texts with single spaces.
pub fn join_segments(segs: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segs {
        let t = seg.text.trim();
        if t.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(t);
    }
    s
}

/// Keep at most `max_chars` of the end of `prompt`, starting at a word boundary.
pub fn cap_prompt(prompt: &str, max_chars: usize) -> String {
    let p = prompt.trim();
    let n = p.chars().count();
    if n <= max_chars {
        return p.to_string();
    }
    let tail: String = p.chars().skip(n - max_chars).collect();
    match tail.find(' ') {
        Some(i) if i + 1 < tail.len() => tail[i + 1..].to_string(),
        _ => tail,
    }
}

/// The decoder prompt: the caller's own prompt (a vocabulary, a description of the audio),
/// then as much of the end of `context` (text already transcribed) as still fits in
/// `max_chars`. The caller's prompt goes first and keeps its place in every window, but
/// when there is context it takes at most [`USER_PROMPT_SHARE`] of the cap, so the
/// decoder always sees the last words before the audio too; a longer prompt keeps its end,
/// as whisper itself keeps the last tokens of a prompt. The context's oldest words matter
/// least and go first. NULs (which whisper.cpp cannot take) are dropped.
pub fn compose_prompt(user: Option<&str>, context: Option<&str>, max_chars: usize) -> String {
    let context = context.map(|c| c.replace('\0', "")).unwrap_or_default();
    let context = context.trim();
    let reserve = if context.is_empty() {
        0
    } else {
        (context.chars().count() + 1)
            .min(max_chars - max_chars * USER_PROMPT_SHARE.0 / USER_PROMPT_SHARE.1)
    };
    let user = cap_prompt(&user.unwrap_or("").replace('\0', ""), max_chars - reserve);
    let used = user.chars().count() + usize::from(!user.is_empty());
    let room = max_chars.saturating_sub(used);
    let context = if room > 0 {
        cap_prompt(context, room)
    } else {
        String::new()
    };
    match (user.is_empty(), context.is_empty()) {
        (_, true) => user,
        (true, false) => context,
        (false, false) => format!("{user} {context}"),
    }
}

/// The most of the prompt cap (as a fraction) a caller's prompt takes when there is
/// committed context: the rest (about ten words at the default cap) keeps the decoder's
/// view of what was just said, which joins the windows of a stream.
pub const USER_PROMPT_SHARE: (usize, usize) = (3, 4);

/// Normalise a word for comparisons: lower case, letters/digits/apostrophes only.
pub fn norm_word(w: &str) -> String {
    w.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// Normalised words of a text joined by spaces (for equality tests).
pub fn norm_text(text: &str) -> String {
    text.split_whitespace()
        .map(norm_word)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Remove immediate repeats of phrases of 3 or more words ("seven of clubs seven of clubs"
/// -> "seven of clubs"). Returns true if anything was removed.
pub fn collapse_repeats(words: &mut Vec<Word>) -> bool {
    let mut changed = false;
    let mut n = 6;
    while n >= 3 {
        let mut i = 0;
        while i + 2 * n <= words.len() {
            let same = (0..n).all(|k| {
                let a = norm_word(&words[i + k].text);
                !a.is_empty() && a == norm_word(&words[i + n + k].text)
            });
            if same {
                words.drain(i + n..i + 2 * n);
                changed = true;
            } else {
                i += 1;
            }
        }
        n -= 1;
    }
    changed
}

/// Cut runs of a 1- or 2-word phrase repeated more than `max_repeats` times in a row ("5 5 5
/// 5 5 5", a decoder loop) back to one copy. Shorter runs ("no no no") are speech and stay.
pub fn collapse_short_repeats(words: &mut Vec<Word>, max_repeats: usize) {
    for n in [1usize, 2] {
        let mut i = 0;
        while i + n <= words.len() {
            let unit: Vec<String> = words[i..i + n].iter().map(|w| norm_word(&w.text)).collect();
            let mut reps = 1;
            while i + (reps + 1) * n <= words.len()
                && (0..n).all(|k| norm_word(&words[i + reps * n + k].text) == unit[k])
            {
                reps += 1;
            }
            if reps > max_repeats && unit.iter().all(|u| !u.is_empty()) {
                words.drain(i + n..i + reps * n);
            }
            i += 1;
        }
    }
}

/// True for a decoder loop inside one word: a short piece repeated with hyphens
/// ("s-s-s-s", "k-k-k"): three or more copies of a piece of at most two letters, or four
/// of anything. Words like "so-so" or "bye-bye" stay.
pub fn is_stutter(word: &str) -> bool {
    let parts: Vec<String> = word.split('-').map(norm_word).collect();
    if parts.len() < 3 || parts[0].is_empty() || parts.iter().any(|p| *p != parts[0]) {
        return false;
    }
    parts[0].chars().count() <= 2 || parts.len() >= 4
}

/// Drop hyphen stutters (see [`is_stutter`]); returns true if any was dropped.
pub fn drop_stutters(words: &mut Vec<Word>) -> bool {
    let before = words.len();
    words.retain(|w| !is_stutter(&w.text));
    words.len() != before
}

/// True when some n-gram (n = 1..=4) occurs more than `max_repeats` times in a row, the
/// classic whisper loop ("thank you thank you thank you ..."), or a word is a hyphen
/// stutter.
pub fn is_repetitive(text: &str, max_repeats: usize) -> bool {
    if text.split_whitespace().any(is_stutter) {
        return true;
    }
    let words: Vec<String> = text
        .split_whitespace()
        .map(norm_word)
        .filter(|w| !w.is_empty())
        .collect();
    let max_repeats = max_repeats.max(1);
    for n in 1..=4usize {
        if words.len() < n * (max_repeats + 1) {
            continue;
        }
        for start in 0..words.len().saturating_sub(n * (max_repeats + 1)) + 1 {
            let gram = &words[start..start + n];
            let mut reps = 1;
            let mut pos = start + n;
            while pos + n <= words.len() && &words[pos..pos + n] == gram {
                reps += 1;
                pos += n;
            }
            if reps > max_repeats {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition() {
        assert!(!is_repetitive("five five", 3));
        assert!(!is_repetitive("go forward ten meters", 3));
        assert!(is_repetitive(
            "thank you. thank you. thank you. thank you.",
            3
        ));
        assert!(is_repetitive("a a a a a", 3));
        assert!(!is_repetitive("no no no", 3));
        assert!(is_repetitive("seven of h-h-h-h", 3));
        assert!(is_repetitive("and s-s-s.", 3));
        assert!(!is_repetitive("a so-so bye-bye twenty-one", 3));
    }

    #[test]
    fn stutters_are_dropped() {
        let mut w = words("seven of c-c-c-c hearts");
        assert!(drop_stutters(&mut w));
        assert_eq!(join_words(&w), "seven of hearts");
    }

    fn words(s: &str) -> Vec<Word> {
        s.split_whitespace()
            .map(|t| Word {
                text: t.into(),
                start_ms: 0,
                end_ms: 0,
                prob: 1.0,
            })
            .collect()
    }

    #[test]
    fn short_loops_collapse_and_speech_stays() {
        let mut w = words("seven of clubs 5 5 5 5 5 5");
        collapse_short_repeats(&mut w, 3);
        assert_eq!(join_words(&w), "seven of clubs 5");
        let mut w = words("no no no stop");
        collapse_short_repeats(&mut w, 3);
        assert_eq!(join_words(&w), "no no no stop");
        let mut w = words("go on go on go on go on go on");
        collapse_short_repeats(&mut w, 3);
        assert_eq!(join_words(&w), "go on");
    }

    #[test]
    fn repeats_collapse() {
        let mut w = words("7 of Clubs. 7 of Clubs.");
        assert!(collapse_repeats(&mut w));
        assert_eq!(join_words(&w), "7 of Clubs.");
        let mut w = words("five five go forward");
        assert!(!collapse_repeats(&mut w));
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn prompt_cap() {
        assert_eq!(cap_prompt("hello world", 100), "hello world");
        let c = cap_prompt("alpha beta gamma delta", 12);
        assert_eq!(c, "gamma delta");
    }

    #[test]
    fn user_prompt_wins_over_context() {
        // Room for both: the user's prompt first.
        assert_eq!(
            compose_prompt(Some("Kubernetes"), Some("we deploy"), 100),
            "Kubernetes we deploy"
        );
        // Together too long: the context loses its oldest words, the user's prompt stays.
        assert_eq!(
            compose_prompt(
                Some("Kubernetes, Grafana"),
                Some("alpha beta gamma delta"),
                32
            ),
            "Kubernetes, Grafana gamma delta"
        );
        // A user's prompt that would fill the cap leaves a quarter of it to the context,
        // keeping its own end.
        assert_eq!(
            compose_prompt(Some("one two three four five six"), Some("alpha beta"), 24),
            "four five six alpha beta"
        );
        // Without context it has the whole cap.
        assert_eq!(
            compose_prompt(Some("one two three four five six"), None, 24),
            "two three four five six"
        );
        // However long: at most the cap, its end kept, the newest context after it.
        let long = format!(
            "{} Siobhan Okonkwo",
            "minutes of the weekly call, ".repeat(40)
        );
        let context = "and so we agreed to send the invoice";
        let p = compose_prompt(Some(&long), Some(context), 200);
        assert!(p.chars().count() <= 200, "{p}");
        assert!(
            p.ends_with("Siobhan Okonkwo and so we agreed to send the invoice"),
            "{p}"
        );
        assert_eq!(compose_prompt(None, Some("alpha"), 10), "alpha");
        assert_eq!(compose_prompt(Some("a\0b"), None, 10), "ab");
        assert_eq!(compose_prompt(None, None, 10), "");
    }
}
