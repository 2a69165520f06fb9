//! A feed: one hypercore on disk, written only by its owner, durable at each append.

pub mod copy;
pub mod oplog_repair;
pub mod storage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hypercore::{Hypercore, HypercoreBuilder, PartialKeypair, SigningKey, VerifyingKey};

use storage::CommitGroup;

/// Why a feed could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed {dir}: {source}")]
    Core {
        dir: PathBuf,
        source: hypercore::HypercoreError,
    },
    #[error("feed {dir} holds key {found}, not the expected {expected}")]
    WrongKey {
        dir: PathBuf,
        expected: String,
        found: String,
    },
    #[error("feed {dir}: cannot make writes durable: {source}")]
    Sync {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("feed directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("feed {dir} is not writable here")]
    ReadOnly { dir: PathBuf },
    #[error("public key {0} is not a valid ed25519 key")]
    BadKey(String),
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An open feed.
#[derive(Debug)]
pub struct Feed {
    dir: PathBuf,
    core: Hypercore,
    group: Arc<CommitGroup>,
    public: [u8; 32],
    /// Known contiguous length; see [`Feed::contiguous_len`].
    contiguous: std::sync::atomic::AtomicU64,
    /// Blocks below it were evicted on purpose (file `floor`): not to be fetched again.
    floor: u64,
    /// Known end of the run of blocks held from the floor; see [`Feed::run_end`].
    run: std::sync::atomic::AtomicU64,
}

/// The file holding a feed's eviction floor (u64 LE).
const FLOOR_FILE: &str = "floor";

impl Feed {
    /// Open or create the feed in `dir` that must have public key `public`. With `seed`
    /// (the ed25519 seed of that key) the feed is writable.
    pub async fn open(
        dir: &Path,
        public: [u8; 32],
        seed: Option<&[u8; 32]>,
    ) -> Result<Feed, FeedError> {
        let core_err = |source| FeedError::Core {
            dir: dir.to_path_buf(),
            source,
        };
        let existed = storage::exists(dir);
        if existed {
            let dropped = oplog_repair::repair(dir).map_err(|source| FeedError::Sync {
                dir: dir.to_path_buf(),
                source,
            })?;
            if dropped > 0 {
                tracing::info!(dir = %dir.display(), dropped, "dropped oplog entries that must not be replayed");
            }
        }
        let (st, group) = storage::open(dir).await.map_err(core_err)?;
        let builder = HypercoreBuilder::new(st);
        let core = if existed {
            // Hypercore ignores a supplied key pair on reopen: open, then check.
            builder.open(true).build().await.map_err(core_err)?
        } else {
            let verifying =
                VerifyingKey::from_bytes(&public).map_err(|_| FeedError::BadKey(hex(&public)))?;
            let secret = seed.map(SigningKey::from_bytes);
            if let Some(s) = &secret
                && s.verifying_key() != verifying
            {
                return Err(FeedError::WrongKey {
                    dir: dir.to_path_buf(),
                    expected: hex(&public),
                    found: hex(s.verifying_key().as_bytes()),
                });
            }
            builder
                .key_pair(PartialKeypair {
                    public: verifying,
                    secret,
                })
                .build()
                .await
                .map_err(core_err)?
        };
        let found = *core.key_pair().public.as_bytes();
        if found != public {
            return Err(FeedError::WrongKey {
                dir: dir.to_path_buf(),
                expected: hex(&public),
                found: hex(&found),
            });
        }
        let floor = std::fs::read(dir.join(FLOOR_FILE))
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let feed = Feed {
            floor,
            run: Default::default(),
            dir: dir.to_path_buf(),
            core,
            group,
            public,
            contiguous: Default::default(),
        };
        feed.commit()?;
        Ok(feed)
    }

    /// Make every write so far durable.
    pub fn commit(&self) -> Result<(), FeedError> {
        self.group.commit().map_err(|source| FeedError::Sync {
            dir: self.dir.clone(),
            source,
        })
    }

    /// Append blocks; returns the new length once they are durable.
    pub async fn append_batch<B: AsRef<[u8]>>(&mut self, blocks: &[B]) -> Result<u64, FeedError> {
        let length = self.append_uncommitted(blocks).await?;
        self.commit()?;
        Ok(length)
    }

    /// Append blocks without waiting for them to be durable: a later [`Feed::commit`]
    /// (or committed append) makes them so. For the middle of a large write.
    pub async fn append_uncommitted<B: AsRef<[u8]>>(
        &mut self,
        blocks: &[B],
    ) -> Result<u64, FeedError> {
        if !self.writable() {
            return Err(FeedError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        let out = self
            .core
            .append_batch(blocks)
            .await
            .map_err(|source| FeedError::Core {
                dir: self.dir.clone(),
                source,
            })?;
        Ok(out.length)
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
        let length = self.core.info().length;
        let mut r = self.run.load(Ordering::Relaxed).max(self.floor).min(length);
        while r < length && self.core.has(r) {
            r += 1;
        }
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
        let start = self.floor;
        let sync = |source| FeedError::Sync {
            dir: self.dir.clone(),
            source,
        };
        // Everything held is written first, so no older bitfield page lands after ours.
        self.commit()?;
        self.core
            .clear(start, end)
            .await
            .map_err(|source| FeedError::Core {
                dir: self.dir.clone(),
                source,
            })?;
        // The clear hypercore logs is not replayed on open (the repair cuts it): the
        // bitfield file itself stops marking the blocks, durably, before the commit frees
        // their data.
        oplog_repair::unmark(&self.dir, start, end).map_err(sync)?;
        self.contiguous
            .fetch_min(start, std::sync::atomic::Ordering::Relaxed);
        self.commit()?;
        crate::atomic_file::replace(&self.dir.join(FLOOR_FILE), &end.to_le_bytes())
            .map_err(sync)?;
        self.floor = end;
        Ok(())
    }

    /// Block `index`, or `None` when this device does not have it.
    pub async fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, FeedError> {
        self.core
            .get(index)
            .await
            .map_err(|source| FeedError::Core {
                dir: self.dir.clone(),
                source,
            })
    }

    pub fn len(&self) -> u64 {
        self.core.info().length
    }

    /// How many blocks from the start this device has without a gap.
    ///
    /// hypercore's own hint can lag behind after a crash (its bitfield holds blocks its
    /// header does not count, and the hint only moves when the block at it arrives), so
    /// the bitfield is scanned on from the furthest point known. It can also run ahead of
    /// the length: a crash after the bitfield was synced but before the oplog recorded the
    /// append leaves bits past the length, and hypercore's replay scans over them; so it is
    /// capped at the length. [`Feed::clear`] resets it.
    pub fn contiguous_len(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let info = self.core.info();
        // After an eviction the header's hint may still count evicted blocks.
        let hint = if self.floor > 0 {
            0
        } else {
            info.contiguous_length
        };
        let mut c = hint
            .max(self.contiguous.load(Ordering::Relaxed))
            .min(info.length);
        while c < info.length && self.core.has(c) {
            c += 1;
        }
        self.contiguous.store(c, Ordering::Relaxed);
        c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn byte_len(&self) -> u64 {
        self.core.info().byte_length
    }

    pub fn writable(&self) -> bool {
        self.core.info().writeable
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hypercore itself, for replication.
    pub fn core_mut(&mut self) -> &mut Hypercore {
        &mut self.core
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
        assert!(matches!(e, FeedError::WrongKey { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_reader_cannot_append_and_a_mismatched_seed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(0);
        let mut r = Feed::open(dir.path(), k.public.0, None).await.unwrap();
        assert!(matches!(
            r.append_batch(&[b"x"]).await,
            Err(FeedError::ReadOnly { .. })
        ));
        let dir2 = tempfile::tempdir().unwrap();
        let id = identity(&Secret32::from_bytes([5; 32]));
        let e = Feed::open(dir2.path(), k.public.0, Some(&seed(&id)))
            .await
            .unwrap_err();
        assert!(matches!(e, FeedError::WrongKey { .. }));
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
