//! The stream route's query string, checked before the upgrade so a bad request gets a plain
//! HTTP error instead of a WebSocket that closes at once.

use earshot_asr::AudioEncoding;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::speech_request::{self, Language};
use crate::ws_protocol::ENDPOINTING_RANGE;

/// Query of the stream route.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub sample_rate: Option<String>,
    pub encoding: Option<String>,
    pub resume_after_seq: Option<String>,
    pub language: Option<String>,
    pub endpointing_ms: Option<String>,
    /// A loaded model's name; absent: the default. Checked against the loaded models by the
    /// route (which knows them).
    pub model: Option<String>,
    /// Free text that biases every decode (names, jargon, style).
    pub prompt: Option<String>,
    /// Terms separated by commas, a prompt made of a vocabulary.
    pub vocabulary: Option<String>,
    /// `true`: the text in English whatever the spoken language.
    pub translate: Option<String>,
    // `api_key` is read by the `Tenant` extractor only: keeping it out of this `Debug`
    // struct keeps it out of any log line that prints the query.
}

/// Validated stream parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    pub sample_rate: u32,
    pub encoding: AudioEncoding,
    pub resume_after_seq: Option<u64>,
    pub endpointing_ms: Option<u32>,
    pub model: Option<String>,
}

/// The stream's speech options, checked against the loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpeech {
    pub language: Language,
    pub prompt: Option<String>,
    pub translate: bool,
}

impl StreamQuery {
    /// Checks every parameter before the upgrade, so bad requests get a plain HTTP error.
    pub fn validate(&self) -> ApiResult<StreamParams> {
        let sample_rate = match self.sample_rate.as_deref() {
            None => 16_000,
            Some(r) => r.parse::<u32>().map_err(|_| {
                ApiError::invalid("sample_rate must be an integer number of Hz (8000-48000)")
            })?,
        };
        if !(8_000..=48_000).contains(&sample_rate) {
            return Err(ApiError::invalid(format!(
                "sample_rate {sample_rate} is outside 8000-48000 Hz"
            )));
        }
        let encoding = match self.encoding.as_deref().unwrap_or("pcm_s16le") {
            "pcm_s16le" => AudioEncoding::PcmS16le,
            "pcm_f32le" => AudioEncoding::PcmF32le,
            "pcm_mulaw" => AudioEncoding::PcmMulaw,
            other => {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    format!(
                        "encoding {:?} is not supported; use pcm_s16le, pcm_f32le or pcm_mulaw",
                        crate::error::truncate(other, 32)
                    ),
                ))
            }
        };
        let resume_after_seq = self
            .resume_after_seq
            .as_deref()
            .map(|s| {
                s.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        "resume_after_seq must be a non-negative integer",
                    )
                })
            })
            .transpose()?;
        let endpointing_ms = self
            .endpointing_ms
            .as_deref()
            .map(|s| {
                let (min, max) = ENDPOINTING_RANGE;
                s.parse::<u32>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| ApiError::invalid(format!("endpointing_ms must be {min}-{max}")))
            })
            .transpose()?;
        Ok(StreamParams {
            sample_rate,
            encoding,
            resume_after_seq,
            endpointing_ms,
            model: self.model.clone(),
        })
    }

    /// The speech options for a model (`english_only`, its prompt cap `max_prompt_chars`):
    /// 400 for an unknown language, a malformed flag or a prompt past the cap, 422 for a
    /// language or translation the model cannot do.
    pub fn speech(&self, english_only: bool, max_prompt_chars: usize) -> ApiResult<StreamSpeech> {
        let translate = match self.translate.as_deref() {
            None => false,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "translate must be true or false",
                ))
            }
        };
        let prompt = match (self.prompt.as_deref(), self.vocabulary.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "send either prompt or vocabulary, not both",
                ))
            }
            (Some(p), None) => speech_request::prompt(p, max_prompt_chars)?,
            (None, Some(v)) => {
                let terms: Vec<String> = v.split(',').map(str::to_owned).collect();
                speech_request::vocabulary(&terms, max_prompt_chars)?
            }
            (None, None) => None,
        };
        Ok(StreamSpeech {
            language: speech_request::language(
                self.language.as_deref(),
                translate,
                english_only,
                "en-US",
            )?,
            prompt,
            translate,
        })
    }
}
