//! Directory listings of a mount: taken from the space's view once per open directory (and
//! again when read from the start), so a listing read in many calls is computed once.

use std::sync::Arc;

use fuser::{Errno, FileHandle, FileType, INodeNo};

use super::SpaceFs;
use crate::mount::inodes::{ROOT, join};
use crate::space::{Node, NodeKind};

/// A directory's entries in order: inode, name, node.
pub(super) type Listing = Arc<Vec<(u64, String, Node)>>;

/// The kernel's type of a node.
pub(super) fn file_type(node: &Node) -> FileType {
    match node.kind {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
    }
}

impl SpaceFs {
    /// Directory `ino`'s entries in order, `.` and `..` first: inode, name, node.
    /// The listing of open directory `fh` (`ino`): taken again when read from the start.
    pub(super) fn listed(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
    ) -> Result<Listing, Errno> {
        if offset > 0
            && let Some(l) = self.state().listings.get(&fh.0)
        {
            return Ok(l.clone());
        }
        let listing = Arc::new(self.listing(ino)?);
        if let Some(l) = self.state().listings.get_mut(&fh.0) {
            *l = listing.clone();
        }
        Ok(listing)
    }

    pub(super) fn listing(&self, ino: INodeNo) -> Result<Vec<(u64, String, Node)>, Errno> {
        let path = self.path_of(ino)?;
        let (children, this, parent) = {
            let view = self.view.read();
            let children = view.children(&path).ok_or(Errno::ENOTDIR)?;
            let parent_path = path.rsplit_once('/').map_or("", |(p, _)| p).to_string();
            let this = view.node(&path).ok_or(Errno::ENOENT)?;
            let parent = view.node(&parent_path).unwrap_or_else(|| this.clone());
            (children, this, (parent_path, parent))
        };
        let mut st = self.state();
        let parent_ino = if ino.0 == ROOT {
            ROOT
        } else {
            st.inodes.ino(&parent.0)
        };
        let mut entries = vec![
            (ino.0, ".".to_string(), this),
            (parent_ino, "..".to_string(), parent.1),
        ];
        for (name, node) in children {
            entries.push((st.inodes.ino(&join(&path, &name)), name, node));
        }
        Ok(entries)
    }
}
