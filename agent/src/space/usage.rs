//! What a space's blocks are used for: bytes the current files refer to, bytes only kept
//! earlier versions refer to, and bytes stored here that nothing refers to any more (cleared
//! by the next reclaim), in total and by top-level entry. Blocks shared by several files
//! (copies, deduplicated blocks) count once.

use std::collections::{BTreeMap, HashMap};

use cobox_drive::{Drive, FeedId, FileMeta, Run};
use serde::Serialize;

use super::blocks::{BLOCK_SIZE, blocks_for};
use crate::replicate::have::Ranges;

/// Bytes by what refers to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bytes {
    /// Referred to by a current file.
    pub tree: u64,
    /// Referred to only by kept earlier versions.
    pub versions: u64,
}

/// A space's usage, as of its last reclaim pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub total: Bytes,
    /// Stored on this device in the space's content feeds with nothing referring to them.
    pub reclaimable: u64,
    /// Bytes the space's feeds take on this device's disk.
    pub on_disk: u64,
    pub files: u64,
    pub versions: u64,
    /// By first path component: the file or directory at the top of the space.
    pub by_entry: BTreeMap<String, Bytes>,
}

/// The blocks a set of file versions refers to.
#[derive(Debug, Default)]
struct Refs {
    blocks: BTreeMap<FeedId, Ranges>,
    /// The last blocks that are shorter than a whole block, with how much shorter.
    short: HashMap<(FeedId, u64), u64>,
    /// Bytes of small files kept inside their operations (in the logs, not in blocks).
    inline: u64,
}

impl Usage {
    /// As the API reports it, with the retention in force.
    pub fn to_status(&self, retention: cobox_drive::Retention) -> cobox_schema::api::UsageStatus {
        let keep = retention.keep_ms.map_or_else(
            || "forever".to_string(),
            |ms| {
                cobox_schema::units::format_duration(std::time::Duration::from_millis(
                    ms.max(0) as u64
                ))
            },
        );
        cobox_schema::api::UsageStatus {
            tree_bytes: self.total.tree,
            versions_bytes: self.total.versions,
            reclaimable_bytes: self.reclaimable,
            on_disk_bytes: self.on_disk,
            files: self.files,
            versions: self.versions,
            retention: format!("keep {keep}, min {}", retention.min),
        }
    }
}

impl Refs {
    fn add(&mut self, meta: &FileMeta) {
        if let Some(data) = &meta.inline {
            self.inline = self.inline.saturating_add(data.len() as u64);
            return;
        }
        insert_runs(&mut self.blocks, meta.runs.iter());
        let n = blocks_for(meta.size);
        let tail = meta.size - n.saturating_sub(1) * BLOCK_SIZE as u64;
        if n > 0 && tail < BLOCK_SIZE as u64 {
            let mut last = None;
            let mut skip = n - 1;
            for r in &meta.runs {
                if skip < r.count {
                    last = Some((r.feed, r.start + skip));
                    break;
                }
                skip -= r.count;
            }
            if let Some(at) = last {
                self.short.insert(at, BLOCK_SIZE as u64 - tail);
            }
        }
    }

    fn contains(&self, (feed, index): (FeedId, u64)) -> bool {
        self.blocks.get(&feed).is_some_and(|r| r.contains(index))
    }

    /// Bytes of the blocks in `self` and not in `minus`.
    fn bytes_without(&self, minus: Option<&Refs>) -> u64 {
        let mut whole = 0u64;
        for (feed, ranges) in &self.blocks {
            let mut only = ranges.clone();
            if let Some(m) = minus.and_then(|m| m.blocks.get(feed)) {
                for (s, e) in m.iter() {
                    only.remove(s, e);
                }
            }
            whole = whole.saturating_add(only.count().saturating_mul(BLOCK_SIZE as u64));
        }
        let short: u64 = self
            .short
            .iter()
            .filter(|(at, _)| minus.is_none_or(|m| !m.contains(**at)))
            .map(|(_, s)| s)
            .sum();
        whole.saturating_sub(short).saturating_add(self.inline)
    }
}

/// Add the blocks of `runs` to `into`, by feed.
fn insert_runs<'a>(into: &mut BTreeMap<FeedId, Ranges>, runs: impl Iterator<Item = &'a Run>) {
    for r in runs {
        into.entry(r.feed)
            .or_default()
            .insert(r.start, r.start.saturating_add(r.count));
    }
}

