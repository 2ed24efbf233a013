//! Speech over the API as a client sees it: live WebSocket streams of real speech and
//! the OpenAI-compatible upload, with the real tiny.en model. Finals must be persisted
//! and published exactly like `POST …/segments`, and bad input must end in an error
//! frame or a 4xx, never a hang or a panic.

mod common;

use std::time::Duration;

use common::speech::*;
use common::upload::{self, TRANSCRIPTIONS};
use common::{expect_error, TestApp, ACME, GLOBEX};
use earshot_asr::AdmissionConfig;
use earshot_server::SpeechStatus;
use earshot_testsupport::speech::{audio_dir, normalize, wer};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_stream_finals_are_persisted_published_and_completed() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let audio = with_silence(&clip_i16("goforward.wav"), 500);
    let ws = connect(
        &app,
        "/v1/sessions/live-1/stream?sample_rate=16000&encoding=pcm_s16le",
        ACME,
    )
    .await
    .unwrap();
    let seen = run_stream(
        ws,
        s16le(&audio),
        32,
        20,
        1.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;

    assert_eq!(
        seen.close,
        Some(1000),
        "closed normally after completed: {seen:?}"
    );
    assert!(
        !seen.of_type("speech_started").is_empty(),
        "VAD reported speech"
    );
    let finals = seen.of_type("final");
    assert!(!finals.is_empty(), "at least one final: {seen:?}");
    for (i, f) in finals.iter().enumerate() {
        assert_eq!(f["seq"], i as u64, "gap-free seq");
        assert!(f["end_ms"].as_i64().unwrap() >= f["start_ms"].as_i64().unwrap());
    }
    let text = seen.finals_text();
    let w = wer(&reference("goforward.wav"), &text);
    assert!(w <= 0.25, "WER {w:.2} for {text:?}");
    let completed = seen.of_type("completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(
        completed[0]["transcript"],
        text.as_str(),
        "completed carries the finals joined by one space"
    );
    assert_eq!(completed[0]["session"]["status"], "completed");
    assert_eq!(
        seen.frames.last().unwrap()["type"],
        "completed",
        "completed is the last frame"
    );

    // Persisted exactly as POST …/segments would have.
    let t: Value = app.get_json(ACME, "/v1/sessions/live-1/transcript").await;
    assert_eq!(t["text"], text.as_str());
    assert_eq!(t["segments"].as_array().unwrap().len(), finals.len());
    let events = app.events().await;
    let published: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "transcript_segment")
        .collect();
    assert_eq!(published.len(), finals.len());
    assert_eq!(published[0]["text"], finals[0]["text"]);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event_type"] == "transcript_completed")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_stream_at_48k_and_mulaw_8k_transcribes() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let clip = with_silence(&clip_i16("something.wav"), 400);

    // 48 kHz: each 16 kHz sample three times (a valid, if crude, 48 kHz signal).
    let up: Vec<i16> = clip.iter().flat_map(|s| [*s, *s, *s]).collect();
    let ws = connect(
        &app,
        "/v1/sessions/hi-rate/stream?sample_rate=48000&encoding=pcm_s16le",
        ACME,
    )
    .await
    .unwrap();
    let seen = run_stream(ws, s16le(&up), 96, 40, 10.0, Some(r#"{"type":"finalize"}"#)).await;
    let w = wer(&reference("something.wav"), &seen.finals_text());
    assert!(w <= 0.25, "48 kHz WER {w:.2}: {:?}", seen.finals_text());

    // 8 kHz mu-law, as telephony sends it.
    let down: Vec<u8> = clip
        .iter()
        .step_by(2)
        .map(|s| earshot_asr::audio::i16_to_mulaw(*s))
        .collect();
    let ws = connect(
        &app,
        "/v1/sessions/phone/stream?sample_rate=8000&encoding=pcm_mulaw",
        ACME,
    )
    .await
    .unwrap();
    let seen = run_stream(ws, down, 8, 20, 10.0, Some(r#"{"type":"finalize"}"#)).await;
    let w = wer(&reference("something.wav"), &seen.finals_text());
    assert!(w <= 0.4, "mu-law WER {w:.2}: {:?}", seen.finals_text());
    assert_eq!(seen.close, Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_finalizes_mid_stream_and_close_keeps_the_last_words() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let clip = clip_i16("goforward.wav");
    let ws = connect(&app, "/v1/sessions/fl/stream", ACME).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    for chunk in s16le(&clip).chunks(640) {
        tx.send(Message::Binary(chunk.to_vec().into()))
            .await
            .unwrap();
    }
    tx.send(Message::Text(r#"{"type":"flush"}"#.into()))
        .await
        .unwrap();
    let mut finals = Vec::new();
    while finals.is_empty() {
        let msg = tokio::time::timeout(Duration::from_secs(60), rx.next())
            .await
            .expect("a final after flush")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "final" {
                finals.push(v);
            }
        }
    }
    assert!(normalize(finals[0]["text"].as_str().unwrap()).contains(&"forward".to_owned()));
    // The stream is still open after a flush: more audio, then the client just closes.
    for chunk in s16le(&clip_i16("cards-001.wav")).chunks(640) {
        tx.send(Message::Binary(chunk.to_vec().into()))
            .await
            .unwrap();
    }
    tx.send(Message::Close(None)).await.unwrap();
    drop(rx);
    // The words after the flush are still persisted, and the session stays active (resumable).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = app.get_json(ACME, "/v1/sessions/fl").await;
        if s["segment_count"].as_u64().unwrap() >= 2 {
            assert_eq!(s["status"], "active");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last words after close were not persisted: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_finals_after_the_given_seq() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    app.create(ACME, "res").await;
    for t in ["zero", "one", "two"] {
        app.append(ACME, "res", t).await;
    }
    let ws = connect(&app, "/v1/sessions/res/stream?resume_after_seq=0", ACME)
        .await
        .unwrap();
    let seen = run_stream(ws, Vec::new(), 32, 20, 1.0, Some(r#"{"type":"finalize"}"#)).await;
    let finals = seen.of_type("final");
    assert_eq!(finals.len(), 2, "{seen:?}");
    assert_eq!(
        (finals[0]["seq"].as_u64(), finals[0]["text"].as_str()),
        (Some(1), Some("one"))
    );
    assert_eq!(
        (finals[1]["seq"].as_u64(), finals[1]["text"].as_str()),
        (Some(2), Some("two"))
    );
    assert_eq!(seen.of_type("completed")[0]["transcript"], "zero one two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_stream_continues_the_sessions_time_line() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    // What an earlier connection (on this node or another) left: finals up to 61.5 s.
    app.create(ACME, "later").await;
    for (text, start_ms, end_ms) in [
        ("first words", 1_000, 2_000),
        ("earlier words", 60_000, 61_500),
    ] {
        let r = app
            .post(ACME, "/v1/sessions/later/segments")
            .json(&json!({"text": text, "start_ms": start_ms, "end_ms": end_ms}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let audio = with_silence(&clip_i16("goforward.wav"), 500);
    let ws = connect(&app, "/v1/sessions/later/stream", ACME)
        .await
        .unwrap();
    let seen = run_stream(
        ws,
        s16le(&audio),
        32,
        20,
        1.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    let finals = seen.of_type("final");
    assert!(!finals.is_empty(), "{seen:?}");
    for f in &finals {
        let start = f["start_ms"].as_i64().unwrap();
        assert!(
            (61_500..61_500 + 8_000).contains(&start),
            "a final of the new connection starts at {start} ms, before the session's last final ended or far past its own audio: {f}"
        );
        for w in f["words"].as_array().into_iter().flatten() {
            assert!(w["start_ms"].as_i64().unwrap() >= 61_500, "{w}");
        }
    }
    for e in seen.of_type("speech_started") {
        assert!(e["at_ms"].as_u64().unwrap() >= 61_500, "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_locks_and_bad_requests() {
    let Some(app) = speech_app(1, Duration::from_secs(30)).await else {
        return;
    };
    // The one admitted stream.
    let first = connect(&app, "/v1/sessions/a1/stream", ACME).await.unwrap();
    // A second stream into the same session is refused before upgrading.
    assert_eq!(
        connect(&app, "/v1/sessions/a1/stream", ACME).await.err(),
        Some(409)
    );
    // Another session when every slot is taken: overloaded, 1013.
    let second = connect(&app, "/v1/sessions/a2/stream", ACME).await.unwrap();
    let seen = run_stream(second, Vec::new(), 32, 20, 1.0, None).await;
    assert_eq!(seen.of_type("error")[0]["code"], "overloaded");
    assert_eq!(seen.close, Some(1013));
    drop(first);

    // Refused before the upgrade, with HTTP statuses.
    assert_eq!(
        connect(&app, "/v1/sessions/x/stream?encoding=opus", ACME)
            .await
            .err(),
        Some(415)
    );
    assert_eq!(
        connect(&app, "/v1/sessions/x/stream?sample_rate=4000", ACME)
            .await
            .err(),
        Some(422)
    );
    assert_eq!(
        connect(&app, "/v1/sessions/x/stream?sample_rate=abc", ACME)
            .await
            .err(),
        Some(422)
    );
    assert_eq!(
        connect(&app, "/v1/sessions/..%2Fx/stream", ACME)
            .await
            .err(),
        Some(422)
    );
    assert_eq!(
        connect(&app, "/v1/sessions/x/stream", "wrong-key-123")
            .await
            .err(),
        Some(401)
    );
    // Another tenant's session: 404, not 409.
    app.create(GLOBEX, "theirs").await;
    assert_eq!(
        connect(&app, "/v1/sessions/theirs/stream", ACME)
            .await
            .err(),
        Some(404)
    );
    // A completed session cannot be streamed into.
    app.create(ACME, "done").await;
    app.post(ACME, "/v1/sessions/done/complete")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connect(&app, "/v1/sessions/done/stream", ACME).await.err(),
        Some(409)
    );
    // Browsers may pass the key in the query.
    let url = format!(
        "{}/v1/sessions/q1/stream?api_key={ACME}",
        app.base.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_end_with_an_error_frame_and_keep_accepted_audio() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let ws = connect(&app, "/v1/sessions/bad/stream", ACME)
        .await
        .unwrap();
    let clip = with_silence(&clip_i16("goforward.wav"), 300);
    let seen = run_stream(ws, s16le(&clip), 32, 100, 20.0, Some(r#"{"type":"dance"}"#)).await;
    let err = seen.of_type("error");
    assert_eq!(err[0]["code"], "invalid_message", "{seen:?}");
    assert_eq!(seen.close, Some(1008));
    // Audio accepted before the bad frame was still transcribed and stored.
    let t: Value = app.get_json(ACME, "/v1/sessions/bad/transcript").await;
    assert!(
        normalize(t["text"].as_str().unwrap()).contains(&"forward".to_owned()),
        "{t}"
    );
    // An odd number of s16le bytes is carried over, not an error; silence is never transcribed.
    let ws = connect(&app, "/v1/sessions/odd/stream", ACME)
        .await
        .unwrap();
    let seen = run_stream(
        ws,
        vec![0u8; 16_001],
        32,
        33,
        50.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    assert!(seen.of_type("error").is_empty(), "{seen:?}");
    assert!(
        seen.of_type("final").is_empty(),
        "no hallucinated text from silence: {seen:?}"
    );
    assert_eq!(seen.close, Some(1000));
}

/// Admission comes from what streams cost, not from a count: with streams assumed to cost
/// half a slot per audio second and a target of 60 % of the one slot, a second stream would
/// make the first late, so it is refused with 1013 although the hard cap allows 16; the
/// headroom is on `/metrics`, and the place is back once the first stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_follows_the_measured_cost() {
    let admission = AdmissionConfig {
        target: 0.6,
        prior_cost: 0.5,
    };
    let Some(app) = speech_app_with(16, admission, Duration::from_secs(30)).await else {
        return;
    };
    let metric = |text: &str, name: &str| -> f64 {
        earshot_testsupport::metric(text, name)
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    let first = connect(&app, "/v1/sessions/c1/stream", ACME).await.unwrap();
    // The upgrade returns before the stream task admits itself.
    let mut headroom = f64::NAN;
    for _ in 0..50 {
        let text = app.metrics().await;
        if metric(&text, "earshot_asr_streams_admitted") == 1.0 {
            headroom = metric(&text, "earshot_asr_headroom_streams");
            assert!(metric(&text, "earshot_asr_stream_cost") > 0.0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(headroom, 0.0, "no room for a second stream");
    let second = connect(&app, "/v1/sessions/c2/stream", ACME).await.unwrap();
    let seen = run_stream(second, Vec::new(), 32, 20, 1.0, None).await;
    assert_eq!(seen.of_type("error")[0]["code"], "overloaded", "{seen:?}");
    assert_eq!(seen.close, Some(1013));
    let seen = run_stream(
        first,
        Vec::new(),
        32,
        20,
        1.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    assert_eq!(seen.close, Some(1000));
    let third = connect(&app, "/v1/sessions/c3/stream", ACME).await.unwrap();
    let seen = run_stream(
        third,
        Vec::new(),
        32,
        20,
        1.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    assert!(seen.of_type("error").is_empty(), "admitted again: {seen:?}");
}

/// A client replaying a recording far faster than real time is paced, not cut off, and
/// what it gets is what real time gives: finals in order, their times never going back. A
/// frame holding more than 2 s of audio is refused with a clear error and 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_client_is_paced_and_a_huge_frame_refused() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let clips = [
        "cards-005.wav",
        "goforward.wav",
        "numbers.wav",
        "cards-002.wav",
    ];
    let mut audio = Vec::new();
    let mut words = Vec::new();
    for c in clips {
        audio.extend(with_silence(&clip_i16(c), 400));
        words.push(reference(c));
    }
    let ws = connect(&app, "/v1/sessions/fast/stream", ACME)
        .await
        .unwrap();
    // 100 ms frames with no pause at all.
    let seen = run_stream(
        ws,
        s16le(&audio),
        32,
        100,
        1e6,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    assert!(seen.of_type("error").is_empty(), "{seen:?}");
    assert_eq!(seen.close, Some(1000));
    let finals = seen.of_type("final");
    for pair in finals.windows(2) {
        assert!(
            pair[1]["start_ms"].as_i64() >= pair[0]["end_ms"].as_i64(),
            "finals go back in time: {pair:?}"
        );
    }
    let wer = earshot_testsupport::speech::wer(&words.join(" "), &seen.finals_text());
    assert!(
        wer <= 0.25,
        "{} vs {words:?}: WER {wer}",
        seen.finals_text()
    );

    let ws = connect(&app, "/v1/sessions/huge/stream", ACME)
        .await
        .unwrap();
    let seen = run_stream(ws, vec![0u8; 3 * 32_000], 32, 3_000, 1.0, None).await;
    assert_eq!(
        seen.of_type("error")[0]["code"],
        "frame_too_large",
        "{seen:?}"
    );
    assert_eq!(seen.close, Some(1009));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_closed_with_a_reason() {
    let Some(app) = speech_app(4, Duration::from_millis(800)).await else {
        return;
    };
    let ws = connect(&app, "/v1/sessions/idle/stream", ACME)
        .await
        .unwrap();
    let (mut tx, rx) = ws.split();
    // Keepalives hold it open past the idle timeout...
    for _ in 0..3 {
        tx.send(Message::Text(r#"{"type":"keepalive"}"#.into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // ...then silence closes it.
    let seen = run_stream(tx.reunite(rx).unwrap(), Vec::new(), 32, 20, 1.0, None).await;
    assert_eq!(seen.of_type("error")[0]["code"], "idle_timeout");
    assert_eq!(seen.close, Some(1000));
    // The session's lock was given back before the close: reconnecting at once works.
    let again = connect(&app, "/v1/sessions/idle/stream?resume_after_seq=0", ACME).await;
    assert!(
        again.is_ok(),
        "reconnect right after the close: {:?}",
        again.err()
    );
}

/// Uploads `wav` as the clip `goforward.wav`, answered in `format`.
async fn in_format(app: &TestApp, wav: Vec<u8>, format: &str) -> reqwest::Response {
    let fields = [("response_format", format)];
    upload::upload(app, TRANSCRIPTIONS, wav, "goforward.wav", &fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_upload_in_every_format() {
    let Some(app) = speech_app(4, Duration::from_secs(30)).await else {
        return;
    };
    let wav = std::fs::read(audio_dir().join("goforward.wav")).unwrap();
    let upload = |format| in_format(&app, wav.clone(), format);
    let r = upload("json").await;
    assert_eq!(r.status(), 200);
    let session = upload::session_id(&r);
    let j: Value = r.json().await.unwrap();
    let text = j["text"].as_str().unwrap().to_owned();
    assert!(wer(&reference("goforward.wav"), &text) <= 0.25, "{text}");

    let v: Value = upload("verbose_json").await.json().await.unwrap();
    assert_eq!(v["task"], "transcribe");
    assert!((v["duration"].as_f64().unwrap() - 2.79).abs() < 0.05);
    let seg = &v["segments"][0];
    for k in [
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    ] {
        assert!(!seg[k].is_null(), "verbose_json segment lacks {k}: {v}");
    }
    let srt = upload("srt").await.text().await.unwrap();
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let vtt = upload("vtt").await.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let plain = upload("text").await.text().await.unwrap();
    // Each upload is its own decode: compare words, not casing or punctuation.
    assert_eq!(normalize(&plain), normalize(&text), "{plain:?} vs {text:?}");

    // Recorded as a completed session whose events flowed.
    let s: Value = app.get_json(ACME, &format!("/v1/sessions/{session}")).await;
    assert_eq!(s["status"], "completed");
    assert_eq!(s["metadata"]["source"], "upload");
    let events = app.events().await;
    assert!(events
        .iter()
        .any(|e| e["event_type"] == "transcript_completed" && e["session_id"] == session.as_str()));

    // Bad uploads.
    let bad =
        |bytes: Vec<u8>, name: &'static str| upload::upload(&app, TRANSCRIPTIONS, bytes, name, &[]);
    expect_error(
        bad(b"definitely not audio at all".to_vec(), "x.bin").await,
        415,
    )
    .await;
    let code = expect_error(bad(Vec::new(), "empty.wav").await, 422).await;
    assert_eq!(code, "empty_audio");
    expect_error(bad(wav[..30].to_vec(), "cut.wav").await, 422).await;
    let no_file = upload::form(&[("model", "whisper-1")], None);
    expect_error(upload::send(&app, TRANSCRIPTIONS, no_file).await, 400).await;
    let wrong_fmt = upload::form(&[("response_format", "pdf")], Some((wav.clone(), "a.wav")));
    expect_error(upload::send(&app, TRANSCRIPTIONS, wrong_fmt).await, 400).await;
    expect_error(
        app.post(ACME, TRANSCRIPTIONS)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        415,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_speech_routes_and_readyz_say_why() {
    let app = TestApp::start_speech(SpeechStatus::Unavailable("no model at /nowhere".into())).await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("no model"));
    assert_eq!(
        connect(&app, "/v1/sessions/x/stream", ACME).await.err(),
        Some(503)
    );
    let form = upload::form(&[], Some((vec![1, 2, 3], "a.wav")));
    let code = expect_error(upload::send(&app, TRANSCRIPTIONS, form).await, 503).await;
    assert_eq!(code, "model_unavailable");
}
