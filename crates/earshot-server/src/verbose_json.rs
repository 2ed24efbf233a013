//! OpenAI's `verbose_json` transcription shape and its `timestamp_granularities[]`: one
//! source for every OpenAI-compatible route that answers with it. Times are seconds as
//! floats here (OpenAI's shape), where earshot's own API uses integer milliseconds.

use earshot_core::Segment;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

/// The form field the `openai` SDKs send (an array field: repeated, with brackets). The
/// bare name is accepted too, for hand-written clients.
pub const FIELD: &str = "timestamp_granularities[]";

/// Which timestamps a `verbose_json` answer carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Granularities {
    /// The request named any granularity.
    pub given: bool,
    pub word: bool,
    pub segment: bool,
}

impl Granularities {
    /// Whether `name` is a granularities form field.
    pub fn is_field(name: &str) -> bool {
        name == FIELD || name == "timestamp_granularities"
    }

    /// Adds one field value (`word` or `segment`; a comma-separated list is accepted).
    pub fn add(&mut self, value: &str) -> ApiResult<()> {
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            match v {
                "word" => self.word = true,
                "segment" => self.segment = true,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_timestamp_granularities",
                        format!(
                            "timestamp_granularities[] {:?} is not one of word, segment",
                            crate::error::truncate(other, 32)
                        ),
                    ))
                }
            }
            self.given = true;
        }
        Ok(())
    }

    /// OpenAI accepts granularities only with `verbose_json`.
    pub fn check_format(&self, verbose_json: bool) -> ApiResult<()> {
        if self.given && !verbose_json {
            return Err(ApiError::bad_request(
                "invalid_timestamp_granularities",
                "timestamp_granularities[] is only supported with response_format=verbose_json",
            ));
        }
        Ok(())
    }

    /// Segments are listed unless only `word` was asked for (OpenAI's default is
    /// `segment`).
    fn segments(&self) -> bool {
        !self.given || self.segment
    }
}

/// What a `verbose_json` answer is made of.
pub struct Verbose<'a> {
    /// `transcribe` or `translate`.
    pub task: &'a str,
    /// The language's English name, lower case (OpenAI's form).
    pub language: &'a str,
    /// Seconds of audio.
    pub duration: f64,
    /// The decoding temperature asked for (OpenAI reports it per segment).
    pub temperature: f32,
    pub text: &'a str,
    /// The stored segments, with their words.
    pub stored: &'a [Segment],
    /// The recognised segments they were stored from, in the same order (their
    /// confidence figures).
    pub recognised: &'a [&'a earshot_asr::Segment],
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The answer, with `segments` and/or `words` as `granularities` ask.
pub fn verbose_json(v: &Verbose<'_>, granularities: Granularities) -> Value {
    let mut out = json!({
        "task": v.task,
        "language": v.language,
        "duration": v.duration,
        "text": v.text,
    });
    if granularities.segments() {
        let segs: Vec<Value> = v
            .stored
            .iter()
            .zip(v.recognised)
            .map(|(st, s)| {
                json!({
                    "id": st.seq,
                    "seek": 0,
                    "start": secs(st.start_ms.unwrap_or(s.start_ms)),
                    "end": secs(st.end_ms.unwrap_or(s.end_ms)),
                    "text": st.text,
                    "tokens": [],
                    "temperature": v.temperature,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": 1.0,
                    "no_speech_prob": s.no_speech_prob,
                })
            })
            .collect();
        out["segments"] = Value::Array(segs);
    }
    if granularities.word {
        let words: Vec<Value> = v
            .stored
            .iter()
            .flat_map(|s| &s.words)
            .map(|w| {
                json!({
                    "word": w.word,
                    "start": secs(w.start_ms),
                    "end": secs(w.end_ms),
                    "probability": w.probability,
                })
            })
            .collect();
        out["words"] = Value::Array(words);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularities_parse_and_need_verbose_json() {
        let mut g = Granularities::default();
        assert!(g.segments() && !g.word);
        g.add("word").unwrap();
        assert!(g.word && !g.segments(), "only word: no segments");
        g.add("segment").unwrap();
        assert!(g.word && g.segments());
        assert!(g.check_format(true).is_ok());
        assert_eq!(g.check_format(false).unwrap_err().status.as_u16(), 400);
        assert!(Granularities::default().check_format(false).is_ok());
        assert!(Granularities::default().add("char").is_err());
        assert!(Granularities::is_field("timestamp_granularities[]"));
    }
}
