//! Stops a decoder loop while it happens.
//!
//! tiny.en with a shortened encoder context sometimes falls into a loop ("ten of clubs ten
//! of clubs ten of clubs ..." or "5 5 5 5 ...") and keeps going to the token cap. Each
//! decoder step costs about as much as 20-30 ms of audio in the encoder (the vocabulary
//! projection alone is 20 M multiply-adds), so a loop of 100 tokens made a stream's decode
//! several times dearer, and the engine then threw the result away anyway (the repetition
//! guard drops it). whisper.cpp calls a logits filter before each token is picked; ours
//! forces end-of-text as soon as the generated text tokens end in a repeated n-gram, so a
//! loop costs a dozen tokens instead of a hundred. The repetition guard still drops the
//! looped segment afterwards, and batch decodes still retry it.

use std::os::raw::{c_int, c_void};

use whisper_rs::whisper_rs_sys;

/// Longest loop unit looked for, in tokens.
const MAX_UNIT: usize = 12;
/// A unit of two or more tokens repeated this many times in a row is a loop. Said text
/// repeats a phrase three times at most ("no, no, no"); the engine's word-level repetition
/// guard uses the same bound.
const MIN_REPEATS: usize = 4;
/// A single token repeated this many times in a row is a loop ("5 5 5 5 5 5").
const MIN_REPEATS_SINGLE: usize = 6;

/// True if `ids` (text tokens, oldest first) ends in a unit repeated back to back often
/// enough to be a decoder loop.
pub fn is_looping(ids: &[i32]) -> bool {
    for unit in 1..=MAX_UNIT {
        let repeats = if unit == 1 {
            MIN_REPEATS_SINGLE
        } else {
            MIN_REPEATS
        };
        let need = unit * repeats;
        if ids.len() < need {
            break;
        }
        let tail = &ids[ids.len() - need..];
        let first = &tail[..unit];
        if tail.chunks(unit).all(|c| c == first) {
            return true;
        }
    }
    false
}

/// The whisper.cpp logits filter: when the text tokens generated so far loop, only
/// end-of-text stays possible.
///
/// # Safety
/// Called by whisper.cpp with its own context, `n_tokens` token records at `tokens` and the
/// `n_vocab` logits of the next token at `logits`.
pub unsafe extern "C" fn cut_loops(
    ctx: *mut whisper_rs_sys::whisper_context,
    _state: *mut whisper_rs_sys::whisper_state,
    tokens: *const whisper_rs_sys::whisper_token_data,
    n_tokens: c_int,
    logits: *mut f32,
    _user_data: *mut c_void,
) {
    if ctx.is_null() || tokens.is_null() || logits.is_null() || n_tokens < 6 {
        return;
    }
    // SAFETY: whisper.cpp passes its live context and arrays of the stated sizes.
    unsafe {
        let eot = whisper_rs_sys::whisper_token_eot(ctx);
        let toks = std::slice::from_raw_parts(tokens, n_tokens as usize);
        // Timestamps and other special tokens are numbered from end-of-text up.
        let ids: Vec<i32> = toks.iter().map(|t| t.id).filter(|id| *id < eot).collect();
        if !is_looping(&ids) {
            return;
        }
        let n_vocab = whisper_rs_sys::whisper_n_vocab(ctx).max(0) as usize;
        let logits = std::slice::from_raw_parts_mut(logits, n_vocab);
        for (i, l) in logits.iter_mut().enumerate() {
            if i as i32 != eot {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_looping;

    #[test]
    fn loops_are_seen_and_speech_is_not() {
        // "ten of clubs" x4
        assert!(is_looping(&[9, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]));
        // x3 is something people say
        assert!(!is_looping(&[9, 1, 2, 3, 1, 2, 3, 1, 2, 3]));
        // "5" x6 but not x5
        assert!(is_looping(&[7, 5, 5, 5, 5, 5, 5]));
        assert!(!is_looping(&[7, 5, 5, 5, 5, 5]));
        // the loop must be at the end
        assert!(!is_looping(&[1, 2, 1, 2, 1, 2, 1, 2, 9]));
        assert!(!is_looping(&[]));
        // a 12-token unit
        let unit: Vec<i32> = (100..112).collect();
        let looped: Vec<i32> = unit.iter().cycle().take(48).copied().collect();
        assert!(is_looping(&looped));
    }
}
