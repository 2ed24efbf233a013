//! A live stream on Redis whose server goes away mid-speech: restarted gracefully
//! (SIGTERM, `draining`) or killed (SIGKILL). Either way every word is captioned once.

use earshot_testsupport::speech::{normalize, wer};
use earshot_testsupport::RedisServer;

use crate::page::{
    assert_gap_free, audio_sent_ms, count, count_audio_sent, finals, joined, launch_with_mic,
    prerequisites, stored, strings, NETWORK_NOISE, PAGE, SERIAL, SPEECH,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_captions_survive_a_server_restart_on_redis() {
    let Some(model) = prerequisites() else { return };
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let mut setup = launch_with_mic(
        &model,
        "restart",
        &[
            "goforward.wav",
            "something.wav",
            "cards-005.wav",
            "goforward.wav",
            "something.wav",
        ],
        &[("REDIS_URL", &redis.url())],
    )
    .await;
    let (b, reference, server) = (&setup.b, &setup.reference, &mut setup.server);
    b.by_id("start").await.click().await.unwrap();
    b.wait_state("live", PAGE).await;
    let id = b.text("session-id").await;
    b.wait("the first final", SPEECH, || async {
        (!finals(b).await.is_empty()).then_some(())
    })
    .await;

    // Mid-speech, the server is restarted; the page reconnects and carries on.
    server.restart().await;
    b.wait("live again after the restart", SPEECH, || async {
        let states = strings(b, "window.__states").await;
        let n = states.len();
        (n >= 2 && states[n - 1] == "live" && states.contains(&"reconnecting".to_owned()))
            .then_some(())
    })
    .await;
    b.shot("reconnected").await;
    // Speech after the restart is captioned: wait for the last sentence. It is said twice
    // in the clip, so the captions must also be about as long as the whole reference.
    let want = normalize(reference).len();
    b.wait("captions of the last sentence", SPEECH, || async {
        let words = normalize(&joined(&finals(b).await));
        (words.len() + 4 >= want
            && words.ends_with(&["go", "somewhere", "and", "do", "something"].map(String::from)))
        .then_some(())
    })
    .await;
    b.by_id("stop").await.click().await.unwrap();
    b.wait_state("completed", SPEECH).await;
    b.shot("completed").await;

    let shown = finals(b).await;
    assert_gap_free(&shown);
    let stored = stored(server, &id).await;
    assert_eq!(
        stored["text"].as_str().unwrap(),
        joined(&shown),
        "the page shows exactly what the server stored, nothing twice or missing"
    );
    // The old server reads the page's audio until the page has stopped sending
    // (`draining`), and the page sends the rest to the new one: nothing is lost, so the
    // bound is the one of an uninterrupted stream.
    let w = wer(reference, &joined(&shown));
    assert!(
        w <= 0.25,
        "captions across the restart {:?} vs {reference:?}: WER {w:.2}",
        joined(&shown)
    );
    let errors = b.console_errors(NETWORK_NOISE).await;
    assert!(
        errors.is_empty(),
        "browser console errors: {errors:#?}\nserver log:\n{}",
        server.log()
    );
    setup.b.close().await;
}

/// The crash test's sentences, each with words no other has. tiny.en hears these clips
/// well, so each of those words is expected as many times as it is said: fewer means
/// lost, more means doubled.
const CRASH_CLIPS: [(&str, &[&str]); 4] = [
    ("cards-005.wav", &["spades", "hearts"]),
    ("goforward.wav", &["forward", "meters"]),
    ("cards-002.wav", &["queen"]),
    ("something.wav", &["somewhere", "something"]),
];
/// The sentences are said this many times over: the server is killed only after a first
/// final, and on a loaded machine that final can come late in the speech, so there must
/// still be sentences to kill it in (about 25 s of them after the first one ends).
const ROUNDS: usize = 2;
/// The sentences (of [`CRASH_CLIPS`], in each round) the server may be killed in: the two
/// tiny.en transcribes the same way every time.
const KILL_IN: [usize; 2] = [1, 3];

/// Where in a sentence (ms of speech) the server is killed: 40 % into it, when the page
/// has sent the start of the sentence and no final can cover any of it yet.
fn kill_point((start, end): (u64, u64)) -> u64 {
    start + (end - start) * 2 / 5
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_said_as_the_server_is_killed_are_captioned_once_on_redis() {
    let Some(model) = prerequisites() else { return };
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let clips: Vec<&str> = (0..ROUNDS)
        .flat_map(|_| CRASH_CLIPS.iter().map(|(c, _)| *c))
        .collect();
    // The dead server's stream lock outlives it by this TTL; a short one keeps the test short.
    let mut setup = launch_with_mic(
        &model,
        "crash",
        &clips,
        &[
            ("REDIS_URL", &redis.url()),
            ("EARSHOT_STREAM_LOCK_TTL", "5s"),
        ],
    )
    .await;
    let (b, reference, spans, server) =
        (&setup.b, &setup.reference, &setup.spans, &mut setup.server);
    count_audio_sent(b).await;
    b.by_id("start").await.click().await.unwrap();
    b.wait_state("live", PAGE).await;
    let id = b.text("session-id").await;
    // Killed after a first final, so that the page resends its audio from where a stored
    // final ended, not from the start of the session.
    let kill_in: Vec<usize> = (0..clips.len())
        .filter(|i| KILL_IN.contains(&(i % CRASH_CLIPS.len())))
        .collect();
    let last_start = spans[kill_in[kill_in.len() - 1]].0;
    let first_final = b
        .wait("a first final", SPEECH, || async {
            if !finals(b).await.is_empty() {
                return Some(true);
            }
            (audio_sent_ms(b).await >= last_start).then_some(false)
        })
        .await;
    assert!(
        first_final,
        "no final came before the last sentence the server may be killed in ({last_start} ms \
         of speech): nothing was transcribed in time for a kill after a final\nserver log:\n{}",
        server.log()
    );

    // The server is killed in the next sentence the microphone has not finished.
    let now = audio_sent_ms(b).await;
    let target = kill_in
        .into_iter()
        .find(|&i| now + 300 < spans[i].1)
        .unwrap_or_else(|| panic!("the speech is over ({now} ms) before the kill"));
    let (start, end) = spans[target];
    let kill_at = kill_point(spans[target]);
    let at = b
        .wait("the middle of the sentence", SPEECH, || async {
            let at = audio_sent_ms(b).await;
            (at >= kill_at).then_some(at)
        })
        .await;
    server.kill().await;
    let clip = clips[target];
    assert!(
        at < end,
        "killed in {clip:?} ({start}..{end} ms of speech), not at {at} ms"
    );
    let before = joined(&finals(b).await);
    assert!(!before.is_empty(), "a final was shown before the kill");
    eprintln!("killed at {at} ms of speech, in {clip} ({start}..{end} ms), after {before:?}");
    b.wait_state("reconnecting", PAGE).await;
    b.shot("killed").await;

    // A new server on the same port (the same origin for the page), on the same Redis.
    server.start_again().await;
    b.wait("live again after the crash", SPEECH, || async {
        let states = strings(b, "window.__states").await;
        let n = states.len();
        (n >= 2 && states[n - 1] == "live" && states[n - 2] == "reconnecting").then_some(())
    })
    .await;
    assert_eq!(
        b.text("status").await,
        "Live",
        "no audio was lost while offline"
    );
    b.shot("live-again").await;
    // The last word said, in captions about as long as the speech (the sentence is said
    // in each round); what came before it is checked below, once the session is done.
    let want = normalize(reference).len();
    b.wait("the last word captioned", SPEECH, || async {
        let words = normalize(&joined(&finals(b).await));
        (words.len() + 4 >= want && words.last().map(String::as_str) == Some("something"))
            .then_some(())
    })
    .await;
    b.by_id("stop").await.click().await.unwrap();
    b.wait_state("completed", SPEECH).await;
    b.shot("completed").await;

    let shown = finals(b).await;
    assert_gap_free(&shown);
    let text = joined(&shown);
    let stored = stored(server, &id).await;
    let stored = stored["text"].as_str().unwrap();
    assert_eq!(
        stored, text,
        "the page shows exactly what the server stored"
    );
    for (i, (clip, words)) in CRASH_CLIPS.iter().enumerate() {
        for w in *words {
            let n = (count(&text, w), count(stored, w));
            if i == target % CRASH_CLIPS.len() {
                assert_eq!(
                    n,
                    (ROUNDS, ROUNDS),
                    "{w:?} of {clip}, said {ROUNDS} times, once as the server was killed, is \
                     shown and stored as often: {text:?} (shown before the kill: {before:?})"
                );
            } else {
                assert!(
                    n.0 <= ROUNDS && n.1 <= ROUNDS,
                    "{w:?} of {clip} doubled: {text:?}"
                );
            }
        }
    }
    let w = wer(reference, &text);
    assert!(
        w <= 0.25,
        "captions across the crash {text:?} vs {reference:?}: WER {w:.2}"
    );
    let errors = b.console_errors(NETWORK_NOISE).await;
    assert!(
        errors.is_empty(),
        "browser console errors: {errors:#?}\nserver log:\n{}",
        server.log()
    );
    setup.b.close().await;
}
