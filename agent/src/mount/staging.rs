//! A private copy of a file being changed in place: a sparse staging file (0600) that holds
//! only the blocks read or written since it was opened, over the committed version it
//! started from (its *base*). Committing refers again to every base block left unchanged,
//! so appending to a large file or changing a page in its middle costs what changed.
//!
//! Block `i` of the staging file is *held* when the file's bytes are what the file has
//! there: it was copied in from the base, or the base no longer reaches it (a truncate cut
//! the base, or the file grew past it). A block is *changed* when a write, a truncate or
//! a growth altered its bytes or its length; only changed blocks are stored at commit.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::space::blocks::{BLOCK_SIZE, BlockAt, FileBlocks, blocks_for};

const BS: u64 = BLOCK_SIZE as u64;

/// A set of block numbers kept as ranges, so that its size follows the writes made, not
/// the offsets they were made at.
#[derive(Debug, Default, Clone)]
struct BlockSet(BTreeMap<u64, u64>);

impl BlockSet {
    fn contains(&self, i: u64) -> bool {
        self.0
            .range(..=i)
            .next_back()
            .is_some_and(|(_, &end)| i < end)
    }

    /// Add blocks `from..to`, merged with the ranges they touch.
    fn insert(&mut self, mut from: u64, mut to: u64) {
        if from >= to {
            return;
        }
        if let Some((&start, &end)) = self.0.range(..=from).next_back()
            && end >= from
        {
            from = start;
            to = to.max(end);
        }
        let touched: Vec<u64> = self.0.range(from..=to).map(|(&k, _)| k).collect();
        for k in touched {
            if let Some(end) = self.0.remove(&k) {
                to = to.max(end);
            }
        }
        self.0.insert(from, to);
    }

