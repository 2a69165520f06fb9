//! Waiting after failures, one rule for everything that retries (failed actions, TCP and
//! iroh dialers): a first wait, doubling after each further failure up to a longest wait.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A doubling wait between `first` and `longest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
}

impl Backoff {
    /// Failed actions: 1 s, doubling up to 5 minutes.
    pub const ACTIONS: Backoff = Backoff {
        first: Duration::from_secs(1),
        longest: Duration::from_secs(300),
    };

    /// Dialling a peer: 1 s, doubling up to a minute.
    pub const DIAL: Backoff = Backoff {
        first: Duration::from_secs(1),
        longest: Duration::from_secs(60),
    };

    /// The wait after `failures` failures in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        (self.first * 2u32.pow(doublings)).min(self.longest)
    }

    /// The wait after one more failure, given the last wait (none yet: `first`).
    pub fn after(&self, last: Option<Duration>) -> Duration {
        last.map_or(self.first, |w| (w * 2).clamp(self.first, self.longest))
    }
}

/// Failing keys (resources) and when each may be tried again.
#[derive(Debug)]
pub struct Retries<K: Ord + Clone> {
    backoff: Backoff,
    failing: BTreeMap<K, (u32, Instant)>,
}

impl<K: Ord + Clone> Default for Retries<K> {
    fn default() -> Self {
        Retries {
            backoff: Backoff::ACTIONS,
            failing: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Retries<K> {
    /// Whether `key` may be tried at `now`.
    pub fn due(&self, key: &K, now: Instant) -> bool {
        self.failing.get(key).is_none_or(|(_, at)| *at <= now)
    }

    pub fn failed(&mut self, key: &K, now: Instant) -> Duration {
        let n = self.failing.get(key).map_or(0, |(n, _)| *n) + 1;
        let wait = self.backoff.delay(n);
        self.failing.insert(key.clone(), (n, now + wait));
        wait
    }

    pub fn succeeded(&mut self, key: &K) {
        self.failing.remove(key);
    }

    /// Forget every failure (a new config is a fresh start).
    pub fn reset(&mut self) {
        self.failing.clear();
    }

    /// How long until the next retry is due, if any key is failing.
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
    fn waits_double_from_one_second_up_to_the_longest() {
        let waits: Vec<u64> = (1..=11)
            .map(|n| Backoff::ACTIONS.delay(n).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(Backoff::ACTIONS.delay(1_000), Backoff::ACTIONS.longest);
        let mut w = None;
        let dial: Vec<u64> = (0..8)
            .map(|_| {
                let next = Backoff::DIAL.after(w);
                w = Some(next);
                next.as_secs()
            })
            .collect();
        assert_eq!(dial, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn a_failing_key_waits_and_a_success_clears_it() {
        let t0 = Instant::now();
        let mut r = Retries::default();
        let (a, b) = ("space a".to_string(), "space b".to_string());
        assert!(r.due(&a, t0));
        assert_eq!(r.failed(&a, t0), Duration::from_secs(1));
        assert!(!r.due(&a, t0));
        assert!(r.due(&b, t0), "other resources are not held back");
        assert_eq!(r.next_due(t0), Some(Duration::from_secs(1)));
        assert!(r.due(&a, t0 + Duration::from_secs(1)));
        assert_eq!(
            r.failed(&a, t0 + Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        r.succeeded(&a);
        assert!(r.due(&a, t0));
        assert_eq!(r.next_due(t0), None);
    }
}
