//! Writing files through a mount: streaming into the content feed, staging files, and
//! committing either as a drive operation.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use fuser::Errno;

use super::{SpaceFs, errno, now_ms};
use crate::mount::handles::{Body, Handle, Staging};
use crate::mount::stream::BackgroundStream;
use crate::space::SpaceError;
use crate::space::content::{BLOCK_SIZE, Extent};

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

    /// A staging file holding the first `size` bytes of `extent`'s content (zeros beyond).
    pub(super) fn staging_from(
        &self,
        fh: u64,
        extent: Option<Extent>,
        size: u64,
    ) -> Result<Staging, Errno> {
        let mut staging = Staging::create(&self.staging_dir, fh).map_err(|_| Errno::EIO)?;
        if let Some(extent) = extent {
            let needed = extent.blocks.min(size.div_ceil(BLOCK_SIZE as u64));
            self.rt.block_on(async {
                let mut space = self.space.lock().await;
                for i in 0..needed {
                    let block = space.read_block(&extent, i).await.map_err(|e| errno(&e))?;
                    staging.file.write_all(&block).map_err(|_| Errno::EIO)?;
                }
                Ok::<(), Errno>(())
            })?;
        }
        staging.file.set_len(size).map_err(|_| Errno::EIO)?;
        Ok(staging)
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
                let node = self
                    .rt
                    .block_on(async { self.space.lock().await.node(&path) })
                    .ok_or(Errno::ENOENT)?;
                let staging = self.staging_from(fh, node.extent, node.size)?;
                *body = Body::Staging {
                    staging,
                    dirty: false,
                };
            }
            Body::Streaming(stream) => {
                let size = stream.size();
                let extent = stream
                    .finish(&self.rt)
                    .and_then(|stream| {
                        self.rt.block_on(async {
                            self.space.lock().await.content_finish(stream).await
                        })
                    })
                    .map_err(|e| errno(&e))?;
                self.state().handles.release_content(fh);
                let staging = self.staging_from(fh, Some(extent), size)?;
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
                        let extent = space.content_finish(stream).await?;
                        space.put_file(&path, extent, mode, now_ms()).await
                    })
                });
                self.state().handles.release_content(fh);
                result.map_err(|e| errno(&e))?;
            }
            Body::Staging { staging, dirty } => {
                if !dirty {
                    *body = Body::Staging { staging, dirty };
                    return Ok(());
                }
                self.claim_content(fh)?;
                let mut file = staging.file.try_clone().map_err(|_| Errno::EIO)?;
                file.seek(SeekFrom::Start(0)).map_err(|_| Errno::EIO)?;
                let result = self.rt.block_on(async {
                    let mut space = self.space.lock().await;
                    let mode = space.node(&path).map_or(0o644, |n| n.mode);
                    let mut stream = space.begin_content();
                    let mut buf = vec![0u8; BLOCK_SIZE];
                    loop {
                        let n = file
                            .read(&mut buf)
                            .map_err(|_| SpaceError::NotFound(path.clone()))?;
                        if n == 0 {
                            break;
                        }
                        space.content_write(&mut stream, &buf[..n]).await?;
                    }
                    let extent = space.content_finish(stream).await?;
                    space.put_file(&path, extent, mode, now_ms()).await
                });
                self.state().handles.release_content(fh);
                let ok = result.is_ok();
                *body = Body::Staging {
                    staging,
                    dirty: !ok,
                };
                result.map_err(|e| errno(&e))?;
            }
        }
        Ok(())
    }

    /// Open `ino`; writers of a truncated file stream when no other file is streaming.
    pub(super) fn open_handle(&self, ino: u64, write: bool, truncate: bool) -> Result<u64, Errno> {
        let fh = self.state().handles.reserve();
        let body = if write && truncate {
            if self.state().handles.claim_content(fh).is_ok() {
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
                Body::Staging {
                    staging: Staging::create(&self.staging_dir, fh).map_err(|_| Errno::EIO)?,
                    dirty: true,
                }
            }
        } else {
            Body::Clean
        };
        self.state().handles.insert(fh, Handle::new(ino, body));
        Ok(fh)
    }
}
