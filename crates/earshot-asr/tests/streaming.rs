//! The streaming policy on real speech: paced at real time and at 10x in 20-100 ms frames,
//! the finals joined must match the references (by WER) about as well as batch does; flush /
//! finish deliver the last words; silence yields nothing; admission is bounded.
//! Timings are printed, never asserted.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use earshot_asr::{
    Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig, StreamEvent,
    StreamingTranscriber,
};

fn engine() -> Option<Arc<Engine>> {
    static E: OnceLock<Option<Arc<Engine>>> = OnceLock::new();
    E.get_or_init(|| {
        let p = common::model_path()?;
        Some(Engine::load(EngineConfig::new(p)).expect("model loads"))
    })
    .clone()
}

/// One decode slot shared by every test in this binary (the suite uses 2 cores at most).
fn scheduler() -> Option<Scheduler> {
    static S: OnceLock<Option<Scheduler>> = OnceLock::new();
    S.get_or_init(|| {
        let e = engine()?;
        Some(Scheduler::with_config(
            e,
            SchedulerConfig {
                decode_slots: 1,
                max_streams: 8,
                admission: Default::default(),
            },
        ))
    })
    .clone()
}

struct Run {
    events: Vec<StreamEvent>,
    finals: String,
    wall: Duration,
}

/// Feed `audio` in frames of `frame_ms` (cycling through the given sizes) at `speed` x real time.
async fn run(st: &mut StreamingTranscriber, audio: &[f32], frame_ms: &[usize], speed: f64) -> Run {
    let t0 = Instant::now();
    let mut events = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < audio.len() {
        let n = (frame_ms[k % frame_ms.len()] * 16).min(audio.len() - pos);
        k += 1;
        let due = t0 + Duration::from_secs_f64(pos as f64 / 16000.0 / speed);
        tokio::time::sleep_until(due.into()).await;
        events.extend(st.push_received(&audio[pos..pos + n], due).await.unwrap());
        pos += n;
    }
    events.extend(st.finish().await.unwrap());
    let finals = finals_text(&events);
    Run {
        events,
        finals,
        wall: t0.elapsed(),
    }
}

