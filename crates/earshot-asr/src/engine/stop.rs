//! When whisper.cpp should stop a decode early: its budget is spent, or the caller no
//! longer wants the result.
//!
//! The budget counts the CPU time of the decoding thread, not wall time. A busy machine
//! slows every decode alike; if the wall clock decided when a decode is given up, what a
//! stream commits (the first result standing instead of its redo) would depend on the load
//! rather than the audio. The CPU time a decode spends depends on the audio and the model,
//! so the budget stays a guard against pathological audio only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The stop conditions of one [`crate::Engine::decode`] call (a decode and its redo).
pub(super) struct Stop {
    budget: Option<(Duration, Duration)>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Stop {
    /// Starts counting `budget` of this thread's CPU time now.
    pub(super) fn new(budget: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Self {
        Stop {
            budget: budget.map(|b| (thread_cpu_time(), b)),
            cancel,
        }
    }

    pub(super) fn is_armed(&self) -> bool {
        self.budget.is_some() || self.cancel.is_some()
    }

    pub(super) fn over_budget(&self) -> bool {
        self.budget
            .is_some_and(|(start, b)| thread_cpu_time().saturating_sub(start) >= b)
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// whisper.cpp's abort callback. whisper and ggml call it from the thread that called
/// `whisper_full` (ggml's worker 0), the one whose CPU time the budget counts.
///
/// # Safety
/// `user_data` points to a live [`Stop`].
pub(super) unsafe extern "C" fn should_stop(user_data: *mut std::ffi::c_void) -> bool {
    let stop = &*(user_data as *const Stop);
    stop.cancelled() || stop.over_budget()
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on
    // every Linux and macOS earshot builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_cpu_time_not_sleep() {
        let stop = Stop::new(Some(Duration::from_millis(50)), None);
        std::thread::sleep(Duration::from_millis(120));
        assert!(!stop.over_budget(), "sleeping spends no CPU time");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while !stop.over_budget() {
            x = x.wrapping_add(std::hint::black_box(1));
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "budget never ran out"
            );
        }
        assert!(x > 0);
    }

    #[test]
    fn a_cancel_flag_stops() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(None, Some(flag.clone()));
        assert!(stop.is_armed() && !stop.cancelled());
        flag.store(true, Ordering::Relaxed);
        assert!(stop.cancelled());
    }
}
