//! Drive operations and their versioned binary encoding.
//!
//! An operation is what one log entry says about the tree: a set of effects, each on one
//! path (a file or directory put there, or a tombstone), all carrying the clock of what the
//! writer had seen. A rename is a put at the new paths and tombstones at the old ones in one
//! operation. The feed and position of an operation are those of the log entry holding it:
//! they are not encoded, so a writer cannot claim another's.
//!
//! A file's content is a list of block references: runs of consecutive blocks of content
//! feeds, in file order. An edit refers again to every block it did not change, so it costs
//! what it changed; a rename or a copy refers to the same blocks.
//!
//! Encoding, version 2 (integers little-endian):
//! `0x02 ‖ time i64 ‖ device (u8 len ‖ utf-8) ‖ clock (u16 n ‖ n × (feed [32] ‖ seen u64))
//! ‖ effects (u32 n ‖ n × effect)`; effect = `tag u8 ‖ path (u16 len ‖ utf-8) ‖ body`:
//! tag 4 file `size u64 ‖ mode u32 ‖ mtime i64 ‖ runs (u32 n ‖ n × (feed [32] ‖ start u64
//! ‖ count u64))`, tag 2 directory `mode u32 ‖ mtime i64`, tag 3 tombstone (no body).
//!
//! Version 3 adds tag 5, a small file whose content is in the operation itself (inside the
//! sealed log entry, so as private as a block): `size u64 ‖ mode u32 ‖ mtime i64 ‖ data
//! (size bytes, at most [`MAX_INLINE`])`. An operation is written as version 3 only when it
//! has such a file, so a program that reads version 2 still reads every other.
//!
//! Version 1 (still read, never written) differs only in its file effect: tag 1
//! `size u64 ‖ mode u32 ‖ mtime i64 ‖ feed [32] ‖ start u64 ‖ blocks u64 ‖ hash [32]`, one
//! run and a BLAKE3 hash of the whole plaintext, which version 2 drops: every block is
//! authenticated on its own (sealed, and proven by its feed's Merkle tree), and a whole-file
//! hash would make recording an append read the whole file.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, FeedId};
use crate::path::{PathError, check_path};

pub const VERSION: u8 = 3;
/// The format of operations without content inside.
pub const VERSION_2: u8 = 2;
/// The first format, still decoded: one run per file.
pub const VERSION_1: u8 = 1;
/// Bounds that keep a hostile entry from costing much to decode.
pub const MAX_CLOCK: usize = 10_000;
pub const MAX_EFFECTS: usize = 1_000_000;
/// Runs in one file's block list.
pub const MAX_RUNS: usize = 1 << 24;
/// The most content a file may carry inside an operation.
pub const MAX_INLINE: usize = 64 * 1024;
const MAX_DEVICE: usize = 255;

/// `count` consecutive blocks of content feed `feed` from block `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Run {
    pub feed: FeedId,
    pub start: u64,
    pub count: u64,
}

/// A file's content and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    /// The file's blocks in order: runs of content feeds.
    pub runs: Vec<Run>,
    /// A small file's whole content, carried by the operation instead (no runs then).
    /// Shared: a file's node is cloned for every `stat`.
    #[serde(default)]
    pub inline: Option<Arc<[u8]>>,
}

impl FileMeta {
    /// How many blocks the runs name (saturating: a hostile list cannot overflow it).
    pub fn blocks(&self) -> u64 {
        self.runs
            .iter()
            .fold(0u64, |n, r| n.saturating_add(r.count))
    }
}

/// What an effect puts at its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    File(FileMeta),
    Dir {
        mode: u32,
        mtime: i64,
    },
    /// Deleted.
    Tombstone,
}

/// One path's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub path: String,
    pub value: Value,
}

/// An operation as written (without its feed and position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The writer's clock in unix milliseconds: shown in conflict names and used to pick
    /// winners; causality never depends on it.
    pub time: i64,
    pub device: String,
    pub clock: Clock,
    pub effects: Vec<Effect>,
}

