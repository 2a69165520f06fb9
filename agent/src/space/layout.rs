//! Where a space lives on disk.
//!
//! ```text
//! DATA_DIR/spaces/ADDRESS/
//!   space.key          the space's keys (cobox-keys)
//!   feeds/FEEDKEY/     one hypercore per feed: every member's log and content feeds
//!   index/             derived state (the drive index); deletable, rebuilt from the feeds
//!   staging/           files being written through a mount, until they are committed
//! ```

use std::path::{Path, PathBuf};

use cobox_schema::hexkey::Address;

/// The paths of one space.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path, address: &Address) -> Layout {
        Layout {
            root: data_dir.join("spaces").join(address.to_string()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn feeds(&self) -> PathBuf {
        self.root.join("feeds")
    }

    pub fn feed(&self, key: &[u8; 32]) -> PathBuf {
        self.feeds()
            .join(key.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }

    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
}
