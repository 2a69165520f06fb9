//! File contents as encrypted blocks of content feeds.
//!
//! A file is cut into [`BLOCK_SIZE`] plaintext blocks. A block this device has stored
//! before (found by its keyed hash, [`BlockHashes`]) is referred to again; any other is
//! sealed with the space's block key bound to (content feed, index) and appended in
//! batches, so a file of any size streams through a bounded buffer.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use cobox_keys::block::Keyring;

use super::blocks::{BlockAt, FileBlocks};
use super::dedup::{BlockHash, BlockHashes};
use super::pins::{Pin, Pins};
use crate::feed::{Feed, FeedError};
use cobox_keys::secret::hex;

pub use super::blocks::BLOCK_SIZE;
/// A file of at most this many bytes keeps its content inside its drive operation instead
/// of a block of the content feed: one append to the log instead of one to each feed, and
/// for a peer one entry to fetch instead of an entry and a block.
pub const INLINE_MAX: usize = 4096;
/// Blocks appended per batch (one commit each).
pub const BATCH_BLOCKS: usize = 16;

/// Why content could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("cannot read the file being stored: {0}")]
    Source(std::io::Error),
    #[error("content block {index} of feed {feed} does not decrypt: {reason}")]
    Block {
        feed: String,
        index: u64,
        reason: cobox_keys::block::BlockError,
    },
    #[error("content block {index} of feed {feed} is not on this device yet")]
    Missing { feed: String, index: u64 },
    #[error("a file's block list names {listed} blocks for {size} bytes")]
    Inconsistent { listed: u64, size: u64 },
    #[error("block index: {0}")]
    Index(std::io::Error),
}

/// One file's content on its way into a content feed: bounded memory, however large.
/// New blocks are appended contiguously, so only one stream may write to a feed at a time.
pub struct ContentStream {
    feed: [u8; 32],
    /// The index the next new block gets.
    next: u64,
    blocks: FileBlocks,
    partial: Vec<u8>,
    batch: Vec<Vec<u8>>,
    hashes: Arc<BlockHashes>,
    /// Blocks this stream stored, by hash: recorded in `hashes` once committed.
    fresh: HashMap<BlockHash, u64>,
    /// What the stream appended and reused, kept from clearing until the file is recorded.
    pin: Pin,
    /// The whole content of a file no larger than [`INLINE_MAX`].
    inline: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for ContentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStream")
            .field("next", &self.next)
            .field("size", &self.blocks.size)
            .finish_non_exhaustive()
    }
}

impl ContentStream {
    /// A stream appending to content feed `feed` from block `start` (its current end),
    /// pinning what it appends and reuses with `pin`.
    pub fn new(feed: [u8; 32], start: u64, hashes: Arc<BlockHashes>, pin: Pin) -> ContentStream {
        pin.add(cobox_drive::Run {
            feed,
            start,
            count: u64::MAX - start,
        });
        ContentStream {
            feed,
            next: start,
            blocks: FileBlocks::default(),
            partial: Vec::with_capacity(BLOCK_SIZE),
            batch: Vec::with_capacity(BATCH_BLOCKS),
            hashes,
            fresh: HashMap::new(),
            pin,
            inline: None,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.blocks.size + self.partial.len() as u64
    }

    /// Add bytes to the file.
    pub async fn write(
        &mut self,
        feed: &mut Feed,
        key: &Keyring,
        data: &[u8],
    ) -> Result<(), ContentError> {
        let sealed = self.seal(key, data);
        self.batch.extend(sealed);
        if self.batch.len() >= BATCH_BLOCKS {
            self.flush(feed).await?;
        }
        Ok(())
    }

    /// Add a block stored before, unchanged (a block of the version being edited). Only
    /// between whole blocks: the bytes written so far fill whole blocks.
    pub fn reuse(&mut self, at: BlockAt, len: usize) {
        debug_assert!(self.partial.is_empty(), "reuse after a partial block");
        self.pin.add(cobox_drive::Run {
            feed: at.0,
            start: at.1,
            count: 1,
        });
        self.blocks.push(at);
        self.blocks.size += len as u64;
    }

    /// Cut `data` into blocks and seal every new one it completes, without touching the
    /// feed: the blocks must then be appended, in order, with [`append_sealed`]. This is
    /// the part of a write that needs no lock, so it can run beside the appending of
    /// earlier blocks.
    pub fn seal(&mut self, key: &Keyring, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == BLOCK_SIZE {
                out.extend(self.seal_partial(key));
            }
        }
        out
    }

