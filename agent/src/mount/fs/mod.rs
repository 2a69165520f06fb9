//! The FUSE file system of a mounted space.
//!
//! Requests reach the space under its lock on the agent's runtime. Reads fetch sealed
//! blocks and decrypt them outside the lock; writes stream into the content feed or go to a
//! staging file (`writes.rs`), and are committed (content synced, then a drive operation
//! appended and synced) on flush, fsync and close.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle as Runtime;

use super::handles::{Body, Handle, Handles};
use super::inodes::{Inodes, join};
use super::stream::BackgroundStream;
use crate::space::blocks::BlockAt;
use crate::space::content::{self, BLOCK_SIZE, ContentError};
use crate::space::view::SharedView;
use crate::space::{Node, NodeKind, Space, SpaceError};

mod listing;
mod writes;

use listing::{Listing, file_type};

const TTL: Duration = Duration::from_secs(1);

/// The state of one mount.
pub struct SpaceFs {
    space: Arc<tokio::sync::Mutex<Space>>,
    /// What the space shows, read without the space's lock (`stat`, lookups, listings).
    view: SharedView,
    rt: Runtime,
    state: Mutex<State>,
    staging_dir: PathBuf,
    uid: u32,
    gid: u32,
}

impl std::fmt::Debug for SpaceFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpaceFs")
            .field("staging_dir", &self.staging_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    inodes: Inodes,
    handles: Handles,
    /// Open directories' listings, taken at open and at a rewind: a listing read in
    /// many calls is computed once and stays consistent.
    listings: HashMap<u64, Listing>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn to_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH
    }
}

fn time_ms(t: TimeOrNow) -> i64 {
    match t {
        TimeOrNow::Now => now_ms(),
        TimeOrNow::SpecificTime(s) => s
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    }
}

/// How long a read waits for a block a connected peer has.
const FETCH_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

fn errno(e: &SpaceError) -> Errno {
    match e {
        SpaceError::NotFound(_) => Errno::ENOENT,
        SpaceError::Exists(_) => Errno::EEXIST,
        SpaceError::NotEmpty(_) => Errno::ENOTEMPTY,
        SpaceError::NotADirectory(_) => Errno::ENOTDIR,
        SpaceError::IsADirectory(_) => Errno::EISDIR,
        SpaceError::InvalidName(_) => Errno::EINVAL,
        SpaceError::ReadOnly(_) => Errno::EROFS,
        _ => Errno::EIO,
    }
}

fn name_str(name: &OsStr) -> Result<&str, Errno> {
    let s = name.to_str().ok_or(Errno::EINVAL)?;
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(Errno::EINVAL);
    }
    if s.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(s)
}

