//! A seeded address on disk: every member's feeds without any key to read them, and the
//! roster that says whose feeds they are.
//!
//! ```text
//! DATA_DIR/seeds/ADDRESS/
//!   feeds/FEEDKEY/   one hypercore replica per member feed (ciphertext only)
//!   roster           the signed statements learnt from peers
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cobox_schema::hexkey::Address;

use crate::feed::SharedFeed;
use crate::feed::{Feed, FeedError};

/// The feeds of one seeded address.
#[derive(Debug)]
pub struct SeedStore {
    address: Address,
    root: PathBuf,
    open: BTreeMap<[u8; 32], Arc<SharedFeed>>,
}

/// Where the seed of `address` lives under `data_dir`.
pub fn seed_root(data_dir: &Path, address: &Address) -> PathBuf {
    data_dir.join("seeds").join(address.to_string())
}

impl SeedStore {
    /// Open (creating) the seed of `address`, with every feed already on disk.
    pub async fn open(data_dir: &Path, address: Address) -> Result<SeedStore, FeedError> {
        let root = seed_root(data_dir, &address);
        std::fs::create_dir_all(root.join("feeds")).map_err(|source| FeedError::Io {
            dir: root.clone(),
            source,
        })?;
        let mut store = SeedStore {
            address,
            root,
            open: BTreeMap::new(),
        };
        for key in store.on_disk() {
            store.replica(&key).await?;
        }
        Ok(store)
    }

    pub fn address(&self) -> [u8; 32] {
        self.address.0
    }

    pub fn roster_file(&self) -> PathBuf {
        self.root.join("roster")
    }

    fn feed_dir(&self, key: &[u8; 32]) -> PathBuf {
        self.root.join("feeds").join(cobox_keys::secret::hex(key))
    }

    /// The replica of feed `key`, opened (created) on first use.
    pub async fn replica(&mut self, key: &[u8; 32]) -> Result<Arc<SharedFeed>, FeedError> {
        if !self.open.contains_key(key) {
            let feed = Feed::open(&self.feed_dir(key), *key, None).await?;
            self.open.insert(*key, SharedFeed::new(feed));
        }
        Ok(self.open[key].clone())
    }

    fn on_disk(&self) -> Vec<[u8; 32]> {
        crate::feed::keys_in(&self.root.join("feeds"))
    }
}
