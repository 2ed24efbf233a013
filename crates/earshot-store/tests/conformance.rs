//! The Store conformance suite: every test body runs unchanged against `MemoryStore`,
//! against `RedisStore` on its own throwaway redis-server and against `RedisStore` on a
//! real 6-node Redis Cluster (see `conformance!`).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use earshot_core::config::StoreConfig;
use earshot_core::keys::{DEAD_LETTER_STREAM, EVENT_STREAM};
use earshot_core::{EventKind, SessionStatus, StreamId};
use earshot_store::*;
use support::*;

conformance!(
    ping_and_close,
    create_and_get,
    set_language_changes_only_the_tenants_session,
    create_refuses_an_existing_id_in_any_tenant,
    other_tenants_see_nothing,
    concurrent_appends_get_gap_free_seqs,
    transcript_joins_chunks_with_one_space,
    segments_from_reads_only_the_tail,
    complete_is_idempotent_under_concurrency,
    appends_after_complete_are_refused,
    delete_removes_everything_and_publishes,
    session_keys_expire_and_writes_refresh_them,
    tenant_index_drops_expired_sessions,
    list_pages_newest_first_with_cursor,
    list_refuses_bad_cursors,
    list_is_stable_under_concurrent_inserts,
    stream_is_capped_by_maxlen,
    trim_removes_entries_before_min_id,
    read_stream_is_exclusive_and_counted,
    wait_stream_wakes_on_new_entry_and_times_out,
    groups_share_within_and_copy_across,
    create_group_is_idempotent_and_new_starts_at_end,
    pending_entries_and_ack,
    autoclaim_transfers_idle_entries,
    autoclaim_reports_trimmed_entries_as_deleted,
    group_calls_on_missing_group_fail_with_no_group,
    read_group_blocks_until_an_entry_arrives,
    dead_letter_moves_and_acks,
    locks_are_exclusive_and_token_checked,
    locks_expire_and_extend,
    stats_report_stream_length,
    events_carry_the_documented_fields,
);

async fn ping_and_close(kind: Kind) {
    let h = Harness::new(kind).await;
    let backend = match kind {
        Kind::Memory => "memory",
        Kind::Redis => "redis",
        Kind::Cluster => "redis-cluster",
    };
    assert_eq!(h.store.backend(), backend);
    h.store.ping().await.unwrap();
    h.store.close().await;
    let err = h.store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

async fn create_and_get(kind: Kind) {
    let h = Harness::new(kind).await;
    let mut new = new_session("acme", "call-1");
    new.language = "de-DE".into();
    new.metadata.insert("caller".into(), "bob".into());
    let before = chrono::Utc::now();
    let CreateOutcome::Created(s) = h.store.create_session(new).await.unwrap() else {
        panic!("not created");
    };
    assert_eq!(s.session_id, "call-1");
    assert_eq!(s.tenant_id, "acme");
    assert_eq!(s.language, "de-DE");
    assert_eq!(s.status, SessionStatus::Active);
    assert_eq!(s.segment_count, 0);
    assert_eq!(s.completed_at, None);
    assert_eq!(s.metadata.get("caller").map(String::as_str), Some("bob"));
    let started = chrono::DateTime::parse_from_rfc3339(&s.started_at).unwrap();
    assert!(started >= before - chrono::Duration::seconds(1));
    assert!(s.started_at.ends_with('Z'));
    assert_eq!(
        h.store.get_session("acme", "call-1").await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(h.store.get_session("acme", "nope").await.unwrap(), None);
    let started = events_of(&h.store, "session_started").await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].session_id, "call-1");
    assert_eq!(started[0].tenant_id, "acme");
    assert_eq!(
        started[0].kind,
        EventKind::SessionStarted {
            language: "de-DE".into()
        }
    );
}

async fn set_language_changes_only_the_tenants_session(kind: Kind) {
    let h = Harness::new(kind).await;
    let mut new = new_session("acme", "call-1");
    new.language = "auto".into();
    h.store.create_session(new).await.unwrap();
    assert!(h.store.set_language("acme", "call-1", "fr").await.unwrap());
    let s = h
        .store
        .get_session("acme", "call-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.language, "fr");
    // Consumers learn it from the event stream too.
    let detected = events_of(&h.store, "language_detected").await;
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0].session_id, "call-1");
    assert_eq!(
        detected[0].kind,
        EventKind::LanguageDetected {
            language: "fr".into()
        }
    );
    // Another tenant's id or a missing one: nothing set, nothing created.
    assert!(!h.store.set_language("other", "call-1", "de").await.unwrap());
    assert!(!h.store.set_language("acme", "nope", "de").await.unwrap());
    assert_eq!(h.store.get_session("acme", "nope").await.unwrap(), None);
    let s = h
        .store
        .get_session("acme", "call-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.language, "fr");
    assert_eq!(events_of(&h.store, "language_detected").await.len(), 1);
}

