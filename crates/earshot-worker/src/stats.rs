//! Counters of one worker run, readable while it runs (tests, the binary's exit log)
//! and returned when it stops. The Prometheus counters carry the same figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a worker did, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Entries the sink accepted (and flushed); each is acknowledged afterwards.
    pub delivered: u64,
    /// Entries acknowledged (delivered ones, plus trimmed-away ones with nothing to deliver).
    pub acked: u64,
    /// Deliveries that failed with a retryable error (the entry stayed pending).
    pub retryable_failures: u64,
    /// Deliveries the sink refused permanently.
    pub permanent_failures: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Entries taken over with `XAUTOCLAIM` (from dead peers or own failed deliveries).
    pub reclaimed: u64,
    /// Failed store calls (each followed by a backoff).
    pub store_errors: u64,
    /// The largest number of entries held at once (never more than the batch size).
    pub max_in_flight: u64,
}

impl WorkerStats {
    /// The figures of two workers run side by side (one per partition): counts add
    /// up, `max_in_flight` is the larger, as each holds its own batch.
    pub fn merge(self, o: Self) -> Self {
        Self {
            delivered: self.delivered + o.delivered,
            acked: self.acked + o.acked,
            retryable_failures: self.retryable_failures + o.retryable_failures,
            permanent_failures: self.permanent_failures + o.permanent_failures,
            dead_lettered: self.dead_lettered + o.dead_lettered,
            reclaimed: self.reclaimed + o.reclaimed,
            store_errors: self.store_errors + o.store_errors,
            max_in_flight: self.max_in_flight.max(o.max_in_flight),
        }
    }
}

/// A live view of a running worker's counters.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Cells>);

#[derive(Debug, Default)]
struct Cells {
    delivered: AtomicU64,
    acked: AtomicU64,
    retryable_failures: AtomicU64,
    permanent_failures: AtomicU64,
    dead_lettered: AtomicU64,
    reclaimed: AtomicU64,
    store_errors: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stat {
    Delivered,
    Acked,
    Retryable,
    Permanent,
    DeadLettered,
    Reclaimed,
    StoreError,
}

impl StatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> WorkerStats {
        let c = &self.0;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            delivered: g(&c.delivered),
            acked: g(&c.acked),
            retryable_failures: g(&c.retryable_failures),
            permanent_failures: g(&c.permanent_failures),
            dead_lettered: g(&c.dead_lettered),
            reclaimed: g(&c.reclaimed),
            store_errors: g(&c.store_errors),
            max_in_flight: g(&c.max_in_flight),
        }
    }

    pub(crate) fn add(&self, stat: Stat, n: u64) {
        let c = &self.0;
        let cell = match stat {
            Stat::Delivered => &c.delivered,
            Stat::Acked => &c.acked,
            Stat::Retryable => &c.retryable_failures,
            Stat::Permanent => &c.permanent_failures,
            Stat::DeadLettered => &c.dead_lettered,
            Stat::Reclaimed => &c.reclaimed,
            Stat::StoreError => &c.store_errors,
        };
        cell.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn in_flight(&self, n: u64) {
        self.0.max_in_flight.fetch_max(n, Ordering::Relaxed);
    }
}
