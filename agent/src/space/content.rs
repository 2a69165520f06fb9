//! File contents as encrypted blocks of a content feed.
//!
//! A file is cut into [`BLOCK_SIZE`] plaintext blocks; each is sealed with the space's
//! block key bound to (content feed, index) and appended in batches, so a file of any size
//! streams through a bounded buffer. Its BLAKE3 hash (of the plaintext) is computed on the way.

use std::io::Read;

use cobox_keys::block::BlockKey;

use crate::feed::{Feed, FeedError};
use cobox_keys::secret::hex;

/// Plaintext bytes per content block.
pub const BLOCK_SIZE: usize = 64 * 1024;
/// Blocks appended per batch (one commit each).
pub const BATCH_BLOCKS: usize = 16;

/// Where a file's content lies: `blocks` blocks of `feed` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub feed: [u8; 32],
    pub start: u64,
    pub blocks: u64,
    pub size: u64,
    pub hash: [u8; 32],
}

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
}

/// One file's content on its way into a content feed: bounded memory, however large.
/// Blocks must be appended contiguously, so only one stream may write to a feed at a time.
pub struct ContentStream {
    feed: [u8; 32],
    start: u64,
    next: u64,
    size: u64,
    partial: Vec<u8>,
    batch: Vec<Vec<u8>>,
    hash: blake3::Hasher,
}

impl std::fmt::Debug for ContentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStream")
            .field("start", &self.start)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ContentStream {
    /// A stream appending to content feed `feed` from block `start` (its current end).
    pub fn new(feed: [u8; 32], start: u64) -> ContentStream {
        ContentStream {
            feed,
            start,
            next: start,
            size: 0,
            partial: Vec::with_capacity(BLOCK_SIZE),
            batch: Vec::with_capacity(BATCH_BLOCKS),
            hash: blake3::Hasher::new(),
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Add bytes to the file.
    pub async fn write(
        &mut self,
        feed: &mut Feed,
        key: &BlockKey,
        data: &[u8],
    ) -> Result<(), ContentError> {
        let sealed = self.seal(key, data);
        self.batch.extend(sealed);
        if self.batch.len() >= BATCH_BLOCKS {
            self.flush(feed).await?;
        }
        Ok(())
    }

    /// Hash `data` and seal every block it completes, without touching the feed: the
    /// blocks must then be appended, in order, with [`append_sealed`]. This is the part of
    /// a write that needs no lock, so it can run beside the appending of earlier blocks.
    pub fn seal(&mut self, key: &BlockKey, mut data: &[u8]) -> Vec<Vec<u8>> {
        self.hash.update(data);
        self.size += data.len() as u64;
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == BLOCK_SIZE {
                out.push(self.seal_partial(key));
            }
        }
        out
    }

    /// Seal the last, short block, if any (the file ends here).
    pub fn seal_rest(&mut self, key: &BlockKey) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| self.seal_partial(key))
    }

    fn seal_partial(&mut self, key: &BlockKey) -> Vec<u8> {
        let sealed = key.seal(&self.feed, self.next, &self.partial);
        self.partial.clear();
        self.next += 1;
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

    /// Store the rest and return where the content lies, durable on return.
    pub async fn finish(mut self, feed: &mut Feed, key: &BlockKey) -> Result<Extent, ContentError> {
        if let Some(last) = self.seal_rest(key) {
            self.batch.push(last);
        }
        self.flush(feed).await?;
        feed.commit()?;
        let hash: [u8; 32] = *self.hash.finalize().as_bytes();
        Ok(Extent {
            feed: feed.public_key(),
            start: self.start,
            blocks: self.next - self.start,
            size: self.size,
            hash,
        })
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
    key: &BlockKey,
    mut source: impl Read,
) -> Result<Extent, ContentError> {
    let mut w = ContentStream::new(feed.public_key(), feed.len());
    let mut buf = vec![0u8; BLOCK_SIZE];
    loop {
        let n = source.read(&mut buf).map_err(ContentError::Source)?;
        if n == 0 {
            break;
        }
        w.write(feed, key, &buf[..n]).await?;
    }
    w.finish(feed, key).await
}

/// Open sealed block `i` (0-based within the extent) of a file.
pub fn open_block(
    key: &BlockKey,
    extent: &Extent,
    i: u64,
    sealed: &[u8],
) -> Result<Vec<u8>, ContentError> {
    let index = extent.start + i;
    key.open(&extent.feed, index, sealed)
        .map_err(|reason| ContentError::Block {
            feed: hex(&extent.feed),
            index,
            reason,
        })
}

/// Block `i` (0-based within the extent) of a file, decrypted.
pub async fn read_block(
    feed: &mut Feed,
    key: &BlockKey,
    extent: &Extent,
    i: u64,
) -> Result<Vec<u8>, ContentError> {
    let index = extent.start + i;
    let sealed = feed
        .get(index)
        .await?
        .ok_or_else(|| ContentError::Missing {
            feed: hex(&extent.feed),
            index,
        })?;
    key.open(&extent.feed, index, &sealed)
        .map_err(|reason| ContentError::Block {
            feed: hex(&extent.feed),
            index,
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::Secret32;

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
        let key = BlockKey::for_space(&Secret32::from_bytes([3; 32]));
        let data: Vec<u8> = (0..(BLOCK_SIZE * 40 + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let first = store(&mut f, &key, &b"small"[..]).await.unwrap();
        let ext = store(&mut f, &key, &data[..]).await.unwrap();
        assert_eq!((first.start, first.blocks, first.size), (0, 1, 5));
        assert_eq!(
            (ext.start, ext.blocks, ext.size),
            (1, 41, data.len() as u64)
        );
        let mut back = Vec::new();
        for i in 0..ext.blocks {
            back.extend(read_block(&mut f, &key, &ext, i).await.unwrap());
        }
        assert_eq!(back, data);
        assert_eq!(ext.hash, *blake3::hash(&data).as_bytes());
        // The plaintext is nowhere in the feed's files.
        let on_disk = std::fs::read(dir.path().join("data")).unwrap();
        assert!(!on_disk.windows(5).any(|w| w == b"small"));
    }

    #[tokio::test]
    async fn an_empty_file_takes_no_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feed(dir.path()).await;
        let key = BlockKey::for_space(&Secret32::from_bytes([3; 32]));
        let ext = store(&mut f, &key, &b""[..]).await.unwrap();
        assert_eq!((ext.blocks, ext.size), (0, 0));
        assert_eq!(f.len(), 0);
    }
}
