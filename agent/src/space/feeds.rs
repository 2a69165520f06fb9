//! The feeds of a space on this device: this device's own pair and every other feed
//! (other members' logs and contents, replicated here), opened read-only on demand, each
//! shared with the replication sessions.

use std::collections::BTreeMap;
use std::sync::Arc;

use cobox_keys::{Secret32, SigningKeyPair};
use cobox_schema::hexkey::Address;

use super::layout::Layout;
use crate::feed::SharedFeed;
use crate::feed::{Feed, FeedError};

/// Feed numbers of a member's feeds in a space (see the key derivation table).
pub const LOG_FEED: u32 = 0;
pub const CONTENT_FEED: u32 = 1;

/// Every open feed of a space, by public key.
#[derive(Debug)]
pub struct Feeds {
    layout: Layout,
    pub log_key: [u8; 32],
    pub content_key: [u8; 32],
    open: BTreeMap<[u8; 32], Arc<SharedFeed>>,
}

fn seed(k: &SigningKeyPair) -> [u8; 32] {
    k.secret_bytes()[..32]
        .try_into()
        .expect("64-byte secret key")
}

/// A member's feed: what its writer cleared is cleared here by the space, which keeps
/// the blocks its own tree or an open file still refers to.
fn shared(feed: Feed) -> Arc<SharedFeed> {
    let f = SharedFeed::new(feed);
    f.set_auto_clear(false);
    f
}

impl Feeds {
    /// Open (creating) this device's log and content feeds of the space at `address`.
    pub async fn open(
        layout: Layout,
        parent: &Secret32,
        address: &Address,
    ) -> Result<Feeds, FeedError> {
        let log = cobox_keys::derive::feed(parent, address, LOG_FEED);
        let content = cobox_keys::derive::feed(parent, address, CONTENT_FEED);
        let mut open = BTreeMap::new();
        for kp in [&log, &content] {
            let feed = Feed::open(&layout.feed(&kp.public.0), kp.public.0, Some(&seed(kp))).await?;
            open.insert(kp.public.0, shared(feed));
        }
        Ok(Feeds {
            layout,
            log_key: log.public.0,
            content_key: content.public.0,
            open,
        })
    }

    pub fn log(&self) -> &Arc<SharedFeed> {
        self.open
            .get(&self.log_key)
            .expect("own log is always open")
    }

    pub fn content(&self) -> &Arc<SharedFeed> {
        self.open
            .get(&self.content_key)
            .expect("own content is always open")
    }

    /// The feed `key`, opening it read-only if it exists on disk. `None`: not here.
    pub async fn get(&mut self, key: &[u8; 32]) -> Result<Option<Arc<SharedFeed>>, FeedError> {
        if !self.open.contains_key(key) {
            let dir = self.layout.feed(key);
            if !crate::feed::exists(&dir) {
                return Ok(None);
            }
            let feed = Feed::open(&dir, *key, None).await?;
            self.open.insert(*key, shared(feed));
        }
        Ok(self.open.get(key).cloned())
    }

    /// Open (creating if needed) a read-only replica of feed `key`.
    pub async fn replica(&mut self, key: &[u8; 32]) -> Result<Arc<SharedFeed>, FeedError> {
        if !self.open.contains_key(key) {
            let feed = Feed::open(&self.layout.feed(key), *key, None).await?;
            self.open.insert(*key, shared(feed));
        }
        Ok(self.open[key].clone())
    }

    /// Every open feed, by key.
    pub fn open_feeds(&self) -> Vec<Arc<SharedFeed>> {
        self.open.values().cloned().collect()
    }

    /// The keys of every feed present on disk, sorted.
    pub fn on_disk(&self) -> Vec<[u8; 32]> {
        crate::feed::keys_in(&self.layout.feeds())
    }
}
