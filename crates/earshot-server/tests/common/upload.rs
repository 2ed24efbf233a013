//! The OpenAI-compatible upload as the `openai` Python SDK sends it: the form fields in
//! order (an array as repeated `name[]` fields), the file last, typed by its name.

use reqwest::multipart::{Form, Part};
use reqwest::Response;

use super::{TestApp, ACME};

pub const TRANSCRIPTIONS: &str = "/v1/audio/transcriptions";
pub const TRANSLATIONS: &str = "/v1/audio/translations";

/// `fields` in order, then `file` as `(bytes, file name)` if there is one.
pub fn form(fields: &[(&str, &str)], file: Option<(Vec<u8>, &str)>) -> Form {
    let mut form = Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    match file {
        Some((bytes, name)) => {
            let part = Part::bytes(bytes).file_name(name.to_owned());
            // Python's `mimetypes` types a `.wav` so; other names go untyped.
            let part = if name.ends_with(".wav") {
                part.mime_str("audio/x-wav").unwrap()
            } else {
                part
            };
            form.part("file", part)
        }
        None => form,
    }
}

/// Posts `form` to `route` as the `acme` tenant.
pub async fn send(app: &TestApp, route: &str, form: Form) -> Response {
    app.post(ACME, route).multipart(form).send().await.unwrap()
}

/// Uploads `audio` named `file_name` with `model=whisper-1` and `fields` to `route`.
pub async fn upload(
    app: &TestApp,
    route: &str,
    audio: Vec<u8>,
    file_name: &str,
    fields: &[(&str, &str)],
) -> Response {
    let all: Vec<(&str, &str)> = [("model", "whisper-1")]
        .into_iter()
        .chain(fields.iter().copied())
        .collect();
    send(app, route, form(&all, Some((audio, file_name)))).await
}

/// The session an upload was recorded as (`X-Earshot-Session-Id`).
pub fn session_id(r: &Response) -> String {
    r.headers()["x-earshot-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}