async fn create_refuses_an_existing_id_in_any_tenant(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "dup").await;
    for tenant in ["acme", "other"] {
        assert_eq!(
            h.store
                .create_session(new_session(tenant, "dup"))
                .await
                .unwrap(),
            CreateOutcome::AlreadyExists
        );
    }
    // The original is untouched and only one session_started was published.
    let s = h.store.get_session("acme", "dup").await.unwrap().unwrap();
    assert_eq!(s.tenant_id, "acme");
    assert_eq!(events_of(&h.store, "session_started").await.len(), 1);
}

async fn other_tenants_see_nothing(kind: Kind) {
    let h = Harness::new(kind).await;
    let s = create(&h.store, "acme", "secret").await;
    h.store
        .append_segment("acme", "secret", &seg("hello"))
        .await
        .unwrap();
    let st = &h.store;
    assert_eq!(st.get_session("evil", "secret").await.unwrap(), None);
    assert_eq!(
        st.append_segment("evil", "secret", &seg("x"))
            .await
            .unwrap(),
        AppendOutcome::NotFound
    );
    assert_eq!(
        st.complete_session("evil", "secret").await.unwrap(),
        CompleteOutcome::NotFound
    );
    assert_eq!(st.transcript("evil", "secret").await.unwrap(), None);
    assert!(!st.delete_session("evil", "secret").await.unwrap());
    let page = st.list_sessions("evil", 100, None).await.unwrap().unwrap();
    assert!(page.sessions.is_empty());
    // Nothing the other tenant did changed the session.
    let after = st.get_session("acme", "secret").await.unwrap().unwrap();
    assert_eq!(after.status, SessionStatus::Active);
    assert_eq!(after.segment_count, 1);
    assert_eq!(after.started_at, s.started_at);
    assert_eq!(
        st.transcript("acme", "secret").await.unwrap().unwrap().text,
        "hello"
    );
    assert!(events_of(st, "session_deleted").await.is_empty());
    assert!(events_of(st, "transcript_completed").await.is_empty());
}

async fn concurrent_appends_get_gap_free_seqs(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "busy").await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = h.store.clone();
            tokio::spawn(async move {
                store
                    .append_segment("acme", "busy", &seg(&format!("w{i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    let mut event_ids = BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            AppendOutcome::Appended { seq, event_id } => {
                assert!(seqs.insert(seq), "seq {seq} handed out twice");
                assert!(event_ids.insert(event_id));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seqs, (0..50).collect());
    let s = h.store.get_session("acme", "busy").await.unwrap().unwrap();
    assert_eq!(s.segment_count, 50);
    let t = h.store.transcript("acme", "busy").await.unwrap().unwrap();
    assert_eq!(t.segments.len(), 50);
    for (i, segment) in t.segments.iter().enumerate() {
        assert_eq!(segment.seq, i as u64, "segments are stored in seq order");
    }
    // The chunks are in the same order as the segments.
    let texts: Vec<&str> = t.segments.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t.text, texts.join(" "));
    // Each event carries the seq its write got, in stream order.
    let evs = events_of(&h.store, "transcript_segment").await;
    let ev_seqs: Vec<u64> = evs
        .iter()
        .map(|e| match e.kind {
            EventKind::TranscriptSegment { seq, .. } => seq,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ev_seqs, (0..50).collect::<Vec<_>>());
}

async fn transcript_joins_chunks_with_one_space(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "t").await;
    let empty = h.store.transcript("acme", "t").await.unwrap().unwrap();
    assert_eq!(empty.text, "");
    assert!(empty.segments.is_empty());
    h.store
        .append_segment("acme", "t", &timed_seg("hello world", 0, 900))
        .await
        .unwrap();
    h.store
        .append_segment("acme", "t", &seg("he said \"hi\" — ünï"))
        .await
        .unwrap();
    let t = h.store.transcript("acme", "t").await.unwrap().unwrap();
    assert_eq!(t.session_id, "t");
    assert_eq!(t.text, "hello world he said \"hi\" — ünï");
    assert_eq!(t.segments[0].start_ms, Some(0));
    assert_eq!(t.segments[0].end_ms, Some(900));
    assert_eq!(t.segments[1].text, "he said \"hi\" — ünï");
    assert_eq!(t.segments[1].start_ms, None);
    assert_eq!(t.segments[1].seq, 1);
}

async fn segments_from_reads_only_the_tail(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "tail").await;
    assert_eq!(
        h.store.segments_from("acme", "tail", 0).await.unwrap(),
        Some(Vec::new()),
        "a session without segments has an empty tail"
    );
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        let at = i as i64 * 1000;
        h.store
            .append_segment("acme", "tail", &timed_seg(text, at, at + 900))
            .await
            .unwrap();
    }
    let all = h.store.transcript("acme", "tail").await.unwrap().unwrap();
    let from = |n: u64| {
        let store = h.store.clone();
        async move { store.segments_from("acme", "tail", n).await.unwrap() }
    };
    assert_eq!(from(0).await, Some(all.segments.clone()));
    let last = from(2).await.unwrap();
    assert_eq!(
        last.iter()
            .map(|s| (s.seq, s.text.as_str(), s.end_ms))
            .collect::<Vec<_>>(),
        [(2, "three", Some(2900))]
    );
    assert_eq!(from(1).await.unwrap().len(), 2);
    assert_eq!(from(3).await, Some(Vec::new()), "nothing past the last");
    assert_eq!(from(u64::MAX).await, Some(Vec::new()));
    assert_eq!(
        h.store.segments_from("globex", "tail", 0).await.unwrap(),
        None,
        "another tenant's session is not there"
    );
    assert_eq!(
        h.store.segments_from("acme", "nope", 0).await.unwrap(),
        None
    );
}

