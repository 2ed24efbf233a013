//! The final decode started in a pause, before the endpointing silence ends the utterance:
//! it is used when the pause turns out to be the end, given up when speech resumes, and
//! either way the finals are exactly those of a stream that waits for the end to decode.

mod common;

use std::sync::{Arc, OnceLock};

use earshot_asr::{
    Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig, StreamEvent, StreamStats,
    StreamingTranscriber,
};

fn scheduler() -> Option<Scheduler> {
    static S: OnceLock<Option<Scheduler>> = OnceLock::new();
    S.get_or_init(|| {
        let p = common::model_path()?;
        let e: Arc<Engine> = Engine::load(EngineConfig::new(p)).expect("model loads");
        Some(Scheduler::with_config(
            e,
            SchedulerConfig {
                decode_slots: 1,
                max_streams: 4,
                admission: Default::default(),
            },
        ))
    })
    .clone()
}

/// A final as a client sees it, and the stream's audio position (ms) when it came.
#[derive(Debug, Clone, PartialEq)]
struct Final {
    text: String,
    start_ms: u64,
    end_ms: u64,
    at_ms: u64,
}

fn config(early_final: bool, commit_at_pause: bool) -> StreamConfig {
    StreamConfig {
        early_final,
        commit_at_pause,
        ..StreamConfig::default()
    }
}

/// The finals of `audio` streamed in 100 ms frames, and the stream's counters.
async fn finals(s: &Scheduler, audio: &[f32], cfg: StreamConfig) -> (Vec<Final>, StreamStats) {
    let mut st = StreamingTranscriber::new(s.clone(), cfg);
    let mut out = Vec::new();
    let mut keep = |events: Vec<StreamEvent>, at_ms: u64| {
        for e in events {
            if let StreamEvent::Final {
                text,
                start_ms,
                end_ms,
                ..
            } = e
            {
                out.push(Final {
                    text,
                    start_ms,
                    end_ms,
                    at_ms,
                });
            }
        }
    };
    for frame in audio.chunks(1_600) {
        let events = st.push(frame).await.unwrap();
        keep(events, st.position_ms());
    }
    let events = st.finish().await.unwrap();
    keep(events, st.position_ms());
    (out, st.stats().clone())
}

/// Two runs decided the same finals: the same text, and times within 100 ms (the early
/// decode hears less trailing silence, which moves word alignment by a frame or two).
fn assert_same_finals(a: &[Final], b: &[Final]) {
    let texts = |f: &[Final]| f.iter().map(|f| f.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(a), texts(b), "the early decode changed the finals");
    for (x, y) in a.iter().zip(b) {
        assert!(
            x.start_ms.abs_diff(y.start_ms) <= 100 && x.end_ms.abs_diff(y.end_ms) <= 100,
            "{x:?} vs {y:?}"
        );
    }
}

/// Whether the finals hold the end of the first phrase ("... seven of hearts") and the
/// second phrase after it ("seven of clubs", which tiny.en may hear as "close").
fn both_phrases(finals: &[Final]) -> bool {
    let text: Vec<&str> = finals.iter().map(|f| f.text.as_str()).collect();
    let words = common::normalize(&text.join(" "));
    let Some(hearts) = words.iter().position(|w| w == "hearts") else {
        return false;
    };
    let after = &words[hearts + 1..];
    after.first().map(String::as_str) == Some("seven")
        && matches!(after.last().map(String::as_str), Some("clubs" | "close"))
}

/// `clip` from `from_ms` to `to_ms`: its voiced part, without the clip's own silences.
fn voiced(clip: &str, from_ms: usize, to_ms: usize) -> Vec<f32> {
    common::load_clip(clip)[from_ms * 16..to_ms * 16].to_vec()
}

/// Two phrases 420 ms apart (more than half the 600 ms endpointing silence, less than all
/// of it: one utterance), then a second of silence; and where the second phrase starts (ms).
/// The first is 5 s long, more than a third of the window's cap.
fn two_phrases() -> (Vec<f32>, u64) {
    let mut audio = voiced("goforward.wav", 500, 2_380);
    audio.extend(vec![0.0; 150 * 16]);
    audio.extend(voiced("cards-005.wav", 200, 3_320));
    audio.extend(vec![0.0; 420 * 16]);
    let resume_ms = (audio.len() / 16) as u64;
    audio.extend(voiced("cards-003.wav", 80, 1_530));
    audio.extend(vec![0.0; 1_000 * 16]);
    (audio, resume_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utterance_ends_use_the_decode_started_in_the_pause() {
    let Some(s) = scheduler() else { return };
    // Every clip, with pauses of a second: each pause is an utterance end.
    let (audio, _, refs) = common::concatenated(1_000);
    let (with, stats) = finals(&s, &audio, config(true, false)).await;
    let (without, plain) = finals(&s, &audio, config(false, false)).await;
    assert_same_finals(&with, &without);
    assert!(
        stats.early_finals_used as usize >= refs.len() - 1,
        "{} of {} utterance ends used the decode started in their pause",
        stats.early_finals_used,
        refs.len()
    );
    assert_eq!(plain.early_finals_used + plain.early_finals_dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_before_a_short_pause_become_final_when_speech_resumes() {
    let Some(s) = scheduler() else { return };
    let (audio, resume_ms) = two_phrases();
    let (finals, stats) = finals(&s, &audio, config(true, true)).await;
    assert_eq!(stats.pause_commits, 1, "{stats:?}: {finals:?}");
    // The first phrase is final as soon as the VAD hears the second one start (within two
    // 100 ms frames), not when the utterance ends a second and a half later.
    let first = &finals[0];
    assert!(
        first.at_ms <= resume_ms + 200 && first.end_ms <= resume_ms,
        "{first:?}, speech resumed at {resume_ms} ms"
    );
    assert!(
        common::normalize(&first.text).contains(&"hearts".to_owned()),
        "{first:?}"
    );
    assert!(both_phrases(&finals), "{finals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_phrase_before_a_pause_waits_for_the_utterance_end() {
    let Some(s) = scheduler() else { return };
    // "seven of clubs" alone (1.5 s), a pause (300 ms of silence between the clip's own
    // edges), and again.
    let mut audio = voiced("cards-003.wav", 80, 1_530);
    audio.extend(vec![0.0; 300 * 16]);
    audio.extend(voiced("cards-003.wav", 80, 1_530));
    audio.extend(vec![0.0; 1_000 * 16]);
    let (finals, stats) = finals(&s, &audio, config(true, true)).await;
    assert_eq!(stats.pause_commits, 0, "{stats:?}: {finals:?}");
    assert!(stats.early_finals_dropped >= 1, "{stats:?}");
    assert_eq!(
        finals.len(),
        1,
        "one final at the utterance's end: {finals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_commit_at_pause_speech_after_a_short_pause_drops_the_early_decode() {
    let Some(s) = scheduler() else { return };
    let (audio, _) = two_phrases();
    let (with, stats) = finals(&s, &audio, config(true, false)).await;
    let (without, _) = finals(&s, &audio, config(false, false)).await;
    assert_same_finals(&with, &without);
    assert!(stats.early_finals_dropped >= 1, "{stats:?}");
    assert!(both_phrases(&with), "{with:?}");
}
