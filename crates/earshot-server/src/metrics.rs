//! Prometheus metrics: the recorder behind `/metrics`, the HTTP layer's
//! counters and histograms, and the poller that publishes store figures. Other crates
//! record through the `metrics` facade; this module owns the exporter.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use earshot_store::DynStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets for latency histograms, in seconds (sub-millisecond store calls to 30 s
/// decodes), so p95/p99 can be read off with `histogram_quantile`.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Buckets for the real-time factor (processing time / audio time).
const RTF_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0,
];

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("earshot_asr_realtime_factor".into()),
                        RTF_BUCKETS,
                    )
                })
                .expect("static bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests that embed the server):
            // then this handle renders only what it sees, which is still valid output.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "earshot_http_request_duration_seconds",
        "HTTP request latency by route"
    );
    describe_counter!(
        "earshot_http_requests_total",
        "HTTP requests by route and status"
    );
    describe_histogram!(
        "earshot_redis_command_duration_seconds",
        "store call latency by call"
    );
    describe_counter!("earshot_redis_errors_total", "failed store calls by kind");
    describe_gauge!("earshot_redis_pool_in_use", "store calls in flight");
    describe_counter!(
        "earshot_redis_pool_exhausted_total",
        "store calls that waited for a slot"
    );
    describe_gauge!("earshot_redis_used_memory_bytes", "INFO memory used_memory");
    describe_gauge!(
        "earshot_redis_evicted_keys_total",
        "INFO stats evicted_keys"
    );
    describe_gauge!("earshot_event_stream_length", "XLEN transcription_events");
    describe_gauge!(
        "earshot_consumer_group_lag",
        "entries not yet delivered to a group"
    );
    describe_gauge!("earshot_active_streams", "open WebSocket audio sessions");
    // Touch the gauges so they show up before the first poll / first stream.
    metrics::gauge!("earshot_active_streams").set(0.0);
    metrics::gauge!("earshot_redis_pool_in_use").increment(0.0);
    metrics::counter!("earshot_redis_pool_exhausted_total").increment(0);
}

/// Counts and times every request by its route template (never the raw path, which
/// would explode label cardinality) and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("earshot_http_request_duration_seconds", "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("earshot_http_requests_total", "route" => route, "status" => status)
        .increment(1);
    resp
}

/// Consumer-group lag per group (summed over partitions) and, when the events are
/// partitioned, stream length and lag per partition stream.
async fn poll_partitions(store: &DynStore) {
    let streams = store.event_streams();
    let partitioned = streams.len() > 1;
    let mut totals: std::collections::BTreeMap<String, u64> = Default::default();
    for stream in &streams {
        if partitioned {
            if let Ok(len) = store.stream_len(stream).await {
                metrics::gauge!("earshot_event_stream_length", "stream" => stream.clone())
                    .set(len as f64);
            }
        }
        let Ok(groups) = store.groups(stream).await else {
            continue;
        };
        for g in groups {
            let lag = g.lag.unwrap_or(g.pending);
            *totals.entry(g.name.clone()).or_default() += lag;
            if partitioned {
                metrics::gauge!("earshot_consumer_group_lag", "group" => g.name, "stream" => stream.clone())
                    .set(lag as f64);
            }
        }
    }
    for (group, lag) in totals {
        metrics::gauge!("earshot_consumer_group_lag", "group" => group).set(lag as f64);
    }
}

/// Drains recorded histogram samples into their buckets every `every` until shutdown.
/// The exporter otherwise keeps every raw sample until the next scrape of `/metrics`,
/// so a server nobody scrapes would grow by a few dozen bytes per request, forever.
pub async fn upkeep(every: Duration, shutdown: CancellationToken) {
    let handle = install();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        handle.run_upkeep();
    }
}

/// Polls `INFO`, `XLEN` and `XINFO GROUPS` into gauges until shutdown. On a cluster
/// each partition stream also gets its own `earshot_event_stream_length{stream}` and
/// `earshot_consumer_group_lag{group,stream}` series; the unlabelled length and the
/// `{group}` lag are the totals over all partitions.
pub async fn poll_store(store: DynStore, every: Duration, shutdown: CancellationToken) {
    loop {
        match store.stats().await {
            Ok(s) => {
                metrics::gauge!("earshot_redis_used_memory_bytes").set(s.used_memory_bytes as f64);
                metrics::gauge!("earshot_redis_evicted_keys_total").set(s.evicted_keys as f64);
                metrics::gauge!("earshot_event_stream_length").set(s.stream_length as f64);
            }
            Err(e) => tracing::debug!(error = %e, "stats poll failed"),
        }
        poll_partitions(&store).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
