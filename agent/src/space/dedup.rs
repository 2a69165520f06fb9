//! The blocks this device has stored in its content feed, by keyed hash of their plaintext,
//! so a block written again (a file saved unchanged, copied, or full of repeats) is referred
//! to instead of stored twice.
//!
//! The hash is BLAKE3 keyed with the space's hash key: equal plaintexts are recognisable
//! only by members. The index is derived state in `DATA_DIR/drive-index/ADDRESS/blocks`:
//! records of `hash [32] ‖ index u64 LE`, appended only after the blocks they name are
//! committed, so a crash can lose records (those blocks are then not reused) but never
//! leave one naming a block that is not there. Opening drops records at or past the
//! content feed's length, of blocks the writer cleared (its statement says which), and a
//! torn last record, rewriting the file once. Clearing forgets the blocks it clears in
//! memory before it states them cleared; the file is not rewritten then (it would be
//! rewritten whole at every clearing pass, 40 MB for a million blocks), as the next open
//! drops them by the statement.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cobox_keys::Secret32;

use crate::replicate::have::Ranges;

/// A block's keyed hash.
pub type BlockHash = [u8; 32];

const RECORD: usize = 32 + 8;

/// The first 128 bits of a keyed hash, what the index keeps in memory (24 bytes an entry
/// rather than 40: a million blocks, 64 GiB of content, in 30 to 60 MB). Keyed, they cannot
/// be made to collide without the space's key, and by chance two of 2^32 blocks collide
/// with odds below 2^-64.
fn short(hash: &BlockHash) -> u128 {
    u128::from_le_bytes(hash[..16].try_into().expect("16 bytes"))
}

/// This device's stored blocks of one space, by hash.
pub struct BlockHashes {
    key: [u8; 32],
    path: PathBuf,
    stored: Mutex<HashMap<u128, u64>>,
}

impl std::fmt::Debug for BlockHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockHashes")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl BlockHashes {
    /// The index at `path` for a content feed of `committed` blocks, keyed with `key`,
    /// without the blocks in `cleared`.
    pub fn open(
        path: &Path,
        key: &Secret32,
        committed: u64,
        cleared: Option<&Ranges>,
    ) -> std::io::Result<BlockHashes> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(e),
        };
        let mut stored = HashMap::with_capacity(bytes.len() / RECORD);
        let mut kept = Vec::with_capacity(bytes.len());
        for record in bytes.chunks_exact(RECORD) {
            let index = u64::from_le_bytes(record[32..].try_into().expect("8 bytes"));
            if index < committed && !cleared.is_some_and(|c| c.contains(index)) {
                let hash: BlockHash = record[..32].try_into().expect("32 bytes");
                stored.insert(short(&hash), index);
                kept.extend_from_slice(record);
            }
        }
        if kept.len() != bytes.len() {
            crate::atomic_file::replace(path, &kept)?;
        }
        Ok(BlockHashes {
            key: *key.expose(),
            path: path.to_path_buf(),
            stored: Mutex::new(stored),
        })
    }

    /// The keyed hash of a plaintext block.
    pub fn hash(&self, plain: &[u8]) -> BlockHash {
        *blake3::keyed_hash(&self.key, plain).as_bytes()
    }

    /// Where a block with this hash is stored in this device's content feed.
    pub fn find(&self, hash: &BlockHash) -> Option<u64> {
        self.lock().get(&short(hash)).copied()
    }

    /// How many blocks are indexed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record blocks just committed to the content feed.
    pub fn record(&self, blocks: &[(BlockHash, u64)]) -> std::io::Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut stored = self.lock();
        let mut out = Vec::with_capacity(blocks.len() * RECORD);
        for (hash, index) in blocks {
            stored.entry(short(hash)).or_insert(*index);
            out.extend_from_slice(hash);
            out.extend_from_slice(&index.to_le_bytes());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(&out)
    }

    /// Forget the blocks in `gone` (about to be stated cleared): they are never reused.
    /// Their records stay in the file until the next open, which drops them by the
    /// statement; until the statement is durable the blocks are still there.
    pub fn forget(&self, gone: &Ranges) {
        if !gone.is_empty() {
            self.lock().retain(|_, index| !gone.contains(*index));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, u64>> {
        self.stored.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen_and_records_past_the_feed_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks");
        let key = Secret32::from_bytes([7; 32]);
        let h = BlockHashes::open(&path, &key, 0, None).unwrap();
        let (a, b) = (h.hash(b"a"), h.hash(b"b"));
        assert_ne!(a, *blake3::hash(b"a").as_bytes(), "the hash is keyed");
        h.record(&[(a, 0), (b, 1)]).unwrap();
        assert_eq!(h.find(&a), Some(0));
        drop(h);
        // A torn record at the end, and a feed that lost block 1 in a crash.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let h = BlockHashes::open(&path, &key, 1, None).unwrap();
        assert_eq!((h.find(&a), h.find(&b), h.len()), (Some(0), None, 1));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), RECORD as u64);
        let other = BlockHashes::open(&path, &Secret32::from_bytes([8; 32]), 1, None).unwrap();
        assert_ne!(
            other.hash(b"a"),
            a,
            "another space's key hashes differently"
        );
    }

    #[test]
    fn cleared_blocks_are_forgotten_and_stay_forgotten_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks");
        let key = Secret32::from_bytes([7; 32]);
        let h = BlockHashes::open(&path, &key, 0, None).unwrap();
        let hs: Vec<BlockHash> = (0..4u8).map(|i| h.hash(&[i])).collect();
        h.record(&hs.iter().copied().zip(0..4).collect::<Vec<_>>())
            .unwrap();
        let mut gone = Ranges::default();
        gone.insert(1, 3);
        h.forget(&gone);
        let found = |h: &BlockHashes| hs.iter().map(|x| h.find(x)).collect::<Vec<_>>();
        assert_eq!(found(&h), vec![Some(0), None, None, Some(3)]);
        drop(h);
        // A crash before the statement was durable: the blocks are still stored, and may
        // be reused again.
        let h = BlockHashes::open(&path, &key, 4, None).unwrap();
        assert_eq!(found(&h), vec![Some(0), Some(1), Some(2), Some(3)]);
        drop(h);
        // Reopened with the writer's statement (of those and one more block): all of them
        // stay forgotten, and the file keeps only the rest.
        let mut stated = gone.clone();
        stated.insert(3, 4);
        let h = BlockHashes::open(&path, &key, 4, Some(&stated)).unwrap();
        assert_eq!(found(&h), vec![Some(0), None, None, None]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), RECORD as u64);
    }
}
