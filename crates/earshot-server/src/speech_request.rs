//! The speech options a request may set (language, translation, prompt, temperature),
//! checked once here for the upload routes and the live stream, so both answer the same
//! request the same way: an unknown language or a malformed value is a 400, a language
//! the loaded model cannot speak is a 422, never English text in its place.

use axum::http::StatusCode;
use earshot_asr::engine::AUTO_LANGUAGE;

use crate::error::{ApiError, ApiResult};

/// The language a request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    /// What the engine is told: a whisper code, [`AUTO_LANGUAGE`], or `None` for the
    /// engine's own (an English-only model).
    pub engine: Option<String>,
    /// What the session records until (and unless) detection replaces it: the tag as the
    /// client gave it, or [`AUTO_LANGUAGE`] while it is to be detected.
    pub session: String,
}

impl Language {
    /// True when the language is to be detected from the first speech.
    pub fn detects(&self) -> bool {
        self.engine.as_deref() == Some(AUTO_LANGUAGE)
    }
}

/// Resolves a requested language (`None`: not given) for a model. Without a language a
/// multilingual model detects it; an English-only model takes `default_tag`. An English-only
/// model asked for another language or for translation answers 422 `unsupported_language`.
pub fn language(
    requested: Option<&str>,
    translate: bool,
    english_only: bool,
    default_tag: &str,
) -> ApiResult<Language> {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    let code = match requested {
        None => None,
        Some(a) if a.eq_ignore_ascii_case(AUTO_LANGUAGE) => None,
        Some(tag) => {
            let tag = crate::validate::language(Some(tag)).map_err(|_| unknown(tag))?;
            Some((
                earshot_asr::language::code(&tag).ok_or_else(|| unknown(&tag))?,
                tag,
            ))
        }
    };
    if english_only {
        if translate {
            return Err(unsupported(
                "translation needs a multilingual model; the loaded model is English-only",
            ));
        }
        return match code {
            Some((c, tag)) if c != "en" => Err(unsupported(&format!(
                "the loaded model is English-only and cannot transcribe {:?}; load a \
                 multilingual model (e.g. ggml-base) or omit `language`",
                crate::error::truncate(&tag, 35)
            ))),
            Some((_, tag)) => Ok(Language {
                engine: None,
                session: tag,
            }),
            None => Ok(Language {
                engine: None,
                session: default_tag.to_owned(),
            }),
        };
    }
    Ok(match code {
        Some((c, tag)) => Language {
            engine: Some(c.to_owned()),
            session: tag,
        },
        None => Language {
            engine: Some(AUTO_LANGUAGE.to_owned()),
            session: AUTO_LANGUAGE.to_owned(),
        },
    })
}

fn unknown(tag: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_language",
        format!(
            "language {:?} is not one whisper knows; use an ISO 639-1 code such as \"en\", \
             \"de\" or \"fr\" (optionally with a region, \"de-AT\"), or omit it to detect it",
            crate::error::truncate(tag, 35)
        ),
    )
}

fn unsupported(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsupported_language",
        message,
    )
}

/// The longest prompt (or vocabulary, joined) a request may send, in characters. Like
/// OpenAI, a prompt longer than the decoder takes is accepted and only its end is used;
/// this bound only keeps a request from holding megabytes of text.
pub const MAX_PROMPT_INPUT_CHARS: usize = 4096;

/// A user prompt: at most [`MAX_PROMPT_INPUT_CHARS`] characters, no control characters but
/// line breaks and tabs, white space folded. Only its last `max_chars` characters (the
/// decoder's prompt cap, from a word boundary) are kept: the decoder, like whisper, would
/// look at no more. Empty means none.
pub fn prompt(raw: &str, max_chars: usize) -> ApiResult<Option<String>> {
    let p = raw.trim();
    let n = p.chars().count();
    if n > MAX_PROMPT_INPUT_CHARS {
        return Err(ApiError::bad_request(
            "prompt_too_long",
            format!(
                "the prompt has {n} characters; this server takes at most \
                 {MAX_PROMPT_INPUT_CHARS} (and uses the last {max_chars})"
            ),
        ));
    }
    if p.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(
            "invalid_prompt",
            "the prompt must not contain control characters",
        ));
    }
    let folded = p.split_whitespace().collect::<Vec<_>>().join(" ");
    let kept = earshot_asr::text::cap_prompt(&folded, max_chars);
    Ok((!kept.is_empty()).then_some(kept))
}

