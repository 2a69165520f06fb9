//! Version vectors: what a writer had seen of every feed when it wrote an operation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A feed's public key.
pub type FeedId = [u8; 32];

/// An operation's identity: its feed and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub feed: FeedId,
    pub seq: u64,
}

/// For each feed, how many of its entries had been seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock(#[serde(with = "crate::pairs")] pub BTreeMap<FeedId, u64>);

impl Clock {
    pub fn get(&self, feed: &FeedId) -> u64 {
        self.0.get(feed).copied().unwrap_or(0)
    }

    /// Whether the operation `id` is among what this clock has seen.
    pub fn covers(&self, id: &OpId) -> bool {
        self.get(&id.feed) > id.seq
    }

    /// Raise every entry to at least `other`'s.
    pub fn merge(&mut self, other: &Clock) {
        for (f, n) in &other.0 {
            let e = self.0.entry(*f).or_insert(0);
            *e = (*e).max(*n);
        }
    }

    pub fn set(&mut self, feed: FeedId, seen: u64) {
        if seen == 0 {
            self.0.remove(&feed);
        } else {
            self.0.insert(feed, seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_covers_exactly_the_entries_it_has_seen() {
        let mut c = Clock::default();
        c.set([1; 32], 3);
        assert!(c.covers(&OpId {
            feed: [1; 32],
            seq: 2
        }));
        assert!(!c.covers(&OpId {
            feed: [1; 32],
            seq: 3
        }));
        assert!(!c.covers(&OpId {
            feed: [2; 32],
            seq: 0
        }));
        let mut d = Clock::default();
        d.set([2; 32], 1);
        d.set([1; 32], 1);
        c.merge(&d);
        assert_eq!(c.get(&[1; 32]), 3);
        assert_eq!(c.get(&[2; 32]), 1);
    }
}
