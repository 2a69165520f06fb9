//! Writing files through a mount: streaming into the content feed, staging files over the
//! committed version, and committing either as a drive operation that refers again to
//! every block it did not change.

use std::time::Duration;

use fuser::Errno;

use super::{SpaceFs, errno, now_ms};
use crate::mount::handles::{Body, Handle};
use crate::mount::staging::{Block, Staging};
use crate::mount::stream::BackgroundStream;
use crate::space::SpaceError;
use crate::space::blocks::{BlockAt, FileBlocks};
use crate::space::pins::Pin;

impl SpaceFs {
    /// The size a writer of `ino` has written but not committed yet, if any.
    pub(super) fn pending_size(&self, ino: u64) -> Option<u64> {
        let handles = self.state().handles.of(ino);
        handles.iter().find_map(|h| match &*h.body() {
            Body::Streaming(s) => Some(s.size()),
            Body::Staging {
                staging,
                dirty: true,
            } => Some(staging.size()),
            _ => None,
        })
    }

    /// A staging file over the committed version `base`, which `pin` keeps from being
    /// cleared (pinned here when `None`: take it under the lock that read `base` when
    /// nothing else refers to it).
    pub(super) fn new_staging(
        &self,
        fh: u64,
        base: FileBlocks,
        pin: Option<Pin>,
    ) -> Result<Staging, Errno> {
        // A block list from another writer that does not match its size is not edited,
        // as it is not read.
        if !base.is_consistent() {
            return Err(Errno::EIO);
        }
        let pin = match pin {
            Some(p) => p,
            None => self
                .rt
                .block_on(async { self.space.lock().await.pin(&base) }),
        };
        let mut staging = Staging::create(&self.staging_dir, fh, base).map_err(|_| Errno::EIO)?;
        staging.hold(pin);
        Ok(staging)
    }

