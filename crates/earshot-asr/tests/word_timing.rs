//! Word times against a forced reference: a clip synthesized word by word with espeak-ng
//! (so each word's true span is known to the sample), transcribed whole and streamed live.
//! Word times must be monotonic, inside their segment, and near where the words really
//! are; a word alone between pauses must get a live final that covers it.

mod common;

use std::sync::Arc;

use earshot_asr::{
    Engine, EngineConfig, Scheduler, SchedulerConfig, StreamConfig, StreamEvent,
    StreamingTranscriber, Word,
};
use earshot_testsupport::forced::{self, timing_errors, ForcedClip, TimedWord, SCRIPT};

fn engine() -> Option<Arc<Engine>> {
    let p = common::model_path()?;
    Some(Engine::load(EngineConfig::new(p)).expect("model loads"))
}

fn clip() -> (ForcedClip, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (forced::build("en-us", 800, SCRIPT, dir.path()), dir)
}

fn f32s(s: &[i16]) -> Vec<f32> {
    s.iter().map(|v| *v as f32 / 32768.0).collect()
}

fn timed(words: &[Word]) -> Vec<TimedWord> {
    words
        .iter()
        .map(|w| TimedWord {
            text: w.text.clone(),
            start_ms: w.start_ms,
            end_ms: w.end_ms,
        })
        .collect()
}

/// Monotonic, non-negative spans inside `[start, end]`.
fn assert_well_formed(words: &[Word], start: i64, end: i64, what: &str) {
    let mut prev = start;
    for w in words {
        assert!(
            w.start_ms >= prev && w.end_ms >= w.start_ms && w.end_ms <= end,
            "{what}: word {w:?} out of order or outside [{start}, {end}] (previous end {prev})"
        );
        assert!((0.0..=1.0).contains(&w.prob), "{what}: probability {w:?}");
        prev = w.end_ms;
    }
}

#[test]
fn batch_word_times_match_the_forced_reference() {
    let Some(engine) = engine() else { return };
    let (clip, _dir) = clip();
    let segs = earshot_asr::batch::transcribe(&engine, &f32s(&clip.samples)).unwrap();
    let mut words = Vec::new();
    for s in &segs {
        assert!(s.end_ms > s.start_ms, "segment {s:?} has no length");
        assert!(
            s.end_ms <= clip.duration_ms(),
            "segment {s:?} past the audio"
        );
        assert_well_formed(&s.words, s.start_ms, s.end_ms, "batch");
        words.extend(timed(&s.words));
    }
    let e = timing_errors(&clip.words, &words);
    println!("batch: {}", e.summary());
    for (t, h) in &e.pairs {
        let (t, h) = (&clip.words[*t], &words[*h]);
        println!(
            "  {:>6}-{:<6} {:>6}-{:<6} {}",
            t.start_ms, t.end_ms, h.start_ms, h.end_ms, h.text
        );
    }
    let (median, p95, _) = e.midpoint_stats();
    assert!(e.unmatched <= 4, "{}", e.summary());
    assert!(median <= 150 && p95 <= 300, "{}", e.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_finals_cover_their_words() {
    let Some(engine) = engine() else { return };
    let sched = Scheduler::with_config(
        engine,
        SchedulerConfig {
            decode_slots: 1,
            max_streams: 2,
            admission: Default::default(),
        },
    );
    let (clip, _dir) = clip();
    let audio = f32s(&clip.samples);
    let mut st = StreamingTranscriber::new(sched, StreamConfig::default());
    let mut events = Vec::new();
    for chunk in audio.chunks(320) {
        events.extend(st.push(chunk).await.unwrap());
    }
    events.extend(st.finish().await.unwrap());
    let mut words = Vec::new();
    // (start, end, index of its first word in `words`, word count) of each final.
    let mut finals = Vec::new();
    let mut prev_end = 0u64;
    for ev in &events {
        if let StreamEvent::Final {
            text,
            start_ms,
            end_ms,
            words: fw,
        } = ev
        {
            println!("final {start_ms:>6}-{end_ms:>6} {text}");
            assert!(
                *start_ms >= prev_end,
                "final {ev:?} overlaps the previous one"
            );
            prev_end = *end_ms;
            finals.push((*start_ms as i64, *end_ms as i64, words.len(), fw.len()));
            words.extend(timed(fw));
        }
    }
    let e = timing_errors(&clip.words, &words);
    println!("live words: {}", e.summary());
    // Each final's span against the true span of the words it matched.
    let (mut start_err, mut end_err) = (Vec::new(), Vec::new());
    for &(start, end, first, n) in &finals {
        let matched: Vec<usize> = e
            .pairs
            .iter()
            .filter(|(_, h)| (first..first + n).contains(h))
            .map(|(t, _)| *t)
            .collect();
        if let (Some(a), Some(b)) = (matched.first(), matched.last()) {
            start_err.push((start - clip.words[*a].start_ms).abs());
            end_err.push((end - clip.words[*b].end_ms).abs());
        }
    }
    println!(
        "live final spans: |start error| median/p95/max {:?}, |end error| {:?} over {} finals",
        forced::stats(&start_err),
        forced::stats(&end_err),
        finals.len()
    );
    for &(start, end, first, n) in &finals {
        assert!(end > start, "zero-length final {start}-{end}");
        assert!(
            end <= clip.duration_ms(),
            "final {start}-{end} past the audio"
        );
        let fw = &events_words(&events)[first..first + n];
        assert_well_formed(fw, start, end, "live");
    }
    let (median, p95, _) = e.midpoint_stats();
    assert!(e.unmatched <= 4, "{}", e.summary());
    assert!(median <= 150 && p95 <= 300, "{}", e.summary());
}

fn events_words(events: &[StreamEvent]) -> Vec<Word> {
    events
        .iter()
        .flat_map(|e| match e {
            StreamEvent::Final { words, .. } => words.clone(),
            _ => Vec::new(),
        })
        .collect()
}
