//! Hypercore storage on plain files with durability at commit points.
//!
//! `random-access-disk` syncs after every write (~1.5 MB/s with small blocks). Here a
//! feed's four files (`data`, `tree`, `bitfield`, `oplog`) share a [`CommitGroup`]:
//! - `data`, `tree` and `bitfield` writes go to the page cache;
//! - `oplog` writes are held in memory (hypercore reads the oplog only when it opens);
//! - [`CommitGroup::commit`] syncs the other files, then writes the held oplog changes in
//!   order and syncs the oplog.
//!
//! So the oplog on disk (what hypercore replays on open) only ever describes data that is
//! already durable, and a crash, even a power loss, reopens the feed at its last commit.
//! A feed operation is acknowledged only after its commit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hypercore::{Storage, StorageTraits, Store};
use random_access_storage::{RandomAccess, RandomAccessError};

/// The files of one feed, which of them have unsynced writes, and the oplog changes not
/// yet written.
#[derive(Debug, Default)]
pub struct CommitGroup {
    files: Mutex<Vec<(Store, Arc<File>, bool)>>,
    oplog: Mutex<Vec<OplogChange>>,
}

/// An oplog change held until the next commit.
#[derive(Debug)]
enum OplogChange {
    Write(u64, Vec<u8>),
    Truncate(u64),
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

    fn oplog_file(&self) -> Option<Arc<File>> {
        let files = self.files.lock().expect("commit group lock");
        files
            .iter()
            .find(|(s, _, _)| *s == Store::Oplog)
            .map(|(_, f, _)| f.clone())
    }

    /// Write the held oplog changes (without syncing them).
    fn write_oplog(&self) -> std::io::Result<bool> {
        let changes: Vec<OplogChange> =
            std::mem::take(&mut *self.oplog.lock().expect("oplog lock"));
        if changes.is_empty() {
            return Ok(false);
        }
        let file = self
            .oplog_file()
            .expect("the oplog is registered before it is written");
        for change in changes {
            match change {
                OplogChange::Write(offset, data) => file.write_all_at(&data, offset)?,
                OplogChange::Truncate(len) => file.set_len(len)?,
            }
        }
        Ok(true)
    }

    /// Make every write so far durable: the data first, then the oplog that describes it.
    pub fn commit(&self) -> std::io::Result<()> {
        {
            let mut files = self.files.lock().expect("commit group lock");
            for (store, file, dirty) in files.iter_mut() {
                if *dirty && *store != Store::Oplog {
                    file.sync_data()?;
                    *dirty = false;
                }
            }
        }
        if self.write_oplog()?
            && let Some(f) = self.oplog_file()
        {
            f.sync_data()?;
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
        if self.store == Store::Oplog {
            self.group
                .oplog
                .lock()
                .expect("oplog lock")
                .push(OplogChange::Write(offset, data.to_vec()));
            self.len = self.len.max(offset + data.len() as u64);
            return Ok(());
        }
        self.file.write_all_at(data, offset).map_err(io_err)?;
        self.len = self.len.max(offset + data.len() as u64);
        self.group.mark_dirty(&self.store);
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
        if self.store == Store::Oplog {
            // Reads of the oplog see the held changes.
            self.group.write_oplog().map_err(io_err)?;
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
        if offset.saturating_add(length) >= self.len {
            return self.truncate(offset).await;
        }
        // Free the blocks but keep the file size (the range reads back as zeros).
        rustix::fs::fallocate(
            &*self.file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            offset,
            length,
        )
        .map_err(|e| io_err(e.into()))?;
        self.group.mark_dirty(&self.store);
        Ok(())
    }

    async fn truncate(&mut self, length: u64) -> Result<(), RandomAccessError> {
        if self.store == Store::Oplog {
            self.group
                .oplog
                .lock()
                .expect("oplog lock")
                .push(OplogChange::Truncate(length));
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
            }) as Box<dyn StorageTraits + Send>)
        }
        .boxed()
    };
    let storage = Storage::open(create, false).await?;
    Ok((storage, group))
}

use std::os::unix::fs::DirBuilderExt;