/// A vocabulary (names, jargon) as a prompt: the terms joined by ", ", with the same bound
/// as [`prompt`].
pub fn vocabulary(terms: &[String], max_chars: usize) -> ApiResult<Option<String>> {
    let joined = terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    prompt(&joined, max_chars)
}

/// OpenAI's `temperature`: a number from 0 to 1.
pub fn temperature(raw: &str) -> ApiResult<f32> {
    raw.trim()
        .parse::<f32>()
        .ok()
        .filter(|t| (0.0..=1.0).contains(t))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_temperature",
                format!(
                    "temperature must be a number from 0 to 1, not {:?}",
                    crate::error::truncate(raw, 32)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_for_a_multilingual_model() {
        let l = language(None, false, false, "en").unwrap();
        assert!(l.detects());
        assert_eq!(l.session, "auto");
        let l = language(Some("de-AT"), true, false, "en").unwrap();
        assert_eq!(l.engine.as_deref(), Some("de"));
        assert_eq!(l.session, "de-AT");
        for bad in ["xx", "klingon", "e n", "", "1a"] {
            if bad.is_empty() {
                continue; // empty is "not given"
            }
            let e = language(Some(bad), false, false, "en").unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "invalid_language"),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_english_only_model_refuses_other_languages_and_translation() {
        let l = language(None, false, true, "en-US").unwrap();
        assert_eq!((l.engine, l.session.as_str()), (None, "en-US"));
        assert!(language(Some("en-GB"), false, true, "en").is_ok());
        for (lang, translate) in [(Some("de"), false), (None, true), (Some("en"), true)] {
            let e = language(lang, translate, true, "en").unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (422, "unsupported_language"));
        }
        // Unknown stays a 400 whatever the model.
        assert_eq!(
            language(Some("xx"), false, true, "en").unwrap_err().status,
            400
        );
    }

    #[test]
    fn prompts_are_bounded() {
        assert_eq!(prompt("  ", 10).unwrap(), None);
        assert_eq!(
            prompt(" Ana\nLuz ", 10).unwrap().as_deref(),
            Some("Ana Luz")
        );
        assert_eq!(
            prompt(&"é".repeat(10), 10)
                .unwrap()
                .unwrap()
                .chars()
                .count(),
            10
        );
        // Longer than the decoder takes: accepted, its end kept from a word boundary.
        let long = format!("{}Siobhan Okonkwo", "notes of the call ".repeat(100));
        let kept = prompt(&long, 40).unwrap().unwrap();
        assert!(kept.chars().count() <= 40, "{kept}");
        assert!(kept.ends_with("of the call Siobhan Okonkwo"), "{kept}");
        assert!(
            long.ends_with(&format!(" {kept}")),
            "a whole-word tail: {kept}"
        );
        // Past the documented maximum: refused, not cut.
        let huge = "é".repeat(MAX_PROMPT_INPUT_CHARS + 1);
        assert_eq!(prompt(&huge, 10).unwrap_err().code, "prompt_too_long");
        assert!(prompt(&"é".repeat(MAX_PROMPT_INPUT_CHARS), 10).is_ok());
        assert_eq!(prompt("a\0b", 10).unwrap_err().code, "invalid_prompt");
        assert_eq!(
            vocabulary(&["Kubernetes".into(), " ".into(), "Grafana".into()], 40)
                .unwrap()
                .as_deref(),
            Some("Kubernetes, Grafana")
        );
    }

    #[test]
    fn temperatures() {
        assert_eq!(temperature("0").unwrap(), 0.0);
        assert_eq!(temperature("0.7").unwrap(), 0.7);
        for bad in ["-0.1", "1.5", "NaN", "hot", ""] {
            assert_eq!(temperature(bad).unwrap_err().code, "invalid_temperature");
        }
    }
}