    /// Add every block of `other`.
    fn extend(&mut self, other: &BlockSet) {
        for (&from, &to) in &other.0 {
            self.insert(from, to);
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A file being changed, over the committed version it started from.
#[derive(Debug)]
pub struct Staging {
    pub path: PathBuf,
    file: File,
    base: FileBlocks,
    /// Base blocks still part of the file (a truncate cuts this).
    base_reach: u64,
    /// Blocks from here on are held: where the base ended (or a truncate cut it) when a
    /// commit made the staging file's bytes the new base (it only goes down).
    held_from: u64,
    held: BlockSet,
    changed: BlockSet,
    size: u64,
    /// Keeps the base's blocks from being cleared while the file is open.
    pin: Option<crate::space::pins::Pin>,
}

impl Staging {
    /// A new staging file (mode 0600) in `dir` over the committed version `base`.
    pub fn create(dir: &Path, fh: u64, mut base: FileBlocks) -> std::io::Result<Staging> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{fh}-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.set_len(base.size)?;
        // Content kept in the operation is here from the start: no block to copy.
        if let Some(data) = base.inline.take() {
            file.write_all_at(&data, 0)?;
        }
        Ok(Staging {
            path,
            file,
            base_reach: base.count(),
            held_from: base.count(),
            size: base.size,
            base,
            held: BlockSet::default(),
            changed: BlockSet::default(),
            pin: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn is_held(&self, i: u64) -> bool {
        i >= self.base_reach.min(self.held_from) || self.held.contains(i)
    }

    /// Base blocks among `first..=last` that must be copied in before their bytes are used.
    fn missing(&self, first: u64, last: u64) -> Vec<(u64, BlockAt)> {
        (first..=last.min(self.base_reach.saturating_sub(1)))
            .filter(|&i| !self.is_held(i))
            .filter_map(|i| self.base.locate(i).map(|at| (i, at)))
            .collect()
    }

    /// The base blocks to copy in (with [`Staging::fill`]) before reading `len` bytes at
    /// `offset`.
    pub fn needs_for_read(&self, offset: u64, len: u64) -> Vec<(u64, BlockAt)> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return vec![];
        }
        self.missing(offset / BS, (end - 1) / BS)
    }

    /// The base blocks to copy in before writing `len` bytes at `offset`: those the write
    /// covers only in part, and the last block when the write grows the file past it.
    pub fn needs_for_write(&self, offset: u64, len: u64) -> Vec<(u64, BlockAt)> {
        let end = offset.saturating_add(len);
        let mut out = vec![];
        if len > 0 {
            if !offset.is_multiple_of(BS) {
                out.extend(self.missing(offset / BS, offset / BS));
            }
            if !end.is_multiple_of(BS) && end < self.size {
                out.extend(self.missing(end / BS, end / BS));
            }
        }
        if end > self.size {
            out.extend(self.needs_for_set_len(end));
        }
        out.sort_by_key(|&(i, _)| i);
        out.dedup_by_key(|&mut (i, _)| i);
        out
    }

    /// The base block to copy in before the file's length becomes `size`: the block the
    /// new end cuts, or the old last block that a growth extends.
    pub fn needs_for_set_len(&self, size: u64) -> Vec<(u64, BlockAt)> {
        let edge = size.min(self.size);
        if size == self.size || edge.is_multiple_of(BS) {
            return vec![];
        }
        self.missing(edge / BS, edge / BS)
    }

    /// Copy in block `i` of the base (its plaintext).
    pub fn fill(&mut self, i: u64, plain: &[u8]) -> std::io::Result<()> {
        if !self.is_held(i) {
            self.file.write_all_at(plain, i * BS)?;
            self.held.insert(i, i + 1);
        }
        Ok(())
    }

    /// Read up to `len` bytes at `offset` (after [`Staging::needs_for_read`] was filled).
    pub fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let len = (self.size.saturating_sub(offset)).min(len as u64) as usize;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            match self.file.read_at(&mut buf[got..], offset + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// Write `data` at `offset` (after [`Staging::needs_for_write`] was filled).
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        if end > self.size {
            self.set_len(end)?;
        }
        self.file.write_all_at(data, offset)?;
        let (first, last) = (offset / BS, (end - 1) / BS);
        self.held.insert(first, last + 1);
        self.changed.insert(first, last + 1);
        Ok(())
    }

    /// Make the file `size` bytes long (after [`Staging::needs_for_set_len`] was filled).
    pub fn set_len(&mut self, size: u64) -> std::io::Result<()> {
        if size == self.size {
            return Ok(());
        }
        let edge = size.min(self.size);
        self.file.set_len(size)?;
        if !edge.is_multiple_of(BS) {
            // The block at the edge changes length.
            self.held.insert(edge / BS, edge / BS + 1);
            self.changed.insert(edge / BS, edge / BS + 1);
        }
        if size < self.size {
            self.base_reach = self.base_reach.min(blocks_for(size));
        }
        self.size = size;
        Ok(())
    }

    /// How each block of the file is committed, in order: a base block unchanged, or its
    /// bytes here. One pass over the base's runs, however many blocks.
    pub fn blocks(&self) -> impl Iterator<Item = std::io::Result<Block>> + '_ {
        let mut base = self.base.from(0);
        (0..self.block_count()).map(move |i| {
            let at = if i < self.base_reach {
                base.next()
            } else {
                None
            };
            match at {
                Some(at) if !self.changed.contains(i) => {
                    Ok(Block::Unchanged(at, self.base.block_len(i)))
                }
                _ => {
                    let len = self.size.saturating_sub(i * BS).min(BS) as usize;
                    let mut buf = vec![0u8; len];
                    self.file.read_exact_at(&mut buf, i * BS)?;
                    Ok(Block::Changed(buf))
                }
            }
        })
    }

    /// Blocks the file has now.
    pub fn block_count(&self) -> u64 {
        blocks_for(self.size)
    }

    /// The changes were committed as `blocks`: they are the base from now on.
    /// Keep the base's blocks from being cleared with `pin` (replacing the pin held).
    pub fn hold(&mut self, pin: crate::space::pins::Pin) {
        self.pin = Some(pin);
    }

    pub fn committed(&mut self, blocks: FileBlocks) {
        // What was held stays held: the changed blocks, and everything past the old base.
        self.held.extend(&self.changed);
        self.held_from = self.held_from.min(self.base_reach);
        self.base_reach = blocks.count();
        self.size = blocks.size;
        self.base = blocks;
        self.changed.clear();
    }
}

/// One block of a file being committed.
#[derive(Debug, PartialEq, Eq)]
pub enum Block {
    /// A block of the base, unchanged: referred to again (its plaintext length).
    Unchanged(BlockAt, usize),
    /// New bytes to store.
    Changed(Vec<u8>),
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
