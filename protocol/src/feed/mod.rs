//! A feed: one signed append-only log on disk ([`cobox_feed::Core`]), written only by its
//! owner, durable at each append; plus what a seed evicted on purpose (its floor) and what
//! the writer cleared (its signed [`cleared::Statement`]).

pub mod cleared;
pub mod copy;
pub mod shared;

use crate::replicate::have::Ranges;
pub use cleared::Statement;

pub use shared::{Held, RemoteCopy, SharedFeed};

use std::path::{Path, PathBuf};

use cobox_feed::{Core, CoreError};

/// Why a feed could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("feed directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// An open feed.
#[derive(Debug)]
pub struct Feed {
    core: Core,
    /// Blocks below it were evicted on purpose (file `floor`): not to be fetched again.
    floor: u64,
    /// Known end of the run of blocks held from the floor; see [`Feed::run_end`].
    run: std::sync::atomic::AtomicU64,
    /// The writer's newest statement of the blocks it cleared (file `cleared`).
    cleared: Option<Statement>,
}

/// The file holding a feed's eviction floor (u64 LE).
const FLOOR_FILE: &str = "floor";
/// The file holding the writer's newest cleared-blocks statement, as it was signed.
const CLEARED_FILE: &str = "cleared";

/// Whether `dir` holds a feed.
pub fn exists(dir: &Path) -> bool {
    cobox_feed::exists(dir)
}

