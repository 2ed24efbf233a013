//! `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`: OpenAI-compatible
//! file transcription and translation into English, so the `openai` SDKs work by changing
//! the base URL. The result is also recorded as a completed session (its segments and
//! events flow like any other session's); the session id is returned in the
//! `X-Earshot-Session-Id` header.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use earshot_asr::batch::BatchOptions;
use earshot_core::format::{to_srt, to_vtt};
use serde_json::json;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::service::segment_from_asr;
use crate::state::AppState;
use crate::verbose_json::{verbose_json, Granularities, Verbose};

/// `response_format` values OpenAI defines for Whisper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    /// Parses OpenAI's names.
    pub fn parse(s: &str) -> ApiResult<Self> {
        Ok(match s {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => {
                return Err(ApiError::bad_request(
                    "invalid_response_format",
                    format!(
                        "response_format {:?} is not one of json, text, srt, vtt, verbose_json",
                        crate::error::truncate(other, 32)
                    ),
                ))
            }
        })
    }
}

/// What the upload asks for: the words as spoken, or their English translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Transcribe,
    Translate,
}

/// The multipart form, read field by field.
struct Upload {
    file: bytes::Bytes,
    filename: Option<String>,
    model: Option<String>,
    language: Option<String>,
    format: ResponseFormat,
    /// Raw `prompt`, checked against the model's prompt cap once the model is known.
    prompt: Option<String>,
    temperature: Option<f32>,
    granularities: Granularities,
}

async fn read_form(mut form: Multipart) -> ApiResult<Upload> {
    let mut upload = Upload {
        file: bytes::Bytes::new(),
        filename: None,
        model: None,
        language: None,
        format: ResponseFormat::Json,
        prompt: None,
        temperature: None,
        granularities: Granularities::default(),
    };
    let mut has_file = false;
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the upload is larger than this server accepts",
            )
        } else {
            ApiError::bad_request(
                "invalid_multipart",
                format!("the multipart body could not be read: {e}"),
            )
        }
    };
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                upload.filename = field.file_name().map(|f| crate::error::truncate(f, 200));
                upload.file = field.bytes().await.map_err(bad)?;
                has_file = true;
            }
            "model" | "language" | "response_format" | "prompt" | "temperature" => {
                let value = field.text().await.map_err(bad)?.trim().to_owned();
                match name.as_str() {
                    "model" => upload.model = Some(value),
                    "language" => upload.language = (!value.is_empty()).then_some(value),
                    "prompt" => upload.prompt = Some(value),
                    "temperature" => {
                        upload.temperature = Some(crate::speech_request::temperature(&value)?)
                    }
                    _ => upload.format = ResponseFormat::parse(&value)?,
                }
            }
            n if Granularities::is_field(n) => {
                let value = field.text().await.map_err(bad)?;
                upload.granularities.add(&value)?;
            }
            _ => {
                let _ = field.bytes().await.map_err(bad)?;
            }
        }
    }
    if !has_file {
        return Err(ApiError::bad_request(
            "missing_file",
            "the form has no `file` field",
        ));
    }
    upload
        .granularities
        .check_format(upload.format == ResponseFormat::VerboseJson)?;
    Ok(upload)
}

/// `POST /v1/audio/transcriptions`.
pub async fn transcriptions(
    state: State<AppState>,
    tenant: Tenant,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    handle(state, tenant, form, Task::Transcribe).await
}

/// `POST /v1/audio/translations`: the same upload, the text in English.
pub async fn translations(
    state: State<AppState>,
    tenant: Tenant,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    handle(state, tenant, form, Task::Translate).await
}