fn finals_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Final { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_event_invariants(events: &[StreamEvent]) {
    let mut last_rev = 0;
    let mut last_final_end = 0;
    let mut in_speech = false;
    for e in events {
        match e {
            StreamEvent::Partial { rev, .. } => {
                assert!(*rev > last_rev, "rev must increase: {events:?}");
                last_rev = *rev;
            }
            StreamEvent::Final {
                start_ms,
                end_ms,
                text,
                ..
            } => {
                assert!(start_ms <= end_ms, "{e:?}");
                assert!(!text.trim().is_empty());
                // Finals never go back in time, whatever whisper's word times say.
                assert!(*start_ms >= last_final_end, "{e:?} after {last_final_end}");
                last_final_end = last_final_end.max(*end_ms);
            }
            StreamEvent::SpeechStarted { .. } => {
                assert!(!in_speech, "two speech starts in a row");
                in_speech = true;
            }
            StreamEvent::UtteranceEnd { .. } => {
                assert!(in_speech, "utterance end without start");
                in_speech = false;
            }
            // English-only streams never detect a language.
            StreamEvent::LanguageDetected { .. } => panic!("unexpected detection: {e:?}"),
        }
    }
}

fn batch_wer(e: &Engine, audio: &[f32], reference: &str) -> f64 {
    let segs = earshot_asr::batch::transcribe(e, audio).unwrap();
    common::wer(reference, &earshot_asr::text::join_segments(&segs))
}

fn print_latencies(tag: &str, st: &StreamingTranscriber) {
    let mut f = st.stats().final_latencies.clone();
    f.sort();
    let p = |v: &[Duration], q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let mut fp = st.stats().first_partial_latencies.clone();
    fp.sort();
    println!(
        "{tag}: final latency p50 {:.2}s p95 {:.2}s (n={}), first partial p50 {:.2}s, decodes {}",
        p(&f, 0.5),
        p(&f, 0.95),
        f.len(),
        p(&fp, 0.5),
        st.stats().decodes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_and_10x_match_reference() {
    let (Some(e), Some(s)) = (engine(), scheduler()) else {
        return;
    };
    // All clips with 1 s pauses (~28 s).
    let (audio, reference, _) = common::concatenated(1000);
    let bw = batch_wer(&e, &audio, &reference);

    let mut st = StreamingTranscriber::new(s.clone(), StreamConfig::default());
    let rt = run(&mut st, &audio, &[20, 40, 100], 1.0).await;
    check_event_invariants(&rt.events);
    let w_rt = common::wer(&reference, &rt.finals);
    print_latencies("real-time", &st);
    println!(
        "real-time ({:.1}s wall): WER {:.1}% (batch {:.1}%): {}",
        rt.wall.as_secs_f64(),
        w_rt * 100.0,
        bw * 100.0,
        rt.finals
    );

    let mut st = StreamingTranscriber::new(s.clone(), StreamConfig::default());
    let fast = run(&mut st, &audio, &[100, 20, 60], 10.0).await;
    check_event_invariants(&fast.events);
    let w_fast = common::wer(&reference, &fast.finals);
    println!(
        "10x ({:.1}s wall): WER {:.1}%: {}",
        fast.wall.as_secs_f64(),
        w_fast * 100.0,
        fast.finals
    );

    // The product target is "within 3 points of batch" (measured by the asr_bench example,
    // see the report). On these 36 words one word is 2.8 points, and which of tiny.en's
    // "clubs"/"close" confusions a stream commits depends on decode timing (a loaded CI
    // machine decodes later, with more audio), so the assertion allows three words.
    let words = common::normalize(&reference).len() as f64;
    let bound = bw + 3.0 / words + 1e-9;
    assert!(w_rt <= bound, "real-time WER {w_rt} vs batch {bw}");
    assert!(w_fast <= bound, "10x WER {w_fast} vs batch {bw}");
    for ev in [&rt.events, &fast.events] {
        let speech = ev
            .iter()
            .filter(|e| matches!(e, StreamEvent::SpeechStarted { .. }))
            .count();
        assert!(speech >= 4, "VAD should see the separate clips: {speech}");
        assert!(ev.iter().any(|e| matches!(e, StreamEvent::Partial { .. })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_delivers_last_words_without_trailing_silence() {
    let Some(s) = scheduler() else { return };
    let audio = common::load_clip("something.wav");
    let mut st = StreamingTranscriber::new(s, StreamConfig::default());
    let mut events = Vec::new();
    for chunk in audio.chunks(320) {
        events.extend(st.push(chunk).await.unwrap());
    }
    // The clip ends right after the speech: no utterance end yet, so finish() must deliver.
    events.extend(st.finish().await.unwrap());
    let text = finals_text(&events);
    println!("finish: {text:?}");
    assert!(
        common::wer("go somewhere and do something", &text) <= 0.2,
        "{text:?}"
    );
    check_event_invariants(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_finalizes_and_stream_continues() {
    let Some(s) = scheduler() else { return };
    let a = common::load_clip("goforward.wav");
    let b = common::load_clip("cards-005.wav");
    let mut st = StreamingTranscriber::new(s, StreamConfig::default());
    let mut events = Vec::new();
    for chunk in a.chunks(640) {
        events.extend(st.push(chunk).await.unwrap());
    }
    let flushed = st.flush().await.unwrap();
    let t1 = finals_text(&flushed);
    println!("flush: {t1:?}");
    events.extend(flushed);
    assert!(
        common::normalize(&finals_text(&events))
            .join(" ")
            .contains("meters"),
        "flush must finalize what was heard: {events:?}"
    );
    // Same stream goes on.
    let mut later = Vec::new();
    for chunk in b.chunks(640) {
        later.extend(st.push(chunk).await.unwrap());
    }
    later.extend(st.finish().await.unwrap());
    let t2 = finals_text(&later);
    println!("after flush: {t2:?}");
    assert!(
        common::wer("eight of spades four of clubs seven of hearts", &t2) <= 0.35,
        "{t2:?}"
    );
    // Nothing from before the flush is repeated.
    assert!(
        !common::normalize(&t2).contains(&"meters".to_string()),
        "{t2:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_yields_no_events_and_no_decodes() {
    let Some(s) = scheduler() else { return };
    let mut st = StreamingTranscriber::new(s, StreamConfig::default());
    let silence = vec![0.0f32; 16000 * 10];
    let mut events = Vec::new();
    for chunk in silence.chunks(1600) {
        events.extend(st.push(chunk).await.unwrap());
    }
    events.extend(st.flush().await.unwrap());
    events.extend(st.finish().await.unwrap());
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(st.stats().decodes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpointing_is_configurable() {
    let Some(s) = scheduler() else { return };
    // Two clips 700 ms apart: one utterance with a 1500 ms endpoint, two with 300 ms.
    let mut audio = common::load_clip("cards-001.wav");
    audio.extend(vec![0.0; 16 * 700]);
    audio.extend(common::load_clip("cards-003.wav"));
    audio.extend(vec![0.0; 16 * 2000]);
    let mut count = Vec::new();
    for endpoint in [1500u64, 300] {
        let mut st = StreamingTranscriber::new(s.clone(), StreamConfig::default());
        st.set_endpoint_silence_ms(endpoint);
        let mut events = Vec::new();
        for chunk in audio.chunks(480) {
            events.extend(st.push(chunk).await.unwrap());
        }
        events.extend(st.finish().await.unwrap());
        check_event_invariants(&events);
        let ends = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::UtteranceEnd { .. }))
            .count();
        println!(
            "endpoint {endpoint} ms: {ends} utterance ends; {}",
            finals_text(&events)
        );
        count.push(ends);
    }
    assert_eq!(count[0], 1);
    assert_eq!(count[1], 2);
}

#[test]
fn admission_is_bounded() {
    let Some(e) = engine() else { return };
    let s = Scheduler::with_config(
        e,
        SchedulerConfig {
            decode_slots: 1,
            max_streams: 2,
            admission: Default::default(),
        },
    );
    let a = s.try_admit().expect("first");
    let b = s.try_admit().expect("second");
    assert!(s.try_admit().is_none(), "third must be refused");
    assert_eq!(s.streams_in_use(), 2);
    drop(a);
    let c = s.try_admit().expect("a place was freed");
    drop((b, c));
    assert_eq!(s.streams_in_use(), 0);
}

/// What becomes final depends on the audio alone: fed in 20 ms frames with a partial
/// decode whenever one is due (an idle machine), or in 1.5 s lumps with no partial decode
/// at all (a stream far behind on a loaded machine, or a client replaying a file), the same
/// audio gives the same finals with the same times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finals_do_not_depend_on_load_or_pace() {
    let Some(s) = scheduler() else { return };
    let (audio, reference, _) = common::concatenated_rotated(700, 3);
    let finals_of = |events: &[StreamEvent]| -> Vec<(String, u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Final {
                    text,
                    start_ms,
                    end_ms,
                    ..
                } => Some((text.clone(), *start_ms, *end_ms)),
                _ => None,
            })
            .collect()
    };

    let mut idle = StreamingTranscriber::new(s.clone(), StreamConfig::default());
    let mut a = Vec::new();
    for frame in audio.chunks(320) {
        a.extend(idle.push(frame).await.unwrap());
    }
    a.extend(idle.finish().await.unwrap());
    assert!(idle.stats().partial_decodes > 0, "partials ran");
    assert!(a
        .iter()
        .any(|e| matches!(e, StreamEvent::Partial { text, .. } if !text.is_empty())));

    let mut behind = StreamingTranscriber::new(s, StreamConfig::default());
    let mut b = Vec::new();
    for lump in audio.chunks(24_000) {
        b.extend(behind.feed(lump, Instant::now()).await.unwrap());
    }
    b.extend(behind.finish().await.unwrap());
    assert_eq!(behind.stats().partial_decodes, 0);

    check_event_invariants(&a);
    check_event_invariants(&b);
    assert_eq!(finals_of(&a), finals_of(&b));
    let text = finals_text(&a);
    let wer = common::wer(&reference, &text);
    assert!(
        wer <= 0.25,
        "finals {text:?} vs {reference:?}: WER {wer:.2}"
    );
}

/// The first words of an utterance show up within a second of audio after the speech
/// starts (counted in audio, so the machine's speed does not matter): the first decode of an
/// utterance comes after `first_decode_ms`, not the full interval. The stream gets a
/// scheduler of its own: on the one shared by this binary's tests, another test's commits
/// take the slot first or stop a running partial, which is the policy under load, not what
/// this test is about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_words_come_within_a_second_of_speech() {
    let Some(e) = engine() else { return };
    let s = Scheduler::with_config(
        e,
        SchedulerConfig {
            decode_slots: 1,
            max_streams: 1,
            admission: Default::default(),
        },
    );
    let cfg = StreamConfig::default();
    for clip in ["goforward.wav", "numbers.wav"] {
        let audio = common::load_clip(clip);
        let mut st = StreamingTranscriber::new(s.clone(), cfg.clone());
        let mut speech_at = None;
        let mut first_text_at = None;
        for chunk in audio.chunks(320) {
            for ev in st.push(chunk).await.unwrap() {
                match ev {
                    StreamEvent::SpeechStarted { at_ms } => speech_at = Some(at_ms),
                    StreamEvent::Partial { text, .. } | StreamEvent::Final { text, .. }
                        if !text.is_empty() && first_text_at.is_none() =>
                    {
                        first_text_at = Some(st.position_ms())
                    }
                    _ => {}
                }
            }
        }
        let (start, first) = (speech_at.unwrap(), first_text_at.unwrap());
        println!("{clip}: speech at {start} ms, first text at {first} ms of audio");
        assert!(
            first <= start + 1_000,
            "{clip}: first text after {} ms of speech",
            first - start
        );
    }
}
