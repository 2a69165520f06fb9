//! Open files of a mount.
//!
//! A file opened with `O_TRUNC` (or created) and written from start to end streams straight
//! into the space's content feed. Any other write, a read of a file being written, or a
//! truncate goes through a private staging file (`staging.rs`) holding what changed over
//! the committed version.
//! Either becomes a drive operation when the file is flushed, synced or closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::staging::Staging;
use super::stream::BackgroundStream;

/// One open file. Requests on it are serialized by its body's lock.
#[derive(Debug)]
pub struct Handle {
    pub ino: u64,
    /// The file was removed or replaced while open: its changes go nowhere.
    orphaned: AtomicBool,
    body: Mutex<Body>,
}

/// What an open file holds.
#[derive(Debug)]
pub enum Body {
    /// Read-only, or open for writing with nothing changed yet.
    Clean,
    /// New content streaming into the content feed, written from the start so far.
    Streaming(Box<BackgroundStream>),
    /// New content in a staging file; `dirty` until committed.
    Staging { staging: Staging, dirty: bool },
}

impl Handle {
    pub fn new(ino: u64, body: Body) -> Handle {
        Handle {
            ino,
            orphaned: AtomicBool::new(false),
            body: Mutex::new(body),
        }
    }

    pub fn body(&self) -> MutexGuard<'_, Body> {
        self.body.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn orphan(&self) {
        self.orphaned.store(true, Ordering::SeqCst);
    }

    pub fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::SeqCst)
    }
}

/// The open files of a mount, by file handle number.
#[derive(Debug, Default)]
pub struct Handles {
    open: HashMap<u64, Arc<Handle>>,
    next: u64,
    /// The handle appending to the space's content feed: a streaming writer, or a staging
    /// writer while it commits. One at a time, so each file's blocks are contiguous.
    pub content_owner: Option<u64>,
}

impl Handles {
    /// The number the next inserted handle gets.
    pub fn reserve(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn insert(&mut self, fh: u64, h: Handle) {
        self.open.insert(fh, Arc::new(h));
    }

    pub fn get(&self, fh: u64) -> Option<Arc<Handle>> {
        self.open.get(&fh).cloned()
    }

    pub fn remove(&mut self, fh: u64) -> Option<Arc<Handle>> {
        self.release_content(fh);
        self.open.remove(&fh)
    }

    /// Take the content feed for `fh` if nobody has it; otherwise say who has it.
    pub fn claim_content(&mut self, fh: u64) -> Result<(), u64> {
        match self.content_owner {
            None => {
                self.content_owner = Some(fh);
                Ok(())
            }
            Some(o) if o == fh => Ok(()),
            Some(o) => Err(o),
        }
    }

    pub fn release_content(&mut self, fh: u64) {
        if self.content_owner == Some(fh) {
            self.content_owner = None;
        }
    }

    /// Every open handle of `ino`.
    pub fn of(&self, ino: u64) -> Vec<Arc<Handle>> {
        self.open
            .values()
            .filter(|h| h.ino == ino)
            .cloned()
            .collect()
    }
}
