//! Earlier versions as people see them: the versions of a file worth listing, and the
//! read-only `.cobox/versions` directory of a mount, where `.cobox/versions/PATH/TIME` is
//! the version of `PATH` written at `TIME` (RFC 3339, UTC, milliseconds: what
//! `coboxctl restore --at` takes). The directory is reached by name and not listed in the
//! space's top directory, so copying a mount does not copy every version with it.

use std::collections::BTreeMap;

use cobox_drive::{Drive, Version};

use super::blocks::FileBlocks;
use super::tree::{Node, NodeKind};

/// The hidden directory at the top of a mount.
pub const DIR: &str = ".cobox";
/// Under it, the versions.
pub const VERSIONS: &str = "versions";

/// Whether `path` is in the hidden directory (which no operation may change).
pub fn is_hidden(path: &str) -> bool {
    path == DIR || path.starts_with(".cobox/")
}

/// The versions of a file worth listing: a file is recorded empty when it is created, then
/// with its content on close, so an empty version its own writer followed with another
/// says nothing and is left out.
pub fn listed(mut all: Vec<Version>) -> Vec<Version> {
    let mut later = std::collections::BTreeSet::new();
    let mut followed = vec![false; all.len()];
    for (i, v) in all.iter().enumerate().rev() {
        followed[i] = !later.insert(v.id.feed);
    }
    let mut i = 0;
    all.retain(|v| {
        i += 1;
        !(v.meta.size == 0 && followed[i - 1])
    });
    all
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The versions of `path` by the names they are shown under (a second version written
/// in the same millisecond gets `~2`, and so on).
fn named(drive: &Drive, path: &str) -> BTreeMap<String, Version> {
    let mut out = BTreeMap::new();
    for v in listed(drive.versions(path)) {
        let base = rfc3339_ms(v.time);
        let mut name = base.clone();
        let mut n = 1;
        while out.contains_key(&name) {
            n += 1;
            name = format!("{base}~{n}");
        }
        out.insert(name, v);
    }
    out
}

fn dir(mtime_ms: i64) -> Node {
    Node {
        kind: NodeKind::Dir,
        size: 0,
        mode: 0o555,
        mtime_ms,
        blocks: None,
    }
}

fn file(v: &Version) -> Node {
    Node {
        kind: NodeKind::File,
        size: v.meta.size,
        mode: 0o444,
        mtime_ms: v.meta.mtime,
        blocks: Some(FileBlocks::of(v.meta.clone())),
    }
}

/// The path in the space a path under `.cobox/versions` stands for (`Some("")` for the
/// versions directory itself); `None` for `.cobox` and anything not under it.
fn in_versions(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(".cobox/")?;
    if rest == VERSIONS {
        return Some("");
    }
    rest.strip_prefix("versions/")
}

/// What a path in the hidden directory shows.
pub fn node(drive: &Drive, path: &str) -> Option<Node> {
    if path == DIR {
        return Some(dir(0));
    }
    let rest = in_versions(path)?;
    if rest.is_empty() {
        return Some(dir(0));
    }
    // PATH/TIME: one version of PATH.
    if let Some((of, name)) = rest.rsplit_once('/')
        && let Some(v) = named(drive, of).get(name)
    {
        return Some(file(v));
    }
    // A directory: a file path with versions, or one with such paths under it.
    let (parent, name) = rest.rsplit_once('/').unwrap_or(("", rest));
    drive.versioned_under(parent).contains(name).then(|| dir(0))
}

/// The entries of a directory in the hidden directory, sorted by name.
pub fn children(drive: &Drive, path: &str) -> Option<Vec<(String, Node)>> {
    if path == DIR {
        return Some(vec![(VERSIONS.to_string(), dir(0))]);
    }
    let rest = in_versions(path)?;
    if node(drive, path)?.kind != NodeKind::Dir {
        return None;
    }
    let mut out: BTreeMap<String, Node> = drive
        .versioned_under(rest)
        .into_iter()
        .map(|n| (n, dir(0)))
        .collect();
    if !rest.is_empty() {
        for (name, v) in named(drive, rest) {
            out.insert(name, file(&v));
        }
    }
    Some(out.into_iter().collect())
}
