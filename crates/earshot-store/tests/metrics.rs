//! The store's metrics as a Prometheus scrape would see them: call
//! durations by command on both backends, errors by kind, and the in-flight bound.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use earshot_core::config::StoreConfig;
use earshot_core::StreamId;
use earshot_store::metrics::{COMMAND_DURATION, ERRORS, POOL_EXHAUSTED, POOL_IN_USE};
use earshot_store::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::*;

/// One global recorder for this test binary.
fn snapshotter() -> &'static Snapshotter {
    static S: OnceLock<Snapshotter> = OnceLock::new();
    S.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("install the debugging recorder");
        snapshotter
    })
}

/// Totals since the recorder was installed, per metric and label set. The debugging
/// recorder drains every value on each snapshot (and tests run in parallel), so every
/// read folds the snapshot into these totals.
/// A metric name and its labels.
type MetricId = (String, Vec<(String, String)>);

fn totals() -> &'static Mutex<HashMap<MetricId, f64>> {
    static T: OnceLock<Mutex<HashMap<MetricId, f64>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// `name{label=value}` so far: a counter's count, a histogram's number of samples, or
/// 1 if a gauge was ever set; summed over label sets that match.
fn read(name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let mut totals = totals().lock().unwrap();
    for (k, _, _, v) in snapshotter().snapshot().into_vec() {
        let key = k.key();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let add = match v {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(_) => 0.0,
            DebugValue::Histogram(ref h) => h.len() as f64,
        };
        let entry = totals.entry((key.name().to_owned(), labels)).or_insert(0.0);
        if matches!(v, DebugValue::Gauge(_)) {
            *entry = 1.0;
        } else {
            *entry += add;
        }
    }
    let mut found = None;
    for ((n, labels), v) in totals.iter() {
        let matches = n == name
            && label.is_none_or(|(l, want)| labels.iter().any(|(k, x)| k == l && x == want));
        if matches {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

async fn record_calls_and_errors(kind: Kind) {
    snapshotter();
    let h = Harness::new(kind).await;
    let before = read(COMMAND_DURATION, Some(("command", "transcript"))).unwrap_or(0.0);
    create(&h.store, "acme", "m").await;
    h.store
        .append_segment("acme", "m", &seg("x"))
        .await
        .unwrap();
    h.store.transcript("acme", "m").await.unwrap();
    h.store.transcript("acme", "m").await.unwrap();
    let samples = read(COMMAND_DURATION, Some(("command", "transcript"))).unwrap();
    assert!(samples >= before + 2.0, "{samples}");
    let before = read(ERRORS, Some(("kind", "no_group"))).unwrap_or(0.0);
    let e = h
        .store
        .autoclaim("s", "nope", "c", Duration::ZERO, StreamId::ZERO, 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "no_group");
    let after = read(ERRORS, Some(("kind", "no_group"))).unwrap();
    assert!(after >= before + 1.0);
}

#[tokio::test]
async fn memory_records_call_durations_and_errors() {
    record_calls_and_errors(Kind::Memory).await;
}

#[tokio::test]
async fn redis_records_call_durations_and_errors() {
    record_calls_and_errors(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bounds_in_flight_commands_and_counts_waits() {
    snapshotter();
    let server = RedisServer::start();
    let limits = RedisLimits {
        max_in_flight: 2,
        ..RedisLimits::default()
    };
    let store = Arc::new(
        RedisStore::connect_with_limits(&server.url(), StoreConfig::default(), limits)
            .await
            .unwrap(),
    );
    let before = read(POOL_EXHAUSTED, None).unwrap_or(0.0);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .add_entry("s", &fields(&[("i", &i.to_string())]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Everything got through, some callers had to wait, and nothing is in flight now.
    assert_eq!(store.stream_len("s").await.unwrap(), 50);
    let exhausted = read(POOL_EXHAUSTED, None).unwrap();
    assert!(exhausted > before, "{exhausted} vs {before}");
    assert!(read(POOL_IN_USE, None).is_some());
}

#[tokio::test]
async fn redis_outage_errors_are_counted_by_kind() {
    snapshotter();
    let mut server = RedisServer::start();
    let config = StoreConfig {
        command_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    let store = RedisStore::connect(&server.url(), config).await.unwrap();
    store.ping().await.unwrap();
    server.stop_refusing();
    let count = || {
        read(ERRORS, Some(("kind", "unavailable"))).unwrap_or(0.0)
            + read(ERRORS, Some(("kind", "timeout"))).unwrap_or(0.0)
    };
    let before = count();
    assert!(store.ping().await.is_err());
    assert!(count() >= before + 1.0);
}
