//! The normaliser for read-aloud text: digit groups become the words a reader says
//! ("692" → six ninety two, "1998" → nineteen ninety eight, "3,000" → three thousand), and
//! "4pm" splits into "four pm". The live benchmark scores synthetic speech against its
//! script with it; [`crate::speech::normalize`] is the plainer one the WER bounds of the
//! tests were set on.

use crate::speech::{ONES, TENS};

/// Lower case words, punctuation dropped (apostrophes vanish, other marks split words),
/// digit groups spelled out the way they are read ("33" → thirty three, "692" → six
/// ninety two, "1998" → nineteen ninety eight).
pub fn normalize_spoken(text: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_read_as_spoken() {
        assert_eq!(
            normalize_spoken("33, 4, 692").join(" "),
            "thirty three four six ninety two"
        );
        assert_eq!(
            normalize_spoken("In 1998, at 7:15 it's 4pm.").join(" "),
            "in nineteen ninety eight at seven fifteen its four pm"
        );
        assert_eq!(number_words("200"), "two hundred");
        assert_eq!(number_words("2005"), "two thousand five");
    }
}
