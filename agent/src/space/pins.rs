//! Blocks that must not be cleared while something outside the drive still refers to them:
//! the version a file open for editing started from, and what a file being stored has
//! written or reused so far. Each holder keeps a [`Pin`]; reclaiming reads every pin under
//! the same lock that finding a block to reuse takes, so a block is either pinned before
//! the sweep looks or forgotten by the index before anyone can reuse it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cobox_drive::{FeedId, Run};

/// Every pin of one space.
#[derive(Debug, Default)]
pub struct Pins {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    held: HashMap<u64, Vec<Run>>,
}

/// Runs kept from clearing until dropped.
#[derive(Debug)]
pub struct Pin {
    pins: Arc<Pins>,
    id: u64,
}

impl Pins {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pin `runs` until the returned pin is dropped.
    pub fn pin(self: &Arc<Self>, runs: impl IntoIterator<Item = Run>) -> Pin {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        inner.held.insert(id, runs.into_iter().collect());
        Pin {
            pins: self.clone(),
            id,
        }
    }

    /// Run `sweep` with every pinned run; nothing is pinned or found to reuse meanwhile
    /// (see [`Pin::pin_found`]).
    pub fn sweep<R>(&self, sweep: impl FnOnce(&mut dyn Iterator<Item = &Run>) -> R) -> R {
        let inner = self.lock();
        sweep(&mut inner.held.values().flatten())
    }

    /// How many pins are held.
    pub fn count(&self) -> usize {
        self.lock().held.len()
    }
}

impl Pin {
    /// Pin `run` too.
    pub fn add(&self, run: Run) {
        if let Some(runs) = self.pins.lock().held.get_mut(&self.id) {
            runs.push(run);
        }
    }

    /// Pin `runs` instead of what was pinned.
    pub fn set(&self, runs: impl IntoIterator<Item = Run>) {
        if let Some(held) = self.pins.lock().held.get_mut(&self.id) {
            *held = runs.into_iter().collect();
        }
    }

    /// Look a block of feed `feed` up with `find` and pin what it names, as one step
    /// against a sweep.
    pub fn pin_found(&self, feed: FeedId, find: impl FnOnce() -> Option<u64>) -> Option<u64> {
        let mut inner = self.pins.lock();
        let index = find()?;
        if let Some(runs) = inner.held.get_mut(&self.id) {
            runs.push(Run {
                feed,
                start: index,
                count: 1,
            });
        }
        Some(index)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.pins.lock().held.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, count: u64) -> Run {
        Run {
            feed: [1; 32],
            start,
            count,
        }
    }

    #[test]
    fn a_pin_holds_its_runs_until_dropped() {
        let pins = Arc::new(Pins::default());
        let a = pins.pin([run(0, 4)]);
        let b = pins.pin([]);
        b.add(run(10, 1));
        assert_eq!(b.pin_found([1; 32], || Some(20)), Some(20));
        assert_eq!(b.pin_found([1; 32], || None), None);
        let pinned = |pins: &Pins| {
            let mut v: Vec<u64> = pins.sweep(|runs| runs.map(|r| r.start).collect());
            v.sort();
            v
        };
        assert_eq!(pinned(&pins), vec![0, 10, 20]);
        a.set([run(5, 1)]);
        assert_eq!(pinned(&pins), vec![5, 10, 20]);
        drop(b);
        assert_eq!(pinned(&pins), vec![5]);
        drop(a);
        assert_eq!(pins.count(), 0);
    }
}
