//! Word timings through the real server, against speech whose word positions are known:
//! a clip synthesized word by word with espeak-ng (each word's true span follows from the
//! sample counts). Uploaded as the `openai` SDK sends it and streamed live, the words must
//! be monotonic, inside their segments, near the truth, and stored with the segments; a
//! word alone between pauses must get a live final that covers it.

mod common;

use common::live::{connect, run_stream, s16le};
use common::speech::speech_ready;
use common::upload::{self, TRANSCRIPTIONS};
use common::{expect_error, Backend, TestApp, ACME};
use earshot_testsupport::forced::{self, timing_errors, ForcedClip, TimedWord, SCRIPT};
use serde_json::Value;

/// How far (ms) a word's midpoint may be from the truth, for 90% of the words. Measured
/// (README, "Word timings"): the median is 30-60 ms and the 95th percentile under 150 ms
/// on this material; 250 ms is a word's length, so a word placed on its neighbour fails.
const MIDPOINT_TOLERANCE_MS: i64 = 250;

async fn app_on(backend: Backend) -> Option<TestApp> {
    Some(TestApp::start_speech_on(backend, speech_ready()?).await)
}

fn clip() -> (ForcedClip, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (forced::build("en-us", 800, SCRIPT, dir.path()), dir)
}

/// Words of a JSON array whose times are in `unit` ms (1 for ms integers, 1000 for
/// seconds).
fn words_of(v: &Value, start: &str, end: &str, unit: f64) -> Vec<TimedWord> {
    v.as_array()
        .unwrap_or_else(|| panic!("words is an array: {v}"))
        .iter()
        .map(|w| {
            let p = w["probability"].as_f64().expect("probability");
            assert!((0.0..=1.0).contains(&p), "{w}");
            TimedWord {
                text: w["word"].as_str().expect("word").to_owned(),
                start_ms: (w[start].as_f64().expect("start") * unit).round() as i64,
                end_ms: (w[end].as_f64().expect("end") * unit).round() as i64,
            }
        })
        .collect()
}

/// Monotonic words inside `[start, end]`, none of zero length.
fn assert_inside(words: &[TimedWord], start: i64, end: i64, what: &str) {
    let mut prev = start;
    for w in words {
        assert!(
            w.start_ms >= prev && w.end_ms > w.start_ms && w.end_ms <= end,
            "{what}: {w:?} out of order, empty, or outside [{start}, {end}] (previous end {prev})"
        );
        prev = w.end_ms;
    }
}

/// Most words (90%) within the tolerance, and few words lost.
fn assert_near_truth(clip: &ForcedClip, words: &[TimedWord], what: &str) {
    let e = timing_errors(&clip.words, words);
    println!("{what}: {}", e.summary());
    assert!(
        e.unmatched <= clip.words.len() / 6,
        "{what}: too many words not recognised: {}",
        e.summary()
    );
    let near = e
        .midpoint
        .iter()
        .filter(|d| **d <= MIDPOINT_TOLERANCE_MS)
        .count();
    assert!(
        near * 10 >= e.midpoint.len() * 9,
        "{what}: only {near} of {} words within {MIDPOINT_TOLERANCE_MS} ms: {}",
        e.midpoint.len(),
        e.summary()
    );
}

/// Uploads `wav` in `format` with the given `timestamp_granularities[]`.
async fn transcribe(
    app: &TestApp,
    wav: Vec<u8>,
    format: &str,
    granularities: &[&str],
) -> reqwest::Response {
    let mut fields = vec![("model", "whisper-1"), ("response_format", format)];
    fields.extend(
        granularities
            .iter()
            .map(|g| ("timestamp_granularities[]", *g)),
    );
    upload::send(
        app,
        TRANSCRIPTIONS,
        upload::form(&fields, Some((wav, "a.wav"))),
    )
    .await
}

