//! Decode slots handed out by priority, not by arrival.
//!
//! A plain FIFO semaphore lets a stream's cheap, optional partial decodes queue in front of
//! another stream's utterance-final decode, which then waits behind seconds of work nobody
//! needs any more: under load that is what made finals late. Here a freed slot goes to the
//! most urgent waiter: commits (the decodes whose words become finals) first, then uploads
//! and partials in arrival order, and those never in the last slot, which stays for
//! commits. An upload that has waited [`BATCH_AGING`] counts as urgent, so a flood of live
//! commits cannot starve it forever.
//!
//! A decode, once running, keeps its slot until whisper returns. A partial decode is
//! optional, so it is the one exception: when a commit waits and no slot is free, a
//! running partial is stopped (its cancel flag, which whisper checks between graph
//! nodes) and its slot goes to the commit. Without that, a commit that arrives just after
//! a partial started waits out the whole partial, and with several streams ending
//! utterances at once those waits add up to seconds of final latency.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// How urgent a decode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// A stream's commit decode: its words become finals. Never skipped.
    Commit,
    /// A window of an upload.
    Batch,
    /// A stream's partial hypothesis: optional; the caller gives up when it waits too long.
    Partial,
}

/// An upload window waiting this long is served like a commit.
pub const BATCH_AGING: Duration = Duration::from_secs(3);

struct Waiter {
    priority: Priority,
    since: Instant,
    /// Set to stop this decode once it runs, if a commit needs its slot.
    preempt: Option<Arc<AtomicBool>>,
    tx: oneshot::Sender<SlotGuard>,
}

struct State {
    free: usize,
    /// Partial and upload decodes running now.
    background: usize,
    waiters: VecDeque<Waiter>,
    /// Running decodes that may be stopped for a commit, by guard id.
    preemptible: Vec<(u64, Arc<AtomicBool>)>,
    next_id: u64,
}

/// The slot pool (cheap to clone).
#[derive(Clone)]
pub struct Slots {
    state: Arc<Mutex<State>>,
    total: usize,
    /// Partial and upload decodes allowed at once: one slot less than the pool (when it has
    /// more than one), so a commit never waits for them to finish (a decode, once started,
    /// keeps its slot until whisper returns). An upload window that has waited
    /// [`BATCH_AGING`] may take the last slot too.
    max_background: usize,
}

/// One slot, taken until dropped; dropping hands it to the next waiter.
pub struct SlotGuard {
    slots: Option<Slots>,
    priority: Priority,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release(self.priority, self.id);
        }
    }
}

impl Slots {
    /// `total` concurrent decodes.
    pub fn new(total: usize) -> Self {
        Slots {
            state: Arc::new(Mutex::new(State {
                free: total.max(1),
                background: 0,
                waiters: VecDeque::new(),
                preemptible: Vec::new(),
                next_id: 0,
            })),
            total: total.max(1),
            max_background: total.saturating_sub(1).max(1),
        }
    }

    /// Slots taken now.
    pub fn in_use(&self) -> usize {
        self.total - self.state.lock().free
    }

    #[cfg(test)]
    /// Waiters queued now, per priority (commit, batch, partial).
    pub fn queued(&self) -> (usize, usize, usize) {
        let st = self.state.lock();
        let count = |p| st.waiters.iter().filter(|w| w.priority == p).count();
        (
            count(Priority::Commit),
            count(Priority::Batch),
            count(Priority::Partial),
        )
    }

    /// Wait for a slot. Cancel-safe: a waiter dropped before it is served takes nothing.
    pub async fn acquire(&self, priority: Priority) -> SlotGuard {
        self.acquire_with(priority, None).await
    }

    /// [`acquire`](Self::acquire), for a decode that gives its slot up to a waiting commit
    /// when it has a `preempt` flag: the flag is set when a commit needs the slot, and the
    /// decode must then stop.
    pub async fn acquire_with(
        &self,
        priority: Priority,
        preempt: Option<Arc<AtomicBool>>,
    ) -> SlotGuard {
        let rx = {
            let mut st = self.state.lock();
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(Waiter {
                priority,
                since: Instant::now(),
                preempt,
                tx,
            });
            self.hand_out(&mut st);
            rx
        };
        match rx.await {
            Ok(guard) => guard,
            // The pool never drops a waiter's sender without serving it.
            Err(_) => unreachable!("slot waiter dropped unserved"),
        }
    }

    fn guard(&self, priority: Priority, id: u64) -> SlotGuard {
        SlotGuard {
            slots: Some(self.clone()),
            priority,
            id,
        }
    }

    fn release(&self, priority: Priority, id: u64) {
        let mut st = self.state.lock();
        if priority != Priority::Commit {
            st.background -= 1;
        }
        st.preemptible.retain(|(i, _)| *i != id);
        st.free += 1;
        self.hand_out(&mut st);
    }

