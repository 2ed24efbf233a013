//! Sessions cannot grow without end, against both stores: the per-session segment and
//! byte limits, and a `transcript_completed` event whose text is bounded.

mod support;

use earshot_core::config::StoreConfig;
use earshot_core::event::COMPLETED_TRANSCRIPT_MAX_BYTES;
use earshot_core::EventKind;
use earshot_store::*;
use support::*;

conformance!(
    appends_past_the_segment_limit_are_refused,
    appends_past_the_byte_limit_are_refused,
    a_large_transcript_is_cut_in_the_completed_event_only,
);

fn limits(segments: u64, bytes: u64) -> StoreConfig {
    StoreConfig {
        max_session_segments: segments,
        max_session_bytes: bytes,
        ..StoreConfig::default()
    }
}

async fn appends_past_the_segment_limit_are_refused(kind: Kind) {
    let h = Harness::with_config(kind, limits(3, 1 << 20)).await;
    create(&h.store, "acme", "s").await;
    for i in 0..3 {
        let r = h
            .store
            .append_segment("acme", "s", &seg(&format!("w{i}")))
            .await
            .unwrap();
        assert!(matches!(r, AppendOutcome::Appended { .. }), "{r:?}");
    }
    assert_eq!(
        h.store
            .append_segment("acme", "s", &seg("w3"))
            .await
            .unwrap(),
        AppendOutcome::Full
    );
    let t = h.store.transcript("acme", "s").await.unwrap().unwrap();
    assert_eq!(t.text, "w0 w1 w2");
    assert_eq!(events_of(&h.store, "transcript_segment").await.len(), 3);
    // A full session can still be completed, and other sessions are not affected.
    let CompleteOutcome::Completed { transcript, .. } =
        h.store.complete_session("acme", "s").await.unwrap()
    else {
        panic!("not completed");
    };
    assert_eq!(transcript, "w0 w1 w2");
    create(&h.store, "acme", "other").await;
    let r = h
        .store
        .append_segment("acme", "other", &seg("x"))
        .await
        .unwrap();
    assert!(matches!(r, AppendOutcome::Appended { seq: 0, .. }), "{r:?}");
}

async fn appends_past_the_byte_limit_are_refused(kind: Kind) {
    let h = Harness::with_config(kind, limits(1000, 10)).await;
    create(&h.store, "acme", "s").await;
    for text in ["hello", "world"] {
        let r = h
            .store
            .append_segment("acme", "s", &seg(text))
            .await
            .unwrap();
        assert!(matches!(r, AppendOutcome::Appended { .. }), "{r:?}");
    }
    assert_eq!(
        h.store
            .append_segment("acme", "s", &seg("!"))
            .await
            .unwrap(),
        AppendOutcome::Full
    );
    let s = h.store.get_session("acme", "s").await.unwrap().unwrap();
    assert_eq!(s.segment_count, 2);
}

async fn a_large_transcript_is_cut_in_the_completed_event_only(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "big").await;
    let chunk = |c: char| c.to_string().repeat(COMPLETED_TRANSCRIPT_MAX_BYTES / 4);
    let chunks = [chunk('a'), chunk('b'), chunk('c'), chunk('d')];
    for c in &chunks {
        h.store
            .append_segment("acme", "big", &seg(c))
            .await
            .unwrap();
    }
    let full = chunks.join(" ");
    let CompleteOutcome::Completed { transcript, .. } =
        h.store.complete_session("acme", "big").await.unwrap()
    else {
        panic!("not completed");
    };
    assert_eq!(transcript, full, "the caller gets the whole text");
    assert_eq!(
        h.store
            .transcript("acme", "big")
            .await
            .unwrap()
            .unwrap()
            .text,
        full
    );
    let completed = events_of(&h.store, "transcript_completed").await;
    assert_eq!(completed.len(), 1);
    let EventKind::TranscriptCompleted {
        transcript,
        segment_count,
        transcript_truncated,
    } = &completed[0].kind
    else {
        unreachable!()
    };
    assert_eq!(*segment_count, 4);
    assert!(*transcript_truncated);
    // Whole segments only: three quarters and two spaces fit, the fourth does not.
    assert_eq!(*transcript, chunks[..3].join(" "));
    assert!(transcript.len() <= COMPLETED_TRANSCRIPT_MAX_BYTES);

    // A small session's event carries all of it and says so.
    create(&h.store, "acme", "small").await;
    h.store
        .append_segment("acme", "small", &seg("hi"))
        .await
        .unwrap();
    h.store.complete_session("acme", "small").await.unwrap();
    let completed = events_of(&h.store, "transcript_completed").await;
    assert_eq!(
        completed[1].kind,
        EventKind::TranscriptCompleted {
            transcript: "hi".into(),
            segment_count: 1,
            transcript_truncated: false,
        }
    );
}