async fn complete_is_idempotent_under_concurrency(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "c").await;
    h.store
        .append_segment("acme", "c", &seg("one"))
        .await
        .unwrap();
    h.store
        .append_segment("acme", "c", &seg("two"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = h.store.clone();
            tokio::spawn(async move { store.complete_session("acme", "c").await.unwrap() })
        })
        .collect();
    let mut newly = 0;
    let mut sessions = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            CompleteOutcome::Completed {
                session,
                transcript,
                newly_completed,
            } => {
                assert_eq!(transcript, "one two");
                assert_eq!(session.status, SessionStatus::Completed);
                assert_eq!(session.segment_count, 2);
                assert!(session.completed_at.is_some());
                newly += usize::from(newly_completed);
                sessions.push(session);
            }
            CompleteOutcome::NotFound => panic!("not found"),
        }
    }
    assert_eq!(newly, 1, "exactly one caller completes");
    assert!(
        sessions.windows(2).all(|w| w[0] == w[1]),
        "all see one session"
    );
    let done = events_of(&h.store, "transcript_completed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0].kind,
        EventKind::TranscriptCompleted {
            transcript: "one two".into(),
            segment_count: 2,
            transcript_truncated: false,
        }
    );
    // A later repeat is the same and publishes nothing.
    let CompleteOutcome::Completed {
        session,
        newly_completed,
        ..
    } = h.store.complete_session("acme", "c").await.unwrap()
    else {
        panic!()
    };
    assert!(!newly_completed);
    assert_eq!(session, sessions[0]);
    assert_eq!(events_of(&h.store, "transcript_completed").await.len(), 1);
    assert_eq!(
        h.store.get_session("acme", "c").await.unwrap().unwrap(),
        sessions[0]
    );
    // The (cached) transcript of a completed session is the full one.
    let t = h.store.transcript("acme", "c").await.unwrap().unwrap();
    assert_eq!(t.text, "one two");
    assert_eq!(t.segments.len(), 2);
    assert_eq!(h.store.transcript("acme", "c").await.unwrap().unwrap(), t);
}

async fn appends_after_complete_are_refused(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "done").await;
    h.store
        .append_segment("acme", "done", &seg("a"))
        .await
        .unwrap();
    h.store.complete_session("acme", "done").await.unwrap();
    assert_eq!(
        h.store
            .append_segment("acme", "done", &seg("late"))
            .await
            .unwrap(),
        AppendOutcome::Completed
    );
    let t = h.store.transcript("acme", "done").await.unwrap().unwrap();
    assert_eq!(t.text, "a");
    let s = h.store.get_session("acme", "done").await.unwrap().unwrap();
    assert_eq!(s.segment_count, 1);
    assert_eq!(events_of(&h.store, "transcript_segment").await.len(), 1);
}

async fn delete_removes_everything_and_publishes(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "gone").await;
    create(&h.store, "acme", "kept").await;
    h.store
        .append_segment("acme", "gone", &seg("x"))
        .await
        .unwrap();
    h.store.complete_session("acme", "gone").await.unwrap();
    assert!(h.store.delete_session("acme", "gone").await.unwrap());
    assert_eq!(h.store.get_session("acme", "gone").await.unwrap(), None);
    assert_eq!(h.store.transcript("acme", "gone").await.unwrap(), None);
    assert_eq!(
        h.store
            .append_segment("acme", "gone", &seg("y"))
            .await
            .unwrap(),
        AppendOutcome::NotFound
    );
    let page = h
        .store
        .list_sessions("acme", 10, None)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = page
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(ids, ["kept"]);
    assert!(!h.store.delete_session("acme", "gone").await.unwrap());
    let deleted = events_of(&h.store, "session_deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].session_id, "gone");
    assert_eq!(deleted[0].tenant_id, "acme");
    // The id is free again, and the new session starts empty (no stale chunks/cache).
    let again = create(&h.store, "acme", "gone").await;
    assert_eq!(again.segment_count, 0);
    let t = h.store.transcript("acme", "gone").await.unwrap().unwrap();
    assert_eq!(t.text, "");
    assert!(t.segments.is_empty());
}

