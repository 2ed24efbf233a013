//! Property test: random sequences of session operations across two tenants and a few
//! ids give the same observable results on `MemoryStore` and `RedisStore` (timestamps
//! and stream ids normalised away), including the events published.

mod support;

use std::sync::Arc;

use earshot_core::keys::EVENT_STREAM;
use earshot_core::{Event, EventKind, NewSegment, Session, SessionStatus, StreamId};
use earshot_store::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::*;

const TENANTS: [&str; 2] = ["acme", "globex"];
const IDS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize, usize),
    Append(usize, usize, String, Option<i64>),
    Complete(usize, usize),
    Delete(usize, usize),
    Get(usize, usize),
    Transcript(usize, usize),
    List(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS.len();
    let i = 0..IDS.len();
    prop_oneof![
        2 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::Create(t, i)),
        4 => (t.clone(), i.clone(), "[a-z]{1,6}( [a-z]{1,4})?", proptest::option::of(0i64..10_000))
            .prop_map(|(t, i, s, m)| Op::Append(t, i, s, m)),
        1 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::Complete(t, i)),
        1 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::Delete(t, i)),
        1 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::Get(t, i)),
        1 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::Transcript(t, i)),
        1 => (t, 1usize..4).prop_map(|(t, l)| Op::List(t, l)),
    ]
}

/// A session without its timestamps.
fn norm(s: &Session) -> String {
    format!(
        "{}/{}/{}/{:?}/completed_at={}/n={}/{:?}",
        s.session_id,
        s.tenant_id,
        s.language,
        s.status,
        s.completed_at.is_some(),
        s.segment_count,
        s.metadata
    )
}

/// Runs the operations and describes every observable result.
async fn run(store: &DynStore, ops: &[Op]) -> Vec<String> {
    let mut out = Vec::new();
    for op in ops {
        let line = match op {
            Op::Create(t, i) => {
                match store
                    .create_session(new_session(TENANTS[*t], IDS[*i]))
                    .await
                    .unwrap()
                {
                    CreateOutcome::Created(s) => format!("created {}", norm(&s)),
                    CreateOutcome::AlreadyExists => "exists".into(),
                }
            }
            Op::Append(t, i, text, start) => {
                let seg = NewSegment {
                    text: text.clone(),
                    start_ms: *start,
                    end_ms: start.map(|s| s + 100),
                    words: Vec::new(),
                };
                match store
                    .append_segment(TENANTS[*t], IDS[*i], &seg)
                    .await
                    .unwrap()
                {
                    AppendOutcome::Appended { seq, .. } => format!("appended {seq}"),
                    other => format!("{other:?}"),
                }
            }
            Op::Complete(t, i) => {
                match store.complete_session(TENANTS[*t], IDS[*i]).await.unwrap() {
                    CompleteOutcome::Completed {
                        session,
                        transcript,
                        newly_completed,
                    } => {
                        assert_eq!(session.status, SessionStatus::Completed);
                        format!(
                            "completed {newly_completed} {} {transcript:?}",
                            norm(&session)
                        )
                    }
                    CompleteOutcome::NotFound => "complete: not found".into(),
                }
            }
            Op::Delete(t, i) => format!(
                "deleted {}",
                store.delete_session(TENANTS[*t], IDS[*i]).await.unwrap()
            ),
            Op::Get(t, i) => format!(
                "get {:?}",
                store
                    .get_session(TENANTS[*t], IDS[*i])
                    .await
                    .unwrap()
                    .as_ref()
                    .map(norm)
            ),
            Op::Transcript(t, i) => format!(
                "transcript {:?}",
                store.transcript(TENANTS[*t], IDS[*i]).await.unwrap()
            ),
            Op::List(t, limit) => {
                // Page through everything; order within one millisecond may differ
                // between runs, so compare the set, and check paging is consistent.
                let mut all = Vec::new();
                let mut cursor: Option<String> = None;
                let mut pages = 0;
                loop {
                    let page = store
                        .list_sessions(TENANTS[*t], *limit, cursor.as_deref())
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(page.sessions.len() <= *limit);
                    pages += 1;
                    all.extend(page.sessions.iter().map(norm));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                    assert!(pages < 100, "paging does not end");
                }
                let n = all.len();
                all.sort();
                all.dedup();
                assert_eq!(all.len(), n, "a session listed twice");
                format!("list {all:?}")
            }
        };
        out.push(line);
    }
    // The published events, in order, without timestamps.
    let events = store
        .read_stream(EVENT_STREAM, StreamId::ZERO, 10_000)
        .await
        .unwrap();
    for e in events {
        let ev = Event::from_fields(&e.fields).unwrap();
        let kind = match ev.kind {
            EventKind::SessionStarted { language } => format!("started {language}"),
            k @ EventKind::TranscriptSegment { .. } => format!("{k:?}"),
            k @ (EventKind::TranscriptCompleted { .. } | EventKind::LanguageDetected { .. }) => {
                format!("{k:?}")
            }
            EventKind::SessionDeleted => "deleted".into(),
        };
        out.push(format!("event {} {} {kind}", ev.tenant_id, ev.session_id));
    }
    out
}

#[test]
fn memory_and_redis_agree_on_random_operation_sequences() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let redis_store: DynStore = rt.block_on(async {
        Arc::new(
            RedisStore::connect(&server.url(), Default::default())
                .await
                .unwrap(),
        )
    });
    let flush = std::sync::Mutex::new(
        redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut *flush.lock().unwrap())
            .unwrap();
        let memory: DynStore = Arc::new(MemoryStore::default());
        let (m, r) =
            rt.block_on(async { (run(&memory, &ops).await, run(&redis_store, &ops).await) });
        prop_assert_eq!(m, r);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
