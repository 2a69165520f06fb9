//! Hypercore storage on plain files with durability at commit points.
//!
//! `random-access-disk` syncs after every write (~1.5 MB/s with small blocks). Here a
//! feed's four files (`data`, `tree`, `bitfield`, `oplog`) share a [`CommitGroup`]:
//! - `data` and `tree` writes go to the page cache;
//! - `bitfield` and `oplog` writes are held in memory (hypercore reads them only when it
//!   opens);
//! - [`CommitGroup::commit`] syncs `data` and `tree`, then writes the held bitfield changes
//!   and syncs them, then writes the held oplog changes and syncs the oplog.
//!
//! - deletions of `data` (blocks cleared) are held too, and done after the bitfield that no
//!   longer marks those blocks is durable: a crash never leaves a block marked present with
//!   its data gone.
//!
//! So the oplog on disk (what hypercore replays on open) only ever describes data that is
//! already durable, and a crash, even a power loss, reopens the feed at its last commit.
//! Neither does the bitfield mark a block whose data and tree nodes are not durable: a
//! process killed while hypercore writes its tree and bitfield (which survive in the page
//! cache) would otherwise leave blocks marked present without their tree nodes.
//! A feed operation is acknowledged only after its commit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hypercore::{Storage, StorageTraits, Store};
use random_access_storage::{RandomAccess, RandomAccessError};

/// The files of one feed, which of them have unsynced writes, and the bitfield and oplog
/// changes not yet written.
#[derive(Debug, Default)]
pub struct CommitGroup {
    files: Mutex<Vec<(Store, Arc<File>, bool)>>,
    bitfield: Mutex<Vec<Change>>,
    oplog: Mutex<Vec<Change>>,
    /// Data ranges to free (offset, length; `None`: truncate at offset) after the next
    /// bitfield commit.
    data_deletes: Mutex<Vec<(u64, Option<u64>)>>,
}

/// A change held until the next commit.
#[derive(Debug)]
enum Change {
    Write(u64, Vec<u8>),
    Truncate(u64),
}

/// Whether writes to `store` are held until the next commit.
fn held(store: &Store) -> bool {
    matches!(store, Store::Bitfield | Store::Oplog)
}

impl CommitGroup {
    fn register(&self, store: Store, file: Arc<File>) {
        self.files
            .lock()
            .expect("commit group lock")
            .push((store, file, false));
    }

    fn mark_dirty(&self, store: &Store) {
        for (s, _, dirty) in self.files.lock().expect("commit group lock").iter_mut() {
            if s == store {
                *dirty = true;
            }
        }
    }

    fn file(&self, store: &Store) -> Option<Arc<File>> {
        let files = self.files.lock().expect("commit group lock");
        files
            .iter()
            .find(|(s, _, _)| s == store)
            .map(|(_, f, _)| f.clone())
    }

    fn held_changes(&self, store: &Store) -> &Mutex<Vec<Change>> {
        match store {
            Store::Bitfield => &self.bitfield,
            _ => &self.oplog,
        }
    }

    fn hold(&self, store: &Store, change: Change) {
        self.held_changes(store)
            .lock()
            .expect("held changes lock")
            .push(change);
    }

    /// Write the held changes of `store` (without syncing them); whether there were any.
    fn write_held(&self, store: &Store) -> std::io::Result<bool> {
        let changes: Vec<Change> =
            std::mem::take(&mut *self.held_changes(store).lock().expect("held changes lock"));
        if changes.is_empty() {
            return Ok(false);
        }
        let file = self
            .file(store)
            .expect("a file is registered before it is written");
        for change in changes {
            match change {
                Change::Write(offset, data) => file.write_all_at(&data, offset)?,
                Change::Truncate(len) => file.set_len(len)?,
            }
        }
        Ok(true)
    }

    /// Write and sync the held changes of `store`.
    fn commit_held(&self, store: &Store) -> std::io::Result<()> {
        if self.write_held(store)?
            && let Some(f) = self.file(store)
        {
            f.sync_data()?;
        }
        Ok(())
    }

    /// Make every write so far durable: the data and tree first, then the bitfield that
    /// marks blocks present, then the oplog that describes them.
    pub fn commit(&self) -> std::io::Result<()> {
        {
            let mut files = self.files.lock().expect("commit group lock");
            for (_, file, dirty) in files.iter_mut() {
                if *dirty {
                    file.sync_data()?;
                    *dirty = false;
                }
            }
        }
        self.commit_held(&Store::Bitfield)?;
        self.commit_held(&Store::Oplog)?;
        // Only now that no durable bitfield marks them are cleared blocks freed.
        let deletes = std::mem::take(&mut *self.data_deletes.lock().expect("deletes lock"));
        if let (false, Some(data)) = (deletes.is_empty(), self.file(&Store::Data)) {
            for (offset, length) in deletes {
                match length {
                    Some(length) => punch(&data, offset, length)?,
                    None => data.set_len(offset)?,
                }
            }
            data.sync_data()?;
        }
        Ok(())
    }
}

/// One file of a feed.
#[derive(Debug)]
struct FeedFile {
    store: Store,
    file: Arc<File>,
    len: u64,
    group: Arc<CommitGroup>,
    /// The run of data written since writeback was last started: (first offset, end).
    unstarted: Option<(u64, u64)>,
}

/// Data written to a feed before the kernel is asked to start writing it back.
const WRITEBACK_STEP: u64 = 8 << 20;

