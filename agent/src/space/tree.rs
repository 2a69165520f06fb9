//! The space's merged drive as the mount sees it, and the drive operations the mount makes.

use cobox_drive::{Drive, Effect, FileMeta, Op, Value, path::check_path};
use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::SpaceError;
use super::blocks::FileBlocks;

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
}

/// What a path shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    pub mtime_ms: i64,
    /// Where a file's content is (`None` for directories).
    pub blocks: Option<FileBlocks>,
}

impl From<cobox_drive::Node> for Node {
    fn from(n: cobox_drive::Node) -> Node {
        match n {
            cobox_drive::Node::File(m) => Node {
                kind: NodeKind::File,
                size: m.size,
                mode: m.mode,
                mtime_ms: m.mtime,
                blocks: Some(FileBlocks::of(m)),
            },
            cobox_drive::Node::Dir { mode, mtime } => Node {
                kind: NodeKind::Dir,
                size: 0,
                mode,
                mtime_ms: mtime,
                blocks: None,
            },
        }
    }
}

fn value_of(n: cobox_drive::Node) -> Value {
    match n {
        cobox_drive::Node::File(m) => Value::File(m),
        cobox_drive::Node::Dir { mode, mtime } => Value::Dir { mode, mtime },
    }
}

/// Files put by one operation of [`Tree::puts_op`]: it stays a few hundred KiB.
pub const MAX_PUTS: usize = 1_000;

/// Who writes an operation, and where it goes in its log.
#[derive(Debug, Clone)]
pub struct OpContext {
    pub feed: [u8; 32],
    pub seq: u64,
    pub device: String,
    pub time_ms: i64,
}

/// The drive and how far it has read each log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tree {
    drive: Drive,
}

pub(super) fn checked(path: &str) -> Result<(), SpaceError> {
    if super::history::is_hidden(path) {
        return Err(SpaceError::ReadOnly(path.to_string()));
    }
    check_path(path).map_err(|_| SpaceError::InvalidName(path.to_string()))
}

impl Tree {
    pub fn applied(&self, log: &[u8; 32]) -> u64 {
        self.drive.applied(log)
    }

    /// The merged drive.
    pub fn drive(&self) -> &Drive {
        &self.drive
    }

    /// Forget the earlier versions `retention` no longer keeps; how many.
    pub fn prune(&mut self, now_ms: i64, retention: cobox_drive::Retention) -> usize {
        self.drive.prune(now_ms, retention)
    }

    pub fn skip(&mut self, log: &[u8; 32], seq: u64) {
        self.drive.skip(log, seq);
    }

    /// Apply an encoded operation; `false` if it did not decode (it is skipped).
    pub fn apply_encoded(&mut self, log: &[u8; 32], seq: u64, bytes: &[u8]) -> bool {
        match Op::decode(bytes) {
            Ok(op) => {
                self.drive.apply(*log, seq, &op);
                true
            }
            Err(e) => {
                tracing::warn!(seq, error = %e, "skipping an undecodable drive operation");
                self.drive.skip(log, seq);
                false
            }
        }
    }

    pub fn node(&self, path: &str) -> Option<Node> {
        self.drive.node(path).map(Node::from)
    }

    /// Every version of the file at `path` this device knows, oldest first.
    pub fn versions(&self, path: &str) -> Vec<cobox_drive::Version> {
        self.drive.versions(path)
    }

    /// The version of `path` that was the newest written at or before `time_ms`.
    pub fn version_at(&self, path: &str, time_ms: i64) -> Option<cobox_drive::Version> {
        self.drive.version_at(path, time_ms)
    }

    pub fn children(&self, dir: &str) -> Option<Vec<(String, Node)>> {
        self.drive
            .children(dir)
            .map(|c| c.into_iter().map(|(n, node)| (n, node.into())).collect())
    }

    fn op(&self, ctx: OpContext, effects: Vec<Effect>) -> Vec<u8> {
        let mut clock = self.drive.clock();
        clock.set(ctx.feed, ctx.seq);
        Op {
            time: ctx.time_ms,
            device: ctx.device,
            clock,
            effects,
        }
        .encode()
    }

    pub fn write_op(
        &self,
        ctx: OpContext,
        path: &str,
        blocks: FileBlocks,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<Vec<u8>, SpaceError> {
        checked(path)?;
        let mut effects = self.drive.retire_effects(path);
        let meta = blocks.meta(mode, mtime_ms);
        effects.push(Effect {
            path: path.to_string(),
            value: Value::File(meta),
        });
        Ok(self.op(ctx, effects))
    }

    /// One operation putting the files at the front of `puts`, taking them off (their
    /// paths are returned with it): at most
    /// [`MAX_PUTS`], and none whose effects would touch a path the operation already
    /// touches (a conflict copy it keeps): that one starts the next operation, written
    /// once this one is applied.
    pub fn puts_op(
        &self,
        ctx: OpContext,
        puts: &mut VecDeque<(String, FileMeta)>,
    ) -> (Vec<u8>, Vec<String>) {
        let mut effects: Vec<Effect> = Vec::new();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut taken = Vec::new();
        while let Some((path, _)) = puts.front() {
            let retired = self.drive.retire_effects(path);
            let collides = std::iter::once(path)
                .chain(retired.iter().map(|e| &e.path))
                .any(|p| touched.contains(p));
            if taken.len() == MAX_PUTS || (!taken.is_empty() && collides) {
                break;
            }
            let (path, meta) = puts.pop_front().expect("a put at the front");
            touched.extend(retired.iter().map(|e| e.path.clone()));
            touched.insert(path.clone());
            effects.extend(retired);
            effects.push(Effect {
                path: path.clone(),
                value: Value::File(meta),
            });
            taken.push(path);
        }
        (self.op(ctx, effects), taken)
    }

    pub fn mkdir_op(
        &self,
        ctx: OpContext,
        path: &str,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<Vec<u8>, SpaceError> {
        checked(path)?;
        let mut effects = self.drive.retire_effects(path);
        effects.push(Effect {
            path: path.to_string(),
            value: Value::Dir {
                mode,
                mtime: mtime_ms,
            },
        });
        Ok(self.op(ctx, effects))
    }

    pub fn delete_op(&self, ctx: OpContext, path: &str) -> Result<Vec<u8>, SpaceError> {
        checked(path)?;
        let mut effects = self.drive.retire_effects(path);
        for p in self.drive.recorded_under(path) {
            effects.push(Effect {
                path: p,
                value: Value::Tombstone,
            });
        }
        Ok(self.op(ctx, effects))
    }

    /// Move everything visible at and under `from` to `to`.
    pub fn rename_op(&self, ctx: OpContext, from: &str, to: &str) -> Result<Vec<u8>, SpaceError> {
        checked(from)?;
        checked(to)?;
        let mut effects = self.drive.retire_effects(from);
        effects.extend(self.drive.retire_effects(to));
        for p in self.drive.recorded_under(to) {
            effects.push(Effect {
                path: p,
                value: Value::Tombstone,
            });
        }
        for p in self.drive.recorded_under(from) {
            effects.push(Effect {
                path: p,
                value: Value::Tombstone,
            });
        }
        for (p, node) in self.drive.subtree(from) {
            let moved = format!("{to}{}", &p[from.len()..]);
            effects.push(Effect {
                path: moved,
                value: value_of(node),
            });
        }
        Ok(self.op(ctx, effects))
    }
}