/// The blocks of each feed in `runs`.
pub fn by_feed<'a>(runs: impl Iterator<Item = &'a Run>) -> BTreeMap<FeedId, Ranges> {
    let mut out = BTreeMap::new();
    insert_runs(&mut out, runs);
    out
}

/// What the file versions of `drive` refer to, in one pass: the usage in total (and by
/// top-level entry when `by_entry`: only `space du` shows it), and the blocks of every feed
/// a file or a kept version refers to.
pub fn measure(drive: &Drive, by_entry: bool) -> (Usage, BTreeMap<FeedId, Ranges>) {
    let mut current = Refs::default();
    let mut earlier = Refs::default();
    let mut entries: BTreeMap<String, (Refs, Refs)> = BTreeMap::new();
    let (mut files, mut versions) = (0, 0);
    for (path, meta, is_current) in drive.file_versions() {
        let entry = by_entry.then(|| {
            let name = path.split('/').next().unwrap_or_default().to_string();
            entries.entry(name).or_default()
        });
        if is_current {
            files += 1;
            current.add(meta);
            if let Some((cur, _)) = entry {
                cur.add(meta);
            }
        } else {
            versions += 1;
            earlier.add(meta);
            if let Some((_, old)) = entry {
                old.add(meta);
            }
        }
    }
    let usage = Usage {
        total: Bytes {
            tree: current.bytes_without(None),
            versions: earlier.bytes_without(Some(&current)),
        },
        reclaimable: 0,
        on_disk: 0,
        files,
        versions,
        by_entry: entries
            .into_iter()
            .map(|(name, (cur, old))| {
                let b = Bytes {
                    tree: cur.bytes_without(None),
                    versions: old.bytes_without(Some(&cur)),
                };
                (name, b)
            })
            .collect(),
    };
    let mut referenced = current.blocks;
    for (feed, ranges) in earlier.blocks {
        let all = referenced.entry(feed).or_default();
        for (s, e) in ranges.iter() {
            all.insert(s, e);
        }
    }
    (usage, referenced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_drive::{Clock, Effect, Op, Run, Value};

    const B: u64 = BLOCK_SIZE as u64;

    fn put(d: &mut Drive, seq: u64, time: i64, path: &str, size: u64, runs: &[(u64, u64)]) {
        let meta = FileMeta {
            size,
            mode: 0o644,
            mtime: 0,
            runs: runs
                .iter()
                .map(|&(start, count)| Run {
                    feed: [1; 32],
                    start,
                    count,
                })
                .collect(),
            inline: None,
        };
        let mut clock = Clock::default();
        clock.set([9; 32], seq);
        d.apply(
            [9; 32],
            seq,
            &Op {
                time,
                device: "a".into(),
                clock,
                effects: vec![Effect {
                    path: path.into(),
                    value: Value::File(meta),
                }],
            },
        );
    }

    #[test]
    fn shared_blocks_count_once_and_versions_count_only_what_they_alone_hold() {
        let mut d = Drive::default();
        // docs/a: 2.5 blocks at 0..3; a copy of it at b (same blocks); then docs/a grows
        // by a changed last block (0..2 reused, 3..5 new).
        put(&mut d, 0, 1, "docs/a", 2 * B + B / 2, &[(0, 3)]);
        put(&mut d, 1, 2, "b", 2 * B + B / 2, &[(0, 3)]);
        put(&mut d, 2, 3, "docs/a", 3 * B + 10, &[(0, 2), (3, 2)]);
        let (u, referenced) = measure(&d, true);
        // Current: blocks 0..5 (0,1,2 through b; 3,4 through docs/a): 4 whole blocks,
        // block 2 is half, block 4 holds 10 bytes.
        assert_eq!(u.total.tree, 3 * B + B / 2 + 10);
        // The earlier docs/a refers only to blocks b and docs/a also use.
        assert_eq!(u.total.versions, 0);
        assert_eq!((u.files, u.versions), (2, 1));
        assert_eq!(u.by_entry["b"].tree, 2 * B + B / 2);
        assert_eq!(u.by_entry["docs"].tree, 3 * B + 10);
        // The earlier docs/a has block 2 that no current docs/ file has.
        assert_eq!(u.by_entry["docs"].versions, B / 2);
        assert_eq!(referenced[&[1; 32]].count(), 5);
        let (totals, _) = measure(&d, false);
        assert_eq!((totals.total, totals.by_entry.len()), (u.total, 0));
    }
}
