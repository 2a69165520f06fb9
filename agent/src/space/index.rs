//! The space's derived state in sled: which feeds are logs, and checkpoints of the merged
//! drive (with how far into each log it has read), so a restart replays only new entries.
//! Deleting the index directory is safe: it is rebuilt from the feeds.

use std::path::Path;

use super::tree::Tree;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index database: {0}")]
    Db(#[from] sled::Error),
    #[error("index checkpoint: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// The index of one space.
pub struct Index {
    db: sled::Db,
    logs: sled::Tree,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

const CHECKPOINT: &[u8] = b"drive-checkpoint-v1";

impl Index {
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            .open()?;
        let logs = db.open_tree("logs")?;
        Ok(Index { db, logs })
    }

    /// Log feeds of other members known to this device.
    pub fn logs(&self) -> Result<Vec<[u8; 32]>, IndexError> {
        let mut out = Vec::new();
        for item in self.logs.iter() {
            let (k, _) = item?;
            if let Ok(key) = <[u8; 32]>::try_from(k.as_ref()) {
                out.push(key);
            }
        }
        Ok(out)
    }

    pub fn add_log(&self, key: &[u8; 32]) -> Result<(), IndexError> {
        self.logs.insert(key, &[])?;
        self.db.flush()?;
        Ok(())
    }

    /// The last checkpoint of the drive, if there is a readable one.
    pub fn load_tree(&self) -> Option<Tree> {
        let bytes = self.db.get(CHECKPOINT).ok()??;
        match serde_json::from_slice(&bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable drive checkpoint; rebuilding from the feeds");
                None
            }
        }
    }

    /// Save a checkpoint of the drive.
    pub fn save_tree(&self, tree: &Tree) -> Result<(), IndexError> {
        self.db.insert(CHECKPOINT, serde_json::to_vec(tree)?)?;
        self.db.flush()?;
        Ok(())
    }
}