    /// Seal the last, short block, if any (the file ends here).
    /// A file no larger than [`INLINE_MAX`] keeps its content for its operation instead.
    pub fn seal_rest(&mut self, key: &Keyring) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            return None;
        }
        if self.blocks.runs.is_empty() && self.partial.len() <= INLINE_MAX {
            self.blocks.size = self.partial.len() as u64;
            self.inline = Some(Arc::from(&self.partial[..]));
            self.partial.clear();
            return None;
        }
        self.seal_partial(key)
    }

    /// Refer to the block in `partial` if it is stored already, or seal it as a new one.
    fn seal_partial(&mut self, key: &Keyring) -> Option<Vec<u8>> {
        let hash = self.hashes.hash(&self.partial);
        let len = self.partial.len() as u64;
        let (hashes, pin) = (&self.hashes, &self.pin);
        let known = self
            .fresh
            .get(&hash)
            .copied()
            .or_else(|| pin.pin_found(self.feed, || hashes.find(&hash)));
        let sealed = match known {
            Some(index) => {
                self.blocks.push((self.feed, index));
                None
            }
            None => {
                let sealed = key.seal(&self.feed, self.next, &self.partial);
                self.fresh.insert(hash, self.next);
                self.blocks.push((self.feed, self.next));
                self.next += 1;
                Some(sealed)
            }
        };
        self.blocks.size += len;
        self.partial.clear();
        sealed
    }

    async fn flush(&mut self, feed: &mut Feed) -> Result<(), ContentError> {
        if !self.batch.is_empty() {
            let length = feed.append_uncommitted(&self.batch).await?;
            debug_assert_eq!(
                length, self.next,
                "another writer appended to this content feed"
            );
            self.batch.clear();
        }
        Ok(())
    }

    /// Store the rest and return the file's blocks, durable on return when `commit` (else
    /// with the feed's next commit). The index records the new blocks either way: records
    /// past the feed's durable length are dropped when it opens.
    pub async fn finish(
        mut self,
        feed: &mut Feed,
        key: &Keyring,
        commit: bool,
    ) -> Result<FileBlocks, ContentError> {
        if let Some(last) = self.seal_rest(key) {
            self.batch.push(last);
        }
        self.flush(feed).await?;
        if commit {
            feed.commit()?;
        }
        let mut fresh: Vec<(BlockHash, u64)> = self.fresh.into_iter().collect();
        fresh.sort_by_key(|&(_, index)| index);
        self.hashes.record(&fresh).map_err(ContentError::Index)?;
        self.blocks.inline = self.inline;
        Ok(self.blocks)
    }
}

/// Append blocks sealed by [`ContentStream::seal`], uncommitted (the stream's `finish`
/// commits); returns the feed's new length.
pub async fn append_sealed(feed: &mut Feed, blocks: &[Vec<u8>]) -> Result<u64, ContentError> {
    Ok(feed.append_uncommitted(blocks).await?)
}

/// Store everything `source` yields as one file's content.
pub async fn store(
    feed: &mut Feed,
    key: &Keyring,
    hashes: Arc<BlockHashes>,
    mut source: impl Read,
) -> Result<FileBlocks, ContentError> {
    let pin = Arc::new(Pins::default()).pin([]);
    let mut w = ContentStream::new(feed.public_key(), feed.len(), hashes, pin);
    let mut buf = vec![0u8; BLOCK_SIZE];
    loop {
        let n = source.read(&mut buf).map_err(ContentError::Source)?;
        if n == 0 {
            break;
        }
        w.write(feed, key, &buf[..n]).await?;
    }
    w.finish(feed, key, true).await
}

/// Open a sealed block stored at `at`.
pub fn open_block(key: &Keyring, at: BlockAt, sealed: &[u8]) -> Result<Vec<u8>, ContentError> {
    key.open(&at.0, at.1, sealed)
        .map_err(|reason| ContentError::Block {
            feed: hex(&at.0),
            index: at.1,
            reason,
        })
}