    /// Copy the base blocks a change needs into the staging file.
    fn fill(&self, staging: &mut Staging, needs: Vec<(u64, BlockAt)>) -> Result<(), Errno> {
        if needs.is_empty() {
            return Ok(());
        }
        let ats: Vec<BlockAt> = needs.iter().map(|&(_, at)| at).collect();
        let plains = self.read_blocks(&ats)?;
        for ((i, _), plain) in needs.into_iter().zip(plains) {
            staging.fill(i, &plain).map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }

    pub(super) fn staging_read(
        &self,
        staging: &mut Staging,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        self.fill(staging, staging.needs_for_read(offset, size as u64))?;
        staging
            .read_at(offset, size as usize)
            .map_err(|_| Errno::EIO)
    }

    pub(super) fn staging_write(
        &self,
        staging: &mut Staging,
        data: &[u8],
        offset: u64,
    ) -> Result<(), Errno> {
        self.fill(staging, staging.needs_for_write(offset, data.len() as u64))?;
        staging.write_at(data, offset).map_err(|_| Errno::EIO)
    }

    pub(super) fn staging_set_len(&self, staging: &mut Staging, size: u64) -> Result<(), Errno> {
        self.fill(staging, staging.needs_for_set_len(size))?;
        staging.set_len(size).map_err(|_| Errno::EIO)
    }

    /// Turn a body that cannot take `write_at`/`read` directly into a staging file: a clean
    /// writer copies the committed file, a stream is finished and copied back.
    pub(super) fn to_staging(&self, fh: u64, ino: u64, body: &mut Body) -> Result<(), Errno> {
        match std::mem::replace(body, Body::Clean) {
            Body::Clean => {
                let path = self
                    .state()
                    .inodes
                    .path(ino)
                    .map(str::to_string)
                    .ok_or(Errno::ENOENT)?;
                let (node, pin) = self.rt.block_on(async {
                    let s = self.space.lock().await;
                    let node = s.node(&path);
                    let pin = node
                        .as_ref()
                        .and_then(|n| n.blocks.as_ref())
                        .map(|b| s.pin(b));
                    (node, pin)
                });
                let node = node.ok_or(Errno::ENOENT)?;
                let staging = self.new_staging(fh, node.blocks.unwrap_or_default(), pin)?;
                *body = Body::Staging {
                    staging,
                    dirty: false,
                };
            }
            Body::Streaming(stream) => {
                // Nothing refers to the stream's blocks yet: pinned under the same lock.
                let (blocks, pin) = stream
                    .finish(&self.rt)
                    .and_then(|stream| {
                        self.rt.block_on(async {
                            let mut s = self.space.lock().await;
                            let blocks = s.content_finish(stream).await?;
                            let pin = s.pin(&blocks);
                            Ok((blocks, pin))
                        })
                    })
                    .map_err(|e| errno(&e))?;
                self.state().handles.release_content(fh);
                let staging = self.new_staging(fh, blocks, Some(pin))?;
                *body = Body::Staging {
                    staging,
                    dirty: true,
                };
            }
            staged @ Body::Staging { .. } => *body = staged,
        }
        Ok(())
    }

    /// Take the content feed for `fh`'s commit: a file streaming into it is moved to staging
    /// first; a commit under way is waited for.
    pub(super) fn claim_content(&self, fh: u64) -> Result<(), Errno> {
        loop {
            let holder = match self.state().handles.claim_content(fh) {
                Ok(()) => return Ok(()),
                Err(other) => other,
            };
            let Some(h) = self.state().handles.get(holder) else {
                self.state().handles.release_content(holder);
                continue;
            };
            let mut body = h.body();
            if matches!(*body, Body::Streaming(_)) {
                self.to_staging(holder, h.ino, &mut body)?;
            } else {
                drop(body);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Store a written file's new content and record it: durable on return.
    pub(super) fn commit(&self, fh: u64) -> Result<(), Errno> {
        let Ok(h) = self.handle(fh) else {
            return Ok(());
        };
        let mut body = h.body();
        if h.is_orphaned() {
            if matches!(*body, Body::Streaming(_)) {
                // Finish the stream so the content feed can take other files again.
                if let Body::Streaming(stream) = std::mem::replace(&mut *body, Body::Clean)
                    && let Ok(stream) = stream.finish(&self.rt)
                {
                    let _ = self
                        .rt
                        .block_on(async { self.space.lock().await.content_finish(stream).await });
                }
                self.state().handles.release_content(fh);
            }
            return Ok(());
        }
        let path = self
            .state()
            .inodes
            .path(h.ino)
            .map(str::to_string)
            .ok_or(Errno::ENOENT)?;
        match std::mem::replace(&mut *body, Body::Clean) {
            Body::Clean => {}
            Body::Streaming(stream) => {
                let result = stream.finish(&self.rt).and_then(|stream| {
                    self.rt.block_on(async {
                        let mut space = self.space.lock().await;
                        let mode = space.node(&path).map_or(0o644, |n| n.mode);
                        let blocks = space.content_finish(stream).await?;
                        space.put_file(&path, blocks, mode, now_ms()).await
                    })
                });
                self.state().handles.release_content(fh);
                result.map_err(|e| errno(&e))?;
            }
            Body::Staging { mut staging, dirty } => {
                if !dirty {
                    *body = Body::Staging { staging, dirty };
                    return Ok(());
                }
                self.claim_content(fh)?;
                let result = self.rt.block_on(async {
                    let mut space = self.space.lock().await;
                    let mode = space.node(&path).map_or(0o644, |n| n.mode);
                    let mut stream = space.begin_content();
                    for block in staging.blocks() {
                        match block.map_err(|_| SpaceError::NotFound(path.clone()))? {
                            Block::Unchanged(at, len) => stream.reuse(at, len),
                            Block::Changed(bytes) => {
                                space.content_write(&mut stream, &bytes).await?
                            }
                        }
                    }
                    let blocks = space.content_finish(stream).await?;
                    space
                        .put_file(&path, blocks.clone(), mode, now_ms())
                        .await?;
                    let pin = space.pin(&blocks);
                    Ok::<_, SpaceError>((blocks, pin))
                });
                self.state().handles.release_content(fh);
                let ok = match result {
                    Ok((blocks, pin)) => {
                        staging.committed(blocks);
                        staging.hold(pin);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                *body = Body::Staging {
                    staging,
                    dirty: ok.is_err(),
                };
                ok.map_err(|e| errno(&e))?;
            }
        }
        Ok(())
    }

    /// Open `ino`; writers of a truncated file stream when no other file is streaming.
    /// The handle is in the table, its body locked, before it claims the content feed: a
    /// committer that finds the claim held waits for the body and then finds the stream
    /// (never a claim without a handle, which it would take for a dead one).
    pub(super) fn open_handle(&self, ino: u64, write: bool, truncate: bool) -> Result<u64, Errno> {
        let fh = {
            let mut st = self.state();
            let fh = st.handles.reserve();
            st.handles.insert(fh, Handle::new(ino, Body::Clean));
            fh
        };
        if !(write && truncate) {
            return Ok(fh);
        }
        let h = self.handle(fh)?;
        let mut body = h.body();
        let claimed = self.state().handles.claim_content(fh).is_ok();
        *body = if claimed {
            let (stream, key) = self.rt.block_on(async {
                let mut s = self.space.lock().await;
                (s.begin_content(), s.block_key())
            });
            Body::Streaming(Box::new(BackgroundStream::start(
                &self.rt,
                self.space.clone(),
                stream,
                key,
            )))
        } else {
            match self.new_staging(fh, FileBlocks::default(), None) {
                Ok(staging) => Body::Staging {
                    staging,
                    dirty: true,
                },
                Err(e) => {
                    drop(body);
                    self.state().handles.remove(fh);
                    return Err(e);
                }
            }
        };
        Ok(fh)
    }
}
