//! Prompts as a user sees them, with the real tiny.en model and speech made at test time:
//! a name tiny.en cannot spell ("Siobhan Okonkwo") comes out right with a prompt, through
//! the OpenAI upload and through a live stream on its second utterance (a window after the
//! first commit, where the committed text shares the prompt budget), set at open or by
//! `configure`; without the prompt the same audio gives other words. A prompt far longer
//! than the decoder takes is accepted and its end used. Bad prompts and temperatures get
//! a clear 400 (or close reason).

mod common;

use common::live::{open, play, Step};
use common::speech::{app_on, engine, TINY};
use common::upload::TRANSCRIPTIONS;
use common::{expect_error, TestApp, ACME};
use earshot_testsupport::speech::normalize;
use earshot_testsupport::tts::{silence, speak, wav};
use serde_json::Value;

/// Chosen by measurement: tiny.en writes "Shivana Kanki" for this name without a prompt
/// and the name itself with one (upload and stream alike).
const NAMED: &str = "Please forward the invoice to Siobhan Okonkwo before Friday.";
const NAME: &str = "Siobhan Okonkwo";
const OPENING: &str = "Good morning everyone, let us begin the meeting.";

async fn app() -> Option<TestApp> {
    Some(app_on(engine()?, TINY).await)
}

fn has_name(text: &str) -> bool {
    let words = normalize(text);
    ["siobhan", "okonkwo"]
        .iter()
        .all(|n| words.iter().any(|w| w == n))
}

async fn upload(app: &TestApp, audio: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
    common::upload::upload(app, TRANSCRIPTIONS, audio, "memo.wav", fields).await
}

#[tokio::test]
async fn an_upload_prompt_spells_a_name_right() {
    let Some(app) = app().await else { return };
    let audio = wav(&speak("en-us", NAMED));
    let plain: Value = upload(&app, audio.clone(), &[]).await.json().await.unwrap();
    let plain = plain["text"].as_str().unwrap().to_owned();
    assert!(
        !has_name(&plain),
        "tiny.en got the name without help: {plain:?}"
    );
    for prompt in [NAME.to_owned(), long_prompt()] {
        let r = upload(
            &app,
            audio.clone(),
            &[("prompt", &prompt), ("temperature", "0")],
        )
        .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let prompted = v["text"].as_str().unwrap();
        assert!(
            has_name(prompted),
            "the prompt of {} characters did not help: {prompted:?}",
            prompt.len()
        );
        // The rest of the sentence is still there.
        let words = normalize(prompted);
        assert!(
            ["invoice", "friday"]
                .iter()
                .all(|w| words.iter().any(|x| x == w)),
            "{prompted:?}"
        );
    }
}

/// A prompt five times longer than the decoder takes, the name at its end: accepted, and
/// its end is what the decoder sees.
fn long_prompt() -> String {
    format!(
        "{}{NAME}",
        "Notes from the quarterly planning call of the finance team. ".repeat(17)
    )
}

/// Two utterances: an opening, then the name after a pause, so the name is decoded in a
/// window after the first final, with committed text in the prompt too.
fn meeting() -> (Vec<i16>, Vec<i16>) {
    let mut first = silence(300);
    first.extend(speak("en-us", OPENING));
    first.extend(silence(1_500));
    let mut second = speak("en-us", NAMED);
    second.extend(silence(1_500));
    (first, second)
}

async fn stream(app: &TestApp, id: &str, query: &str, configure: Option<&str>) -> Vec<String> {
    let path = format!("/v1/sessions/{id}/stream?sample_rate=16000{query}");
    let ws = open(app, &path, ACME).await.expect("stream opens");
    let (first, second) = meeting();
    let mut steps = vec![Step::Audio(first), Step::Finals(1)];
    if let Some(c) = configure {
        steps.push(Step::Text(c.to_owned()));
    }
    steps.push(Step::Audio(second));
    let seen = play(ws, steps).await;
    assert_eq!(seen.close, Some(1000), "{:?}", seen.frames);
    seen.finals()
}

/// The finals after the first one that holds the opening.
fn after_opening(finals: &[String]) -> String {
    let opening = finals
        .iter()
        .position(|f| normalize(f).iter().any(|w| w == "meeting"))
        .unwrap_or_else(|| panic!("no opening in {finals:?}"));
    finals[opening + 1..].join(" ")
}

#[tokio::test]
async fn a_stream_prompt_biases_a_later_window() {
    let Some(app) = app().await else { return };
    let plain = after_opening(&stream(&app, "no-prompt", "", None).await);
    assert!(
        !has_name(&plain),
        "tiny.en got the name without help: {plain:?}"
    );
    let prompt = format!("&prompt={}", NAME.replace(' ', "%20"));
    let prompted = after_opening(&stream(&app, "open-prompt", &prompt, None).await);
    assert!(
        has_name(&prompted),
        "the open-time prompt did not help: {prompted:?}"
    );
    // A long prompt shares the cap with the committed opening and still helps.
    let prompt = format!("&prompt={}", long_prompt().replace(' ', "%20"));
    let prompted = after_opening(&stream(&app, "long-prompt", &prompt, None).await);
    assert!(
        has_name(&prompted),
        "the long prompt's end did not help: {prompted:?}"
    );
}

#[tokio::test]
async fn a_vocabulary_set_by_configure_biases_the_next_window() {
    let Some(app) = app().await else { return };
    let configure = r#"{"type":"configure","vocabulary":["Siobhan Okonkwo","Grafana"]}"#;
    let finals = stream(&app, "configured", "", Some(configure)).await;
    let later = after_opening(&finals);
    assert!(has_name(&later), "the vocabulary did not help: {later:?}");
}

#[tokio::test]
async fn bad_prompts_and_temperatures_are_refused_clearly() {
    let Some(app) = app().await else { return };
    // Past the 4096 characters a prompt may have.
    let long = "word ".repeat(1_000);
    // Streams first: the uploads below count against admission for a while.
    // At open: a plain 400 before the upgrade.
    let path = format!(
        "/v1/sessions/long/stream?prompt={}",
        long.replace(' ', "%20")
    );
    match open(&app, &path, ACME).await {
        Err((status, code)) => assert_eq!((status, code.as_str()), (400, "prompt_too_long")),
        Ok(_) => panic!("a too long prompt was accepted"),
    }
    // By configure: an error frame and a close that says why.
    let ws = open(&app, "/v1/sessions/long-cfg/stream", ACME)
        .await
        .unwrap();
    let configure = serde_json::json!({"type": "configure", "prompt": long}).to_string();
    let seen = play(ws, vec![Step::Text(configure)]).await;
    assert_eq!(
        (seen.close, seen.close_reason.as_deref()),
        (Some(1008), Some("prompt_too_long")),
        "{:?}",
        seen.frames
    );
    assert_eq!(seen.of_type("error")[0]["code"], "prompt_too_long");
    let audio = || wav(&speak("en-us", "Hello."));
    let r = upload(&app, audio(), &[("prompt", &long)]).await;
    assert_eq!(expect_error(r, 400).await, "prompt_too_long");
    for t in ["1.5", "-1", "warm"] {
        let r = upload(&app, audio(), &[("temperature", t)]).await;
        assert_eq!(expect_error(r, 400).await, "invalid_temperature", "{t}");
    }
    // A sampled decode is still a transcript.
    let r = upload(&app, audio(), &[("temperature", "0.4")]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!v["text"].as_str().unwrap().trim().is_empty(), "{v}");
}
