//! Languages through the real server with the multilingual base model (q5_0): a German
//! upload without `language` is detected as German and written in German, its translation
//! comes out in English, a French stream reports French before its first final and
//! records it on the session, and an English-only model refuses other languages and
//! translation with a 422 instead of writing English. Speech is made at test time with
//! espeak-ng voices.

mod common;

use std::sync::{Arc, OnceLock};

use common::speech_client::{app_on, load, open, play, Step};
use common::{expect_error, TestApp, ACME};
use earshot_asr::Engine;
use earshot_testsupport::speech::{model_path, multilingual_model_path, normalize};
use earshot_testsupport::tts::{silence, speak, wav};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// Chosen by measurement (espeak-ng `de`, base q5_0): detected as German with p = 0.99,
/// written back almost word for word, translated as "I would like to add a piece of
/// coconut and a cup of coffee".
const GERMAN: &str = "Ich möchte gerne ein Stück Kuchen und eine Tasse Kaffee bestellen, bitte.";
/// Detected as French with p = 0.57 (espeak-ng's French voice is the hardest of the
/// three for base q5_0; see the README's detection figures).
const FRENCH: &str = "Bonjour, je m'appelle Marie et j'habite à Paris depuis dix ans.";

fn multilingual() -> Option<Arc<Engine>> {
    static ENGINE: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| multilingual_model_path().map(|p| load(&p)))
        .clone()
}

fn english_only() -> Option<Arc<Engine>> {
    static ENGINE: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| model_path().map(|p| load(&p)))
        .clone()
}

async fn upload(
    app: &TestApp,
    route: &str,
    audio: Vec<u8>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = Form::new().part(
        "file",
        Part::bytes(audio)
            .file_name("speech.wav")
            .mime_str("audio/wav")
            .unwrap(),
    );
    form = form.text("model", "whisper-1");
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    app.post(ACME, route).multipart(form).send().await.unwrap()
}

/// How many of `expected` appear among the words of `text`.
fn found(text: &str, expected: &[&str]) -> usize {
    let words = normalize(text);
    expected
        .iter()
        .filter(|e| words.iter().any(|w| w == *e))
        .count()
}

#[tokio::test]
async fn a_german_upload_is_detected_written_in_german_and_recorded() {
    let Some(engine) = multilingual() else { return };
    let app = app_on(engine, "ggml-base-q5_0.bin").await;
    let audio = wav(&speak("de", GERMAN));
    let resp = upload(
        &app,
        "/v1/audio/transcriptions",
        audio,
        &[("response_format", "verbose_json")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let session = resp.headers()["x-earshot-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["language"], "german", "{v}");
    assert_eq!(v["task"], "transcribe");
    let text = v["text"].as_str().unwrap();
    let german = [
        "ich",
        "möchte",
        "gerne",
        "stück",
        "kuchen",
        "tasse",
        "kaffee",
        "bestellen",
    ];
    assert!(found(text, &german) >= 6, "not German enough: {text:?}");
    // The session records the detected code.
    let s: Value = app
        .get(ACME, &format!("/v1/sessions/{session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["language"], "de", "{s}");
}

#[tokio::test]
async fn a_translation_of_german_speech_is_english() {
    let Some(engine) = multilingual() else { return };
    let app = app_on(engine, "ggml-base-q5_0.bin").await;
    let audio = wav(&speak("de", GERMAN));
    let resp = upload(
        &app,
        "/v1/audio/translations",
        audio,
        &[("response_format", "verbose_json")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["task"], "translate");
    assert_eq!(v["language"], "english");
    let text = v["text"].as_str().unwrap();
    let english = ["i", "would", "like", "piece", "cup", "of", "coffee", "cake"];
    assert!(found(text, &english) >= 5, "not English: {text:?}");
    let german = [
        "ich",
        "möchte",
        "gerne",
        "stück",
        "tasse",
        "kaffee",
        "bestellen",
    ];
    assert_eq!(found(text, &german), 0, "still German: {text:?}");
}

#[tokio::test]
async fn a_french_stream_reports_french_before_its_first_final() {
    let Some(engine) = multilingual() else { return };
    let app = app_on(engine, "ggml-base-q5_0.bin").await;
    let ws = open(&app, "/v1/sessions/fr-live/stream?sample_rate=16000", ACME)
        .await
        .expect("stream opens");
    let mut audio = silence(300);
    audio.extend(speak("fr", FRENCH));
    audio.extend(silence(1_500));
    let seen = play(ws, vec![Step::Audio(audio), Step::Finals(1)]).await;
    let detected = seen.of_type("language_detected");
    assert_eq!(detected.len(), 1, "{:?}", seen.frames);
    assert_eq!(detected[0]["language"], "fr");
    let first_detection = seen
        .frames
        .iter()
        .position(|f| f["type"] == "language_detected")
        .unwrap();
    let first_final = seen.frames.iter().position(|f| f["type"] == "final");
    assert!(
        first_final.is_some_and(|f| f > first_detection),
        "{:?}",
        seen.frames
    );
    let text = seen.finals().join(" ");
    // base q5_0 writes this espeak voice as "Boussou, je m'appelle Marie-Héchamite à Paris
    // de pli d'immors.": French, with the robotic voice's hard words garbled.
    let french = [
        "bonjour",
        "je",
        "m'appelle",
        "marie",
        "paris",
        "depuis",
        "dix",
        "ans",
    ];
    assert!(found(&text, &french) >= 4, "not French: {text:?}");
    let s: Value = app
        .get(ACME, "/v1/sessions/fr-live")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["language"], "fr", "{s}");
}

#[tokio::test]
async fn an_english_only_model_refuses_other_languages_and_translation() {
    let Some(engine) = english_only() else { return };
    let app = app_on(engine, "ggml-tiny.en.bin").await;
    let audio = || wav(&speak("de", "Guten Morgen."));
    let r = upload(
        &app,
        "/v1/audio/transcriptions",
        audio(),
        &[("language", "de")],
    )
    .await;
    assert_eq!(expect_error(r, 422).await, "unsupported_language");
    let r = upload(&app, "/v1/audio/translations", audio(), &[]).await;
    assert_eq!(expect_error(r, 422).await, "unsupported_language");
    // A language whisper does not know is a bad request, whatever the model.
    let r = upload(
        &app,
        "/v1/audio/transcriptions",
        audio(),
        &[("language", "xx")],
    )
    .await;
    assert_eq!(expect_error(r, 400).await, "invalid_language");
    // English is fine.
    let r = upload(
        &app,
        "/v1/audio/transcriptions",
        audio(),
        &[("language", "en")],
    )
    .await;
    assert_eq!(r.status(), 200);
    // Streams are refused before the upgrade.
    for (q, status, code) in [
        ("language=de", 422, "unsupported_language"),
        ("translate=true", 422, "unsupported_language"),
        ("language=xx", 400, "invalid_language"),
    ] {
        let path = format!("/v1/sessions/refused/stream?{q}");
        match open(&app, &path, ACME).await {
            Err((s, c)) => assert_eq!((s, c.as_str()), (status, code), "{q}"),
            Ok(_) => panic!("{q} was accepted"),
        }
    }
}
