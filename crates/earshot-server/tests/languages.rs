//! Languages through the real server with the multilingual base model (q5_0): a German
//! upload without `language` is detected as German and written in German, its translation
//! comes out in English, a French stream reports French before its first final and
//! records it on the session and in a `language_detected` event, and an English-only model refuses other languages and
//! translation with a 422 instead of writing English. Speech is made at test time with
//! espeak-ng voices.

mod common;

use std::sync::{Arc, OnceLock};

use common::live::{open, play, Step};
use common::speech::{app_on, engine, load, TINY};
use common::upload::{TRANSCRIPTIONS, TRANSLATIONS};
use common::{expect_error, TestApp, ACME};
use earshot_asr::Engine;
use earshot_testsupport::speech::{multilingual_model_path, normalize};
use earshot_testsupport::tts::{silence, speak, wav};
use serde_json::Value;

/// Chosen by measurement (espeak-ng `de`, base q5_0): detected as German with p = 0.99,
/// written back almost word for word, translated as "I would like to add a piece of
/// coconut and a cup of coffee".
const GERMAN: &str = "Ich möchte gerne ein Stück Kuchen und eine Tasse Kaffee bestellen, bitte.";
/// The words of [`GERMAN`] that say it is German (not names or numbers).
const GERMAN_WORDS: &[&str] = &[
    "ich",
    "möchte",
    "gerne",
    "stück",
    "kuchen",
    "tasse",
    "kaffee",
    "bestellen",
];
/// Detected as French with p = 0.57 (espeak-ng's French voice is the hardest of the
/// three for base q5_0; see the README's detection figures).
const FRENCH: &str = "Bonjour, je m'appelle Marie et j'habite à Paris depuis dix ans.";

fn multilingual() -> Option<Arc<Engine>> {
    static ENGINE: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| multilingual_model_path().map(|p| load(&p)))
        .clone()
}

/// The multilingual model's app, or `None` (the test returns) without that model.
async fn multilingual_app() -> Option<TestApp> {
    Some(app_on(multilingual()?, "ggml-base-q5_0.bin").await)
}

/// Uploads `audio` to `route` with the given fields.
async fn upload(
    app: &TestApp,
    route: &str,
    audio: Vec<u8>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    common::upload::upload(app, route, audio, "speech.wav", fields).await
}

/// The German sentence spoken and uploaded to `route` as `verbose_json`: the answer and
/// the session it was recorded as.
async fn german_verbose(app: &TestApp, route: &str) -> (Value, String) {
    let audio = wav(&speak("de", GERMAN));
    let resp = upload(app, route, audio, &[("response_format", "verbose_json")]).await;
    assert_eq!(resp.status(), 200);
    let session = common::upload::session_id(&resp);
    (resp.json().await.unwrap(), session)
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
    let Some(app) = multilingual_app().await else {
        return;
    };
    let (v, session) = german_verbose(&app, TRANSCRIPTIONS).await;
    assert_eq!(v["language"], "german", "{v}");
    assert_eq!(v["task"], "transcribe");
    let text = v["text"].as_str().unwrap();
    assert!(
        found(text, GERMAN_WORDS) >= 6,
        "not German enough: {text:?}"
    );
    // The session records the detected code.
    let s: Value = app.get_json(ACME, &format!("/v1/sessions/{session}")).await;
    assert_eq!(s["language"], "de", "{s}");
}

#[tokio::test]
async fn a_translation_of_german_speech_is_english() {
    let Some(app) = multilingual_app().await else {
        return;
    };
    let (v, _) = german_verbose(&app, TRANSLATIONS).await;
    assert_eq!(v["task"], "translate");
    assert_eq!(v["language"], "english");
    let text = v["text"].as_str().unwrap();
    let english = ["i", "would", "like", "piece", "cup", "of", "coffee", "cake"];
    assert!(found(text, &english) >= 5, "not English: {text:?}");
    assert_eq!(found(text, GERMAN_WORDS), 0, "still German: {text:?}");
}

#[tokio::test]
async fn a_french_stream_reports_french_before_its_first_final() {
    let Some(app) = multilingual_app().await else {
        return;
    };
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
    let s: Value = app.get_json(ACME, "/v1/sessions/fr-live").await;
    assert_eq!(s["language"], "fr", "{s}");
    // Event consumers learn it too: after `session_started` said `auto`.
    let events: Vec<Value> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e["session_id"] == "fr-live")
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[..2],
        ["session_started", "language_detected"],
        "{events:?}"
    );
    assert_eq!(events[0]["language"], "auto");
    assert_eq!(events[1]["language"], "fr");
}

#[tokio::test]
async fn an_english_only_model_refuses_other_languages_and_translation() {
    let Some(engine) = engine() else { return };
    let app = app_on(engine, TINY).await;
    let audio = || wav(&speak("de", "Guten Morgen."));
    let r = upload(&app, TRANSCRIPTIONS, audio(), &[("language", "de")]).await;
    assert_eq!(expect_error(r, 422).await, "unsupported_language");
    let r = upload(&app, TRANSLATIONS, audio(), &[]).await;
    assert_eq!(expect_error(r, 422).await, "unsupported_language");
    // A language whisper does not know is a bad request, whatever the model.
    let r = upload(&app, TRANSCRIPTIONS, audio(), &[("language", "xx")]).await;
    assert_eq!(expect_error(r, 400).await, "invalid_language");
    // English is fine.
    let r = upload(&app, TRANSCRIPTIONS, audio(), &[("language", "en")]).await;
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