/// Why bytes are not an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("drive operation has format version {0}, which this program does not know")]
    UnknownVersion(u8),
    #[error("drive operation ends early")]
    Truncated,
    #[error("drive operation has {0} trailing bytes")]
    Trailing(usize),
    #[error("drive operation has an unknown effect type {0}")]
    UnknownEffect(u8),
    #[error("drive operation is too large: {0}")]
    TooLarge(&'static str),
    #[error("drive operation has a bad path: {0}")]
    Path(#[from] PathError),
    #[error("drive operation has a field that is not UTF-8")]
    NotUtf8,
}

impl Op {
    pub fn encode(&self) -> Vec<u8> {
        let has_inline = self
            .effects
            .iter()
            .any(|e| matches!(&e.value, Value::File(m) if m.inline.is_some()));
        let mut out = vec![if has_inline { VERSION } else { VERSION_2 }];
        out.extend_from_slice(&self.time.to_le_bytes());
        let device = &self.device.as_bytes()[..self.device.len().min(MAX_DEVICE)];
        out.push(device.len() as u8);
        out.extend_from_slice(device);
        let clock: Vec<_> = self.clock.0.iter().take(MAX_CLOCK).collect();
        out.extend_from_slice(&(clock.len() as u16).to_le_bytes());
        for (feed, seen) in clock {
            out.extend_from_slice(feed);
            out.extend_from_slice(&seen.to_le_bytes());
        }
        out.extend_from_slice(&(self.effects.len() as u32).to_le_bytes());
        for e in &self.effects {
            let tag = match &e.value {
                Value::File(m) if m.inline.is_some() => 5,
                Value::File(_) => 4,
                Value::Dir { .. } => 2,
                Value::Tombstone => 3,
            };
            out.push(tag);
            out.extend_from_slice(&(e.path.len() as u16).to_le_bytes());
            out.extend_from_slice(e.path.as_bytes());
            match &e.value {
                Value::File(FileMeta {
                    mode,
                    mtime,
                    inline: Some(data),
                    ..
                }) => {
                    let data = &data[..data.len().min(MAX_INLINE)];
                    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                    out.extend_from_slice(&mode.to_le_bytes());
                    out.extend_from_slice(&mtime.to_le_bytes());
                    out.extend_from_slice(data);
                }
                Value::File(m) => {
                    out.extend_from_slice(&m.size.to_le_bytes());
                    out.extend_from_slice(&m.mode.to_le_bytes());
                    out.extend_from_slice(&m.mtime.to_le_bytes());
                    let runs = &m.runs[..m.runs.len().min(MAX_RUNS)];
                    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
                    for r in runs {
                        out.extend_from_slice(&r.feed);
                        out.extend_from_slice(&r.start.to_le_bytes());
                        out.extend_from_slice(&r.count.to_le_bytes());
                    }
                }
                Value::Dir { mode, mtime } => {
                    out.extend_from_slice(&mode.to_le_bytes());
                    out.extend_from_slice(&mtime.to_le_bytes());
                }
                Value::Tombstone => {}
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Op, DecodeError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if !matches!(version, VERSION | VERSION_2 | VERSION_1) {
            return Err(DecodeError::UnknownVersion(version));
        }
        let time = i64::from_le_bytes(r.array()?);
        let n = r.u8()? as usize;
        let device = std::str::from_utf8(r.take(n)?)
            .map_err(|_| DecodeError::NotUtf8)?
            .to_string();
        let clock_len = u16::from_le_bytes(r.array()?) as usize;
        if clock_len > MAX_CLOCK {
            return Err(DecodeError::TooLarge("clock"));
        }
        let mut clock = Clock::default();
        for _ in 0..clock_len {
            let feed: FeedId = r.array()?;
            let seen = u64::from_le_bytes(r.array()?);
            clock.set(feed, seen);
        }
        let count = u32::from_le_bytes(r.array()?) as usize;
        if count > MAX_EFFECTS || count > r.0.len() {
            return Err(DecodeError::TooLarge("effects"));
        }
        let mut effects = Vec::with_capacity(count);
        for _ in 0..count {
            let tag = r.u8()?;
            let len = u16::from_le_bytes(r.array()?) as usize;
            let path = std::str::from_utf8(r.take(len)?)
                .map_err(|_| DecodeError::NotUtf8)?
                .to_string();
            check_path(&path)?;
            let value = match (version, tag) {
                (VERSION_1, 1) => {
                    let (size, mode, mtime) = r.file_head()?;
                    let run = r.run()?;
                    let _whole_file_hash: [u8; 32] = r.array()?;
                    Value::File(FileMeta {
                        size,
                        mode,
                        mtime,
                        runs: vec![run],
                        inline: None,
                    })
                }
                (VERSION, 5) => {
                    let (size, mode, mtime) = r.file_head()?;
                    if size > MAX_INLINE as u64 {
                        return Err(DecodeError::TooLarge("content inside"));
                    }
                    let data = Arc::from(r.take(size as usize)?);
                    Value::File(FileMeta {
                        size,
                        mode,
                        mtime,
                        runs: vec![],
                        inline: Some(data),
                    })
                }
                (VERSION | VERSION_2, 4) => {
                    let (size, mode, mtime) = r.file_head()?;
                    let n = u32::from_le_bytes(r.array()?) as usize;
                    if n > MAX_RUNS || n > r.0.len() / RUN_BYTES {
                        return Err(DecodeError::TooLarge("block list"));
                    }
                    let runs = (0..n).map(|_| r.run()).collect::<Result<_, _>>()?;
                    Value::File(FileMeta {
                        size,
                        mode,
                        mtime,
                        runs,
                        inline: None,
                    })
                }
                (_, 2) => Value::Dir {
                    mode: u32::from_le_bytes(r.array()?),
                    mtime: i64::from_le_bytes(r.array()?),
                },
                (_, 3) => Value::Tombstone,
                (_, other) => return Err(DecodeError::UnknownEffect(other)),
            };
            effects.push(Effect { path, value });
        }
        if !r.0.is_empty() {
            return Err(DecodeError::Trailing(r.0.len()));
        }
        Ok(Op {
            time,
            device,
            clock,
            effects,
        })
    }
}

/// Encoded bytes of one run.
const RUN_BYTES: usize = 32 + 8 + 8;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    /// A file effect's size, mode and mtime.
    fn file_head(&mut self) -> Result<(u64, u32, i64), DecodeError> {
        Ok((
            u64::from_le_bytes(self.array()?),
            u32::from_le_bytes(self.array()?),
            i64::from_le_bytes(self.array()?),
        ))
    }
    fn run(&mut self) -> Result<Run, DecodeError> {
        Ok(Run {
            feed: self.array()?,
            start: u64::from_le_bytes(self.array()?),
            count: u64::from_le_bytes(self.array()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Op {
        let mut clock = Clock::default();
        clock.set([1; 32], 4);
        clock.set([2; 32], 9);
        Op {
            time: 1_767_225_600_123,
            device: "ada-laptop".into(),
            clock,
            effects: vec![
                Effect {
                    path: "docs/minutes.md".into(),
                    value: Value::File(FileMeta {
                        size: 200_000,
                        mode: 0o644,
                        mtime: 1_767_225_000_000,
                        runs: vec![
                            Run {
                                feed: [3; 32],
                                start: 10,
                                count: 2,
                            },
                            Run {
                                feed: [5; 32],
                                start: 0,
                                count: 2,
                            },
                        ],
                        inline: None,
                    }),
                },
                Effect {
                    path: "docs".into(),
                    value: Value::Dir {
                        mode: 0o755,
                        mtime: -5,
                    },
                },
                Effect {
                    path: "old.md".into(),
                    value: Value::Tombstone,
                },
            ],
        }
    }

    #[test]
    fn an_operation_round_trips() {
        let op = sample();
        assert_eq!(Op::decode(&op.encode()), Ok(op));
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Op::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Op::decode(&long), Err(DecodeError::Trailing(1)));
        let mut v4 = bytes;
        v4[0] = 4;
        assert_eq!(Op::decode(&v4), Err(DecodeError::UnknownVersion(4)));
    }

    /// An operation as version 1 wrote it: a file is one extent and a whole-file hash.
    fn version_1(op: &Op, extent: (FeedId, u64, u64)) -> Vec<u8> {
        let mut out = vec![VERSION_1];
        out.extend_from_slice(&op.time.to_le_bytes());
        out.push(op.device.len() as u8);
        out.extend_from_slice(op.device.as_bytes());
        out.extend_from_slice(&(op.clock.0.len() as u16).to_le_bytes());
        for (feed, seen) in &op.clock.0 {
            out.extend_from_slice(feed);
            out.extend_from_slice(&seen.to_le_bytes());
        }
        out.extend_from_slice(&(op.effects.len() as u32).to_le_bytes());
        for e in &op.effects {
            let tag = match e.value {
                Value::File(_) => 1,
                Value::Dir { .. } => 2,
                Value::Tombstone => 3,
            };
            out.push(tag);
            out.extend_from_slice(&(e.path.len() as u16).to_le_bytes());
            out.extend_from_slice(e.path.as_bytes());
            match &e.value {
                Value::File(m) => {
                    out.extend_from_slice(&m.size.to_le_bytes());
                    out.extend_from_slice(&m.mode.to_le_bytes());
                    out.extend_from_slice(&m.mtime.to_le_bytes());
                    out.extend_from_slice(&extent.0);
                    out.extend_from_slice(&extent.1.to_le_bytes());
                    out.extend_from_slice(&extent.2.to_le_bytes());
                    out.extend_from_slice(&[9; 32]);
                }
                Value::Dir { mode, mtime } => {
                    out.extend_from_slice(&mode.to_le_bytes());
                    out.extend_from_slice(&mtime.to_le_bytes());
                }
                Value::Tombstone => {}
            }
        }
        out
    }

    #[test]
    fn a_version_1_file_reads_as_one_run() {
        let op = sample();
        let old = version_1(&op, ([3; 32], 10, 4));
        let read = Op::decode(&old).unwrap();
        let Value::File(m) = &read.effects[0].value else {
            panic!("not a file: {:?}", read.effects[0]);
        };
        assert_eq!(
            m.runs,
            vec![Run {
                feed: [3; 32],
                start: 10,
                count: 4
            }]
        );
        assert_eq!((m.size, m.blocks()), (200_000, 4));
        assert_eq!(read.effects[1..], op.effects[1..]);
        for cut in 0..old.len() {
            assert!(Op::decode(&old[..cut]).is_err(), "cut at {cut}");
        }
        // A version 2 file tag in a version 1 operation is refused, and the reverse.
        let mut mixed = old.clone();
        mixed[0] = VERSION;
        assert!(Op::decode(&mixed).is_err());
    }

    #[test]
    fn a_block_list_claiming_more_runs_than_its_bytes_is_refused() {
        let mut op = sample();
        op.effects.truncate(1);
        let mut bytes = op.encode();
        // The run count sits after the path and size, mode, mtime.
        let at =
            1 + 8 + 1 + op.device.len() + 2 + 2 * 40 + 4 + 1 + 2 + "docs/minutes.md".len() + 20;
        assert_eq!(bytes[at..at + 4], 2u32.to_le_bytes());
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Op::decode(&bytes), Err(DecodeError::TooLarge("block list")));
    }

    fn small(data: &[u8]) -> Effect {
        Effect {
            path: "note.txt".into(),
            value: Value::File(FileMeta {
                size: data.len() as u64,
                mode: 0o600,
                mtime: 7,
                runs: vec![],
                inline: Some(data.into()),
            }),
        }
    }

    #[test]
    fn a_small_file_inside_round_trips_and_only_it_makes_a_version_3_operation() {
        assert_eq!(
            sample().encode()[0],
            VERSION_2,
            "readable by version 2 programs"
        );
        let mut op = sample();
        op.effects.push(small(b"four bytes of text"));
        op.effects.push(small(b""));
        let bytes = op.encode();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(Op::decode(&bytes), Ok(op));
        for cut in 0..bytes.len() {
            assert!(Op::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A version 2 operation cannot carry content inside.
        let mut old = bytes.clone();
        old[0] = VERSION_2;
        assert_eq!(Op::decode(&old), Err(DecodeError::UnknownEffect(5)));
    }

    #[test]
    fn content_inside_larger_than_the_bound_is_refused_before_it_is_read() {
        let mut op = sample();
        op.effects = vec![small(b"x")];
        let mut bytes = op.encode();
        let at = 1 + 8 + 1 + op.device.len() + 2 + 2 * 40 + 4 + 1 + 2 + "note.txt".len();
        assert_eq!(bytes[at..at + 8], 1u64.to_le_bytes());
        bytes[at..at + 8].copy_from_slice(&(MAX_INLINE as u64 + 1).to_le_bytes());
        assert_eq!(
            Op::decode(&bytes),
            Err(DecodeError::TooLarge("content inside"))
        );
    }

    #[test]
    fn hostile_paths_are_refused() {
        for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", "a/", "", "a\0b"] {
            let mut op = sample();
            op.effects[0].path = bad.into();
            assert!(
                matches!(Op::decode(&op.encode()), Err(DecodeError::Path(_))),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Op::decode(&bytes);
        }

        #[test]
        fn mutated_operations_never_panic(i in 0usize..200, b in any::<u8>()) {
            let mut bytes = sample().encode();
            let i = i % bytes.len();
            bytes[i] = b;
            let _ = Op::decode(&bytes);
        }
    }
}
