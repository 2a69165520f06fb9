//! Changing the space's tree: files put (waiting for the commit when there is one), metadata,
//! directories, removals, renames and restores, each a drive operation in this device's log.

use super::blocks::FileBlocks;
use super::tree::{self, NodeKind};
use super::{Durability, Space, SpaceError};

impl Space {
    /// Record `path` as a new empty file: with its content when it is closed (see
    /// [`super::pending`]), so a crash before then loses only the empty file, as it would
    /// lose the content being written into it.
    pub async fn create_file(
        &mut self,
        path: &str,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<(), SpaceError> {
        let file = FileBlocks::default();
        self.write_file(path, file, mode, mtime_ms, Durability::Later)
            .await
    }

    /// Record `path` as a file with this content.
    pub async fn put_file(
        &mut self,
        path: &str,
        blocks: FileBlocks,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<(), SpaceError> {
        let when = self.durability();
        self.write_file(path, blocks, mode, mtime_ms, when).await
    }

    /// Put a file at `path`: waiting for the next commit when there is a commit interval,
    /// else as an operation appended with `durability`.
    async fn write_file(
        &mut self,
        path: &str,
        blocks: FileBlocks,
        mode: u32,
        mtime_ms: i64,
        durability: Durability,
    ) -> Result<(), SpaceError> {
        if self.durability() == Durability::Later {
            return self.wait_put(path, blocks, mode, mtime_ms);
        }
        let ctx = self.op_context().await?;
        let op = self
            .view
            .read()
            .tree
            .write_op(ctx, path, blocks, mode, mtime_ms)?;
        self.record_op(op, durability).await
    }

    /// Put a file among those waiting for the next commit.
    fn wait_put(
        &mut self,
        path: &str,
        blocks: FileBlocks,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<(), SpaceError> {
        tree::checked(path)?;
        self.view
            .write()
            .pending
            .put(path, blocks.meta(mode, mtime_ms));
        self.dirtied();
        Ok(())
    }

    /// Every version of the file at `path` this device knows (kept versions, deleted ones
    /// and the current one), oldest first.
    pub fn versions(&self, path: &str) -> Vec<cobox_drive::Version> {
        self.view.read().tree.versions(path)
    }

    /// Put back the version of `path` that was the newest written at or before `time_ms`
    /// (a deleted file too). It refers to the version's blocks again: no content is
    /// stored. Returns the version restored.
    pub async fn restore(
        &mut self,
        path: &str,
        time_ms: i64,
    ) -> Result<cobox_drive::Version, SpaceError> {
        let v = self
            .view
            .read()
            .tree
            .version_at(path, time_ms)
            .ok_or_else(|| SpaceError::NotFound(path.into()))?;
        if let Some(node) = self.node(path)
            && node.kind == NodeKind::Dir
        {
            return Err(SpaceError::IsADirectory(path.into()));
        }
        let blocks = FileBlocks::of(v.meta.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.put_file(path, blocks, v.meta.mode, now).await?;
        Ok(v)
    }

    /// Change a file's or directory's mode and modification time.
    pub async fn set_meta(
        &mut self,
        path: &str,
        mode: u32,
        mtime_ms: i64,
    ) -> Result<(), SpaceError> {
        let node = self
            .node(path)
            .ok_or_else(|| SpaceError::NotFound(path.into()))?;
        if let (NodeKind::File, Some(blocks), Durability::Later) =
            (node.kind, &node.blocks, self.durability())
        {
            return self.wait_put(path, blocks.clone(), mode, mtime_ms);
        }
        let ctx = self.op_context().await?;
        let op = {
            let view = self.view.read();
            match (node.kind, node.blocks) {
                (NodeKind::File, Some(blocks)) => {
                    view.tree.write_op(ctx, path, blocks, mode, mtime_ms)?
                }
                (NodeKind::File, None) => return Err(SpaceError::NotFound(path.into())),
                (NodeKind::Dir, _) => view.tree.mkdir_op(ctx, path, mode, mtime_ms)?,
            }
        };
        self.commit_op(op).await
    }

    pub async fn mkdir(&mut self, path: &str, mode: u32, mtime_ms: i64) -> Result<(), SpaceError> {
        if self.node(path).is_some() {
            return Err(SpaceError::Exists(path.into()));
        }
        self.parent_dir(path)?;
        let ctx = self.op_context().await?;
        let op = self.view.read().tree.mkdir_op(ctx, path, mode, mtime_ms)?;
        self.commit_op(op).await
    }

    /// Remove a file (`kind` File) or an empty directory (`kind` Dir).
    pub async fn remove(&mut self, path: &str, kind: NodeKind) -> Result<(), SpaceError> {
        let node = self
            .node(path)
            .ok_or_else(|| SpaceError::NotFound(path.into()))?;
        match (kind, node.kind) {
            (NodeKind::File, NodeKind::Dir) => return Err(SpaceError::IsADirectory(path.into())),
            (NodeKind::Dir, NodeKind::File) => return Err(SpaceError::NotADirectory(path.into())),
            (NodeKind::Dir, NodeKind::Dir)
                if !self.children(path).unwrap_or_default().is_empty() =>
            {
                return Err(SpaceError::NotEmpty(path.into()));
            }
            _ => {}
        }
        {
            let mut view = self.view.write();
            if view.pending.remove(path).is_some() && view.tree.node(path).is_none() {
                // Never recorded: nothing to delete.
                return Ok(());
            }
        }
        let ctx = self.op_context().await?;
        let op = self.view.read().tree.delete_op(ctx, path)?;
        self.commit_op(op).await
    }

    /// Move a file or directory, replacing a file (or empty directory) at `to`.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), SpaceError> {
        let src = self
            .node(from)
            .ok_or_else(|| SpaceError::NotFound(from.into()))?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(SpaceError::InvalidName(to.into()));
        }
        self.parent_dir(to)?;
        if let Some(dst) = self.node(to) {
            match (src.kind, dst.kind) {
                (NodeKind::File, NodeKind::Dir) => return Err(SpaceError::IsADirectory(to.into())),
                (NodeKind::Dir, NodeKind::File) => {
                    return Err(SpaceError::NotADirectory(to.into()));
                }
                (NodeKind::Dir, NodeKind::Dir)
                    if !self.children(to).unwrap_or_default().is_empty() =>
                {
                    return Err(SpaceError::NotEmpty(to.into()));
                }
                _ => {}
            }
        }
        tree::checked(to)?;
        {
            let mut view = self.view.write();
            if view.tree.node(from).is_none()
                && let Some(meta) = view.pending.remove(from)
            {
                // A file not recorded yet: it waits under its new name.
                view.pending.put(to, meta);
                return Ok(());
            }
        }
        let ctx = self.op_context().await?;
        let op = self.view.read().tree.rename_op(ctx, from, to)?;
        self.commit_op(op).await
    }

    fn parent_dir(&self, path: &str) -> Result<(), SpaceError> {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        match self.node(parent) {
            Some(n) if n.kind == NodeKind::Dir => Ok(()),
            Some(_) => Err(SpaceError::NotADirectory(parent.into())),
            None => Err(SpaceError::NotFound(parent.into())),
        }
    }

    /// The context of an operation about to be appended to this device's log, after the
    /// files waiting are recorded (the operation may depend on them).
    async fn op_context(&mut self) -> Result<tree::OpContext, SpaceError> {
        self.record_pending().await?;
        Ok(self.next_op_context().await)
    }

    /// The context of the next entry of this device's log.
    pub(super) async fn next_op_context(&mut self) -> tree::OpContext {
        tree::OpContext {
            feed: self.feeds.log_key,
            seq: self.feeds.log().lock().await.len(),
            device: self.device_name.clone(),
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }
}