/// The block stored at `at` in `feed`, decrypted.
pub async fn read_block(
    feed: &mut Feed,
    key: &Keyring,
    at: BlockAt,
) -> Result<Vec<u8>, ContentError> {
    let sealed = feed.get(at.1).await?.ok_or_else(|| ContentError::Missing {
        feed: hex(&at.0),
        index: at.1,
    })?;
    open_block(key, at, &sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::Secret32;

    fn hashes(dir: &std::path::Path) -> Arc<BlockHashes> {
        Arc::new(
            BlockHashes::open(&dir.join("blocks"), &Secret32::from_bytes([5; 32]), 0, None)
                .unwrap(),
        )
    }

    async fn read_all(f: &mut Feed, key: &Keyring, blocks: &FileBlocks) -> Vec<u8> {
        let mut back = Vec::new();
        for at in blocks.from(0) {
            back.extend(read_block(f, key, at).await.unwrap());
        }
        back
    }

    async fn feed(dir: &std::path::Path) -> Feed {
        let kp = cobox_keys::derive::feed(
            &Secret32::from_bytes([1; 32]),
            &cobox_schema::hexkey::Address([2; 32]),
            1,
        );
        let seed: [u8; 32] = kp.secret_bytes()[..32].try_into().unwrap();
        Feed::open(dir, kp.public.0, Some(&seed)).await.unwrap()
    }

    #[tokio::test]
    async fn a_file_streams_in_and_reads_back_block_by_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feed(dir.path()).await;
        let key = Keyring::first(&Secret32::from_bytes([3; 32]));
        let data: Vec<u8> = (0..(BLOCK_SIZE * 40 + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let h = hashes(dir.path());
        let first = store(&mut f, &key, h.clone(), &data[..BLOCK_SIZE + 5])
            .await
            .unwrap();
        let file = store(&mut f, &key, h.clone(), &data[..]).await.unwrap();
        assert_eq!((first.runs[0].start, first.count()), (0, 2));
        assert_eq!(
            (file.runs.len(), file.count(), file.size),
            (2, 41, data.len() as u64),
            "the first block is stored already"
        );
        assert_eq!(read_all(&mut f, &key, &file).await, data);
        // The plaintext is nowhere in the feed's files.
        let on_disk = std::fs::read(dir.path().join("data")).unwrap();
        assert!(!on_disk.windows(64).any(|w| w == &data[1000..1064]));
    }

    #[tokio::test]
    async fn a_small_file_keeps_its_content_for_its_operation_and_takes_no_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feed(dir.path()).await;
        let key = Keyring::first(&Secret32::from_bytes([3; 32]));
        let h = hashes(dir.path());
        let small = vec![7u8; INLINE_MAX];
        let file = store(&mut f, &key, h.clone(), &small[..]).await.unwrap();
        assert_eq!(
            (file.count(), file.size, file.inline.as_deref()),
            (0, INLINE_MAX as u64, Some(&small[..]))
        );
        assert!(file.is_consistent());
        assert_eq!(f.len(), 0);
        // One byte more is a block.
        let larger = vec![7u8; INLINE_MAX + 1];
        let file = store(&mut f, &key, h, &larger[..]).await.unwrap();
        assert_eq!((file.count(), file.inline, f.len()), (1, None, 1));
    }

    #[tokio::test]
    async fn an_empty_file_takes_no_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feed(dir.path()).await;
        let key = Keyring::first(&Secret32::from_bytes([3; 32]));
        let file = store(&mut f, &key, hashes(dir.path()), &b""[..])
            .await
            .unwrap();
        assert_eq!((file.count(), file.size), (0, 0));
        assert_eq!(f.len(), 0);
    }

    #[tokio::test]
    async fn a_block_stored_before_is_referred_to_and_not_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feed(dir.path()).await;
        let key = Keyring::first(&Secret32::from_bytes([3; 32]));
        let h = hashes(dir.path());
        // Three equal blocks and a tail: the repeat within the file is stored once.
        let mut data = vec![7u8; BLOCK_SIZE * 3];
        data.extend_from_slice(b"tail");
        let first = store(&mut f, &key, h.clone(), &data[..]).await.unwrap();
        assert_eq!((first.count(), f.len()), (4, 2));
        // The same content again, and with one more block: only the new blocks are stored.
        let again = store(&mut f, &key, h.clone(), &data[..]).await.unwrap();
        assert_eq!((&again, f.len()), (&first, 2));
        let mut longer = data[..BLOCK_SIZE * 3].to_vec();
        longer.extend(vec![9u8; BLOCK_SIZE]);
        let grown = store(&mut f, &key, h.clone(), &longer[..]).await.unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(read_all(&mut f, &key, &grown).await, longer);
        assert_eq!(read_all(&mut f, &key, &again).await, data);
        // The index survives a reopen.
        drop(h);
        let h = BlockHashes::open(
            &dir.path().join("blocks"),
            &Secret32::from_bytes([5; 32]),
            f.len(),
            None,
        )
        .unwrap();
        assert_eq!(h.len(), 3);
    }
}