async fn upload_words(backend: Backend) {
    let Some(app) = app_on(backend).await else {
        return;
    };
    let (clip, _dir) = clip();

    // word + segment: both lists, words in seconds.
    let r = transcribe(&app, clip.wav(), "verbose_json", &["word", "segment"]).await;
    assert_eq!(r.status(), 200);
    let session = upload::session_id(&r);
    let v: Value = r.json().await.unwrap();
    let words = words_of(&v["words"], "start", "end", 1000.0);
    let segs = v["segments"].as_array().expect("segments with segment");
    let span = |s: &Value, k: &str| (s[k].as_f64().unwrap() * 1000.0).round() as i64;
    let first = span(&segs[0], "start");
    let last = span(segs.last().unwrap(), "end");
    assert_inside(&words, first, last.min(clip.duration_ms()), "upload words");
    for s in segs {
        assert!(span(s, "end") > span(s, "start"), "empty segment {s}");
    }
    assert_near_truth(&clip, &words, "upload");

    // Stored with the session: ms integers, inside each stored segment.
    let t: Value = app
        .get_json(ACME, &format!("/v1/sessions/{session}/transcript"))
        .await;
    let mut stored = Vec::new();
    for s in t["segments"].as_array().unwrap() {
        let w = words_of(&s["words"], "start_ms", "end_ms", 1.0);
        assert!(s["words"][0]["start_ms"].is_i64(), "ms integers: {s}");
        let (a, b) = (
            s["start_ms"].as_i64().unwrap(),
            s["end_ms"].as_i64().unwrap(),
        );
        assert_inside(&w, a, b, "stored segment");
        stored.extend(w);
    }
    assert_eq!(stored.len(), words.len(), "every word stored");

    // Subtitles: long segments split at words, cues ordered.
    let srt = transcribe(&app, clip.wav(), "srt", &[])
        .await
        .text()
        .await
        .unwrap();
    let cues = srt_cues(&srt);
    assert!(!cues.is_empty(), "{srt}");
    let mut prev = 0;
    for (a, b, text) in &cues {
        assert!(*a >= prev && b > a, "cues out of order: {srt}");
        assert!(
            b - a <= earshot_core::format::MAX_CUE_MS,
            "a {} ms cue: {srt}",
            b - a
        );
        assert!(
            text.chars().count() <= earshot_core::format::MAX_CUE_CHARS,
            "{srt}"
        );
        prev = *b;
    }
}

/// (start ms, end ms, text) of each SRT cue.
fn srt_cues(srt: &str) -> Vec<(i64, i64, String)> {
    let ms = |t: &str| {
        let (hms, milli) = t.trim().split_once(',').unwrap();
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + milli.parse::<i64>().unwrap()
    };
    srt.split("\n\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            let lines: Vec<&str> = c.lines().collect();
            let (a, b) = lines[1].split_once(" --> ").unwrap();
            (ms(a), ms(b), lines[2..].join("\n"))
        })
        .collect()
}

