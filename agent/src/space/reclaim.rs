//! Reclaiming space: earlier versions past the space's retention are forgotten, and the
//! blocks nothing refers to any more are cleared — from this device's own content feed
//! (stated to every replica in a statement signed with the feed's key) and from its copies
//! of other members' feeds (what their writers stated, except what this device's tree or
//! an open file still refers to).
//!
//! Order, for crashes: the pruned drive is checkpointed first; the block index forgets
//! the blocks (so nothing reuses them) before the statement names them; the statement is
//! durable before any block goes; the feed clears what its statement names again on every
//! open. A crash anywhere leaves every referenced block in place.

use std::collections::BTreeMap;

use cobox_drive::{FeedId, Retention, Run};

use super::{Space, SpaceError};
use crate::replicate::have::Ranges;

/// What one pass reclaimed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    /// Earlier versions forgotten.
    pub versions: usize,
    /// Blocks of this device's content feed newly stated cleared.
    pub stated: u64,
    /// Blocks cleared on this device (own and other members' feeds).
    pub cleared: u64,
}

/// The blocks of each feed in `runs`.
fn by_feed<'a>(runs: impl Iterator<Item = &'a Run>) -> BTreeMap<FeedId, Ranges> {
    let mut out: BTreeMap<FeedId, Ranges> = BTreeMap::new();
    for r in runs {
        out.entry(r.feed)
            .or_default()
            .insert(r.start, r.start.saturating_add(r.count));
    }
    out
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

    /// What the space's blocks are used for, as of now.
    pub async fn usage(&mut self) -> super::usage::Usage {
        let mut usage = super::usage::measure(self.tree.drive());
        let refs = self.referenced();
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
        usage
    }

    /// The blocks of each feed that a file or a kept version refers to.
    pub fn referenced(&self) -> BTreeMap<FeedId, Ranges> {
        super::usage::referenced(self.tree.drive())
    }

    /// Forget what `retention` no longer keeps at `now_ms` and clear the blocks nothing
    /// refers to.
    pub async fn reclaim(
        &mut self,
        retention: Retention,
        now_ms: i64,
    ) -> Result<Reclaimed, SpaceError> {
        let mut done = Reclaimed {
            versions: self.tree.prune(now_ms, retention),
            ..Reclaimed::default()
        };
        if done.versions > 0 {
            self.unsaved += 1;
            self.checkpoint().await?;
        }
        let mut refs = self.referenced();
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
                hashes.forget(&fresh).map(|()| fresh)
            });
            let fresh = fresh.map_err(|e| SpaceError::Index(format!("block hashes: {e}")))?;
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
        if done != Reclaimed::default() {
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