impl SpaceFs {
    pub fn new(
        space: Arc<tokio::sync::Mutex<Space>>,
        rt: Runtime,
        staging_dir: PathBuf,
    ) -> SpaceFs {
        let view = rt.block_on(async { space.lock().await.view() });
        SpaceFs {
            space,
            view,
            rt,
            state: Mutex::new(State::default()),
            staging_dir,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn attr(&self, ino: u64, node: &Node, pending: Option<u64>) -> FileAttr {
        let size = pending.unwrap_or(node.size);
        let (kind, nlink) = match node.kind {
            NodeKind::Dir => (FileType::Directory, 2),
            NodeKind::File => (FileType::RegularFile, 1),
        };
        let t = to_time(node.mtime_ms);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind,
            perm: (node.mode & 0o7777) as u16,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE as u32,
            flags: 0,
        }
    }

    fn path_of(&self, ino: INodeNo) -> Result<String, Errno> {
        self.state()
            .inodes
            .path(ino.0)
            .map(str::to_string)
            .ok_or(Errno::ENOENT)
    }

    fn child_path(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        Ok(join(&self.path_of(parent)?, name_str(name)?))
    }

    /// The node at `path` with its inode, as the kernel should see it now.
    fn entry(&self, path: &str) -> Result<(FileAttr, Node), Errno> {
        let node = self.view.read().node(path).ok_or(Errno::ENOENT)?;
        let ino = self.state().inodes.ino(path);
        let pending = self.pending_size(ino);
        Ok((self.attr(ino, &node, pending), node))
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle>, Errno> {
        self.state().handles.get(fh).ok_or(Errno::EBADF)
    }

    /// The plaintext of the blocks stored at `ats`. Sealed blocks are fetched under the
    /// space's lock and decrypted outside it, so that concurrent reads use every core. A
    /// block not here yet (the file was listed before its content arrived) is fetched
    /// first from a connected peer that has it, waited for outside the lock; only when
    /// none has it does the read fail, ENODATA.
    pub(super) fn read_blocks(&self, ats: &[BlockAt]) -> Result<Vec<Vec<u8>>, Errno> {
        let (key, sealed) = loop {
            let fetched = self.rt.block_on(async {
                let mut space = self.space.lock().await;
                let mut sealed = Vec::with_capacity(ats.len());
                for &at in ats {
                    match space.sealed_block(at).await {
                        Ok(b) => sealed.push(b),
                        Err(SpaceError::Content(ContentError::Missing { .. })) => {
                            let feed = space.content_feed(&at.0).await.ok().flatten();
                            return Ok(Err((at, feed)));
                        }
                        Err(e) => return Err(errno(&e)),
                    }
                }
                Ok::<_, Errno>(Ok((space.block_key(), sealed)))
            })?;
            let (at, feed) = match fetched {
                Ok(done) => break done,
                Err(missing) => missing,
            };
            let arrived = match &feed {
                Some(f) => self.rt.block_on(f.fetch(at.1, FETCH_WITHIN)),
                None => false,
            };
            if !arrived {
                tracing::warn!(
                    feed = %cobox_keys::secret::hex(&at.0),
                    block = at.1,
                    "a file's content is not here and no connected peer supplied it"
                );
                return Err(Errno::ENODATA);
            }
        };
        ats.iter()
            .zip(sealed)
            .map(|(&at, block)| content::open_block(&key, at, &block).map_err(|_| Errno::EIO))
            .collect()
    }

    fn read_committed(&self, node: &Node, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let Some(blocks) = &node.blocks else {
            return Ok(vec![]);
        };
        let end = (offset + size as u64).min(node.size);
        if offset >= end {
            return Ok(vec![]);
        }
        if !blocks.is_consistent() {
            tracing::warn!(
                size = blocks.size,
                listed = blocks.count(),
                "a file's block list does not match its size"
            );
            return Err(Errno::EIO);
        }
        if let Some(data) = &blocks.inline {
            return Ok(data[offset as usize..end as usize].to_vec());
        }
        let bs = BLOCK_SIZE as u64;
        let (first, last) = (offset / bs, (end - 1) / bs);
        let ats: Vec<BlockAt> = blocks
            .from(first)
            .take((last - first + 1) as usize)
            .collect();
        let plains = self.read_blocks(&ats)?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (i, plain) in (first..=last).zip(plains) {
            let from = offset.saturating_sub(i * bs) as usize;
            let to = ((end - i * bs) as usize).min(plain.len());
            if from < to {
                out.extend_from_slice(&plain[from..to]);
            }
        }
        Ok(out)
    }
}

impl Filesystem for SpaceFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        // Let O_TRUNC reach open, so a rewritten file streams instead of being copied.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC);
        // Listings carry attributes when the kernel sees them used (`ls -l`, `find`).
        let _ = config.add_capabilities(
            fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO,
        );
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child_path(parent, name).and_then(|p| self.entry(&p)) {
            Ok((attr, _)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path_of(ino).and_then(|p| self.entry(&p)) {
            Ok((attr, _)) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = (|| {
            let path = self.path_of(ino)?;
            let (_, node) = self.entry(&path)?;
            if crate::space::history::is_hidden(&path)
                && (size.is_some() || mode.is_some() || mtime.is_some())
            {
                return Err(Errno::EROFS);
            }
            if let Some(size) = size {
                if node.kind == NodeKind::Dir {
                    return Err(Errno::EISDIR);
                }
                match fh.and_then(|fh| self.state().handles.get(fh.0)) {
                    // Through the writer's own handle.
                    Some(handle) => {
                        let fh = fh.map(|f| f.0).unwrap_or_default();
                        let mut body = handle.body();
                        self.to_staging(fh, ino.0, &mut body)?;
                        if let Body::Staging { staging, dirty } = &mut *body {
                            self.staging_set_len(staging, size)?;
                            *dirty = true;
                        }
                    }
                    // No handle: commit the truncated file at once, copying only what stays.
                    None => {
                        let fh = self.state().handles.reserve();
                        let mut staging =
                            self.new_staging(fh, node.blocks.unwrap_or_default(), None)?;
                        self.staging_set_len(&mut staging, size)?;
                        self.state().handles.insert(
                            fh,
                            Handle::new(
                                ino.0,
                                Body::Staging {
                                    staging,
                                    dirty: true,
                                },
                            ),
                        );
                        let committed = self.commit(fh);
                        self.state().handles.remove(fh);
                        committed?;
                    }
                }
            }
            // The root's attributes are fixed.
            if (mode.is_some() || mtime.is_some()) && !path.is_empty() {
                let mode = mode.map_or(node.mode, |m| m & 0o7777);
                let mtime = mtime.map_or(node.mtime_ms, time_ms);
                self.rt
                    .block_on(async { self.space.lock().await.set_meta(&path, mode, mtime).await })
                    .map_err(|e| errno(&e))?;
            }
            self.entry(&path).map(|(a, _)| a)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.child_path(parent, name).and_then(|path| {
            let mode = mode & !umask & 0o7777;
            self.rt
                .block_on(async { self.space.lock().await.mkdir(&path, mode, now_ms()).await })
                .map_err(|e| errno(&e))?;
            self.entry(&path)
        });
        match result {
            Ok((attr, _)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, NodeKind::File, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, NodeKind::Dir, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = (|| {
            let from = self.child_path(parent, name)?;
            let to = self.child_path(newparent, newname)?;
            self.rt
                .block_on(async { self.space.lock().await.rename(&from, &to).await })
                .map_err(|e| errno(&e))?;
            let mut st = self.state();
            if let Some(&old) = st.inodes.lookup(&to) {
                st.handles.of(old).iter().for_each(|h| h.orphan());
            }
            st.inodes.rename(&from, &to);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let path = self.path_of(ino)?;
            let (_, node) = self.entry(&path)?;
            if node.kind == NodeKind::Dir {
                return Err(Errno::EISDIR);
            }
            let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
            if write && crate::space::history::is_hidden(&path) {
                return Err(Errno::EROFS);
            }
            let truncate = flags.0 & libc_o_trunc() != 0;
            self.open_handle(ino.0, write, truncate)
        })();
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let result = (|| {
            let path = self.child_path(parent, name)?;
            let mode = mode & !umask & 0o7777;
            let node = self
                .rt
                .block_on(async {
                    let mut space = self.space.lock().await;
                    if space.node(&path).is_none() {
                        // Durable with the content the close commits.
                        space.create_file(&path, mode, now_ms()).await?;
                    }
                    space.node(&path).ok_or(SpaceError::NotFound(path.clone()))
                })
                .map_err(|e| errno(&e))?;
            let ino = self.state().inodes.ino(&path);
            let _ = node;
            let fh = self.open_handle(ino, true, true)?;
            let (attr, _) = self.entry(&path)?;
            Ok((attr, fh))
        })();
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = (|| {
            if let Ok(h) = self.handle(fh.0) {
                let mut body = h.body();
                if matches!(*body, Body::Streaming(_)) {
                    self.to_staging(fh.0, h.ino, &mut body)?;
                }
                if let Body::Staging { staging, .. } = &mut *body {
                    return self.staging_read(staging, offset, size);
                }
            }
            let (_, node) = self.path_of(ino).and_then(|p| self.entry(&p))?;
            self.read_committed(&node, offset, size)
        })();
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = (|| {
            let h = self.handle(fh.0)?;
            let mut body = h.body();
            if matches!(*body, Body::Clean) && offset == 0 {
                let empty = self
                    .state()
                    .inodes
                    .path(ino.0)
                    .map(str::to_string)
                    .and_then(|p| self.view.read().node(&p))
                    .is_some_and(|n| n.size == 0);
                if empty && self.state().handles.claim_content(fh.0).is_ok() {
                    let (stream, key) = self.rt.block_on(async {
                        let mut s = self.space.lock().await;
                        (s.begin_content(), s.block_key())
                    });
                    *body = Body::Streaming(Box::new(BackgroundStream::start(
                        &self.rt,
                        self.space.clone(),
                        stream,
                        key,
                    )));
                }
            }
            if let Body::Streaming(stream) = &mut *body
                && stream.size() == offset
            {
                return stream.write(data).map_err(|_| Errno::EIO);
            }
            self.to_staging(fh.0, ino.0, &mut body)?;
            match &mut *body {
                Body::Staging { staging, dirty } => {
                    self.staging_write(staging, data, offset)?;
                    *dirty = true;
                    Ok(())
                }
                _ => Err(Errno::EBADF),
            }
        })();
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.commit(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Durable before it returns: the file's content and operation, and every change
    /// closed before them (one sync of the content feed and one of the log).
    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.commit(fh.0).and_then(|()| self.sync()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// A directory's entries are operations of the log: durable like a file's.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.sync() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.commit(fh.0);
        self.state().handles.remove(fh.0);
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.path_of(ino).and_then(|p| self.entry(&p)) {
            Ok((_, n)) if n.kind == NodeKind::Dir => match self.listing(ino) {
                Ok(listing) => {
                    let mut st = self.state();
                    let fh = st.handles.reserve();
                    st.listings.insert(fh, Arc::new(listing));
                    reply.opened(FileHandle(fh), FopenFlags::empty())
                }
                Err(e) => reply.error(e),
            },
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.listed(ino, fh, offset) {
            Ok(entries) => {
                for (i, (ino, name, node)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), (i + 1) as u64, file_type(node), name) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    /// A listing with every entry's attributes, so that `ls -l`, `find` or rsync listing a
    /// directory cost one round trip, not one per entry.
    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.listed(ino, fh, offset) {
            Ok(entries) => {
                for (i, (ino, name, node)) in entries.iter().enumerate().skip(offset as usize) {
                    let attr = self.attr(*ino, node, self.pending_size(*ino));
                    if reply.add(
                        INodeNo(*ino),
                        (i + 1) as u64,
                        name,
                        &TTL,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().listings.remove(&fh.0);
        reply.ok();
    }

    /// Spaces keep no extended attributes (POSIX ACLs, SELinux labels): say so quietly.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (blocks, free, avail) = rustix::fs::statvfs(&self.staging_dir)
            .map(|s| {
                (
                    s.f_blocks * s.f_frsize / 4096,
                    s.f_bfree * s.f_frsize / 4096,
                    s.f_bavail * s.f_frsize / 4096,
                )
            })
            .unwrap_or((0, 0, 0));
        reply.statfs(blocks, free, avail, 0, u64::MAX / 2, 4096, 255, 4096);
    }
}

impl SpaceFs {
    /// Make every change so far durable.
    fn sync(&self) -> Result<(), Errno> {
        self.rt
            .block_on(async { self.space.lock().await.sync().await })
            .map_err(|e| errno(&e))
    }

    fn remove(&self, parent: INodeNo, name: &OsStr, kind: NodeKind, reply: ReplyEmpty) {
        let result = (|| {
            let path = self.child_path(parent, name)?;
            self.rt
                .block_on(async { self.space.lock().await.remove(&path, kind).await })
                .map_err(|e| errno(&e))?;
            let mut st = self.state();
            if let Some(&ino) = st.inodes.lookup(&path) {
                st.handles.of(ino).iter().for_each(|h| h.orphan());
            }
            st.inodes.forget_path(&path);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

/// `O_TRUNC` as the kernel passes it in open flags.
fn libc_o_trunc() -> i32 {
    rustix::fs::OFlags::TRUNC.bits() as i32
}