impl FeedFile {
    /// Note a data write. Once [`WRITEBACK_STEP`] bytes have been written in one run, start
    /// their writeback (without waiting for it), so a long stream reaches the disk while it
    /// is written and its commit has only the tail left to sync. (The advice also lets
    /// clean pages of the run leave the page cache; dirty pages are never dropped.)
    fn note_data_write(&mut self, offset: u64, end: u64) {
        let (from, to) = match self.unstarted {
            Some((from, to)) if to == offset => (from, end),
            _ => (offset, end),
        };
        if to - from < WRITEBACK_STEP {
            self.unstarted = Some((from, to));
            return;
        }
        self.unstarted = None;
        let _ = rustix::fs::fadvise(
            &*self.file,
            from,
            std::num::NonZeroU64::new(to - from),
            rustix::fs::Advice::DontNeed,
        );
    }
}

/// Free `length` bytes at `offset` but keep the file's size (the range reads back as zeros).
fn punch(file: &File, offset: u64, length: u64) -> std::io::Result<()> {
    rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        offset,
        length,
    )
    .map_err(std::io::Error::from)
}

fn io_err(e: std::io::Error) -> RandomAccessError {
    RandomAccessError::IO {
        return_code: None,
        context: None,
        source: e,
    }
}

#[async_trait::async_trait]
impl RandomAccess for FeedFile {
    async fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), RandomAccessError> {
        if held(&self.store) {
            self.group
                .hold(&self.store, Change::Write(offset, data.to_vec()));
            self.len = self.len.max(offset + data.len() as u64);
            return Ok(());
        }
        self.file.write_all_at(data, offset).map_err(io_err)?;
        let end = offset + data.len() as u64;
        self.len = self.len.max(end);
        self.group.mark_dirty(&self.store);
        if self.store == Store::Data {
            self.note_data_write(offset, end);
        }
        Ok(())
    }

    async fn read(&mut self, offset: u64, length: u64) -> Result<Vec<u8>, RandomAccessError> {
        let end = offset.checked_add(length);
        if end.is_none_or(|e| e > self.len) {
            return Err(RandomAccessError::OutOfBounds {
                offset,
                end,
                length: self.len,
            });
        }
        if held(&self.store) {
            // Reads see the held changes.
            self.group.write_held(&self.store).map_err(io_err)?;
        }
        let mut buf = vec![0; length as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(io_err)?;
        Ok(buf)
    }

    async fn del(&mut self, offset: u64, length: u64) -> Result<(), RandomAccessError> {
        if offset > self.len {
            return Err(RandomAccessError::OutOfBounds {
                offset,
                end: None,
                length: self.len,
            });
        }
        if length == 0 {
            return Ok(());
        }
        if self.store == Store::Data {
            // Held until the bitfield that stops marking these blocks is durable.
            let end = offset.saturating_add(length) >= self.len;
            self.group
                .data_deletes
                .lock()
                .expect("deletes lock")
                .push((offset, (!end).then_some(length)));
            return Ok(());
        }
        if offset.saturating_add(length) >= self.len {
            return self.truncate(offset).await;
        }
        if held(&self.store) {
            // In order with the held writes before it.
            self.group.write_held(&self.store).map_err(io_err)?;
        }
        punch(&self.file, offset, length).map_err(io_err)?;
        self.group.mark_dirty(&self.store);
        Ok(())
    }

    async fn truncate(&mut self, length: u64) -> Result<(), RandomAccessError> {
        if held(&self.store) {
            self.group.hold(&self.store, Change::Truncate(length));
            self.len = length;
            return Ok(());
        }
        self.file.set_len(length).map_err(io_err)?;
        self.len = length;
        self.group.mark_dirty(&self.store);
        Ok(())
    }

    async fn len(&mut self) -> Result<u64, RandomAccessError> {
        Ok(self.len)
    }

    async fn is_empty(&mut self) -> Result<bool, RandomAccessError> {
        Ok(self.len == 0)
    }

    async fn sync_all(&mut self) -> Result<(), RandomAccessError> {
        self.group.commit().map_err(io_err)
    }
}

fn file_name(store: &Store) -> &'static str {
    match store {
        Store::Tree => "tree",
        Store::Data => "data",
        Store::Bitfield => "bitfield",
        Store::Oplog => "oplog",
    }
}

/// Whether a feed directory holds a feed (a non-empty oplog).
pub fn exists(dir: &Path) -> bool {
    std::fs::metadata(dir.join("oplog")).is_ok_and(|m| m.len() > 0)
}

/// Open (creating as needed, mode 0600 in a 0700 directory) the storage of the feed in `dir`.
pub async fn open(dir: &Path) -> Result<(Storage, Arc<CommitGroup>), hypercore::HypercoreError> {
    use futures::FutureExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| hypercore::HypercoreError::IO {
            context: Some(format!("cannot create {}", dir.display())),
            source: e,
        })?;
    let group = Arc::new(CommitGroup::default());
    let dir: PathBuf = dir.to_path_buf();
    let g = group.clone();
    let create = move |store: Store| {
        let path = dir.join(file_name(&store));
        let group = g.clone();
        async move {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io_err)?;
            let len = file.metadata().map_err(io_err)?.len();
            let file = Arc::new(file);
            group.register(store.clone(), file.clone());
            Ok(Box::new(FeedFile {
                store,
                file,
                len,
                group,
                unstarted: None,
            }) as Box<dyn StorageTraits + Send>)
        }
        .boxed()
    };
    let storage = Storage::open(create, false).await?;
    Ok((storage, group))
}

use std::os::unix::fs::DirBuilderExt;
