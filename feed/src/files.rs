//! The four files of a feed (`data`, `tree`, `bitfield`, `oplog`; 0600 in a 0700
//! directory) and the file operations a commit needs: positioned reads and writes, syncs,
//! truncation, freeing a range, and starting the writeback of long runs of data early.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

/// Data written to a feed in one run before the kernel is asked to start writing it back.
const WRITEBACK_STEP: u64 = 8 << 20;

/// The open files of one feed.
#[derive(Debug)]
pub struct Files {
    pub data: File,
    pub tree: File,
    pub bitfield: File,
    pub oplog: File,
    /// The run of data written since its writeback was last started: (start, end).
    unstarted: Option<(u64, u64)>,
}

fn open_file(dir: &Path, name: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(name))
}

impl Files {
    /// Open (creating as needed) the files of the feed in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Files> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Files {
            data: open_file(dir, "data")?,
            tree: open_file(dir, "tree")?,
            bitfield: open_file(dir, "bitfield")?,
            oplog: open_file(dir, "oplog")?,
            unstarted: None,
        })
    }

    /// Write block data at `offset`. Once [`WRITEBACK_STEP`] bytes were written in one run,
    /// their writeback is started without waiting for it, so a long stream reaches the disk
    /// while it is written and its commit has only the tail left to sync. (Dirty pages are
    /// never dropped; clean ones of the run may leave the page cache.)
    pub fn write_data(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.data.write_all_at(bytes, offset)?;
        let end = offset + bytes.len() as u64;
        let (from, to) = match self.unstarted {
            Some((from, to)) if to == offset => (from, end),
            _ => (offset, end),
        };
        if to - from < WRITEBACK_STEP {
            self.unstarted = Some((from, to));
        } else {
            self.unstarted = None;
            let _ = rustix::fs::fadvise(
                &self.data,
                from,
                std::num::NonZeroU64::new(to - from),
                rustix::fs::Advice::DontNeed,
            );
        }
        Ok(())
    }
}

/// The whole contents of `file`.
pub fn read_all(file: &File) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// `length` bytes at `offset`, or `None` where the file is shorter.
pub fn read_at(file: &File, offset: u64, length: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; length as usize];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Free `length` bytes at `offset`, keeping the file's size (the range reads back as zeros).
pub fn punch(file: &File, offset: u64, length: u64) -> std::io::Result<()> {
    rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        offset,
        length,
    )
    .map_err(std::io::Error::from)
}

/// Shorten `file` to `len` bytes when it is longer; whether it was.
pub fn cut(file: &File, len: u64) -> std::io::Result<bool> {
    if file.metadata()?.len() > len {
        file.set_len(len)?;
        return Ok(true);
    }
    Ok(false)
}
