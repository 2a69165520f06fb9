//! The merged tree of a space: every path's concurrent values, and what is visible.
//!
//! Each path keeps its *heads*: the effects on it that no later effect on it (one whose
//! clock covers them) has replaced. That set depends only on which operations arrived, not
//! on their order, so every device computes the same tree.
//!
//! What is visible at a path, from its heads:
//! - no put (only tombstones): nothing, unless something visible lies beneath it, which
//!   makes it a directory (a deletion never removes what it had not seen);
//! - a directory put, or anything visible beneath: a directory (its mode and time from the
//!   winning directory put); every file put there is kept as a conflict copy;
//! - otherwise the winning file put; every other file put is kept as a conflict copy.
//!
//! The winner is the put with the greatest (time, feed, position). A losing file is shown
//! beside the winner as `NAME.conflict-DEVICE-YYYYMMDDTHHMMSSZ` (then `-2`, `-3` … if that
//! name is taken). An edit concurrent with a deletion keeps the edit. Nothing is lost
//! silently: [`Drive::retire_effects`] turns conflict copies into ordinary files before an
//! operation would replace them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, FeedId, OpId};
use crate::op::{Effect, FileMeta, Op, Value};
use crate::path::{join, name, parent};
use crate::time::compact_utc;

/// One concurrent value of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub id: OpId,
    pub clock: Clock,
    pub time: i64,
    pub device: String,
    pub value: Value,
}

impl Head {
    fn rank(&self) -> (i64, FeedId, u64) {
        (self.time, self.id.feed, self.id.seq)
    }
}

/// A file a path held: a put to it, with who wrote it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub id: OpId,
    /// The writer's clock when it wrote the file (unix milliseconds).
    pub time: i64,
    pub device: String,
    pub meta: FileMeta,
}

impl Version {
    fn rank(&self) -> (i64, FeedId, u64) {
        (self.time, self.id.feed, self.id.seq)
    }
}

/// How long earlier versions are kept: each for `keep_ms` after it stopped being the
/// newest (forever when `None`), and at least the newest `min` of every path whatever
/// their age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_ms: Option<i64>,
    pub min: usize,
}

impl Retention {
    /// Every version kept, forever.
    pub const FOREVER: Retention = Retention {
        keep_ms: None,
        min: 0,
    };
}

/// What a path shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(FileMeta),
    Dir { mode: u32, mtime: i64 },
}

/// The default mode of a directory that exists only because of what is in it.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The merged tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    heads: BTreeMap<String, Vec<Head>>,
    /// For each log, how many of its entries have been applied.
    #[serde(with = "crate::pairs")]
    applied: BTreeMap<FeedId, u64>,
    /// Every file put that is no longer among its path's heads (replaced, deleted or moved
    /// away), by path, in (time, feed, position) order: the versions kept. Like the heads,
    /// it depends only on which operations arrived.
    #[serde(default)]
    earlier: BTreeMap<String, Vec<Version>>,
}

/// The visible outcome at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    node: Option<Node>,
    /// Losing file puts, with the names their copies are shown under.
    copies: Vec<(String, FileMeta)>,
}

fn conflict_base(path: &str, head: &Head) -> String {
    let device: String = head
        .device
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let device = if device.is_empty() {
        "unknown".to_string()
    } else {
        device
    };
    format!("{path}.conflict-{device}-{}", compact_utc(head.time))
}

/// Add `v` to the earlier versions of `path`, in order, once.
fn keep_earlier(earlier: &mut BTreeMap<String, Vec<Version>>, path: &str, v: Version) {
    let list = earlier.entry(path.to_string()).or_default();
    // The rank ends with the operation's id: equal ranks are the same version.
    let at = list.partition_point(|e| e.rank() < v.rank());
    if list.get(at).is_some_and(|e| e.id == v.id) {
        return;
    }
    list.insert(at, v);
}

impl Drive {
    /// How many entries of log `feed` have been applied (the next to read).
    pub fn applied(&self, feed: &FeedId) -> u64 {
        self.applied.get(feed).copied().unwrap_or(0)
    }

