//! The worker's metric names in one place, published through the `metrics`
//! facade so the binary chooses the exporter.

/// Gauge: entries not yet delivered to the group (`XINFO GROUPS` lag).
pub const CONSUMER_GROUP_LAG: &str = "earshot_consumer_group_lag";
/// Gauge: entries delivered to the group but not yet acknowledged.
pub const CONSUMER_GROUP_PENDING: &str = "earshot_consumer_group_pending";
/// Counter: entries the sink accepted and the worker acknowledged.
pub const EVENTS_DELIVERED: &str = "earshot_worker_events_delivered_total";
/// Counter: failed deliveries, by `kind` (`retryable` or `permanent`).
pub const EVENTS_FAILED: &str = "earshot_worker_events_failed_total";
/// Counter: entries moved to the dead-letter stream.
pub const EVENTS_DEAD_LETTERED: &str = "earshot_worker_events_dead_lettered_total";
/// Counter: entries taken over with `XAUTOCLAIM`.
pub const EVENTS_RECLAIMED: &str = "earshot_worker_events_reclaimed_total";
/// Counter: failed store calls of the worker, by `op`.
pub const STORE_ERRORS: &str = "earshot_worker_store_errors_total";

pub(crate) fn delivered(group: &str, n: u64) {
    metrics::counter!(EVENTS_DELIVERED, "group" => group.to_owned()).increment(n);
}

pub(crate) fn failed(group: &str, kind: &'static str) {
    metrics::counter!(EVENTS_FAILED, "group" => group.to_owned(), "kind" => kind).increment(1);
}

pub(crate) fn dead_lettered(group: &str) {
    metrics::counter!(EVENTS_DEAD_LETTERED, "group" => group.to_owned()).increment(1);
}

pub(crate) fn reclaimed(group: &str, n: u64) {
    metrics::counter!(EVENTS_RECLAIMED, "group" => group.to_owned()).increment(n);
}

pub(crate) fn store_error(group: &str, op: &'static str) {
    metrics::counter!(STORE_ERRORS, "group" => group.to_owned(), "op" => op).increment(1);
}

/// Lag and pending of `group` on `stream`. A partition stream (cluster) adds a
/// `stream` label, so each partition is a series; the single event stream keeps the
/// plain `{group}` series.
pub(crate) fn lag(group: &str, stream: &str, lag: Option<u64>, pending: u64) {
    let mut labels = vec![("group", group.to_owned())];
    if stream != earshot_core::keys::EVENT_STREAM {
        labels.push(("stream", stream.to_owned()));
    }
    let labels: Vec<metrics::Label> = labels
        .into_iter()
        .map(|(k, v)| metrics::Label::new(k, v))
        .collect();
    if let Some(lag) = lag {
        metrics::gauge!(CONSUMER_GROUP_LAG, labels.clone()).set(lag as f64);
    }
    metrics::gauge!(CONSUMER_GROUP_PENDING, labels).set(pending as f64);
}