impl Feed {
    /// Open or create the feed in `dir` that must have public key `public`. With `seed`
    /// (the ed25519 seed of that key) the feed is writable.
    pub async fn open(
        dir: &Path,
        public: [u8; 32],
        seed: Option<&[u8; 32]>,
    ) -> Result<Feed, FeedError> {
        cobox_keys::atomic_file::sweep(dir);
        let (core, opened) = Core::open_reporting(dir, public, seed)?;
        if opened != cobox_feed::Opened::default() {
            tracing::info!(
                dir = %dir.display(),
                replayed = opened.migrated,
                cut = opened.cut,
                unmarked = opened.unmarked,
                truncated = opened.truncated,
                "feed repaired on open"
            );
        }
        let floor = std::fs::read(dir.join(FLOOR_FILE))
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let cleared = match std::fs::read(dir.join(CLEARED_FILE)) {
            Ok(bytes) => match Statement::decode(&public, &bytes) {
                Ok(st) => Some(st),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "ignoring a cleared-blocks statement");
                    None
                }
            },
            Err(_) => None,
        };
        let mut feed = Feed {
            floor,
            run: Default::default(),
            core,
            cleared,
        };
        // The writer clears what it stated (a crash may have come between the two).
        if feed.writable() && feed.cleared.is_some() {
            feed.clear_stated()?;
        }
        Ok(feed)
    }

    /// The writer's newest statement of the blocks it cleared, if any.
    pub fn cleared(&self) -> Option<&Statement> {
        self.cleared.as_ref()
    }

    /// The kept statement, encoded as its writer signed it.
    pub fn statement_bytes(&self) -> Option<Vec<u8>> {
        self.cleared.as_ref().map(Statement::encode)
    }

    /// Whether the writer cleared block `index` (it is not fetched or served again).
    pub fn is_cleared(&self, index: u64) -> bool {
        self.cleared.as_ref().is_some_and(|c| c.contains(index))
    }

    /// Keep `statement` when it is newer than the one kept (durably, before anything is
    /// cleared by it); whether it was. It must have been checked against this feed's key
    /// ([`Statement::decode`] does).
    pub fn take_cleared(&mut self, statement: Statement) -> Result<bool, FeedError> {
        if self
            .cleared
            .as_ref()
            .is_some_and(|c| c.seq >= statement.seq)
        {
            return Ok(false);
        }
        let dir = self.dir().to_path_buf();
        cobox_keys::atomic_file::replace(&dir.join(CLEARED_FILE), &statement.encode())
            .map_err(|source| FeedError::Io { dir, source })?;
        self.cleared = Some(statement);
        Ok(true)
    }

    /// As the writer: state that every block of `ranges` (and every one stated before) is
    /// cleared, and clear them here. The statement is durable before any block goes.
    /// `None` when the feed is not writable or the ranges are too many for a statement.
    pub fn state_cleared(&mut self, ranges: &Ranges) -> Result<Option<u64>, FeedError> {
        let mut all = self
            .cleared
            .as_ref()
            .map(|c| c.ranges.clone())
            .unwrap_or_default();
        for (s, e) in ranges.iter() {
            all.insert(s, e.min(self.len()));
        }
        if self.cleared.as_ref().is_some_and(|c| c.ranges == all) {
            return Ok(Some(0));
        }
        let seq = self.cleared.as_ref().map_or(1, |c| c.seq + 1);
        let key = self.public_key();
        let Some(statement) = Statement::sign(&key, seq, all, |m| self.core.sign_detached(m))
        else {
            return Ok(None);
        };
        self.take_cleared(statement)?;
        self.clear_stated().map(Some)
    }

    /// Clear every held block the kept statement names; how many were held.
    pub fn clear_stated(&mut self) -> Result<u64, FeedError> {
        let ranges = match &self.cleared {
            Some(c) => c.ranges.clone(),
            None => return Ok(0),
        };
        self.clear_within(&ranges)
    }

    /// How many blocks of `ranges` this device holds.
    pub fn held_within(&self, ranges: &Ranges) -> u64 {
        let mut held = 0;
        for (s, e) in ranges.iter() {
            let e = e.min(self.len());
            let mut i = self.core.first_held(s);
            while i < e {
                let end = self.core.first_missing(i).min(e);
                held += end - i;
                i = self.core.first_held(end);
            }
        }
        held
    }

    /// Clear the held blocks of `ranges`, durably; how many were held.
    pub fn clear_within(&mut self, ranges: &Ranges) -> Result<u64, FeedError> {
        let held = self.held_within(ranges);
        if held == 0 {
            return Ok(0);
        }
        self.commit()?;
        for (s, e) in ranges.iter() {
            self.core.clear(s, e.min(self.len()))?;
        }
        self.commit()?;
        self.run.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(held)
    }

    /// Make every write so far durable.
    pub fn commit(&mut self) -> Result<(), FeedError> {
        Ok(self.core.commit()?)
    }

    /// Append blocks; returns the new length once they are durable.
    pub async fn append_batch<B: AsRef<[u8]> + Sync>(
        &mut self,
        blocks: &[B],
    ) -> Result<u64, FeedError> {
        let length = self.core.append(blocks)?;
        self.commit()?;
        Ok(length)
    }

    /// Append blocks without waiting for them to be durable: a later [`Feed::commit`]
    /// (or committed append) makes them so. For the middle of a large write.
    pub async fn append_uncommitted<B: AsRef<[u8]> + Sync>(
        &mut self,
        blocks: &[B],
    ) -> Result<u64, FeedError> {
        Ok(self.core.append(blocks)?)
    }

    /// Blocks below it were evicted on purpose and are not fetched again.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The end of the run of blocks held without a gap from the floor (the contiguous
    /// length when nothing was evicted).
    pub fn run_end(&self) -> u64 {
        use std::sync::atomic::Ordering;
        if self.floor == 0 {
            return self.contiguous_len();
        }
        let from = self.run.load(Ordering::Relaxed).max(self.floor);
        let r = self.complete_from(from).min(self.len());
        self.run.store(r, Ordering::Relaxed);
        r
    }

    /// Drop every block below `end` (a seed making room, oldest first), durably: the
    /// bitfield stops marking them before their data is freed, and the floor is kept so
    /// they are not fetched again.
    pub async fn evict_below(&mut self, end: u64) -> Result<(), FeedError> {
        let end = end.min(self.len());
        if end <= self.floor {
            return Ok(());
        }
        // Everything held is made durable first, then the clear with its own commit.
        self.commit()?;
        self.core.clear(self.floor, end)?;
        self.commit()?;
        let dir = self.dir().to_path_buf();
        cobox_keys::atomic_file::replace(&dir.join(FLOOR_FILE), &end.to_le_bytes())
            .map_err(|source| FeedError::Io { dir, source })?;
        self.floor = end;
        Ok(())
    }

    /// Whether this device holds block `index`.
    pub fn has(&self, index: u64) -> bool {
        self.core.has(index)
    }

    /// Block `index`, or `None` when this device does not have it.
    pub async fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, FeedError> {
        Ok(self.core.get(index)?)
    }

    pub fn len(&self) -> u64 {
        self.core.len()
    }

    /// How many blocks from the start this device has without a gap, counting those the
    /// writer cleared as had: nothing before it is still to be fetched.
    pub fn contiguous_len(&self) -> u64 {
        self.complete_from(self.core.contiguous_len())
    }

    /// The first block at or after `from` that is neither held nor cleared.
    fn complete_from(&self, from: u64) -> u64 {
        let mut at = from;
        let len = self.len();
        while at < len {
            if let Some(end) = self.cleared.as_ref().and_then(|c| c.ranges.end_of(at)) {
                at = end;
            } else if self.core.has(at) {
                at = self.core.first_missing(at);
            } else {
                break;
            }
        }
        at.min(len.max(from))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn byte_len(&self) -> u64 {
        self.core.byte_len()
    }

    pub fn writable(&self) -> bool {
        self.core.writable()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.core.public_key()
    }

    pub fn dir(&self) -> &Path {
        self.core.dir()
    }

    /// The feed core itself, for replication.
    pub fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// The keys of the feeds stored in `dir` (one directory per feed, named by its key in
/// hex), sorted.
pub fn keys_in(dir: &Path) -> Vec<[u8; 32]> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut keys: Vec<[u8; 32]> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let bytes = cobox_keys::secret::unhex(e.file_name().to_str()?)?;
            <[u8; 32]>::try_from(bytes).ok()
        })
        .collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::Secret32;
    use cobox_keys::derive::{feed as feed_keys, identity};
    use cobox_schema::hexkey::Address;

    fn keys(n: u32) -> cobox_keys::SigningKeyPair {
        feed_keys(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n)
    }

    fn seed(k: &cobox_keys::SigningKeyPair) -> [u8; 32] {
        k.secret_bytes()[..32].try_into().unwrap()
    }

    #[tokio::test]
    async fn appends_survive_reopening_and_the_key_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(0);
        let mut f = Feed::open(dir.path(), k.public.0, Some(&seed(&k)))
            .await
            .unwrap();
        assert_eq!(
            f.append_batch(&[b"one".as_slice(), b"two"]).await.unwrap(),
            2
        );
        assert_eq!(f.append_batch(&[b"three"]).await.unwrap(), 3);
        drop(f);
        let mut f = Feed::open(dir.path(), k.public.0, Some(&seed(&k)))
            .await
            .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get(1).await.unwrap().unwrap(), b"two");
        assert_eq!(f.get(7).await.unwrap(), None);
        assert!(f.writable());
        drop(f);
        // Opening with another key is refused, not silently accepted.
        let other = keys(1);
        let e = Feed::open(dir.path(), other.public.0, Some(&seed(&other)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, FeedError::Core(CoreError::WrongKey { .. })),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_reader_cannot_append_and_a_mismatched_seed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(0);
        let mut r = Feed::open(dir.path(), k.public.0, None).await.unwrap();
        assert!(matches!(
            r.append_batch(&[b"x"]).await,
            Err(FeedError::Core(CoreError::ReadOnly { .. }))
        ));
        let dir2 = tempfile::tempdir().unwrap();
        let id = identity(&Secret32::from_bytes([5; 32]));
        let e = Feed::open(dir2.path(), k.public.0, Some(&seed(&id)))
            .await
            .unwrap_err();
        assert!(matches!(e, FeedError::Core(CoreError::WrongKey { .. })));
    }

    #[tokio::test]
    async fn feed_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k = keys(0);
        let fdir = dir.path().join("feed");
        let mut f = Feed::open(&fdir, k.public.0, Some(&seed(&k)))
            .await
            .unwrap();
        f.append_batch(&[b"x"]).await.unwrap();
        for name in ["oplog", "data", "tree", "bitfield"] {
            let mode = std::fs::metadata(fdir.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        assert_eq!(
            std::fs::metadata(&fdir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