    /// Give free slots to waiters, most urgent first.
    fn hand_out(&self, st: &mut State) {
        st.waiters.retain(|w| !w.tx.is_closed());
        while st.free > 0 {
            let background_ok = st.background < self.max_background;
            let Some(i) = next_waiter(&st.waiters, Instant::now(), background_ok) else {
                return;
            };
            let w = st.waiters.remove(i).expect("index from next_waiter");
            let id = st.next_id;
            st.next_id += 1;
            // A waiter that gave up (its receiver is gone) hands the guard straight back:
            // forget that guard so it does not re-enter `release` under the lock.
            match w.tx.send(self.guard(w.priority, id)) {
                Ok(()) => {
                    st.free -= 1;
                    if w.priority != Priority::Commit {
                        st.background += 1;
                    }
                    if let Some(flag) = w.preempt {
                        st.preemptible.push((id, flag));
                    }
                }
                Err(mut g) => {
                    g.slots = None;
                }
            }
        }
        self.preempt_for_commits(st);
    }

    /// No slot is free: stop as many running preemptible decodes as commits wait (beyond
    /// those already told to stop), newest first, since they have done the least work.
    fn preempt_for_commits(&self, st: &mut State) {
        let commits = st
            .waiters
            .iter()
            .filter(|w| w.priority == Priority::Commit)
            .count();
        let stopping = st
            .preemptible
            .iter()
            .filter(|(_, f)| f.load(Ordering::Relaxed))
            .count();
        let mut want = commits.saturating_sub(stopping);
        for (_, flag) in st.preemptible.iter().rev() {
            if want == 0 {
                break;
            }
            if !flag.swap(true, Ordering::Relaxed) {
                metrics::counter!("earshot_asr_partials_preempted_total").increment(1);
                want -= 1;
            }
        }
    }
}

/// Index of the waiter to serve: the oldest commit (or aged upload), else the oldest of
/// the rest (only while fewer than their cap run).
fn next_waiter(waiters: &VecDeque<Waiter>, now: Instant, background_ok: bool) -> Option<usize> {
    let urgent = |w: &Waiter| {
        w.priority == Priority::Commit
            || (w.priority == Priority::Batch && now.duration_since(w.since) >= BATCH_AGING)
    };
    waiters
        .iter()
        .position(urgent)
        .or_else(|| waiters.iter().position(|_| background_ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_overtakes_queued_partials() {
        let slots = Slots::new(1);
        let held = slots.acquire(Priority::Partial).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, p) in [Priority::Partial, Priority::Batch, Priority::Commit]
            .into_iter()
            .enumerate()
        {
            let (s, o) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = s.acquire(p).await;
                o.lock().push(p);
                tokio::task::yield_now().await;
            }));
            // Queue them in this order.
            while slots.queued().0 + slots.queued().1 + slots.queued().2 <= i {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock(),
            vec![Priority::Commit, Priority::Partial, Priority::Batch]
        );
        assert_eq!(slots.in_use(), 0);
    }

    #[tokio::test]
    async fn partials_leave_a_slot_for_commits() {
        let slots = Slots::new(2);
        let _p = slots.acquire(Priority::Partial).await;
        let second =
            tokio::time::timeout(Duration::from_millis(20), slots.acquire(Priority::Partial)).await;
        assert!(second.is_err(), "only one partial runs on two slots");
        let _c = tokio::time::timeout(Duration::from_millis(20), slots.acquire(Priority::Commit))
            .await
            .expect("the other slot is there for a commit");
        assert_eq!(slots.in_use(), 2);
    }

    #[tokio::test]
    async fn a_waiting_commit_stops_a_running_partial() {
        let slots = Slots::new(1);
        let flag = Arc::new(AtomicBool::new(false));
        let partial = slots
            .acquire_with(Priority::Partial, Some(flag.clone()))
            .await;
        assert!(!flag.load(Ordering::Relaxed), "nobody waits yet");
        let s = slots.clone();
        let commit = tokio::spawn(async move { s.acquire(Priority::Commit).await });
        while slots.queued().0 == 0 {
            tokio::task::yield_now().await;
        }
        assert!(flag.load(Ordering::Relaxed), "the partial is told to stop");
        drop(partial);
        let _c = tokio::time::timeout(Duration::from_secs(5), commit)
            .await
            .expect("the commit gets the partial's slot")
            .unwrap();
        assert_eq!(slots.in_use(), 1);
    }

    #[tokio::test]
    async fn commits_do_not_stop_uploads_or_each_other() {
        let slots = Slots::new(1);
        let _batch = slots.acquire(Priority::Batch).await;
        let s = slots.clone();
        let waiting = tokio::spawn(async move { s.acquire(Priority::Commit).await });
        while slots.queued().0 == 0 {
            tokio::task::yield_now().await;
        }
        let flag = Arc::new(AtomicBool::new(false));
        let s = slots.clone();
        let f = flag.clone();
        let later = tokio::spawn(async move { s.acquire_with(Priority::Partial, Some(f)).await });
        tokio::task::yield_now().await;
        assert!(
            !flag.load(Ordering::Relaxed),
            "a queued partial is not running"
        );
        assert!(!waiting.is_finished(), "an upload window is not stopped");
        waiting.abort();
        later.abort();
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_takes_nothing() {
        let slots = Slots::new(1);
        let held = slots.acquire(Priority::Commit).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(20), slots.acquire(Priority::Partial)).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(slots.in_use(), 0, "the slot is free again");
        let _again = slots.acquire(Priority::Batch).await;
        assert_eq!(slots.in_use(), 1);
    }
}
