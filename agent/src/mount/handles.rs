//! Open files of a mount: reads stream from the drive; writes go to a private staging
//! file and become a drive operation when the file is flushed, synced or closed.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One open file.
#[derive(Debug)]
pub struct Handle {
    pub ino: u64,
    /// Set for handles opened for writing.
    pub staging: Option<Staging>,
}

/// The private copy a writer edits.
#[derive(Debug)]
pub struct Staging {
    pub path: PathBuf,
    pub file: File,
    /// Written since the last commit.
    pub dirty: bool,
    /// The file was unlinked while open: its changes go nowhere.
    pub orphaned: bool,
}

impl Staging {
    /// A new, empty staging file (mode 0600) in `dir`.
    pub fn create(dir: &Path, fh: u64) -> std::io::Result<Staging> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{fh}-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Staging {
            path,
            file,
            dirty: false,
            orphaned: false,
        })
    }

    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The open files of a mount, by file handle number.
#[derive(Debug, Default)]
pub struct Handles {
    open: HashMap<u64, Handle>,
    next: u64,
}

impl Handles {
    pub fn insert(&mut self, h: Handle) -> u64 {
        self.next += 1;
        self.open.insert(self.next, h);
        self.next
    }

    /// The number the next inserted handle gets.
    pub fn peek_next(&self) -> u64 {
        self.next + 1
    }

    pub fn get(&self, fh: u64) -> Option<&Handle> {
        self.open.get(&fh)
    }

    pub fn get_mut(&mut self, fh: u64) -> Option<&mut Handle> {
        self.open.get_mut(&fh)
    }

    pub fn remove(&mut self, fh: u64) -> Option<Handle> {
        self.open.remove(&fh)
    }

    /// The size a writer sees for `ino`, if one has it open with changes.
    pub fn staged_size(&self, ino: u64) -> Option<u64> {
        self.open
            .values()
            .filter(|h| h.ino == ino)
            .filter_map(|h| h.staging.as_ref())
            .find(|s| s.dirty)
            .map(Staging::size)
    }

    /// Mark every writer of `ino` as orphaned (the file was removed).
    pub fn orphan(&mut self, ino: u64) {
        for h in self.open.values_mut().filter(|h| h.ino == ino) {
            if let Some(s) = &mut h.staging {
                s.orphaned = true;
            }
        }
    }
}
