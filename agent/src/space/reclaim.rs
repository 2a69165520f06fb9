//! Reclaiming space: earlier versions past the space's retention are forgotten, and the
//! blocks nothing refers to any more are cleared — from this device's own content feed
//! (stated to every replica in a statement signed with the feed's key) and from its copies
//! of other members' feeds (what their writers stated, except what this device's tree or
//! an open file still refers to).
//!
//! Order, for crashes: the pruned drive is checkpointed first; the block index forgets
//! the blocks in memory (so nothing reuses them) before the statement names them, and
//! drops their records when it next opens, by the statement; the statement is durable
//! before any block goes; the feed clears what its statement names again on every
//! open. A crash anywhere leaves every referenced block in place.

use std::collections::BTreeMap;

use cobox_drive::{FeedId, Retention};

use super::usage::{Usage, by_feed, measure};
use super::{Space, SpaceError};
use crate::replicate::have::Ranges;

/// What one pass reclaimed, and what the space's blocks are used for after it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// Earlier versions forgotten.
    pub versions: usize,
    /// Blocks of this device's content feed newly stated cleared.
    pub stated: u64,
    /// Blocks cleared on this device (own and other members' feeds).
    pub cleared: u64,
    /// Measured in the same pass over the drive (totals only).
    pub usage: Usage,
}

/// How often a space that did not change is looked at again (versions age meanwhile).
const UNCHANGED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Space {
    /// Whether a reclaim pass is due: the drive changed since the last, a writer stated
    /// newly cleared blocks, or a while passed.
    pub fn reclaim_due(&self) -> bool {
        match self.reclaimed {
            None => true,
            Some((at, seen)) => seen != self.changes() || at.elapsed() >= UNCHANGED_EVERY,
        }
    }

    /// A number that grows whenever an entry is read or a writer's statement is taken in.
    fn changes(&self) -> u64 {
        self.feeds
            .open_feeds()
            .iter()
            .map(|f| f.held().cleared)
            .fold(self.stats.read, u64::wrapping_add)
    }

    /// What the space's blocks are used for, as of now (by top-level entry too).
    pub async fn usage(&mut self) -> Usage {
        if let Err(e) = self.record_pending().await {
            tracing::warn!(space = %self.name(), error = %e, "cannot record the files written");
        }
        let (mut usage, refs) = measure(self.view.read().tree.drive(), true);
        self.measure_held(&mut usage, &refs).await;
        usage
    }

    /// Fill in what the drive alone does not say: bytes held here that nothing in `refs`
    /// refers to, and the feeds' size on disk.
    async fn measure_held(&self, usage: &mut Usage, refs: &BTreeMap<FeedId, Ranges>) {
        for shared in self.feeds.open_feeds() {
            let feed = shared.lock().await;
            let mut loose = Ranges::default();
            loose.insert(0, feed.len());
            if let Some(kept) = refs.get(&shared.key()) {
                for (s, e) in kept.iter() {
                    loose.remove(s, e);
                }
            }
            // Content feeds only: those files refer to, this device's own, and those whose
            // writers cleared blocks (logs are never referred to by a file).
            let content = refs.contains_key(&shared.key())
                || shared.key() == self.feeds.content_key
                || feed.cleared().is_some();
            if content {
                usage.reclaimable += feed.held_within(&loose) * super::blocks::BLOCK_SIZE as u64;
            }
        }
        usage.on_disk = crate::net::housekeeping::disk_usage(&self.layout.feeds());
    }

    /// Forget what `retention` no longer keeps at `now_ms` and clear the blocks nothing
    /// refers to.
    pub async fn reclaim(
        &mut self,
        retention: Retention,
        now_ms: i64,
    ) -> Result<Reclaimed, SpaceError> {
        // The blocks of files not recorded yet are referred to by the drive once they are.
        self.record_pending().await?;
        let mut done = Reclaimed {
            versions: self.view.write().tree.prune(now_ms, retention),
            ..Reclaimed::default()
        };
        if done.versions > 0 {
            self.unsaved += 1;
            self.checkpoint().await?;
        }
        let (mut usage, referenced) = measure(self.view.read().tree.drive(), false);
        let mut refs = referenced.clone();
        let own = self.feeds.content_key;

        let content = self.feeds.content().clone();
        {
            let mut feed = content.lock().await;
            let length = feed.len();
            let stated = feed.cleared().map(|c| c.ranges.clone());
            let hashes = self.hashes.clone();
            let fresh = self.pins.sweep(|pinned| {
                let pinned = by_feed(pinned);
                let mut fresh = Ranges::default();
                fresh.insert(0, length);
                for set in [refs.get(&own), pinned.get(&own), stated.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    for (s, e) in set.iter() {
                        fresh.remove(s, e);
                    }
                }
                // Merged in here so the other feeds below keep what is pinned too.
                for (feed, set) in pinned {
                    let r = refs.entry(feed).or_default();
                    for (s, e) in set.iter() {
                        r.insert(s, e);
                    }
                }
                hashes.forget(&fresh);
                fresh
            });
            if !fresh.is_empty() {
                match feed.state_cleared(&fresh)? {
                    Some(cleared) => {
                        done.stated = fresh.count();
                        done.cleared += cleared;
                    }
                    None => tracing::warn!(
                        space = %self.keys.name,
                        ranges = fresh.range_count(),
                        "too many cleared ranges for one statement: blocks kept"
                    ),
                }
                content.publish(&feed);
            }
        }

        for shared in self.feeds.open_feeds() {
            if shared.key() == own {
                continue;
            }
            let mut feed = shared.lock().await;
            let Some(stated) = feed.cleared().map(|c| c.ranges.clone()) else {
                continue;
            };
            let mut gone = stated;
            if let Some(kept) = refs.get(&shared.key()) {
                for (s, e) in kept.iter() {
                    gone.remove(s, e);
                }
            }
            let cleared = feed.clear_within(&gone)?;
            if cleared > 0 {
                done.cleared += cleared;
                shared.publish(&feed);
            }
        }
        self.reclaimed = Some((std::time::Instant::now(), self.changes()));
        self.measure_held(&mut usage, &referenced).await;
        done.usage = usage;
        if done.versions > 0 || done.stated > 0 || done.cleared > 0 {
            tracing::info!(
                space = %self.keys.name,
                versions = done.versions,
                stated = done.stated,
                cleared = done.cleared,
                "reclaimed space"
            );
        }
        Ok(done)
    }
}
