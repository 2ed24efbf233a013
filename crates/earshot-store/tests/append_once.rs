//! `Idempotency-Key` on appends, against both stores: a retry of an append that was
//! applied answers the first `seq` and stores and publishes nothing twice.

mod support;

use std::time::{Duration, Instant};

use earshot_core::config::StoreConfig;
use earshot_store::*;
use support::*;

conformance!(
    a_retried_append_is_stored_once_and_answers_the_first_seq,
    the_same_key_with_another_segment_is_refused,
    keys_belong_to_one_session,
    a_retry_after_completion_still_gets_its_first_answer,
    keys_go_with_a_deleted_session,
);

async fn segment_events(store: &DynStore, session: &str) -> Vec<u64> {
    events_of(store, "transcript_segment")
        .await
        .into_iter()
        .filter(|e| e.session_id == session)
        .map(|e| match e.kind {
            earshot_core::EventKind::TranscriptSegment { seq, .. } => seq,
            _ => unreachable!(),
        })
        .collect()
}

async fn a_retried_append_is_stored_once_and_answers_the_first_seq(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "s").await;
    let st = &h.store;
    let first = st
        .append_segment_once("acme", "s", &timed_seg("hello", 0, 900), Some("k1"))
        .await
        .unwrap();
    assert!(
        matches!(first, AppendOutcome::Appended { seq: 0, .. }),
        "{first:?}"
    );
    st.append_segment("acme", "s", &seg("unkeyed"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            st.append_segment_once("acme", "s", &timed_seg("hello", 0, 900), Some("k1"))
                .await
                .unwrap(),
            AppendOutcome::Repeated { seq: 0 }
        );
    }
    let t = st.transcript("acme", "s").await.unwrap().unwrap();
    assert_eq!(t.text, "hello unkeyed");
    assert_eq!(t.segments.len(), 2);
    let s = st.get_session("acme", "s").await.unwrap().unwrap();
    assert_eq!(s.segment_count, 2);
    assert_eq!(segment_events(st, "s").await, [0, 1]);
}

async fn the_same_key_with_another_segment_is_refused(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "s").await;
    let st = &h.store;
    st.append_segment_once("acme", "s", &timed_seg("hello", 0, 900), Some("k"))
        .await
        .unwrap();
    for other in [
        timed_seg("goodbye", 0, 900),
        timed_seg("hello", 0, 901),
        seg("hello"),
    ] {
        assert_eq!(
            st.append_segment_once("acme", "s", &other, Some("k"))
                .await
                .unwrap(),
            AppendOutcome::KeyReused,
            "{other:?}"
        );
    }
    assert_eq!(
        st.transcript("acme", "s").await.unwrap().unwrap().text,
        "hello"
    );
    assert_eq!(segment_events(st, "s").await, [0]);
}

async fn keys_belong_to_one_session(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "a").await;
    create(&h.store, "acme", "b").await;
    for id in ["a", "b"] {
        let r = h
            .store
            .append_segment_once("acme", id, &seg("same"), Some("k"))
            .await
            .unwrap();
        assert!(
            matches!(r, AppendOutcome::Appended { seq: 0, .. }),
            "{id}: {r:?}"
        );
    }
    // Another tenant learns nothing from a key: the session is simply not found.
    assert_eq!(
        h.store
            .append_segment_once("evil", "a", &seg("same"), Some("k"))
            .await
            .unwrap(),
        AppendOutcome::NotFound
    );
}

async fn a_retry_after_completion_still_gets_its_first_answer(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "s").await;
    let st = &h.store;
    st.append_segment_once("acme", "s", &seg("one"), Some("k1"))
        .await
        .unwrap();
    st.complete_session("acme", "s").await.unwrap();
    assert_eq!(
        st.append_segment_once("acme", "s", &seg("one"), Some("k1"))
            .await
            .unwrap(),
        AppendOutcome::Repeated { seq: 0 }
    );
    assert_eq!(
        st.append_segment_once("acme", "s", &seg("two"), Some("k2"))
            .await
            .unwrap(),
        AppendOutcome::Completed
    );
}

async fn keys_go_with_a_deleted_session(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "s").await;
    h.store
        .append_segment_once("acme", "s", &seg("old"), Some("k"))
        .await
        .unwrap();
    assert!(h.store.delete_session("acme", "s").await.unwrap());
    create(&h.store, "acme", "s").await;
    let r = h
        .store
        .append_segment_once("acme", "s", &seg("new"), Some("k"))
        .await
        .unwrap();
    assert!(matches!(r, AppendOutcome::Appended { seq: 0, .. }), "{r:?}");
}

/// The case the key exists for: the first call times out on the client, but Redis
/// applies it afterwards. Writes are held back with `CLIENT PAUSE WRITE` so the
/// client's timeout fires while the script is queued; the retry with the same key must
/// answer the first seq and leave one segment, one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_append_that_was_applied_is_not_doubled_by_its_retry() {
    let server = RedisServer::start();
    let config = StoreConfig {
        command_timeout: Duration::from_millis(200),
        ..StoreConfig::default()
    };
    let store: DynStore = std::sync::Arc::new(
        earshot_store::RedisStore::connect(&server.url(), config)
            .await
            .unwrap(),
    );
    create(&store, "acme", "s").await;
    // Load the append script first (as any earlier append would), so the paused call is
    // the script itself and not a NOSCRIPT round trip that a timeout cuts short.
    create(&store, "acme", "warm-up").await;
    store
        .append_segment("acme", "warm-up", &seg("x"))
        .await
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("WRITE")
        .query_async(&mut raw)
        .await
        .unwrap();
    let segment = timed_seg("only once", 0, 500);
    let first = store
        .append_segment_once("acme", "s", &segment, Some("final-0"))
        .await;
    assert!(matches!(first, Err(StoreError::Timeout(_))), "{first:?}");
    // Wait (without a deadline that speed could break) until the paused write applied.
    let started = Instant::now();
    loop {
        match store.get_session("acme", "s").await {
            Ok(Some(s)) if s.segment_count == 1 => break,
            other if started.elapsed() > Duration::from_secs(20) => {
                panic!("the first write never applied: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let retry = store
        .append_segment_once("acme", "s", &segment, Some("final-0"))
        .await
        .unwrap();
    assert_eq!(retry, AppendOutcome::Repeated { seq: 0 });
    let t = store.transcript("acme", "s").await.unwrap().unwrap();
    assert_eq!(t.segments.len(), 1);
    assert_eq!(segment_events(&store, "s").await, [0]);
}
