//! The spaces' derived state in sled: which feeds are logs, and checkpoints of the merged
//! drive (with how far into each log it has read), so a restart replays only new entries.
//! One database per device (`DATA_DIR/index`), a tree per space, shared by every open
//! space of the process. Deleting it while the agent is stopped is safe: it is rebuilt
//! from the feeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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
    dir: PathBuf,
    db: sled::Db,
    logs: sled::Tree,
    checkpoints: sled::Tree,
    space: [u8; 32],
}

/// Databases open in this process, with how many spaces use each (sled allows one opening
/// of a directory per process).
fn registry() -> &'static Mutex<BTreeMap<PathBuf, (sled::Db, usize)>> {
    static OPEN: OnceLock<Mutex<BTreeMap<PathBuf, (sled::Db, usize)>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(BTreeMap::new()))
}

impl Drop for Index {
    fn drop(&mut self) {
        // The database stays open for the life of the process even when no space uses it:
        // sled releases its directory lock only once its background threads let go, so
        // closing and at once reopening (a space closed and declared again) could fail.
        let mut open = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, users)) = open.get_mut(&self.dir) {
            *users = users.saturating_sub(1);
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

impl Index {
    /// The index of the space `space` in the device database at `dir`.
    pub fn open(dir: &Path, space: &[u8; 32]) -> Result<Index, IndexError> {
        let db = {
            let mut open = registry().lock().unwrap_or_else(|p| p.into_inner());
            match open.get_mut(dir) {
                Some((db, users)) => {
                    *users += 1;
                    db.clone()
                }
                None => {
                    let db = sled::Config::new()
                        .path(dir)
                        .mode(sled::Mode::LowSpace)
                        .open()?;
                    open.insert(dir.to_path_buf(), (db.clone(), 1));
                    db
                }
            }
        };
        let logs = db.open_tree(logs_tree(space))?;
        let checkpoints = db.open_tree("checkpoints")?;
        Ok(Index {
            dir: dir.to_path_buf(),
            db,
            logs,
            checkpoints,
            space: *space,
        })
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
        let bytes = self.checkpoints.get(self.space).ok()??;
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
        self.checkpoints
            .insert(self.space, serde_json::to_vec(tree)?)?;
        self.db.flush()?;
        Ok(())
    }
}

/// The tree of the log feeds known for `space`.
fn logs_tree(space: &[u8; 32]) -> String {
    format!("logs/{}", cobox_keys::secret::hex(space))
}

/// Drop everything the index holds about `space` (its data was deleted).
pub fn forget(dir: &Path, space: &[u8; 32]) -> Result<(), IndexError> {
    let index = Index::open(dir, space)?;
    index.checkpoints.remove(space)?;
    index.db.drop_tree(logs_tree(space))?;
    index.db.flush()?;
    Ok(())
}
