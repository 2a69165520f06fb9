//! Where a space lives on disk.
//!
//! ```text
//! DATA_DIR/drive-index/ADDRESS/   derived state of the space (known logs, the drive's
//!                                  checkpoint, the key epochs read); deletable while
//!                                  the agent is stopped, rebuilt from the feeds
//! DATA_DIR/spaces/ADDRESS/
//!   space.key          the space's keys (cobox-keys)
//!   feeds/FEEDKEY/     one hypercore per feed: every member's log and content feeds
//!   roster             signed statements of who takes part (see `cobox_keys::roster`)
//!   staging/           files being written through a mount, until they are committed
//! ```

use std::path::{Path, PathBuf};

use cobox_schema::hexkey::Address;

/// The paths of one space.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    index: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path, address: &Address) -> Layout {
        Layout {
            root: data_dir.join("spaces").join(address.to_string()),
            index: data_dir.join("drive-index"),
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

    /// Where the device keeps its spaces' derived state (a directory per space).
    pub fn index(&self) -> PathBuf {
        self.index.clone()
    }

    /// The space's roster: signed statements of who takes part.
    pub fn roster(&self) -> PathBuf {
        self.root.join("roster")
    }

    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
}
