//! Retry timing for failed actions: 1 s after the first failure, doubling up to 5 minutes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const FIRST: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(300);

/// The wait after `failures` failures in a row.
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST * 2u32.pow(doublings)).min(MAX)
}

/// Failing resources and when each may be tried again.
#[derive(Debug, Default)]
pub struct Retries {
    failing: BTreeMap<String, (u32, Instant)>,
}

impl Retries {
    /// Whether `resource` may be tried at `now`.
    pub fn due(&self, resource: &str, now: Instant) -> bool {
        self.failing.get(resource).is_none_or(|(_, at)| *at <= now)
    }

    pub fn failed(&mut self, resource: &str, now: Instant) -> Duration {
        let n = self.failing.get(resource).map_or(0, |(n, _)| *n) + 1;
        let wait = delay(n);
        self.failing.insert(resource.to_string(), (n, now + wait));
        wait
    }

    pub fn succeeded(&mut self, resource: &str) {
        self.failing.remove(resource);
    }

    /// Forget every failure (a new config is a fresh start).
    pub fn reset(&mut self) {
        self.failing.clear();
    }

    /// How long until the next retry is due, if any resource is failing.
    pub fn next_due(&self, now: Instant) -> Option<Duration> {
        self.failing
            .values()
            .map(|(_, at)| at.saturating_duration_since(now))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_one_second_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=11).map(|n| delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(delay(1_000), MAX);
    }

    #[test]
    fn a_failing_resource_waits_and_a_success_clears_it() {
        let t0 = Instant::now();
        let mut r = Retries::default();
        assert!(r.due("space a", t0));
        assert_eq!(r.failed("space a", t0), Duration::from_secs(1));
        assert!(!r.due("space a", t0));
        assert!(r.due("space b", t0), "other resources are not held back");
        assert_eq!(r.next_due(t0), Some(Duration::from_secs(1)));
        assert!(r.due("space a", t0 + Duration::from_secs(1)));
        assert_eq!(
            r.failed("space a", t0 + Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        r.succeeded("space a");
        assert!(r.due("space a", t0));
        assert_eq!(r.next_due(t0), None);
    }
}
