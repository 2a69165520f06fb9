//! What a space shows — its merged drive and the files waiting for the next commit — behind
//! a lock of its own, held only for moments: the mount answers `stat`, lookups and
//! directory listings from it without the space's lock, which a commit holds while it
//! syncs and a read while it fetches blocks.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::history;
use super::pending::Pending;
use super::tree::{Node, Tree};

/// The drive and the files waiting to be recorded.
#[derive(Debug, Default)]
pub struct View {
    pub(super) tree: Tree,
    pub(super) pending: Pending,
}

/// A space's view, shared with its mount.
#[derive(Debug, Clone, Default)]
pub struct SharedView(Arc<RwLock<View>>);

impl SharedView {
    /// Read the view (a writer that panicked left it whole: every change is one call).
    pub fn read(&self) -> RwLockReadGuard<'_, View> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, View> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl View {
    /// The file or directory at `path` ("" is the root); under `.cobox`, the read-only
    /// view of earlier versions ([`history`]).
    pub fn node(&self, path: &str) -> Option<Node> {
        if history::is_hidden(path) {
            return history::node(self.tree.drive(), path);
        }
        self.pending.node(path).or_else(|| self.tree.node(path))
    }

    /// The entries of directory `dir`, sorted by name; `None` if it is not a directory.
    /// The top directory does not list `.cobox` (it is reached by name).
    pub fn children(&self, dir: &str) -> Option<Vec<(String, Node)>> {
        if history::is_hidden(dir) {
            return history::children(self.tree.drive(), dir);
        }
        let mut entries = self.tree.children(dir)?;
        self.pending.overlay(dir, &mut entries);
        if dir.is_empty() {
            entries.retain(|(name, _)| name != history::DIR);
        }
        Some(entries)
    }
}
