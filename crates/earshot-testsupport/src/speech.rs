//! Speech-test helpers shared by every crate's tests: where the model and the clips are,
//! and word error rate with the normalisation the references need (case, punctuation,
//! digits written as numbers vs words).

use std::path::PathBuf;

/// `shared/` next to the workspace root (`/work/shared` here).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The test model: `EARSHOT_MODEL`, else `shared/models/ggml-tiny.en.bin`. `None` (with a
/// printed notice) when absent, unless `EARSHOT_REQUIRE_MODEL=1`, which makes it a failure.
pub fn model_path() -> Option<PathBuf> {
    let p = match std::env::var("EARSHOT_MODEL") {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p),
        _ => shared_dir().join("models/ggml-tiny.en.bin"),
    };
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("EARSHOT_REQUIRE_MODEL").as_deref() == Ok("1") {
        panic!("EARSHOT_REQUIRE_MODEL=1 but no model at {}", p.display());
    }
    eprintln!(
        "NOTICE: skipping: no whisper model at {} (set EARSHOT_MODEL or EARSHOT_REQUIRE_MODEL=1)",
        p.display()
    );
    None
}

/// A model file of `shared/models` by name (`ggml-base-q5_0.bin`), with the same rule as
/// [`model_path`]: `None` (with a notice) when absent, a failure under
/// `EARSHOT_REQUIRE_MODEL=1`.
pub fn shared_model(file: &str) -> Option<PathBuf> {
    found_or_notice(shared_dir().join("models").join(file))
}

/// The multilingual test model: `EARSHOT_MULTILINGUAL_MODEL`, else
/// `shared/models/ggml-base-q5_0.bin`, by the rule of [`shared_model`].
pub fn multilingual_model_path() -> Option<PathBuf> {
    match std::env::var("EARSHOT_MULTILINGUAL_MODEL") {
        Ok(p) if !p.trim().is_empty() => found_or_notice(PathBuf::from(p)),
        _ => shared_model("ggml-base-q5_0.bin"),
    }
}

fn found_or_notice(p: PathBuf) -> Option<PathBuf> {
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("EARSHOT_REQUIRE_MODEL").as_deref() == Ok("1") {
        panic!("EARSHOT_REQUIRE_MODEL=1 but no model at {}", p.display());
    }
    eprintln!("NOTICE: skipping: no model at {}", p.display());
    None
}

/// Audio clip directory.
pub fn audio_dir() -> PathBuf {
    shared_dir().join("audio")
}

/// `(file, reference)` pairs from `references.tsv`; empty (with a notice) when absent.
pub fn references() -> Vec<(String, String)> {
    let p = audio_dir().join("references.tsv");
    let Ok(s) = std::fs::read_to_string(&p) else {
        eprintln!("NOTICE: no {}", p.display());
        return Vec::new();
    };
    s.lines()
        .filter_map(|l| {
            let (f, r) = l.split_once('\t')?;
            Some((f.trim().to_string(), r.trim().to_string()))
        })
        .collect()
}

pub(crate) const ONES: [&str; 20] = [
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
pub(crate) const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn number_words(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    if n >= 1_000_000 {
        return n
            .to_string()
            .chars()
            .map(|c| ONES[c.to_digit(10).unwrap() as usize].to_string())
            .collect();
    }
    let mut n = n;
    if n >= 1000 {
        out.extend(number_words(n / 1000));
        out.push("thousand".into());
        n %= 1000;
        if n == 0 {
            return out;
        }
    }
    if n >= 100 {
        out.push(ONES[(n / 100) as usize].into());
        out.push("hundred".into());
        n %= 100;
        if n == 0 {
            return out;
        }
    }
    if n < 20 {
        out.push(ONES[n as usize].into());
    } else {
        out.push(TENS[(n / 10) as usize].into());
        if !n.is_multiple_of(10) {
            out.push(ONES[(n % 10) as usize].into());
        }
    }
    out
}

/// Lower case, punctuation removed (hyphens split words), numbers spelled out.
pub fn normalize(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let mut out = Vec::new();
    for w in cleaned.split_whitespace() {
        let w = w.trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        if w.chars().all(|c| c.is_ascii_digit()) {
            match w.parse::<u64>() {
                Ok(n) => out.extend(number_words(n)),
                Err(_) => out.push(w.to_string()),
            }
        } else {
            out.push(w.to_string());
        }
    }
    out
}

/// Word edit distance.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn word_digit(w: &str) -> Option<&'static str> {
    Some(match w {
        "zero" | "oh" => "0",
        "one" => "1",
        "two" | "to" | "too" => "2",
        "three" => "3",
        "four" | "for" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        _ => return None,
    })
}

/// Digits of a text, spoken numbers included ("thirty three" -> "33", "33 for 692" -> "334692").
pub fn digits_of(text: &str) -> String {
    let mut out = String::new();
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(w);
        } else if let Some(t) = TENS.iter().position(|t| !t.is_empty() && *t == w) {
            let unit = words.get(i + 1).and_then(|n| word_digit(n));
            match unit {
                Some(u) if u != "0" => {
                    out.push_str(&format!("{t}{u}"));
                    i += 1;
                }
                _ => out.push_str(&format!("{t}0")),
            }
        } else if let Some(d) = word_digit(w) {
            out.push_str(d);
        } else if let Some(n) = ONES.iter().position(|o| *o == w) {
            out.push_str(&n.to_string());
        }
        i += 1;
    }
    out
}

/// (errors, reference words) for a clip: word edit distance after [`normalize`], except
/// numbers.wav whose digits are compared leniently (its README).
pub fn clip_errors(file: &str, reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize(reference);
    if file.starts_with("numbers") {
        let rd: Vec<char> = digits_of(reference).chars().collect();
        let hd: Vec<char> = digits_of(hypothesis).chars().collect();
        let e = edit_distance(&rd, &hd).min(r.len());
        return (e, r.len());
    }
    let h = normalize(hypothesis);
    (edit_distance(&r, &h), r.len())
}

/// WER of a whole text against a reference (plain normalisation).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    edit_distance(&r, &h) as f64 / r.len().max(1) as f64
}
