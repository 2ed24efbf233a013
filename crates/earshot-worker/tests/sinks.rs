//! The real sinks end to end through a worker on the embedded store: the webhook sink
//! against a local axum server (signatures, retries, dead-lettering by status), the
//! JSONL file sink through `earshot_worker::run`, and the published metrics.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use common::webhook::*;
use common::*;
use earshot_store::{DynStore, StreamEntry};
use earshot_worker::sink::{signature, WebhookSink};
use earshot_worker::{Sink, SinkError, SinkSpec, SinkSpecError, WebhookOptions, WorkerError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

/// Verifies the way a receiver would: HMAC-SHA256 over the raw body, constant-time.
fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn memory() -> DynStore {
    env(Backend::Memory).await.store
}

fn run_worker(store: &DynStore, c: earshot_worker::WorkerConfig, url: &str) -> Running {
    let sink = WebhookSink::new(url, c.webhook.clone()).expect("webhook sink");
    let worker = earshot_worker::Worker::new(c, store.clone(), Arc::new(sink)).unwrap();
    let stats = worker.stats();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    Running {
        handle,
        stats,
        shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_recovers_from_500s() {
    let store = memory().await;
    let published = publish(&store, "s", 5).await;
    // Each event: 500, 500, then 204 (within one delivery's 3 attempts).
    let (url, rx) = receiver(Arc::new(|_, n, _| {
        if n <= 2 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        }
    }))
    .await;
    let mut c = cfg("hooks", "w");
    c.webhook = webhook_opts();
    let w = run_worker(&store, c, &url);
    wait_until("all acked", || w.stats.snapshot().acked >= 5).await;
    let stats = w.stop().await;
    assert_eq!(stats.delivered, 5);
    assert_eq!(stats.dead_lettered, 0);

    let want: Vec<String> = published.iter().map(|id| id.to_string()).collect();
    assert_eq!(rx.accepted(), want, "each event accepted once, in order");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 15);
    for r in &reqs {
        assert!(
            verify(SECRET, &r.body, &r.signature),
            "signature verifies: {r:?}"
        );
        assert!(!verify("wrong secret", &r.body, &r.signature));
        assert_eq!(r.signature, signature(SECRET.as_bytes(), &r.body));
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            json["id"],
            r.event_id.as_str(),
            "the body carries the idempotency key"
        );
        assert_eq!(json["event_type"], "transcript_segment");
        assert_eq!(json["session_id"], "s");
    }
    let group = group(&store, "hooks").await.unwrap();
    assert_eq!(group.pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_that_never_recovers_is_dead_lettered() {
    let store = memory().await;
    let published = publish(&store, "s", 2).await;
    let (url, rx) = receiver(Arc::new(|_, _, _| StatusCode::SERVICE_UNAVAILABLE)).await;
    let mut c = cfg("hooks", "w");
    c.webhook = WebhookOptions {
        attempts: 2,
        ..webhook_opts()
    };
    c.max_deliveries = 2;
    c.min_idle = Duration::from_millis(100);
    c.claim_interval = Some(Duration::from_millis(20));
    let w = run_worker(&store, c, &url);
    wait_until("both dead-lettered", || {
        w.stats.snapshot().dead_lettered >= 2
    })
    .await;
    let stats = w.stop().await;
    assert_eq!(stats.delivered, 0);
    let dead = dead_letters(&store).await;
    for id in &published {
        // 2 deliveries of 2 attempts each, then the dead-letter stream.
        assert_eq!(rx.count_for(&id.to_string()), 4);
        let reason = dead[id].field("reason").unwrap_or_default();
        assert!(reason.contains("503"), "{reason}");
    }
    assert_eq!(group(&store, "hooks").await.unwrap().pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_400_is_dead_lettered_at_once() {
    let store = memory().await;
    let published = publish(&store, "s", 3).await;
    let bad = published[1].to_string();
    let refused = bad.clone();
    let (url, rx) = receiver(Arc::new(move |id, _, _| {
        if id == refused {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }))
    .await;
    let mut c = cfg("hooks", "w");
    c.webhook = webhook_opts();
    let w = run_worker(&store, c, &url);
    wait_until("done", || {
        let s = w.stats.snapshot();
        s.dead_lettered == 1 && s.acked == 2
    })
    .await;
    w.stop().await;
    assert_eq!(rx.count_for(&bad), 1, "a 400 is never retried");
    let dead = dead_letters(&store).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[&published[1]].field("reason").unwrap_or_default();
    assert!(reason.contains("400"), "{reason}");
    assert_eq!(dead[&published[1]].field("delivery_count"), Some("1"));
}

#[tokio::test]
async fn webhook_network_errors_are_retryable() {
    // A port nobody listens on: connection refused, every attempt.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sink = WebhookSink::new(&format!("http://127.0.0.1:{port}/"), webhook_opts()).unwrap();
    let entry = StreamEntry {
        id: earshot_core::StreamId::new(1, 0),
        fields: vec![("event_type".into(), "x".into())],
    };
    match sink.deliver(&entry).await {
        Err(SinkError::Retryable(m)) => assert!(m.contains("after 3 attempts"), "{m}"),
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_sink_appends_durable_lines_through_run() {
    let store = memory().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut published = publish(&store, "s", 7).await;

    let start = |store: DynStore| {
        let mut c = cfg("files", "w");
        c.sink = SinkSpec::parse(&format!("jsonl:{}", path.display())).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(earshot_worker::run(c, store, shutdown.clone()));
        (task, shutdown)
    };
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
            .collect()
    };

    let (task, shutdown) = start(store.clone());
    wait_until("7 lines", || lines().len() >= 7).await;
    shutdown.cancel();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.delivered, 7);

    // A second run appends; it never truncates.
    published.extend(publish(&store, "t", 3).await);
    let (task, shutdown) = start(store.clone());
    wait_until("10 lines", || lines().len() >= 10).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let got = lines();
    let ids: Vec<String> = got
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = published.iter().map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    assert_eq!(got[2]["text"], "s 2");
    assert_eq!(got[2]["seq"], 2);
    assert_eq!(got[2]["start_ms"], 2000);
    assert!(got[2]["end_ms"].is_null());
    assert_eq!(got[8]["session_id"], "t");
}

#[tokio::test]
async fn run_refuses_what_cannot_work() {
    let store = memory().await;
    let mut c = cfg("g", "w");
    c.sink = SinkSpec::parse("webhook:http://127.0.0.1:9/x").unwrap();
    let err = earshot_worker::run(c, store.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkerError::Sink(SinkSpecError::MissingSecret)),
        "{err}"
    );

    let mut c = cfg("g", "w");
    c.batch = 0;
    let err = earshot_worker::run(c, store.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkerError::Config(_)), "{err}");

    let mut c = cfg("g", "w");
    c.sink = SinkSpec::Jsonl("/nonexistent-dir/x/events.jsonl".into());
    let err = earshot_worker::run(c, store, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/x/events.jsonl"),
        "{err}"
    );
}

// ---- metrics ------------------------------------------------------------------------

/// A minimal recorder: every counter and gauge is an atomic, keyed `name{labels}`.
#[derive(Default)]
struct TestRecorder {
    cells: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

impl TestRecorder {
    fn cell(&self, key: &metrics::Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.cells.lock().unwrap().entry(name).or_default().clone()
    }

    fn counter(&self, name: &str) -> u64 {
        self.cells
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn gauge(&self, name: &str) -> Option<f64> {
        self.cells
            .lock()
            .unwrap()
            .get(name)
            .map(|c| f64::from_bits(c.load(Ordering::Relaxed)))
    }
}

impl metrics::Recorder for &'static TestRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn recorder() -> &'static TestRecorder {
    static R: OnceLock<&'static TestRecorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static TestRecorder = Box::leak(Box::default());
        let _ = metrics::set_global_recorder(r);
        r
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_gauge_and_counters_are_published() {
    let rec = recorder();
    let store = memory().await;
    let record = Arc::new(Record::default());
    let bad_published = publish(&store, "s", 1).await;
    let bad = bad_published[0];
    let script: Script = Arc::new(move |e, _| {
        if e.id == bad {
            Err(SinkError::Permanent("nope".into()))
        } else {
            Ok(())
        }
    });
    // A sink slow enough that lag is visible while it works.
    let mut sink = TestSink::scripted("w", &record, script);
    sink.delay = Duration::from_millis(5);
    let mut c = cfg("metered", "w");
    c.batch = 2;
    let w = spawn(c, &store, sink);
    publish(&store, "s", 60).await;
    wait_until("lag gauge shows a backlog", || {
        rec.gauge("earshot_consumer_group_lag{group=metered}")
            .is_some_and(|v| v >= 5.0)
    })
    .await;
    wait_until("everything processed", || w.stats.snapshot().acked >= 60).await;
    wait_until("lag gauge back to 0", || {
        rec.gauge("earshot_consumer_group_lag{group=metered}") == Some(0.0)
    })
    .await;
    w.stop().await;
    assert_eq!(
        rec.counter("earshot_worker_events_delivered_total{group=metered}"),
        60
    );
    assert_eq!(
        rec.counter("earshot_worker_events_dead_lettered_total{group=metered}"),
        1
    );
    assert_eq!(
        rec.counter("earshot_worker_events_failed_total{group=metered,kind=permanent}"),
        1
    );
}
