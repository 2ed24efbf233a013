//! Instrumentation shared by both backends: the duration of every store
//! call by trait method, and failed calls by error kind (each also logged).

use std::future::Future;
use std::time::Instant;

use crate::api::StoreResult;

/// Histogram of every store call's duration, labelled `command=<trait method>`.
pub const COMMAND_DURATION: &str = "earshot_redis_command_duration_seconds";
/// Counter of failed store calls, labelled `kind=<StoreError::kind()>`.
pub const ERRORS: &str = "earshot_redis_errors_total";
/// Gauge of in-flight Redis commands (permits taken from the in-flight bound).
pub const POOL_IN_USE: &str = "earshot_redis_pool_in_use";
/// Counter of calls that had to wait for a free in-flight permit.
pub const POOL_EXHAUSTED: &str = "earshot_redis_pool_exhausted_total";

/// Records the outcome of one call that started at `start`.
pub(crate) fn record<T>(command: &'static str, start: Instant, result: &StoreResult<T>) {
    metrics::histogram!(COMMAND_DURATION, "command" => command)
        .record(start.elapsed().as_secs_f64());
    if let Err(e) = result {
        metrics::counter!(ERRORS, "kind" => e.kind()).increment(1);
        tracing::warn!(command, error = %e, "store call failed");
    }
}

/// Runs and records an async call.
pub(crate) async fn timed<T, F>(command: &'static str, call: F) -> StoreResult<T>
where
    F: Future<Output = StoreResult<T>>,
{
    let start = Instant::now();
    let result = call.await;
    record(command, start, &result);
    result
}
