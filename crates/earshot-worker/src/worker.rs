//! The consumer-group loop: read, deliver, acknowledge only what was delivered, reclaim
//! what dead peers (or earlier failures) left pending, dead-letter what keeps failing.
//!
//! Delivery is at-least-once: an entry is acknowledged only after the sink accepted and
//! flushed it, so a crash between delivery and `XACK` redelivers it (consumers
//! deduplicate on the stream id). A worker holds at most one batch at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use earshot_core::StreamId;
use earshot_store::{DynStore, StoreError, StreamEntry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::metrics;
use crate::sink::{DynSink, SinkError};
use crate::stats::{Stat, StatsHandle, WorkerStats};

/// Last errors remembered for the dead-letter reason; older ones are forgotten first.
const MAX_REMEMBERED_ERRORS: usize = 10_000;
/// How long a flush may still take once the shutdown grace period is over.
const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(1);

/// One consumer of one group, delivering to one sink.
pub struct Worker {
    cfg: WorkerConfig,
    store: DynStore,
    sink: DynSink,
    stats: StatsHandle,
    /// The last retryable error per pending entry, for the dead-letter reason.
    last_errors: BTreeMap<StreamId, String>,
    store_backoff: Backoff,
    sink_backoff: Backoff,
    claim_cursor: StreamId,
    /// Set when a read or claim failed in a way that may have left entries pending under
    /// this consumer's name without this worker seeing them (the command ran, its reply
    /// was lost); cleared by walking the own PEL.
    own_pending_unknown: bool,
    /// Cancelled `grace` after shutdown was requested: whatever is still running then is
    /// abandoned (and stays pending).
    hard_stop: CancellationToken,
}

impl Worker {
    /// A worker with an already built sink (`cfg.sink` is not used).
    pub fn new(cfg: WorkerConfig, store: DynStore, sink: DynSink) -> Result<Self, WorkerError> {
        cfg.validate()?;
        Ok(Self {
            store_backoff: Backoff::new(cfg.store_backoff),
            sink_backoff: Backoff::new(cfg.sink_backoff),
            cfg,
            store,
            sink,
            stats: StatsHandle::default(),
            last_errors: BTreeMap::new(),
            claim_cursor: StreamId::ZERO,
            own_pending_unknown: false,
            hard_stop: CancellationToken::new(),
        })
    }

    /// A live view of the counters, usable while `run` runs.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled. Never returns early on store or sink failures.
    /// On shutdown: stops reading, lets the current batch finish within `cfg.grace`, and
    /// leaves anything undelivered pending for a peer or a restart.
    pub async fn run(mut self, shutdown: CancellationToken) -> WorkerStats {
        tracing::info!(
            group = %self.cfg.group,
            consumer = %self.cfg.consumer,
            sink = self.sink.name(),
            store = self.store.backend(),
            "worker starting"
        );
        let stop_polling = CancellationToken::new();
        let poller = tokio::spawn(poll_lag(
            self.store.clone(),
            self.cfg.stream.clone(),
            self.cfg.group.clone(),
            self.cfg.lag_poll,
            stop_polling.clone(),
        ));

        let hard_stop = self.hard_stop.clone();
        let grace = self.cfg.grace;
        let token = shutdown.clone();
        let timer = tokio::spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
        });

        if self.ensure_group(&shutdown).await {
            self.recover_own_pending(&shutdown).await;
            self.main_loop(&shutdown).await;
        }

        stop_polling.cancel();
        let _ = poller.await;
        timer.abort();
        let stats = self.stats.snapshot();
        tracing::info!(?stats, group = %self.cfg.group, consumer = %self.cfg.consumer, "worker stopped");
        stats
    }

    async fn main_loop(&mut self, shutdown: &CancellationToken) {
        let claim_every = self.cfg.claim_every();
        // Reclaim first: a peer may have died with entries pending before we started.
        let mut next_claim = Instant::now();
        while !shutdown.is_cancelled() {
            if self.own_pending_unknown {
                self.recover_own_pending(shutdown).await;
                continue;
            }
            if Instant::now() >= next_claim {
                self.reclaim(shutdown).await;
                next_claim = Instant::now() + claim_every;
                continue;
            }
            // Never block past the next reclaim; never pass 0 (Redis: block forever).
            let block = self
                .cfg
                .block
                .min(next_claim.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                r = self.store.read_group(
                    &self.cfg.stream,
                    &self.cfg.group,
                    &self.cfg.consumer,
                    self.cfg.batch,
                    block,
                ) => r,
            };
            match read {
                Ok(entries) => {
                    self.store_backoff.reset();
                    if !entries.is_empty() {
                        // First delivery of each (`>`): delivery count 1.
                        let batch = entries.into_iter().map(|e| (e, 1)).collect();
                        self.process(batch, shutdown).await;
                    }
                }
                Err(StoreError::NoGroup(_)) => {
                    tracing::warn!(group = %self.cfg.group, "consumer group vanished; re-creating it");
                    self.ensure_group(shutdown).await;
                }
                Err(e) => {
                    self.own_pending_unknown = true;
                    self.store_failed("read_group", &e, shutdown).await;
                }
            }
        }
    }

    /// Creates the group (with MKSTREAM) if missing; retries until it works or shutdown.
    async fn ensure_group(&mut self, shutdown: &CancellationToken) -> bool {
        while !shutdown.is_cancelled() {
            match self
                .store
                .create_group(&self.cfg.stream, &self.cfg.group, self.cfg.start)
                .await
            {
                Ok(created) => {
                    self.store_backoff.reset();
                    if created {
                        tracing::info!(group = %self.cfg.group, stream = %self.cfg.stream, "created consumer group");
                    }
                    return true;
                }
                Err(e) => self.store_failed("create_group", &e, shutdown).await,
            }
        }
        false
    }

    /// Delivers what is pending under this consumer's own name although this worker holds
    /// no batch: after a restart under the same name, and after a read or claim whose
    /// reply was lost (Redis moved the entries to this consumer, the answer never came
    /// back). Walks the whole own PEL once; entries that fail again stay pending and come
    /// back through the reclaim scan.
    ///
    /// One entry per read: a re-read counts as a delivery (Redis increments the entry's
    /// count), so reading a batch would charge an attempt to every entry behind one that
    /// then hangs or crashes the worker.
    async fn recover_own_pending(&mut self, shutdown: &CancellationToken) {
        let mut after = StreamId::ZERO;
        while !shutdown.is_cancelled() {
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                r = self.store.read_own_pending(
                    &self.cfg.stream,
                    &self.cfg.group,
                    &self.cfg.consumer,
                    after,
                    1,
                ) => r,
            };
            match read {
                Ok(entries) => {
                    self.store_backoff.reset();
                    let Some(last) = entries.last() else {
                        self.own_pending_unknown = false;
                        return;
                    };
                    after = last.entry.id;
                    tracing::info!(id = %after, "delivering an entry pending under this consumer's name");
                    let batch = entries
                        .into_iter()
                        .map(|c| (c.entry, c.delivery_count))
                        .collect();
                    self.process(batch, shutdown).await;
                }
                Err(StoreError::NoGroup(_)) => {
                    self.ensure_group(shutdown).await;
                    self.own_pending_unknown = false;
                    return;
                }
                Err(e) => self.store_failed("read_own_pending", &e, shutdown).await,
            }
        }
    }

    /// One full `XAUTOCLAIM` pass over the group's pending entries idle > `min_idle`.
    async fn reclaim(&mut self, shutdown: &CancellationToken) {
        loop {
            let claim = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                r = self.store.autoclaim(
                    &self.cfg.stream,
                    &self.cfg.group,
                    &self.cfg.consumer,
                    self.cfg.min_idle,
                    self.claim_cursor,
                    self.cfg.batch,
                ) => r,
            };
            match claim {
                Ok(ac) => {
                    self.store_backoff.reset();
                    for id in &ac.deleted {
                        self.last_errors.remove(id);
                    }
                    self.claim_cursor = ac.next;
                    if !ac.claimed.is_empty() {
                        let n = ac.claimed.len() as u64;
                        tracing::info!(n, group = %self.cfg.group, "reclaimed idle pending entries");
                        self.stats.add(Stat::Reclaimed, n);
                        metrics::reclaimed(&self.cfg.group, n);
                        let batch = ac
                            .claimed
                            .into_iter()
                            .map(|c| (c.entry, c.delivery_count))
                            .collect();
                        self.process(batch, shutdown).await;
                    }
                    if self.claim_cursor == StreamId::ZERO || shutdown.is_cancelled() {
                        return;
                    }
                }
                Err(StoreError::NoGroup(_)) => {
                    self.ensure_group(shutdown).await;
                    return;
                }
                Err(e) => {
                    self.own_pending_unknown = true;
                    self.store_failed("autoclaim", &e, shutdown).await;
                    return;
                }
            }
        }
    }

    /// Delivers a batch, then flushes the sink, then acknowledges what was delivered.
    async fn process(&mut self, batch: Vec<(StreamEntry, u64)>, shutdown: &CancellationToken) {
        self.stats.in_flight(batch.len() as u64);
        let read_at = Instant::now();
        // Past this, a peer's reclaim may already have taken the rest of the batch: leave
        // it to the reclaim path rather than deliver it twice at the same time.
        let horizon = self.cfg.min_idle * 3 / 4;
        let mut delivered = Vec::new();
        let mut to_ack = Vec::new();
        // Entries never attempted (shutdown, or the batch took too long) go back to the
        // group with the delivery their read counted taken off again.
        let mut unattempted = Vec::new();
        let mut batch = batch.into_iter();
        for (entry, count) in batch.by_ref() {
            if shutdown.is_cancelled() {
                unattempted.push((entry.id, count));
                break;
            }
            if read_at.elapsed() >= horizon {
                tracing::warn!(
                    group = %self.cfg.group,
                    "batch held longer than 3/4 of --claim-idle; leaving the rest to reclaim (raise --claim-idle or lower --batch)"
                );
                unattempted.push((entry.id, count));
                break;
            }
            if entry.fields.is_empty() {
                // Trimmed from the stream while pending: nothing left to deliver.
                to_ack.push(entry.id);
                continue;
            }
            if count > self.cfg.max_deliveries {
                let last = self
                    .last_errors
                    .get(&entry.id)
                    .map(String::as_str)
                    .unwrap_or("last error unknown (it failed on another consumer)");
                let reason = format!(
                    "delivered {} times without success (max {}): {last}",
                    count - 1,
                    self.cfg.max_deliveries
                );
                self.dead_letter(&entry, &reason, count).await;
                continue;
            }
            let outcome = tokio::select! {
                biased;
                r = self.sink.deliver(&entry) => r,
                _ = self.hard_stop.cancelled() => {
                    tracing::warn!(id = %entry.id, "shutdown grace period over mid-delivery; the entry stays pending");
                    break;
                }
            };
            match outcome {
                Ok(()) => {
                    self.sink_backoff.reset();
                    delivered.push(entry.id);
                }
                Err(SinkError::Permanent(msg)) => {
                    tracing::warn!(id = %entry.id, error = %msg, "sink refused the event permanently; dead-lettering");
                    self.stats.add(Stat::Permanent, 1);
                    metrics::failed(&self.cfg.group, "permanent");
                    self.dead_letter(&entry, &msg, count).await;
                }
                Err(SinkError::Retryable(msg)) => {
                    tracing::warn!(id = %entry.id, delivery = count, error = %msg, "delivery failed; it stays pending");
                    self.stats.add(Stat::Retryable, 1);
                    metrics::failed(&self.cfg.group, "retryable");
                    self.remember_error(entry.id, msg);
                    let pause = self.sink_backoff.next_equal_jitter();
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        if !delivered.is_empty() {
            // Flushing is what makes the delivered entries acknowledgeable, so it gets a
            // little time even past the grace period.
            let hard_stop = self.hard_stop.clone();
            let flushed = tokio::select! {
                biased;
                r = self.sink.flush() => r,
                _ = async move {
                    hard_stop.cancelled().await;
                    tokio::time::sleep(FINAL_FLUSH_BUDGET).await;
                } => {
                    Err(SinkError::Retryable("shutdown grace period over mid-flush".to_owned()))
                }
            };
            match flushed {
                Ok(()) => {
                    let n = delivered.len() as u64;
                    self.stats.add(Stat::Delivered, n);
                    metrics::delivered(&self.cfg.group, n);
                    to_ack.extend(delivered);
                }
                Err(e) => {
                    tracing::warn!(error = %e, n = delivered.len(), "sink flush failed; the batch stays pending");
                    self.stats.add(Stat::Retryable, delivered.len() as u64);
                    metrics::failed(&self.cfg.group, "retryable");
                    for id in delivered {
                        self.remember_error(id, e.message().to_owned());
                    }
                }
            }
        }
        if !to_ack.is_empty() {
            self.ack(&to_ack).await;
        }
        unattempted.extend(batch.map(|(e, count)| (e.id, count)));
        if !unattempted.is_empty() {
            self.release(&unattempted).await;
        }
    }

    /// Hands never-attempted entries back (see `Store::release`): a reclaim then takes
    /// them at once, without using up one of their `--max-deliveries`. If this fails,
    /// they stay pending here and the reclaim scan still finds them, one count higher.
    async fn release(&mut self, entries: &[(StreamId, u64)]) {
        let restore: Vec<(StreamId, u64)> = entries
            .iter()
            .map(|(id, count)| (*id, count.saturating_sub(1)))
            .collect();
        match self
            .store
            .release(
                &self.cfg.stream,
                &self.cfg.group,
                &self.cfg.consumer,
                &restore,
            )
            .await
        {
            Ok(()) => tracing::info!(
                n = restore.len(),
                "handed unattempted entries back to the group"
            ),
            Err(e) => {
                self.note_store_error("release", &e);
            }
        }
    }

    fn remember_error(&mut self, id: StreamId, msg: String) {
        self.last_errors.insert(id, msg);
        while self.last_errors.len() > MAX_REMEMBERED_ERRORS {
            self.last_errors.pop_first();
        }
    }

    /// `XACK`, retried through store outages (an unacknowledged delivered entry would be
    /// delivered again). Once the shutdown grace period is over, one last attempt.
    async fn ack(&mut self, ids: &[StreamId]) {
        loop {
            match self.store.ack(&self.cfg.stream, &self.cfg.group, ids).await {
                Ok(_) => {
                    self.store_backoff.reset();
                    self.stats.add(Stat::Acked, ids.len() as u64);
                    for id in ids {
                        self.last_errors.remove(id);
                    }
                    return;
                }
                Err(StoreError::NoGroup(g)) => {
                    tracing::warn!(group = %g, "group vanished before XACK; nothing to acknowledge");
                    return;
                }
                Err(e) => {
                    if !self.store_failed_until_hard_stop("ack", &e).await {
                        tracing::warn!(n = ids.len(), "giving up XACK at shutdown: these delivered entries will be delivered again");
                        return;
                    }
                }
            }
        }
    }

    /// Moves an entry to the dead-letter stream (which also acknowledges it), retried
    /// through store outages.
    async fn dead_letter(&mut self, entry: &StreamEntry, reason: &str, count: u64) {
        loop {
            match self
                .store
                .dead_letter(&self.cfg.stream, &self.cfg.group, entry, reason, count)
                .await
            {
                Ok(dead_id) => {
                    self.store_backoff.reset();
                    tracing::warn!(id = %entry.id, %dead_id, reason, "dead-lettered");
                    self.stats.add(Stat::DeadLettered, 1);
                    metrics::dead_lettered(&self.cfg.group);
                    self.last_errors.remove(&entry.id);
                    return;
                }
                Err(StoreError::NoGroup(g)) => {
                    tracing::warn!(group = %g, "group vanished before dead-lettering");
                    return;
                }
                Err(e) => {
                    if !self.store_failed_until_hard_stop("dead_letter", &e).await {
                        return;
                    }
                }
            }
        }
    }

    fn note_store_error(&mut self, op: &'static str, e: &StoreError) -> Duration {
        self.stats.add(Stat::StoreError, 1);
        metrics::store_error(&self.cfg.group, op);
        let pause = self.store_backoff.next_equal_jitter();
        tracing::warn!(op, error = %e, retry_in = ?pause, "store call failed");
        pause
    }

    /// Logs, counts and backs off; returns early on shutdown.
    async fn store_failed(
        &mut self,
        op: &'static str,
        e: &StoreError,
        shutdown: &CancellationToken,
    ) {
        let pause = self.note_store_error(op, e);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// Logs, counts and backs off, even during shutdown; false once the grace period
    /// is over (give up, the entry stays pending).
    async fn store_failed_until_hard_stop(&mut self, op: &'static str, e: &StoreError) -> bool {
        let pause = self.note_store_error(op, e);
        if self.hard_stop.is_cancelled() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => true,
            _ = self.hard_stop.cancelled() => false,
        }
    }
}

/// Publishes `earshot_consumer_group_lag{group}` every `every` until `stop`.
async fn poll_lag(
    store: DynStore,
    stream: String,
    group: String,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        match store.groups(&stream).await {
            Ok(groups) => {
                if let Some(g) = groups.iter().find(|g| g.name == group) {
                    metrics::lag(&group, &stream, g.lag, g.pending);
                }
            }
            Err(e) => tracing::debug!(error = %e, "lag poll failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