async fn session_keys_expire_and_writes_refresh_them(kind: Kind) {
    let h = Harness::with_config(kind, short_ttl(Duration::from_millis(1000))).await;
    create(&h.store, "acme", "short").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    h.store
        .append_segment("acme", "short", &seg("keep me"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // 1.2 s after creation, but only 0.6 s after the last write.
    let s = h.store.get_session("acme", "short").await.unwrap();
    assert!(s.is_some(), "the append refreshed the TTL");
    assert_eq!(
        h.store
            .transcript("acme", "short")
            .await
            .unwrap()
            .unwrap()
            .text,
        "keep me"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(h.store.get_session("acme", "short").await.unwrap(), None);
    assert_eq!(h.store.transcript("acme", "short").await.unwrap(), None);
    assert_eq!(
        h.store
            .append_segment("acme", "short", &seg("x"))
            .await
            .unwrap(),
        AppendOutcome::NotFound
    );
    // Expired means gone: the id can be used again, from scratch.
    let again = create(&h.store, "acme", "short").await;
    assert_eq!(again.segment_count, 0);
    assert_eq!(
        h.store
            .transcript("acme", "short")
            .await
            .unwrap()
            .unwrap()
            .text,
        ""
    );
}

async fn tenant_index_drops_expired_sessions(kind: Kind) {
    let h = Harness::with_config(kind, short_ttl(Duration::from_millis(800))).await;
    create(&h.store, "acme", "old").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    create(&h.store, "acme", "new").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = h
        .store
        .list_sessions("acme", 10, None)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = page
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(ids, ["new"]);
    assert_eq!(page.next_cursor, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = h
        .store
        .list_sessions("acme", 10, None)
        .await
        .unwrap()
        .unwrap();
    assert!(page.sessions.is_empty());
}

async fn list_pages_newest_first_with_cursor(kind: Kind) {
    let h = Harness::new(kind).await;
    for i in 0..250 {
        create(&h.store, "acme", &format!("s{i:03}")).await;
    }
    create(&h.store, "other", "foreign").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = h
            .store
            .list_sessions("acme", 100, cursor.as_deref())
            .await
            .unwrap()
            .unwrap();
        pages.push(page.sessions.len());
        seen.extend(page.sessions);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, [100, 100, 50]);
    let ids: BTreeSet<_> = seen.iter().map(|s| s.session_id.clone()).collect();
    assert_eq!(ids.len(), 250, "no duplicates, nothing missing");
    assert!(seen.iter().all(|s| s.tenant_id == "acme"));
    // Newest first: start times never increase down the list.
    assert!(seen.windows(2).all(|w| w[0].started_at >= w[1].started_at));
    assert_eq!(seen.last().unwrap().session_id, "s000");
    assert_eq!(seen[0].session_id, "s249");
    // An exact multiple of the page size ends without an empty extra page.
    let h2 = Harness::new(kind).await;
    for i in 0..4 {
        create(&h2.store, "t", &format!("x{i}")).await;
    }
    let p1 = h2.store.list_sessions("t", 2, None).await.unwrap().unwrap();
    let p2 = h2
        .store
        .list_sessions("t", 2, p1.next_cursor.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p2.sessions.len(), 2);
    assert_eq!(p2.next_cursor, None);
}

async fn list_refuses_bad_cursors(kind: Kind) {
    let h = Harness::new(kind).await;
    create(&h.store, "acme", "a").await;
    for bad in [
        "",
        "garbage",
        "zz",
        "6869",
        "%%%",
        &"f".repeat(5000),
        "313a2e2e",
    ] {
        assert_eq!(
            h.store.list_sessions("acme", 10, Some(bad)).await.unwrap(),
            Err(BadCursor),
            "{bad:?}"
        );
    }
}

async fn list_is_stable_under_concurrent_inserts(kind: Kind) {
    let h = Harness::new(kind).await;
    for i in 0..6 {
        create(&h.store, "acme", &format!("a{i}")).await;
    }
    let p1 = h
        .store
        .list_sessions("acme", 3, None)
        .await
        .unwrap()
        .unwrap();
    // New sessions arrive between pages.
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..3 {
        create(&h.store, "acme", &format!("b{i}")).await;
    }
    let p2 = h
        .store
        .list_sessions("acme", 3, p1.next_cursor.as_deref())
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = p1
        .sessions
        .iter()
        .chain(&p2.sessions)
        .map(|s| s.session_id.clone())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["a0", "a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(p2.next_cursor, None);
    let fresh = h
        .store
        .list_sessions("acme", 3, None)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = fresh
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(ids, ["b2", "b1", "b0"]);
}

async fn stream_is_capped_by_maxlen(kind: Kind) {
    let config = StoreConfig {
        stream_maxlen: 20,
        ..StoreConfig::default()
    };
    let h = Harness::with_config(kind, config).await;
    let mut last = StreamId::ZERO;
    for i in 0..600 {
        let id = h
            .store
            .add_entry("s", &fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
        assert!(id > last, "ids increase");
        last = id;
    }
    let len = h.store.stream_len("s").await.unwrap();
    // `MAXLEN ~` trims whole nodes (100 entries each in Redis), never below the cap.
    assert!((20..=120).contains(&len), "len {len}");
    assert_eq!(h.store.last_stream_id("s").await.unwrap(), last);
    let entries = h
        .store
        .read_stream("s", StreamId::ZERO, 1000)
        .await
        .unwrap();
    assert_eq!(entries.len() as u64, len);
    assert_eq!(entries.last().unwrap().field("i"), Some("599"));
    // Session events are capped too (300 sessions of one partition on a cluster).
    let stream = h.store.event_stream_of("s0");
    let mut created = 0;
    for i in 0.. {
        let id = format!("s{i}");
        if h.store.event_stream_of(&id) == stream {
            create(&h.store, "t", &id).await;
            created += 1;
            if created == 300 {
                break;
            }
        }
    }
    let len = h.store.stream_len(&stream).await.unwrap();
    assert!((20..=120).contains(&len), "events len {len}");
}

async fn trim_removes_entries_before_min_id(kind: Kind) {
    let h = Harness::new(kind).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            h.store
                .add_entry("s", &fields(&[("i", &i.to_string())]))
                .await
                .unwrap(),
        );
    }
    assert_eq!(h.store.trim_stream_before("s", ids[12]).await.unwrap(), 12);
    let left = h.store.read_stream("s", StreamId::ZERO, 100).await.unwrap();
    assert_eq!(left.len(), 8);
    assert_eq!(left[0].id, ids[12]);
    assert_eq!(h.store.stream_len("s").await.unwrap(), 8);
    assert_eq!(h.store.trim_stream_before("s", ids[12]).await.unwrap(), 0);
    assert_eq!(
        h.store
            .trim_stream_before("missing", ids[12])
            .await
            .unwrap(),
        0
    );
}

async fn read_stream_is_exclusive_and_counted(kind: Kind) {
    let h = Harness::new(kind).await;
    assert!(h
        .store
        .read_stream("s", StreamId::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.store.last_stream_id("s").await.unwrap(), StreamId::ZERO);
    assert_eq!(h.store.stream_len("s").await.unwrap(), 0);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            h.store
                .add_entry("s", &fields(&[("i", &i.to_string()), ("k", "v")]))
                .await
                .unwrap(),
        );
    }
    let got = h.store.read_stream("s", ids[1], 2).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[2], ids[3]]
    );
    assert_eq!(got[0].fields, fields(&[("i", "2"), ("k", "v")]));
    assert!(h
        .store
        .read_stream("s", ids[4], 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.store.last_stream_id("s").await.unwrap(), ids[4]);
}

async fn wait_stream_wakes_on_new_entry_and_times_out(kind: Kind) {
    let h = Harness::new(kind).await;
    let first = h
        .store
        .add_entry("s", &fields(&[("n", "0")]))
        .await
        .unwrap();
    // Times out empty.
    let t0 = Instant::now();
    let got = h
        .store
        .wait_stream("s", first, 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(got.is_empty());
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // Wakes on a new entry long before the block time.
    let store = h.store.clone();
    let waiter = tokio::spawn(async move {
        store
            .wait_stream("s", first, 10, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let id = h
        .store
        .add_entry("s", &fields(&[("n", "1")]))
        .await
        .unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].field("n"), Some("1"));
    // Entries already there are returned at once.
    let t0 = Instant::now();
    let got = h
        .store
        .wait_stream("s", StreamId::ZERO, 10, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(1));
    // Many waiters at once don't stall other calls (dedicated connections on Redis).
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let store = h.store.clone();
            tokio::spawn(
                async move { store.wait_stream("s", id, 1, Duration::from_secs(10)).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    h.store.ping().await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(500));
    let last = h
        .store
        .add_entry("s", &fields(&[("n", "2")]))
        .await
        .unwrap();
    for w in waiters {
        let got = w.await.unwrap().unwrap();
        assert_eq!(got[0].id, last);
    }
}

async fn groups_share_within_and_copy_across(kind: Kind) {
    let h = Harness::new(kind).await;
    for i in 0..10 {
        h.store
            .add_entry("s", &fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    assert!(h
        .store
        .create_group("s", "g1", GroupStart::Beginning)
        .await
        .unwrap());
    assert!(h
        .store
        .create_group("s", "g2", GroupStart::Beginning)
        .await
        .unwrap());
    let block = Duration::from_millis(10);
    let a = h.store.read_group("s", "g1", "c1", 5, block).await.unwrap();
    let b = h
        .store
        .read_group("s", "g1", "c2", 100, block)
        .await
        .unwrap();
    let c = h
        .store
        .read_group("s", "g1", "c2", 100, block)
        .await
        .unwrap();
    assert_eq!(a.len(), 5);
    assert_eq!(b.len(), 5);
    assert!(c.is_empty(), "nothing is delivered twice in a group");
    let ids_a: BTreeSet<_> = a.iter().map(|e| e.id).collect();
    let ids_b: BTreeSet<_> = b.iter().map(|e| e.id).collect();
    assert!(ids_a.is_disjoint(&ids_b));
    let all = h
        .store
        .read_group("s", "g2", "z", 100, block)
        .await
        .unwrap();
    assert_eq!(all.len(), 10, "another group sees every entry");
    let ids_all: BTreeSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids_all, ids_a.union(&ids_b).copied().collect());
    let groups = h.store.groups("s").await.unwrap();
    assert_eq!(groups.len(), 2);
    let g1 = groups.iter().find(|g| g.name == "g1").unwrap();
    assert_eq!(g1.consumers, 2);
    assert_eq!(g1.pending, 10);
    assert_eq!(g1.last_delivered, *ids_b.last().unwrap());
    assert_eq!(g1.lag, Some(0));
    h.store
        .add_entry("s", &fields(&[("i", "10")]))
        .await
        .unwrap();
    h.store
        .add_entry("s", &fields(&[("i", "11")]))
        .await
        .unwrap();
    let g1 = h
        .store
        .groups("s")
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == "g1")
        .unwrap();
    assert_eq!(g1.lag, Some(2));
    assert!(h.store.groups("missing").await.unwrap().is_empty());
}

async fn create_group_is_idempotent_and_new_starts_at_end(kind: Kind) {
    let h = Harness::new(kind).await;
    // MKSTREAM: the stream need not exist.
    assert!(h
        .store
        .create_group("fresh", "g", GroupStart::New)
        .await
        .unwrap());
    assert!(!h
        .store
        .create_group("fresh", "g", GroupStart::New)
        .await
        .unwrap());
    assert!(!h
        .store
        .create_group("fresh", "g", GroupStart::Beginning)
        .await
        .unwrap());
    assert_eq!(h.store.groups("fresh").await.unwrap()[0].lag, Some(0));
    h.store
        .add_entry("s", &fields(&[("old", "1")]))
        .await
        .unwrap();
    assert!(h
        .store
        .create_group("s", "late", GroupStart::New)
        .await
        .unwrap());
    let new = h
        .store
        .add_entry("s", &fields(&[("new", "1")]))
        .await
        .unwrap();
    let got = h
        .store
        .read_group("s", "late", "c", 10, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [new]);
}

async fn pending_entries_and_ack(kind: Kind) {
    let h = Harness::new(kind).await;
    h.store
        .create_group("s", "g", GroupStart::New)
        .await
        .unwrap();
    for i in 0..3 {
        h.store
            .add_entry("s", &fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    let got = h
        .store
        .read_group("s", "g", "c1", 10, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    // A restarted worker sees its own unacknowledged entries, not others'.
    let mine = h
        .store
        .read_own_pending("s", "g", "c1", StreamId::ZERO, 10)
        .await
        .unwrap();
    let mine: Vec<StreamEntry> = mine.into_iter().map(|c| c.entry).collect();
    assert_eq!(mine, got);
    assert!(h
        .store
        .read_own_pending("s", "g", "c2", StreamId::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        h.store
            .read_own_pending("s", "g", "c1", StreamId::ZERO, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        h.store
            .ack("s", "g", &[got[0].id, got[1].id])
            .await
            .unwrap(),
        2
    );
    assert_eq!(h.store.ack("s", "g", &[got[0].id]).await.unwrap(), 0);
    let mine = h
        .store
        .read_own_pending("s", "g", "c1", StreamId::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|c| c.entry.id).collect::<Vec<_>>(),
        [got[2].id]
    );
    assert_eq!(h.store.groups("s").await.unwrap()[0].pending, 1);
    assert_eq!(h.store.ack("s", "nogroup", &[got[2].id]).await.unwrap(), 0);
}

async fn autoclaim_transfers_idle_entries(kind: Kind) {
    let h = Harness::new(kind).await;
    h.store
        .create_group("s", "g", GroupStart::New)
        .await
        .unwrap();
    for i in 0..3 {
        h.store
            .add_entry("s", &fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    let got = h
        .store
        .read_group("s", "g", "dead", 10, Duration::from_millis(10))
        .await
        .unwrap();
    // Not idle long enough: nothing moves.
    let none = h
        .store
        .autoclaim(
            "s",
            "g",
            "alive",
            Duration::from_secs(60),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    assert!(none.claimed.is_empty());
    assert!(none.deleted.is_empty());
    assert_eq!(none.next, StreamId::ZERO);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claim = h
        .store
        .autoclaim(
            "s",
            "g",
            "alive",
            Duration::from_millis(100),
            StreamId::ZERO,
            2,
        )
        .await
        .unwrap();
    assert_eq!(claim.claimed.len(), 2);
    assert_eq!(claim.claimed[0].entry, got[0]);
    assert!(claim.claimed.iter().all(|c| c.delivery_count == 2));
    assert_eq!(claim.next, got[2].id, "resume where the scan stopped");
    let rest = h
        .store
        .autoclaim(
            "s",
            "g",
            "alive",
            Duration::from_millis(100),
            claim.next,
            10,
        )
        .await
        .unwrap();
    assert_eq!(rest.claimed.len(), 1);
    assert_eq!(rest.next, StreamId::ZERO, "scan wrapped around");
    // Ownership moved.
    assert!(h
        .store
        .read_own_pending("s", "g", "dead", StreamId::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        h.store
            .read_own_pending("s", "g", "alive", StreamId::ZERO, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    // Just claimed: not idle anymore.
    let again = h
        .store
        .autoclaim(
            "s",
            "g",
            "other",
            Duration::from_millis(100),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    assert!(again.claimed.is_empty());
    // Claiming again increments the delivery count further.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let third = h
        .store
        .autoclaim(
            "s",
            "g",
            "other",
            Duration::from_millis(100),
            StreamId::ZERO,
            10,
        )
        .await
        .unwrap();
    // read_own_pending above counted as a delivery too (as XREADGROUP 0 does).
    assert!(
        third.claimed.iter().all(|c| c.delivery_count == 4),
        "{third:?}"
    );
}

async fn autoclaim_reports_trimmed_entries_as_deleted(kind: Kind) {
    let h = Harness::new(kind).await;
    h.store
        .create_group("s", "g", GroupStart::New)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            h.store
                .add_entry("s", &fields(&[("i", &i.to_string())]))
                .await
                .unwrap(),
        );
    }
    h.store
        .read_group("s", "g", "c1", 10, Duration::from_millis(10))
        .await
        .unwrap();
    h.store.trim_stream_before("s", ids[2]).await.unwrap();
    // Trimmed entries are reported whatever their idle time, and count against COUNT.
    let first = h
        .store
        .autoclaim("s", "g", "c2", Duration::from_secs(3600), StreamId::ZERO, 1)
        .await
        .unwrap();
    assert_eq!(first.deleted, [ids[0]]);
    assert!(first.claimed.is_empty());
    assert_eq!(first.next, ids[1]);
    let rest = h
        .store
        .autoclaim("s", "g", "c2", Duration::ZERO, first.next, 10)
        .await
        .unwrap();
    assert_eq!(rest.deleted, [ids[1]]);
    let claimed: Vec<_> = rest.claimed.iter().map(|c| c.entry.id).collect();
    assert_eq!(claimed, &ids[2..]);
    // They are gone from the PEL.
    assert_eq!(h.store.groups("s").await.unwrap()[0].pending, 3);
    let again = h
        .store
        .autoclaim("s", "g", "c3", Duration::ZERO, StreamId::ZERO, 10)
        .await
        .unwrap();
    assert!(again.deleted.is_empty());
}

async fn group_calls_on_missing_group_fail_with_no_group(kind: Kind) {
    let h = Harness::new(kind).await;
    h.store
        .add_entry("s", &fields(&[("a", "1")]))
        .await
        .unwrap();
    let block = Duration::from_millis(10);
    for stream in ["s", "missing-stream"] {
        let e = h
            .store
            .read_group(stream, "nog", "c", 1, block)
            .await
            .unwrap_err();
        assert!(matches!(&e, StoreError::NoGroup(g) if g == "nog"), "{e:?}");
        assert_eq!(e.kind(), "no_group");
        let e = h
            .store
            .read_own_pending(stream, "nog", "c", StreamId::ZERO, 1)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NoGroup(_)), "{e:?}");
        let e = h
            .store
            .autoclaim(stream, "nog", "c", Duration::ZERO, StreamId::ZERO, 1)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NoGroup(_)), "{e:?}");
    }
}

async fn read_group_blocks_until_an_entry_arrives(kind: Kind) {
    let h = Harness::new(kind).await;
    h.store
        .create_group("s", "g", GroupStart::New)
        .await
        .unwrap();
    // A zero block does not wait, on either call.
    let t0 = Instant::now();
    let zero = Duration::ZERO;
    assert!(h
        .store
        .read_group("s", "g", "c", 10, zero)
        .await
        .unwrap()
        .is_empty());
    let got = h
        .store
        .wait_stream("s", StreamId::ZERO, 10, zero)
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(t0.elapsed() < Duration::from_millis(200));
    let t0 = Instant::now();
    let none = h
        .store
        .read_group("s", "g", "c", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(250));
    let store = h.store.clone();
    let reader = tokio::spawn(async move {
        store
            .read_group("s", "g", "c", 10, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let id = h
        .store
        .add_entry("s", &fields(&[("x", "1")]))
        .await
        .unwrap();
    let got = reader.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
}

async fn dead_letter_moves_and_acks(kind: Kind) {
    let h = Harness::new(kind).await;
    // The session's partition stream on a cluster; `transcription_events` elsewhere.
    let stream = h.store.event_stream_of("poison");
    let dead_stream = format!("{stream}:dead");
    if kind != Kind::Cluster {
        assert_eq!(stream, EVENT_STREAM);
        assert_eq!(dead_stream, DEAD_LETTER_STREAM);
    } else {
        assert!(stream.starts_with("{p"), "{stream}");
    }
    h.store
        .create_group(&stream, "g", GroupStart::New)
        .await
        .unwrap();
    create(&h.store, "acme", "poison").await;
    let got = h
        .store
        .read_group(&stream, "g", "c", 10, Duration::from_millis(10))
        .await
        .unwrap();
    let entry = &got[0];
    let dead_id = h
        .store
        .dead_letter(&stream, "g", entry, "sink failed: 500", 6)
        .await
        .unwrap();
    let dead = h
        .store
        .read_stream(&dead_stream, StreamId::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, dead_id);
    let d = &dead[0];
    for (k, v) in &entry.fields {
        assert_eq!(d.field(k), Some(v.as_str()), "original field {k} kept");
    }
    assert_eq!(d.field("reason"), Some("sink failed: 500"));
    assert_eq!(d.field("delivery_count"), Some("6"));
    assert_eq!(d.field("original_id"), Some(entry.id.to_string().as_str()));
    assert_eq!(d.field("group"), Some("g"));
    assert_eq!(h.store.groups(&stream).await.unwrap()[0].pending, 0);
    assert!(h
        .store
        .read_own_pending(&stream, "g", "c", StreamId::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn locks_are_exclusive_and_token_checked(kind: Kind) {
    let h = Harness::new(kind).await;
    let ttl = Duration::from_secs(30);
    let a = h
        .store
        .try_lock("s1", "stream", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.try_lock("s1", "stream", ttl).await.unwrap(), None);
    // Another purpose or session is another lock.
    let b = h
        .store
        .try_lock("s1", "finalize", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a, b);
    assert!(h
        .store
        .try_lock("s2", "stream", ttl)
        .await
        .unwrap()
        .is_some());
    let wrong = LockToken("not-the-token".into());
    assert!(!h.store.unlock("s1", "stream", &wrong).await.unwrap());
    assert!(!h
        .store
        .extend_lock("s1", "stream", &wrong, ttl)
        .await
        .unwrap());
    assert!(!h.store.unlock("s1", "stream", &b).await.unwrap());
    assert_eq!(h.store.try_lock("s1", "stream", ttl).await.unwrap(), None);
    assert!(h.store.unlock("s1", "stream", &a).await.unwrap());
    assert!(!h.store.unlock("s1", "stream", &a).await.unwrap());
    assert!(!h.store.extend_lock("s1", "stream", &a, ttl).await.unwrap());
    let c = h
        .store
        .try_lock("s1", "stream", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a, c);
}

async fn locks_expire_and_extend(kind: Kind) {
    let h = Harness::new(kind).await;
    let short = Duration::from_millis(300);
    let a = h.store.try_lock("s", "p", short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.store.extend_lock("s", "p", &a, short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 400 ms after taking it, alive thanks to the extension.
    assert_eq!(h.store.try_lock("s", "p", short).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let b = h.store.try_lock("s", "p", short).await.unwrap();
    assert!(b.is_some(), "expired lock can be taken");
    assert!(!h.store.extend_lock("s", "p", &a, short).await.unwrap());
    assert!(!h.store.unlock("s", "p", &a).await.unwrap());
}

async fn stats_report_stream_length(kind: Kind) {
    let h = Harness::new(kind).await;
    for i in 0..3 {
        create(&h.store, "t", &format!("s{i}")).await;
    }
    let stats = h.store.stats().await.unwrap();
    assert_eq!(stats.stream_length, 3);
    assert!(stats.used_memory_bytes > 0);
    assert_eq!(stats.evicted_keys, 0);
}

async fn events_carry_the_documented_fields(kind: Kind) {
    let h = Harness::new(kind).await;
    let s = create(&h.store, "acme", "ev").await;
    h.store
        .append_segment("acme", "ev", &timed_seg("hi", 10, 20))
        .await
        .unwrap();
    h.store
        .append_segment("acme", "ev", &seg("there"))
        .await
        .unwrap();
    h.store.complete_session("acme", "ev").await.unwrap();
    h.store.delete_session("acme", "ev").await.unwrap();
    let raw = h
        .store
        .read_stream(&h.store.event_stream_of("ev"), StreamId::ZERO, 100)
        .await
        .unwrap();
    let names = |e: &StreamEntry| e.fields.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let base = ["event_type", "session_id", "tenant_id", "timestamp"];
    let expect: [&[&str]; 5] = [
        &["language"],
        &["seq", "text", "start_ms", "end_ms"],
        &["seq", "text", "start_ms", "end_ms"],
        &["transcript", "segment_count", "transcript_truncated"],
        &[],
    ];
    assert_eq!(raw.len(), 5);
    for (e, extra) in raw.iter().zip(expect) {
        let want: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        assert_eq!(names(e), want);
        let ts = e.field("timestamp").unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(e.field("session_id"), Some("ev"));
        assert_eq!(e.field("tenant_id"), Some("acme"));
    }
    assert_eq!(raw[0].field("event_type"), Some("session_started"));
    assert_eq!(raw[0].field("language"), Some(s.language.as_str()));
    assert_eq!(raw[1].field("seq"), Some("0"));
    assert_eq!(raw[1].field("start_ms"), Some("10"));
    assert_eq!(raw[2].field("seq"), Some("1"));
    assert_eq!(raw[2].field("start_ms"), Some(""));
    assert_eq!(raw[3].field("transcript"), Some("hi there"));
    assert_eq!(raw[3].field("segment_count"), Some("2"));
    assert_eq!(raw[3].field("transcript_truncated"), Some("false"));
    assert_eq!(raw[4].field("event_type"), Some("session_deleted"));
    // The JSON form has typed numbers.
    assert_eq!(raw[1].to_json()["seq"], 0);
    let _ = Arc::clone(&h.store);
}