async fn live_words(backend: Backend) {
    let Some(app) = app_on(backend).await else {
        return;
    };
    let (clip, _dir) = clip();
    let ws = connect(&app, "/v1/sessions/words-live/stream", ACME)
        .await
        .unwrap();
    // Twice real time: the finals depend on the audio, not on the pace.
    let seen = run_stream(
        ws,
        s16le(&clip.samples),
        32,
        20,
        2.0,
        Some(r#"{"type":"finalize"}"#),
    )
    .await;
    let finals = seen.of_type("final");
    assert!(!finals.is_empty(), "{seen:?}");
    let mut all = Vec::new();
    let mut prev_end = 0;
    for f in &finals {
        let (a, b) = (
            f["start_ms"].as_i64().unwrap(),
            f["end_ms"].as_i64().unwrap(),
        );
        assert!(b > a, "zero-length final {f}");
        assert!(a >= prev_end, "final {f} overlaps the one before");
        assert!(b <= clip.duration_ms(), "final {f} past the audio");
        prev_end = b;
        let w = words_of(&f["words"], "start_ms", "end_ms", 1.0);
        assert!(!w.is_empty(), "final without words: {f}");
        assert_inside(&w, a, b, "final");
        all.extend(w);
    }
    assert_near_truth(&clip, &all, "live");

    // Each word said alone between pauses gets a final that covers it and ends near its
    // true end (users saw one at 8540-8540 ms for a word said at 7390-7930).
    let e = timing_errors(&clip.words, &all);
    let mut checked = 0;
    for (i, (word, gap)) in SCRIPT.iter().enumerate() {
        let alone = *gap >= 800 && (i == 0 || SCRIPT[i - 1].1 >= 800);
        if !alone {
            continue;
        }
        let truth = &clip.words[i];
        let Some(&(_, h)) = e.pairs.iter().find(|(t, _)| *t == i) else {
            continue; // not recognised: counted in the word check above
        };
        let f = finals
            .iter()
            .find(|f| {
                let (a, b) = (
                    f["start_ms"].as_i64().unwrap(),
                    f["end_ms"].as_i64().unwrap(),
                );
                a <= all[h].start_ms && all[h].end_ms <= b
            })
            .expect("the word's final");
        let (a, b) = (
            f["start_ms"].as_i64().unwrap(),
            f["end_ms"].as_i64().unwrap(),
        );
        assert!(
            a < truth.end_ms && b > truth.start_ms && (b - truth.end_ms).abs() <= 300,
            "{word:?} said at {}-{} got the final {f}",
            truth.start_ms,
            truth.end_ms
        );
        checked += 1;
    }
    assert!(checked >= 3, "too few lone words recognised to check");

    // Stored with the words, and replayed with them on resume.
    let t: Value = app
        .get_json(ACME, "/v1/sessions/words-live/transcript")
        .await;
    let segs = t["segments"].as_array().unwrap();
    assert_eq!(segs.len(), finals.len());
    for (s, f) in segs.iter().zip(&finals) {
        assert_eq!(s["words"], f["words"], "stored as sent");
    }
}

async fn old_segments_without_words_stay_readable(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create(ACME, "plain").await;
    app.append(ACME, "plain", "typed by hand").await;
    let t: Value = app.get_json(ACME, "/v1/sessions/plain/transcript").await;
    assert_eq!(t["segments"][0]["text"], "typed by hand");
    assert!(t["segments"][0].get("words").is_none(), "{t}");
    let srt = app
        .get(ACME, "/v1/sessions/plain/transcript?format=srt")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(srt.contains("typed by hand"), "{srt}");
}

/// The other granularities, on a short clip (each is a transcription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granularities_as_openai_documents_them() {
    let Some(app) = app_on(Backend::Memory).await else {
        return;
    };
    let wav =
        std::fs::read(earshot_testsupport::speech::audio_dir().join("goforward.wav")).unwrap();
    // Only word: OpenAI leaves the segments out.
    let v: Value = transcribe(&app, wav.clone(), "verbose_json", &["word"])
        .await
        .json()
        .await
        .unwrap();
    assert!(v.get("segments").is_none(), "{v}");
    assert!(!v["words"].as_array().unwrap().is_empty());
    // Only segment, or nothing: no words.
    for g in [&["segment"][..], &[]] {
        let v: Value = transcribe(&app, wav.clone(), "verbose_json", g)
            .await
            .json()
            .await
            .unwrap();
        assert!(v.get("words").is_none(), "{g:?}: {v}");
        assert!(!v["segments"].as_array().unwrap().is_empty(), "{g:?}: {v}");
    }
    // Granularities need verbose_json, and must be known ones.
    let code = expect_error(transcribe(&app, wav.clone(), "json", &["word"]).await, 400).await;
    assert_eq!(code, "invalid_timestamp_granularities");
    let code = expect_error(
        transcribe(&app, wav.clone(), "verbose_json", &["letter"]).await,
        400,
    )
    .await;
    assert_eq!(code, "invalid_timestamp_granularities");
}

both_backends!(
    upload_words,
    live_words,
    old_segments_without_words_stay_readable
);
