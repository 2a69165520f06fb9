//! The spaces' derived state in plain files: which feeds are other members' logs, a
//! checkpoint of the merged drive (with how far into each log it has read), so a restart
//! replays only new entries, and this device's stored blocks by hash (`dedup.rs`). A
//! directory per space under `DATA_DIR/drive-index/`, each file replaced whole
//! (`atomic_file`) or appended to. Deleting it while the agent is stopped is safe: it is
//! rebuilt from the feeds, but for the block hashes (a block stored before is then stored
//! again when it is written again).

use std::path::{Path, PathBuf};

use super::tree::Tree;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index checkpoint: {0}")]
    Encoding(#[from] postcard::Error),
}

const LOGS: &str = "logs";
/// The drive's checkpoint: [`CHECKPOINT_FORMAT`] then the drive in postcard (compact, and
/// an order of magnitude cheaper to write than JSON: it is rewritten every 2,000 entries).
const CHECKPOINT: &str = "checkpoint.bin";
/// Format 2: files may carry their content. A checkpoint of another format is not read:
/// the drive is rebuilt from the logs.
const CHECKPOINT_FORMAT: u8 = 2;
/// Where earlier versions kept it, in JSON: still read, removed once replaced.
const LEGACY_CHECKPOINT: &str = "checkpoint.json";
/// The file of this device's stored blocks by hash (`dedup.rs`).
pub const BLOCKS: &str = "blocks";

/// The index of one space.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The device's old index (a sled database, before the per-space files): derived state,
/// removed so it takes no room.
fn sweep_old(dir: &Path) {
    if dir.join("conf").is_file() && dir.join("db").is_file() {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {
                tracing::info!(path = %dir.display(), "removed the old index database (rebuilt from the feeds)")
            }
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "cannot remove the old index database")
            }
        }
    }
}

impl Index {
    /// The index of the space `space` in the device's index directory `dir`.
    pub fn open(dir: &Path, space: &[u8; 32]) -> Result<Index, IndexError> {
        if let Some(data_dir) = dir.parent() {
            sweep_old(&data_dir.join("index"));
        }
        let dir = dir.join(cobox_keys::secret::hex(space));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        cobox_keys::atomic_file::sweep(&dir);
        Ok(Index { dir })
    }

    /// Log feeds of other members known to this device.
    /// The space's index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn logs(&self) -> Result<Vec<[u8; 32]>, IndexError> {
        let path = self.dir.join(LOGS);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut out: Vec<[u8; 32]> = text
            .lines()
            .filter_map(|l| <[u8; 32]>::try_from(cobox_keys::secret::unhex(l.trim())?).ok())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn add_log(&self, key: &[u8; 32]) -> Result<(), IndexError> {
        let mut logs = self.logs()?;
        if logs.contains(key) {
            return Ok(());
        }
        logs.push(*key);
        logs.sort();
        let text: String = logs
            .iter()
            .map(|k| format!("{}\n", cobox_keys::secret::hex(k)))
            .collect();
        let path = self.dir.join(LOGS);
        cobox_keys::atomic_file::replace(&path, text.as_bytes()).map_err(io(&path))
    }

    /// The last checkpoint of the drive, if there is a readable one.
    pub fn load_tree(&self) -> Option<Tree> {
        let read = match std::fs::read(self.dir.join(CHECKPOINT)) {
            Ok(bytes) => match bytes.split_first() {
                Some((&CHECKPOINT_FORMAT, rest)) => {
                    postcard::from_bytes(rest).map_err(|e| e.to_string())
                }
                _ => Err("a checkpoint format this program does not know".into()),
            },
            Err(_) => {
                let bytes = std::fs::read(self.dir.join(LEGACY_CHECKPOINT)).ok()?;
                serde_json::from_slice(&bytes).map_err(|e| e.to_string())
            }
        };
        match read {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable drive checkpoint; rebuilding from the feeds");
                None
            }
        }
    }

    /// Save a checkpoint of the drive.
    pub fn save_tree(&self, tree: &Tree) -> Result<(), IndexError> {
        let path = self.dir.join(CHECKPOINT);
        let mut bytes = vec![CHECKPOINT_FORMAT];
        bytes.extend(postcard::to_stdvec(tree)?);
        cobox_keys::atomic_file::replace(&path, &bytes).map_err(io(&path))?;
        let legacy = self.dir.join(LEGACY_CHECKPOINT);
        match std::fs::remove_file(&legacy) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&legacy)(e)),
        }
    }
}

/// Drop everything the index holds about `space` (its data was deleted).
pub fn forget(dir: &Path, space: &[u8; 32]) -> Result<(), IndexError> {
    let dir = dir.join(cobox_keys::secret::hex(space));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::blocks::FileBlocks;
    use crate::space::tree::OpContext;

    #[test]
    fn a_checkpoint_round_trips_and_a_json_one_is_read_then_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open(tmp.path(), &[3; 32]).unwrap();
        let mut tree = Tree::default();
        let ctx = OpContext {
            feed: [1; 32],
            seq: 0,
            device: "d".into(),
            time_ms: 5,
        };
        let op = tree
            .write_op(ctx, "a/b.txt", FileBlocks::default(), 0o644, 5)
            .unwrap();
        assert!(tree.apply_encoded(&[1; 32], 0, &op));
        let shown = |t: &Tree| t.node("a/b.txt").map(|n| (n.size, n.mode));

        // Left by an earlier version: JSON, still read.
        let legacy = index.dir().join(LEGACY_CHECKPOINT);
        std::fs::write(&legacy, serde_json::to_vec(&tree).unwrap()).unwrap();
        let back = index.load_tree().unwrap();
        assert_eq!(shown(&back), Some((0, 0o644)));
        assert_eq!(back.applied(&[1; 32]), 1);

        index.save_tree(&back).unwrap();
        assert!(!legacy.exists(), "the JSON checkpoint is replaced");
        let bin = std::fs::read(index.dir().join(CHECKPOINT)).unwrap();
        assert_eq!(bin[0], CHECKPOINT_FORMAT);
        let again = index.load_tree().unwrap();
        assert_eq!(shown(&again), Some((0, 0o644)));
        assert_eq!(again.applied(&[1; 32]), 1);

        // A damaged one is ignored (the drive is rebuilt from the feeds), never trusted.
        std::fs::write(
            index.dir().join(CHECKPOINT),
            [CHECKPOINT_FORMAT, 0xff, 0xff],
        )
        .unwrap();
        assert!(index.load_tree().is_none());
        std::fs::write(index.dir().join(CHECKPOINT), [9, 0]).unwrap();
        assert!(index.load_tree().is_none());
    }
}
