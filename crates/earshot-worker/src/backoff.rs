//! Exponential backoff with jitter, shared by the worker (store outages, failing sinks)
//! and the webhook sink (per-delivery retries). Jitter keeps a fleet of workers that
//! all saw the same outage from retrying in lockstep.

use std::time::Duration;

/// Bounds of an exponential backoff: the first ceiling and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Ceiling of the first delay.
    pub initial: Duration,
    /// No delay ever exceeds this.
    pub max: Duration,
}

impl BackoffConfig {
    /// A config from its two bounds; `max` is raised to `initial` if smaller.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
        }
    }
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// The state of one backoff sequence: how many failures in a row so far.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// A fresh sequence (the next delay uses the initial ceiling).
    pub fn new(cfg: BackoffConfig) -> Self {
        Self { cfg, failures: 0 }
    }

    /// The current ceiling: `initial * 2^failures`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.cfg
            .initial
            .checked_mul(factor)
            .unwrap_or(self.cfg.max)
            .min(self.cfg.max)
    }

    /// "Full jitter": uniform in `[0, ceiling]`, then the ceiling doubles.
    pub fn next_full_jitter(&mut self) -> Duration {
        let c = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        random_up_to(c)
    }

    /// "Equal jitter": uniform in `[ceiling/2, ceiling]`, never a hot loop; then the
    /// ceiling doubles.
    pub fn next_equal_jitter(&mut self) -> Duration {
        let c = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        c / 2 + random_up_to(c / 2)
    }

    /// Failures in a row since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the initial ceiling, after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

fn random_up_to(d: Duration) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let mut b = Backoff::new(BackoffConfig::new(
            Duration::from_millis(100),
            Duration::from_millis(750),
        ));
        let mut ceilings = vec![];
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_full_jitter();
            assert!(d <= Duration::from_millis(750));
        }
        assert_eq!(ceilings, vec![100, 200, 400, 750, 750, 750]);
        for _ in 0..100 {
            b.next_full_jitter();
        }
        assert_eq!(b.ceiling(), Duration::from_millis(750));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn equal_jitter_has_a_floor() {
        let mut b = Backoff::new(BackoffConfig::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        ));
        for _ in 0..50 {
            let c = b.ceiling();
            let d = b.next_equal_jitter();
            assert!(d >= c / 2 && d <= c, "{d:?} vs {c:?}");
        }
    }

    #[test]
    fn zero_initial_is_fine() {
        let mut b = Backoff::new(BackoffConfig::new(Duration::ZERO, Duration::ZERO));
        assert_eq!(b.next_full_jitter(), Duration::ZERO);
        assert_eq!(b.next_equal_jitter(), Duration::ZERO);
    }
}
