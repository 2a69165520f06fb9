//! Making room in a seed by evicting the oldest content blocks.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Holder, Network};
use crate::feed::SharedFeed;

impl Network {
    /// Make room in seed `name`: evict the oldest blocks (the lowest) of the content
    /// feed holding the most, feed after feed, until about `bytes` are freed. Logs are
    /// kept: they are small and without them nothing else can be read. Returns the bytes
    /// freed (estimated from the blocks' average size).
    pub async fn evict(&self, name: &str, bytes: u64) -> u64 {
        let feeds: Vec<Arc<SharedFeed>> = {
            let st = self.state();
            let Some(share) = st
                .shares
                .values()
                .find(|s| s.name == name && matches!(s.holder, Holder::Seed(_)))
            else {
                return 0;
            };
            let logs: BTreeSet<[u8; 32]> = share.members.iter().map(|m| m.log).collect();
            share
                .feeds
                .values()
                .filter(|f| !logs.contains(&f.key()))
                .cloned()
                .collect()
        };
        let mut freed = 0;
        for _ in 0..feeds.len() {
            if freed >= bytes {
                break;
            }
            // The feed with the most bytes held above its floor.
            let held_bytes = |f: &Arc<SharedFeed>| {
                let h = f.held();
                (h.bytes as u128 * h.run.saturating_sub(h.floor) as u128)
                    .checked_div(h.length as u128)
                    .unwrap_or(0) as u64
            };
            let Some(f) = feeds.iter().max_by_key(|f| held_bytes(f)).cloned() else {
                break;
            };
            if held_bytes(&f) == 0 {
                break;
            }
            let mut feed = f.lock().await;
            let (floor, length) = (feed.floor(), feed.len());
            let average = feed.byte_len().checked_div(length).unwrap_or(1).max(1);
            let end = floor
                .saturating_add((bytes - freed).div_ceil(average))
                .min(length);
            match feed.evict_below(end).await {
                Ok(()) => {
                    freed += (end - floor) * average;
                    f.publish(&feed);
                    tracing::info!(seed = name, feed = %cobox_keys::secret::hex(&f.key()), below = end, "evicted the oldest blocks");
                }
                Err(e) => {
                    tracing::error!(seed = name, error = %e, "cannot evict blocks");
                    break;
                }
            }
        }
        freed
    }
}
