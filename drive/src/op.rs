//! Drive operations and their versioned binary encoding.
//!
//! An operation is what one log entry says about the tree: a set of effects, each on one
//! path (a file or directory put there, or a tombstone), all carrying the clock of what the
//! writer had seen. A rename is a put at the new paths and tombstones at the old ones in one
//! operation. The feed and position of an operation are those of the log entry holding it:
//! they are not encoded, so a writer cannot claim another's.
//!
//! Encoding, version 1 (integers little-endian):
//! `0x01 ‖ time i64 ‖ device (u8 len ‖ utf-8) ‖ clock (u16 n ‖ n × (feed [32] ‖ seen u64))
//! ‖ effects (u32 n ‖ n × effect)`; effect = `tag u8 ‖ path (u16 len ‖ utf-8) ‖ body`:
//! tag 1 file `size u64 ‖ mode u32 ‖ mtime i64 ‖ feed [32] ‖ start u64 ‖ blocks u64 ‖ hash [32]`,
//! tag 2 directory `mode u32 ‖ mtime i64`, tag 3 tombstone (no body).

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, FeedId};
use crate::path::{PathError, check_path};

pub const VERSION: u8 = 1;
/// Bounds that keep a hostile entry from costing much to decode.
pub const MAX_CLOCK: usize = 10_000;
pub const MAX_EFFECTS: usize = 1_000_000;
const MAX_DEVICE: usize = 255;

/// Where a file's content lies: `blocks` blocks of content feed `feed` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    pub feed: FeedId,
    pub start: u64,
    pub blocks: u64,
}

/// A file's content and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub content: ContentRef,
    pub hash: [u8; 32],
}

/// What an effect puts at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        let mut out = vec![VERSION];
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
            let tag = match e.value {
                Value::File(_) => 1,
                Value::Dir { .. } => 2,
                Value::Tombstone => 3,
            };
            out.push(tag);
            out.extend_from_slice(&(e.path.len() as u16).to_le_bytes());
            out.extend_from_slice(e.path.as_bytes());
            match e.value {
                Value::File(m) => {
                    out.extend_from_slice(&m.size.to_le_bytes());
                    out.extend_from_slice(&m.mode.to_le_bytes());
                    out.extend_from_slice(&m.mtime.to_le_bytes());
                    out.extend_from_slice(&m.content.feed);
                    out.extend_from_slice(&m.content.start.to_le_bytes());
                    out.extend_from_slice(&m.content.blocks.to_le_bytes());
                    out.extend_from_slice(&m.hash);
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
        if version != VERSION {
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
            let value = match tag {
                1 => Value::File(FileMeta {
                    size: u64::from_le_bytes(r.array()?),
                    mode: u32::from_le_bytes(r.array()?),
                    mtime: i64::from_le_bytes(r.array()?),
                    content: ContentRef {
                        feed: r.array()?,
                        start: u64::from_le_bytes(r.array()?),
                        blocks: u64::from_le_bytes(r.array()?),
                    },
                    hash: r.array()?,
                }),
                2 => Value::Dir {
                    mode: u32::from_le_bytes(r.array()?),
                    mtime: i64::from_le_bytes(r.array()?),
                },
                3 => Value::Tombstone,
                other => return Err(DecodeError::UnknownEffect(other)),
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
                        size: 70_000,
                        mode: 0o644,
                        mtime: 1_767_225_000_000,
                        content: ContentRef {
                            feed: [3; 32],
                            start: 10,
                            blocks: 2,
                        },
                        hash: [4; 32],
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
        let mut v2 = bytes;
        v2[0] = 2;
        assert_eq!(Op::decode(&v2), Err(DecodeError::UnknownVersion(2)));
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