    /// The clock of everything applied: what a new operation written now has seen.
    pub fn clock(&self) -> Clock {
        Clock(
            self.applied
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(f, n)| (*f, *n))
                .collect(),
        )
    }

    /// Mark entry `seq` of log `feed` as read without effect on the tree.
    pub fn skip(&mut self, feed: &FeedId, seq: u64) {
        let a = self.applied.entry(*feed).or_insert(0);
        *a = (*a).max(seq + 1);
    }

    /// Apply operation `op`, entry `seq` of log `feed`. Applying it again changes nothing.
    pub fn apply(&mut self, feed: FeedId, seq: u64, op: &Op) {
        let id = OpId { feed, seq };
        let mut clock = op.clock.clone();
        // An operation has seen exactly the entries before it in its own log.
        clock.set(feed, seq);
        // When an operation has several effects on one path, the last one counts.
        let mut last: BTreeMap<&str, Value> = BTreeMap::new();
        for effect in &op.effects {
            last.insert(&effect.path, effect.value.clone());
        }
        for (path, value) in last {
            let heads = self.heads.entry(path.to_string()).or_default();
            if heads.iter().any(|h| h.id == id) {
                continue;
            }
            if heads.iter().any(|h| h.clock.covers(&id)) {
                // Replaced before it arrived: an earlier version at once.
                if let Value::File(meta) = value {
                    let v = Version {
                        id,
                        time: op.time,
                        device: op.device.clone(),
                        meta,
                    };
                    keep_earlier(&mut self.earlier, path, v);
                }
                continue;
            }
            let (replaced, kept): (Vec<Head>, Vec<Head>) =
                heads.drain(..).partition(|h| clock.covers(&h.id));
            *heads = kept;
            heads.push(Head {
                id,
                clock: clock.clone(),
                time: op.time,
                device: op.device.clone(),
                value,
            });
            heads.sort_by_key(Head::rank);
            for h in replaced {
                if let Value::File(meta) = h.value {
                    let v = Version {
                        id: h.id,
                        time: h.time,
                        device: h.device,
                        meta,
                    };
                    keep_earlier(&mut self.earlier, path, v);
                }
            }
        }
        self.skip(&feed, seq);
    }

    /// Every version of the file at `path` this device knows, oldest first: the earlier
    /// ones and the current file puts (concurrent ones included).
    pub fn versions(&self, path: &str) -> Vec<Version> {
        let mut all: Vec<Version> = self.earlier.get(path).cloned().unwrap_or_default();
        for h in self.heads.get(path).into_iter().flatten() {
            if let Value::File(meta) = &h.value {
                all.push(Version {
                    id: h.id,
                    time: h.time,
                    device: h.device.clone(),
                    meta: meta.clone(),
                });
            }
        }
        all.sort_by_key(Version::rank);
        all
    }

    /// The version of `path` that was the newest written at or before `time_ms`.
    pub fn version_at(&self, path: &str, time_ms: i64) -> Option<Version> {
        self.versions(path)
            .into_iter()
            .rev()
            .find(|v| v.time <= time_ms)
    }

    /// Forget the earlier versions `retention` no longer keeps at `now_ms`; how many. A
    /// version's age counts from when the next version of its path (or the path's
    /// deletion) was written; the newest `min` of each path stay whatever their age.
    pub fn prune(&mut self, now_ms: i64, retention: Retention) -> usize {
        let Some(keep) = retention.keep_ms else {
            return 0;
        };
        let cutoff = now_ms.saturating_sub(keep);
        let mut pruned = 0;
        let heads = &self.heads;
        self.earlier.retain(|path, list| {
            // When each version stopped being the newest.
            let after_last = heads
                .get(path)
                .into_iter()
                .flatten()
                .map(|h| h.time)
                .filter(|&t| list.last().is_some_and(|v| t >= v.time))
                .min();
            let ended: Vec<i64> = (0..list.len())
                .map(|i| match list.get(i + 1) {
                    Some(next) => next.time,
                    None => after_last.unwrap_or(list[i].time),
                })
                .collect();
            let protected = list.len().saturating_sub(retention.min);
            let before = list.len();
            let mut i = 0;
            list.retain(|_| {
                let drop = i < protected && ended[i] <= cutoff;
                i += 1;
                !drop
            });
            pruned += before - list.len();
            !list.is_empty()
        });
        pruned
    }

    /// Every file version the drive refers to: `(path, meta, current)`, the current ones
    /// (every file put among its path's heads, conflict copies too) and the earlier ones
    /// kept, in path order.
    pub fn file_versions(&self) -> impl Iterator<Item = (&str, &FileMeta, bool)> {
        let current = self.heads.iter().flat_map(|(p, hs)| {
            hs.iter().filter_map(move |h| match &h.value {
                Value::File(m) => Some((p.as_str(), m, true)),
                _ => None,
            })
        });
        let earlier = self
            .earlier
            .iter()
            .flat_map(|(p, vs)| vs.iter().map(move |v| (p.as_str(), &v.meta, false)));
        current.chain(earlier)
    }

    /// The names of the entries directly under `dir` ("" for the top) that have file
    /// versions at or under them, sorted: the paths of every file put ever kept.
    pub fn versioned_under(&self, dir: &str) -> std::collections::BTreeSet<String> {
        let lo = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.paths_from(&lo)
            .filter_map(|p| {
                let rest = p.strip_prefix(lo.as_str())?;
                (!rest.is_empty() && self.has_file_versions(p))
                    .then(|| rest.split('/').next().unwrap_or(rest).to_string())
            })
            .collect()
    }

    /// Whether `path`, or a path beneath it, has file versions (a lookup, not a scan).
    pub fn has_file_versions_at_or_under(&self, path: &str) -> bool {
        let below = format!("{path}/");
        self.has_file_versions(path) || self.paths_from(&below).any(|p| self.has_file_versions(p))
    }

    /// Whether `path` has a file put, current or kept.
    fn has_file_versions(&self, path: &str) -> bool {
        self.earlier.get(path).is_some_and(|v| !v.is_empty())
            || self
                .heads
                .get(path)
                .is_some_and(|hs| hs.iter().any(|h| matches!(h.value, Value::File(_))))
    }

    /// The paths with heads or kept versions that start with `prefix`: those of the kept
    /// versions, then those of the heads (a path in both comes twice).
    fn paths_from<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let range = (Bound::Included(prefix), Bound::Unbounded);
        let earlier = self.earlier.range::<str, _>(range).map(|(p, _)| p.as_str());
        let heads = self.heads.range::<str, _>(range).map(|(p, _)| p.as_str());
        earlier
            .take_while(move |p| p.starts_with(prefix))
            .chain(heads.take_while(move |p| p.starts_with(prefix)))
    }

    /// How many earlier versions are kept.
    pub fn earlier_count(&self) -> usize {
        self.earlier.values().map(Vec::len).sum()
    }

    fn has_put(&self, path: &str) -> bool {
        self.heads
            .get(path)
            .is_some_and(|hs| hs.iter().any(|h| h.value != Value::Tombstone))
    }

    /// Whether anything is visible strictly beneath `path`.
    fn has_visible_below(&self, path: &str) -> bool {
        let (lo, hi) = if path.is_empty() {
            (String::new(), None)
        } else {
            (format!("{path}/"), Some(format!("{path}0")))
        };
        let range = match &hi {
            Some(hi) => self
                .heads
                .range::<String, _>((Bound::Included(&lo), Bound::Excluded(hi))),
            None => self
                .heads
                .range::<String, _>((Bound::Included(&lo), Bound::Unbounded)),
        };
        range
            .filter(|(p, _)| !p.is_empty())
            .any(|(_, hs)| hs.iter().any(|h| h.value != Value::Tombstone))
    }

    fn resolve(&self, path: &str) -> Resolved {
        if path.is_empty() {
            return Resolved {
                node: Some(Node::Dir {
                    mode: IMPLICIT_DIR_MODE,
                    mtime: 0,
                }),
                copies: vec![],
            };
        }
        let heads: &[Head] = self.heads.get(path).map_or(&[], Vec::as_slice);
        let dirs: Vec<&Head> = heads
            .iter()
            .filter(|h| matches!(h.value, Value::Dir { .. }))
            .collect();
        let files: Vec<(&Head, FileMeta)> = heads
            .iter()
            .filter_map(|h| match &h.value {
                Value::File(m) => Some((h, m.clone())),
                _ => None,
            })
            .collect();
        let is_dir = !dirs.is_empty() || self.has_visible_below(path);
        let (node, losers): (Option<Node>, Vec<(&Head, FileMeta)>) = if is_dir {
            let node = match dirs.last().map(|h| &h.value) {
                Some(&Value::Dir { mode, mtime }) => Node::Dir { mode, mtime },
                _ => Node::Dir {
                    mode: IMPLICIT_DIR_MODE,
                    mtime: heads.iter().map(|h| h.time).max().unwrap_or(0),
                },
            };
            (Some(node), files)
        } else if let Some(((_, winner), rest)) = files.split_last() {
            (Some(Node::File(winner.clone())), rest.to_vec())
        } else {
            (None, vec![])
        };
        let mut taken = BTreeSet::new();
        let copies = losers
            .into_iter()
            .map(|(h, meta)| {
                let base = conflict_base(path, h);
                let mut candidate = base.clone();
                let mut n = 2;
                while taken.contains(&candidate) || self.has_put(&candidate) {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
                taken.insert(candidate.clone());
                (candidate, meta)
            })
            .collect();
        Resolved { node, copies }
    }

    /// The conflict copies the drive shows, `(copy, origin)` in path order, at most
    /// `limit` of them: a read of the recorded paths, nothing changed.
    pub fn conflict_copies(&self, limit: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, heads) in &self.heads {
            if out.len() >= limit {
                break;
            }
            if !heads.iter().any(|h| matches!(h.value, Value::File(_))) {
                continue;
            }
            for (copy, _) in self.resolve(path).copies {
                out.push((copy, path.clone()));
            }
        }
        out.truncate(limit);
        out
    }

    /// The path a conflict copy named `path` belongs to, if it is one.
    fn conflict_origin(&self, path: &str) -> Option<(String, FileMeta)> {
        let file = name(path);
        let (base, _) = file.rsplit_once(".conflict-")?;
        let origin = join(parent(path), base);
        self.resolve(&origin)
            .copies
            .into_iter()
            .find(|(c, _)| c == path)
            .map(|(_, m)| (origin, m))
    }

    /// What `path` shows ("" is the root directory).
    pub fn node(&self, path: &str) -> Option<Node> {
        if let Some(node) = self.resolve(path).node {
            return Some(node);
        }
        self.conflict_origin(path).map(|(_, m)| Node::File(m))
    }

    /// The visible entries of directory `dir`, sorted by name; `None` if it is not one.
    pub fn children(&self, dir: &str) -> Option<Vec<(String, Node)>> {
        if !matches!(self.node(dir), Some(Node::Dir { .. })) {
            return None;
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names = BTreeSet::new();
        let mut cursor: Bound<String> = Bound::Included(prefix.clone());
        while let Some((path, _)) = self
            .heads
            .range::<String, _>((cursor.clone(), Bound::Unbounded))
            .next()
        {
            if !path.starts_with(&prefix) {
                break;
            }
            if path.is_empty() {
                cursor = Bound::Excluded(path.clone());
                continue;
            }
            let rest = &path[prefix.len()..];
            let child = rest.split('/').next().unwrap_or(rest).to_string();
            cursor = if rest.contains('/') {
                Bound::Included(format!("{prefix}{child}0"))
            } else {
                Bound::Excluded(path.clone())
            };
            names.insert(child);
        }
        let mut out = BTreeMap::new();
        for child in names {
            let path = join(dir, &child);
            let r = self.resolve(&path);
            if let Some(node) = r.node {
                out.insert(child.clone(), node);
            }
            for (copy, meta) in r.copies {
                out.insert(name(&copy).to_string(), Node::File(meta));
            }
        }
        Some(out.into_iter().collect())
    }

    /// Effects that keep conflict copies at `path` when an operation is about to replace
    /// its values: each copy becomes an ordinary file under its shown name. When `path` is
    /// itself a conflict copy, its origin's winner is put again, which retires that copy
    /// (and the other copies become ordinary files).
    pub fn retire_effects(&self, path: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        let (origin, keep_winner) = match self.conflict_origin(path) {
            Some((origin, _)) if !self.has_put(path) => (origin, true),
            _ => (path.to_string(), false),
        };
        let r = self.resolve(&origin);
        for (copy, meta) in &r.copies {
            if copy != path {
                out.push(Effect {
                    path: copy.clone(),
                    value: Value::File(meta.clone()),
                });
            }
        }
        if keep_winner {
            match r.node {
                Some(Node::File(m)) => out.push(Effect {
                    path: origin,
                    value: Value::File(m),
                }),
                Some(Node::Dir { mode, mtime }) => out.push(Effect {
                    path: origin,
                    value: Value::Dir { mode, mtime },
                }),
                None => {}
            }
        }
        out
    }

    /// Every visible path at or under `path` with what it shows, parents first.
    pub fn subtree(&self, path: &str) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        let Some(node) = self.node(path) else {
            return out;
        };
        out.push((path.to_string(), node));
        let mut i = 0;
        while i < out.len() {
            let (p, n) = out[i].clone();
            if matches!(n, Node::Dir { .. }) {
                for (child, cn) in self.children(&p).unwrap_or_default() {
                    out.push((join(&p, &child), cn));
                }
            }
            i += 1;
        }
        out
    }

    /// The real paths (with values recorded) at or under `path`.
    pub fn recorded_under(&self, path: &str) -> Vec<String> {
        let lo = path.to_string();
        let hi = format!("{path}0");
        self.heads
            .range::<String, _>((Bound::Included(&lo), Bound::Excluded(&hi)))
            .filter(|(p, hs)| {
                (p.as_str() == path || p.starts_with(&format!("{path}/")))
                    && hs.iter().any(|h| h.value != Value::Tombstone)
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Number of paths with recorded values (for sizing).
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}