async fn handle(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    task: Task,
) -> ApiResult<Response> {
    // 503 before reading the body when no model is loaded at all.
    state.speech.ready()?;
    let form = form.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "multipart_required",
            format!(
                "send the audio as multipart/form-data with a `file` field ({})",
                e.body_text()
            ),
        )
    })?;
    let upload = read_form(form).await?;
    let speech = state.speech.model(upload.model.as_deref())?;
    let engine = speech.scheduler.engine();
    let translate = task == Task::Translate;
    let lang = crate::speech_request::language(
        upload.language.as_deref(),
        translate,
        engine.is_english_only(),
        "en",
    )?;
    let prompt = match upload.prompt.as_deref() {
        Some(p) => crate::speech_request::prompt(p, engine.config().max_prompt_chars)?,
        None => None,
    };
    // OpenAI's temperature 0 lets the decoder raise it on low-confidence output; a
    // temperature above 0 is used as given.
    let temperature = upload.temperature.unwrap_or(0.0);
    let batch = BatchOptions {
        temperature,
        temperature_fallback: temperature == 0.0,
        prompt,
        language: lang.engine.clone(),
        translate,
        ..BatchOptions::default()
    };
    let ext = upload
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()));
    // Taken once the body is in (a slow sender must not hold a place), held until the
    // response: decoding the file and its windows count against it.
    let _admitted = speech
        .scheduler
        .try_admit_upload()
        .ok_or_else(ApiError::uploads_busy)?;
    let bytes = upload.file;
    let max_seconds = state.config.max_upload_seconds;
    let audio = tokio::task::spawn_blocking(move || {
        earshot_asr::audio::decode_bytes_limited(&bytes, ext.as_deref(), max_seconds)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "audio decoding failed",
        )
    })?
    .map_err(|e| {
        let mut err = ApiError::from(e);
        if err.code == "audio_too_long" {
            err.message = format!(
                "the audio is longer than the {max_seconds} s this server accepts per upload \
                 (EARSHOT_MAX_UPLOAD_SECONDS); split it or stream it over the WebSocket"
            );
        }
        err
    })?;
    let duration = audio.duration_secs();
    let result = speech
        .scheduler
        .transcribe_detailed(Arc::new(audio.samples), batch)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "transcription failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "asr_failed",
                "speech recognition failed on the server",
            )
        })?;
    let segments = result.segments;
    // A detected language replaces "auto"; audio without speech leaves it undetermined.
    let language = match (&result.detected_language, lang.detects()) {
        (Some(d), _) => d.code.clone(),
        (None, true) => "und".to_owned(),
        (None, false) => lang.session.clone(),
    };

    let recorded = state
        .sessions
        .record_upload(
            &tenant,
            &language,
            upload_metadata(&upload.filename, &speech.model_name, task),
            &segments,
        )
        .await?;
    let text = recorded.text();
    let stored = &recorded.segments;
    let mut resp = match upload.format {
        ResponseFormat::Json => Json(json!({"text": text})).into_response(),
        ResponseFormat::Text => plain("text/plain; charset=utf-8", text),
        ResponseFormat::Srt => plain("application/x-subrip; charset=utf-8", to_srt(stored)),
        ResponseFormat::Vtt => plain("text/vtt; charset=utf-8", to_vtt(stored)),
        ResponseFormat::VerboseJson => {
            // The recognised segments that were stored, in order, beside their stored form.
            let kept: Vec<&earshot_asr::Segment> = segments
                .iter()
                .filter(|s| segment_from_asr(&s.text, s.start_ms, s.end_ms, &[]).is_some())
                .collect();
            // OpenAI names the language of the text: the spoken one, English for a
            // translation.
            let (task_name, text_language) = match task {
                Task::Transcribe => ("transcribe", language_name(&language)),
                Task::Translate => ("translate", "english"),
            };
            let verbose = Verbose {
                task: task_name,
                language: text_language,
                duration,
                temperature,
                text: &text,
                stored,
                recognised: &kept,
            };
            Json(verbose_json(&verbose, upload.granularities)).into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(recorded.session_id.as_str()) {
        resp.headers_mut().insert("x-earshot-session-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&speech.model_name) {
        resp.headers_mut().insert("x-earshot-model", v);
    }
    Ok(resp)
}

fn plain(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// OpenAI reports the language by whisper's English name in verbose_json ("german").
fn language_name(tag: &str) -> &'static str {
    earshot_asr::language::code(tag)
        .and_then(earshot_asr::language::name)
        .unwrap_or("unknown")
}

/// What an upload's session records about where it came from and which model heard it.
fn upload_metadata(filename: &Option<String>, model: &str, task: Task) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::from([
        ("source".to_owned(), "upload".to_owned()),
        ("model".to_owned(), model.to_owned()),
    ]);
    if task == Task::Translate {
        metadata.insert("task".to_owned(), "translate".to_owned());
    }
    if let Some(f) = filename {
        metadata.insert("filename".to_owned(), f.clone());
    }
    metadata
}
