//! A file's content as a list of block references: runs of consecutive blocks of content
//! feeds, in file order, every block [`BLOCK_SIZE`] plaintext bytes but the last.

use cobox_drive::{FileMeta, Run};

/// Plaintext bytes per content block.
pub const BLOCK_SIZE: usize = 64 * 1024;

/// Where one block of a file is: (content feed, index in it).
pub type BlockAt = ([u8; 32], u64);

/// A file's blocks and size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileBlocks {
    pub runs: Vec<Run>,
    pub size: u64,
    /// A small file's whole content, kept in its drive operation (no runs then).
    pub inline: Option<std::sync::Arc<[u8]>>,
}

/// The number of blocks a file of `size` bytes has.
pub fn blocks_for(size: u64) -> u64 {
    size.div_ceil(BLOCK_SIZE as u64)
}

impl FileBlocks {
    /// How many blocks the runs name.
    pub fn count(&self) -> u64 {
        self.runs
            .iter()
            .fold(0u64, |n, r| n.saturating_add(r.count))
    }

    /// Add one block at the end, extending the last run when it follows on.
    pub fn push(&mut self, (feed, index): BlockAt) {
        if let Some(last) = self.runs.last_mut()
            && last.feed == feed
            && last.start.checked_add(last.count) == Some(index)
        {
            last.count += 1;
            return;
        }
        self.runs.push(Run {
            feed,
            start: index,
            count: 1,
        });
    }

    /// Where block `i` of the file is.
    pub fn locate(&self, i: u64) -> Option<BlockAt> {
        self.from(i).next()
    }

    /// Blocks `first..` of the file, in order: one pass over the runs to find the first,
    /// then one step per block.
    pub fn from(&self, first: u64) -> impl Iterator<Item = BlockAt> + '_ {
        let mut skip = first;
        self.runs
            .iter()
            .filter_map(move |r| {
                if skip >= r.count {
                    skip -= r.count;
                    return None;
                }
                let from = skip;
                skip = 0;
                Some((r, from))
            })
            .flat_map(|(r, from)| (from..r.count).map(move |k| (r.feed, r.start + k)))
    }

    /// Plaintext bytes in block `i`.
    pub fn block_len(&self, i: u64) -> usize {
        let start = i.saturating_mul(BLOCK_SIZE as u64);
        self.size.saturating_sub(start).min(BLOCK_SIZE as u64) as usize
    }

    /// The runs name as many blocks as the size needs: a list from another writer that
    /// does not is refused when read.
    pub fn is_consistent(&self) -> bool {
        match &self.inline {
            Some(data) => self.runs.is_empty() && data.len() as u64 == self.size,
            None => self.count() == blocks_for(self.size),
        }
    }

    /// The blocks and content of a file the drive shows.
    pub fn of(meta: FileMeta) -> FileBlocks {
        FileBlocks {
            runs: meta.runs,
            size: meta.size,
            inline: meta.inline,
        }
    }

    /// A file of these blocks with `mode` and `mtime_ms`, as the drive records it.
    pub fn meta(self, mode: u32, mtime_ms: i64) -> FileMeta {
        FileMeta {
            size: self.size,
            mode,
            mtime: mtime_ms,
            runs: self.runs,
            inline: self.inline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    #[test]
    fn consecutive_blocks_of_one_feed_make_one_run() {
        let mut f = FileBlocks::default();
        for at in [(A, 5), (A, 6), (A, 7), (B, 8), (A, 8), (A, 2)] {
            f.push(at);
        }
        let runs: Vec<_> = f.runs.iter().map(|r| (r.feed, r.start, r.count)).collect();
        assert_eq!(runs, vec![(A, 5, 3), (B, 8, 1), (A, 8, 1), (A, 2, 1)]);
        assert_eq!(f.count(), 6);
        assert_eq!(f.locate(3), Some((B, 8)));
        assert_eq!(f.locate(6), None);
        assert_eq!(
            f.from(2).collect::<Vec<_>>(),
            vec![(A, 7), (B, 8), (A, 8), (A, 2)]
        );
    }

    #[test]
    fn block_lengths_follow_the_size() {
        let f = FileBlocks {
            runs: vec![],
            size: BLOCK_SIZE as u64 * 2 + 10,
            inline: None,
        };
        assert_eq!(
            (f.block_len(0), f.block_len(2), f.block_len(3)),
            (BLOCK_SIZE, 10, 0)
        );
        assert_eq!(blocks_for(f.size), 3);
        assert!(!f.is_consistent());
    }

    proptest! {
        #[test]
        fn from_and_locate_agree_with_the_pushed_order(
            blocks in proptest::collection::vec((0u8..3, 0u64..20), 0..60),
            first in 0u64..70,
        ) {
            let mut f = FileBlocks::default();
            let at: Vec<BlockAt> = blocks.iter().map(|&(k, i)| ([k; 32], i)).collect();
            for b in &at {
                f.push(*b);
            }
            prop_assert_eq!(f.count(), at.len() as u64);
            let tail: Vec<_> = f.from(first).collect();
            prop_assert_eq!(&tail[..], at.get(first as usize..).unwrap_or(&[]));
            prop_assert_eq!(f.locate(first), at.get(first as usize).copied());
        }
    }
}
