//! A space on disk: this device's log and content feeds, other members' feeds, the
//! encrypted messages and file contents in them, and the merged drive they make.

pub mod blocks;
pub mod content;
pub mod dedup;
mod epoch_file;
pub mod epochs;
pub mod feeds;
pub mod flush;
pub mod history;
pub mod index;
pub mod layout;
pub mod message;
mod pending;
pub mod pins;
mod reclaim;
mod rotation;
pub use cobox_keys::roster;
mod files;
mod tree;
pub mod usage;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use cobox_keys::block::{BlockError, Keyring};
use cobox_keys::{Secret32, SigningKeyPair, SpaceKeys};

use blocks::{BlockAt, FileBlocks};
use content::{ContentError, ContentStream};
use dedup::BlockHashes;
use feeds::Feeds;
use layout::Layout;
use message::{Decoded, Message};

use crate::feed::FeedError;

pub use tree::{Node, NodeKind};

/// Why a space operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("space index: {0}")]
    Index(String),
    #[error("space {0} has no encryption key here: this device only seeds it")]
    NotAMember(String),
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0} exists")]
    Exists(String),
    #[error("directory {0} is not empty")]
    NotEmpty(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("{0} is a directory")]
    IsADirectory(String),
    #[error("invalid path {0:?}")]
    InvalidName(String),
    #[error("{0} is read-only: earlier versions are put back with `coboxctl restore`")]
    ReadOnly(String),
    #[error("the content writer stopped: {0}")]
    WriterStopped(String),
}

/// Log entries applied between checkpoints of the drive index.
const CHECKPOINT_EVERY: u64 = 2_000;

/// When entries appended to this device's log become durable and are shown to peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the append returns.
    Now,
    /// With the next durable append or checkpoint (a crash before it drops them, and
    /// nothing that depends on them was made durable).
    Later,
}

/// Counters of what reading the logs found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// Entries read and applied since the space was opened.
    pub read: u64,
    /// Entries of a newer format or type, skipped.
    pub unknown: u64,
    /// Entries that did not decrypt or decode, skipped.
    pub invalid: u64,
    /// Whether a log waits at an entry sealed under an epoch whose key is not held.
    pub waiting: bool,
}

/// An open space this device is a member of.
pub struct Space {
    layout: Layout,
    keys: SpaceKeys,
    /// Every key epoch's key held (new blocks are sealed under the newest): replaced whole
    /// when a key arrives, so readers holding the old one are not disturbed.
    block: Arc<Keyring>,
    epochs: epochs::Epochs,
    epoch_file: epoch_file::EpochFile,
    identity: SigningKeyPair,
    device_name: String,
    feeds: Feeds,
    /// Log feeds of the space whose entries are merged into the drive.
    logs: BTreeMap<[u8; 32], ()>,
    /// The drive and the files waiting for the next commit, shared with the mount.
    view: view::SharedView,
    index: index::Index,
    stats: LogStats,
    /// Entries applied since the last checkpoint.
    unsaved: u64,
    /// Blocks in this device's content feed, committed or not (this space is its only
    /// writer).
    content_len: u64,
    /// The blocks of this device's content feed by keyed hash, to store each only once.
    hashes: Arc<BlockHashes>,
    /// Blocks open files and files being stored refer to: never cleared.
    pins: Arc<pins::Pins>,
    /// When the last reclaim pass ran, and how many entries had been read then.
    reclaimed: Option<(std::time::Instant, u64)>,
    /// How soon a change made through the mount is durable (group commit).
    commit: flush::CommitInterval,
    /// Since when changes wait for the next commit, if any do.
    dirty_since: Option<std::time::Instant>,
    /// The newest health report read from each log, by log key.
    health: HealthReports,
    /// The device names the writers gave, by log key.
    names: DeviceNames,
    /// How far each log waiting for a key was searched for epoch messages and grants.
    scanned: BTreeMap<[u8; 32], u64>,
    /// Each log waiting for a key: its length and the keys held when it stopped.
    stalled: BTreeMap<[u8; 32], (u64, usize)>,
}

/// The device name each writer of a space gave (its `About` entry), by log key.
pub type DeviceNames = Arc<std::sync::Mutex<BTreeMap<[u8; 32], String>>>;

/// Health reports of a space's members, by log key: (when, what the writer saw).
pub type HealthReports = Arc<std::sync::Mutex<BTreeMap<[u8; 32], (u64, Vec<message::Seen>)>>>;

impl std::fmt::Debug for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("name", &self.keys.name)
            .field("address", &self.keys.address)
            .finish_non_exhaustive()
    }
}

pub use cobox_keys::roster::member_statement;

impl Space {
    /// Open the space `keys` of this device (parent key `parent`) under `data_dir`,
    /// creating this device's feeds on first open.
    pub async fn open(
        data_dir: &Path,
        parent: &Secret32,
        keys: SpaceKeys,
        device_name: &str,
    ) -> Result<Space, SpaceError> {
        let encryption_key = keys
            .encryption_key
            .clone()
            .ok_or_else(|| SpaceError::NotAMember(keys.name.clone()))?;
        let layout = Layout::new(data_dir, &keys.address);
        let feeds = Feeds::open(layout.clone(), parent, &keys.address).await?;
        let index = index::Index::open(&layout.index(), &keys.address.0)
            .map_err(|e| SpaceError::Index(e.to_string()))?;
        let (content_len, cleared) = {
            let feed = feeds.content().lock().await;
            (feed.len(), feed.cleared().map(|c| c.ranges.clone()))
        };
        let hashes = BlockHashes::open(
            &index.dir().join(index::BLOCKS),
            &cobox_keys::block::hash_key(&encryption_key),
            content_len,
            cleared.as_ref(),
        )
        .map_err(|e| SpaceError::Index(format!("block hashes: {e}")))?;
        let identity = cobox_keys::derive::identity(parent);
        let epoch_file = epoch_file::EpochFile::new(index.dir());
        let mut epochs = epochs::Epochs::new(keys.address.0, &encryption_key);
        let records = epoch_file
            .load()
            .map_err(|e| SpaceError::Index(format!("epochs: {e}")))?;
        for (kind, bytes) in records {
            learn_epoch_record(&mut epochs, &identity, kind, &bytes);
        }
        let mut space = Space {
            block: Arc::new(epochs.keyring().clone()),
            epochs,
            epoch_file,
            identity,
            device_name: device_name.to_string(),
            keys,
            layout,
            feeds,
            logs: BTreeMap::new(),
            view: view::SharedView::default(),
            index,
            stats: LogStats::default(),
            unsaved: 0,
            content_len,
            hashes: Arc::new(hashes),
            pins: Arc::default(),
            reclaimed: None,
            commit: flush::CommitInterval::default(),
            dirty_since: None,
            health: HealthReports::default(),
            names: DeviceNames::default(),
            scanned: BTreeMap::new(),
            stalled: BTreeMap::new(),
        };
        let own_log = space.feeds.log_key;
        space.logs.insert(own_log, ());
        for key in space
            .index
            .logs()
            .map_err(|e| SpaceError::Index(e.to_string()))?
        {
            space.logs.insert(key, ());
        }
        if space.feeds.log().held().length == 0 {
            let (log, content) = (space.feeds.log_key, space.feeds.content_key);
            let signature =
                space
                    .identity
                    .sign(&member_statement(&space.keys.address.0, &log, &content));
            let about = Message::About {
                device_name: space.device_name.clone(),
            };
            let member = Message::Member {
                identity: space.identity.public.0,
                log,
                content,
                signature,
            };
            space.append(&[about, member]).await?;
        }
        space.view.write().tree = space.index.load_tree().unwrap_or_default();
        space.refresh().await?;
        Ok(space)
    }

    pub fn name(&self) -> &str {
        &self.keys.name
    }

    pub fn keys(&self) -> &SpaceKeys {
        &self.keys
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// This device's log feed key.
    pub fn log_key(&self) -> [u8; 32] {
        self.feeds.log_key
    }

    /// Every log of the space known here (this device's among them), in key order.
    pub fn log_keys(&self) -> Vec<[u8; 32]> {
        self.logs.keys().copied().collect()
    }

    /// How many entries of log `key` are here (this device's own: written, durable or not).
    pub async fn log_len(&mut self, key: &[u8; 32]) -> Result<u64, SpaceError> {
        Ok(match self.feeds.get(key).await? {
            Some(f) if *key == self.feeds.log_key => f.lock().await.len(),
            Some(f) => f.held().length,
            None => 0,
        })
    }

    pub fn content_key(&self) -> [u8; 32] {
        self.feeds.content_key
    }

    /// The feeds of this space on this device.
    pub fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    pub fn feeds_mut(&mut self) -> &mut Feeds {
        &mut self.feeds
    }

    /// Merge the log feed `key` (another member's) into this space's drive from now on.
    pub async fn add_log(&mut self, key: [u8; 32]) -> Result<(), SpaceError> {
        if self.logs.insert(key, ()).is_none() {
            self.index
                .add_log(&key)
                .map_err(|e| SpaceError::Index(e.to_string()))?;
        }
        self.refresh().await
    }

    /// Seal and append messages to this device's log (durable on return).
    pub async fn append(&mut self, messages: &[Message]) -> Result<u64, SpaceError> {
        self.append_to_log(messages, Durability::Now).await
    }

    /// Seal and append messages to this device's log; with [`Durability::Later`] they are
    /// neither synced nor shown to peers until the next durable append or checkpoint.
    async fn append_to_log(
        &mut self,
        messages: &[Message],
        durability: Durability,
    ) -> Result<u64, SpaceError> {
        if durability == Durability::Now {
            // What the log will refer to is durable before the log is.
            self.sync_content().await?;
        } else {
            self.dirtied();
        }
        let key = self.feeds.log_key;
        let log = self.feeds.log().clone();
        let mut feed = log.lock().await;
        let start = feed.len();
        let sealed: Vec<Vec<u8>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (at, plain) = (start + i as u64, m.encode());
                match m {
                    Message::Epoch(_) | Message::Grant(_) => {
                        self.block.seal_first(&key, at, &plain)
                    }
                    _ => self.block.seal(&key, at, &plain),
                }
            })
            .collect();
        match durability {
            Durability::Now => {
                let length = feed.append_batch(&sealed).await?;
                log.publish(&feed);
                Ok(length)
            }
            Durability::Later => Ok(feed.append_uncommitted(&sealed).await?),
        }
    }

    /// The members' health reports read so far (shared: it fills as logs are read).
    /// The device names the writers gave, by log key.
    pub fn names(&self) -> DeviceNames {
        self.names.clone()
    }

    pub fn health(&self) -> HealthReports {
        self.health.clone()
    }

    /// Entry `index` of log `key`: `None` if this device does not have it.
    pub async fn log_entry(
        &mut self,
        key: &[u8; 32],
        index: u64,
    ) -> Result<Option<Result<Decoded, EntryError>>, SpaceError> {
        self.open_entry(key, index).await
    }

    /// Entry `index` of log `key`, opened: `None` if this device does not have it.
    async fn open_entry(
        &mut self,
        key: &[u8; 32],
        index: u64,
    ) -> Result<Option<Result<Decoded, EntryError>>, SpaceError> {
        let Some(feed) = self.feeds.get(key).await? else {
            return Ok(None);
        };
        let Some(sealed) = feed.lock().await.get(index).await? else {
            return Ok(None);
        };
        let entry = match self.block.open(key, index, &sealed) {
            Ok(plain) => Message::decode(&plain).map_err(|e| EntryError::Invalid(e.to_string())),
            Err(BlockError::NoKey(epoch)) => Err(EntryError::NoKey(epoch)),
            Err(e) => Err(EntryError::Invalid(e.to_string())),
        };
        Ok(Some(entry))
    }

    /// Apply every log entry not applied yet, and checkpoint the drive index.
    pub async fn refresh(&mut self) -> Result<(), SpaceError> {
        // A key learnt from one log can open entries another log waits on: read again
        // until a pass learns no key.
        loop {
            let held = self.epochs.keyring().newest_id();
            let keys = self.keys_held();
            self.stats.waiting = false;
            self.refresh_once().await?;
            if !self.stats.waiting
                || (keys == self.keys_held() && held == self.epochs.keyring().newest_id())
            {
                return Ok(());
            }
        }
    }

    fn keys_held(&self) -> usize {
        self.epochs.held_after_first().len()
    }

    async fn refresh_once(&mut self) -> Result<(), SpaceError> {
        let logs: Vec<[u8; 32]> = self.logs.keys().copied().collect();
        let waiting = !self.view.read().pending.is_empty();
        if waiting && self.others_wrote(&logs).await? {
            // What was written here did not see their entries: recorded with the clock
            // it was written under.
            self.record_pending().await?;
        }
        for key in logs {
            let applied = self.view.read().tree.applied(&key);
            // This device's own entries not yet durable apply too (see `Durability::Later`).
            let len = match self.feeds.get(&key).await? {
                Some(f) if key == self.feeds.log_key => f.lock().await.len(),
                Some(f) => f.held().length,
                None => continue,
            };
            self.stalled.remove(&key);
            for i in applied..len {
                let Some(entry) = self.open_entry(&key, i).await? else {
                    break;
                };
                match entry {
                    Err(EntryError::NoKey(epoch)) => {
                        // Written under an epoch whose key has not reached this device
                        // (it is in another log, or a grant is still to come): the log
                        // waits here, to be read on when the key arrives.
                        self.stats.waiting = true;
                        self.stalled.insert(key, (len, self.keys_held()));
                        tracing::debug!(space = %self.keys.name, index = i, epoch, "a log entry waits for its epoch's key");
                        // A grant further on in this log may be what brings the key.
                        self.scan_for_keys(&key, i + 1, len).await?;
                        break;
                    }
                    Ok(Decoded::Known(Message::Epoch(bytes))) => {
                        self.take_epoch_record(epoch_file::Kind::Epoch, &bytes)?;
                        self.view.write().tree.skip(&key, i);
                    }
                    Ok(Decoded::Known(Message::Grant(bytes))) => {
                        self.take_epoch_record(epoch_file::Kind::Grant, &bytes)?;
                        self.view.write().tree.skip(&key, i);
                    }
                    Ok(Decoded::Known(Message::Drive(op))) => {
                        let applied = self.view.write().tree.apply_encoded(&key, i, &op);
                        if !applied {
                            self.stats.invalid += 1;
                        }
                    }
                    Ok(Decoded::Known(Message::Health { at, seen })) => {
                        let mut reports = self.health.lock().unwrap_or_else(|e| e.into_inner());
                        let newer = reports.get(&key).is_none_or(|(t, _)| *t <= at);
                        if newer {
                            reports.insert(key, (at, seen));
                        }
                        drop(reports);
                        self.view.write().tree.skip(&key, i);
                    }
                    Ok(Decoded::Known(Message::About { device_name })) => {
                        self.names
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, device_name);
                        self.view.write().tree.skip(&key, i);
                    }
                    Ok(Decoded::Known(_)) => self.view.write().tree.skip(&key, i),
                    Ok(Decoded::Unknown { .. }) => {
                        self.stats.unknown += 1;
                        self.view.write().tree.skip(&key, i);
                    }
                    Err(EntryError::Invalid(e)) => {
                        tracing::warn!(space = %self.keys.name, index = i, error = %e, "skipping an unreadable log entry");
                        self.stats.invalid += 1;
                        self.view.write().tree.skip(&key, i);
                    }
                }
                self.unsaved += 1;
                self.stats.read += 1;
            }
        }
        if self.unsaved >= CHECKPOINT_EVERY {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Whether another writer's log has entries not applied yet that a read could apply
    /// now. A log waiting for an epoch's key counts only once it grew or a key arrived:
    /// until then its entries stay unread, so what waits here to be recorded cannot be
    /// taken to have seen them, and the commit keeps its group.
    async fn others_wrote(&mut self, logs: &[[u8; 32]]) -> Result<bool, SpaceError> {
        let own = self.feeds.log_key;
        let keys = self.keys_held();
        for key in logs.iter().filter(|k| **k != own) {
            let applied = self.view.read().tree.applied(key);
            let Some(f) = self.feeds.get(key).await? else {
                continue;
            };
            let length = f.held().length;
            let waits = self
                .stalled
                .get(key)
                .is_some_and(|&(at, held)| length <= at && held == keys);
            if length > applied && !waits {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record the files waiting in [`pending`] (as few operations as their paths allow) and
    /// apply them, before anything that could depend on them.
    pub(super) async fn record_pending(&mut self) -> Result<(), SpaceError> {
        let mut puts = self.view.read().pending.all();
        while !puts.is_empty() {
            let ctx = self.next_op_context().await;
            let (key, seq) = (ctx.feed, ctx.seq);
            let (op, taken) = self.view.read().tree.puts_op(ctx, &mut puts);
            self.append_to_log(&[Message::Drive(op.clone())], Durability::Later)
                .await?;
            // Applied and no longer waiting in one step: the mount never misses the files.
            let mut view = self.view.write();
            view.tree.apply_encoded(&key, seq, &op);
            for path in taken {
                view.pending.remove(&path);
            }
            drop(view);
            self.unsaved += 1;
            self.stats.read += 1;
        }
        Ok(())
    }

    /// Save the drive to the index, so the next open replays only later entries. This
    /// device's changes are made durable first: the index never counts an entry a crash
    /// could take back.
    pub async fn checkpoint(&mut self) -> Result<(), SpaceError> {
        self.sync().await?;
        if self.unsaved > 0 {
            self.index
                .save_tree(&self.view.read().tree)
                .map_err(|e| SpaceError::Index(e.to_string()))?;
            self.unsaved = 0;
        }
        Ok(())
    }

    /// The file or directory at `path` ("" is the root); see [`view::View::node`].
    pub fn node(&self, path: &str) -> Option<Node> {
        self.view.read().node(path)
    }

    /// The entries of directory `dir`, sorted by name; see [`view::View::children`].
    pub fn children(&self, dir: &str) -> Option<Vec<(String, Node)>> {
        self.view.read().children(dir)
    }

    /// The conflict copies the space shows, `(copy, origin)`, at most `limit`; see
    /// [`cobox_drive::Drive::conflict_copies`].
    pub fn conflict_copies(&self, limit: usize) -> Vec<(String, String)> {
        self.view.read().tree.drive().conflict_copies(limit)
    }

    /// The files the space shows whose content is not all here yet, in path order, at most
    /// `limit` of them, and how many there are in all: what a reader would wait for.
    pub async fn still_to_fetch(
        &mut self,
        limit: usize,
    ) -> Result<cobox_schema::api::ToFetch, SpaceError> {
        // Each content feed named once: held here at all, and how far without a gap.
        let named: BTreeSet<[u8; 32]> = {
            let view = self.view.read();
            view.tree
                .drive()
                .file_versions()
                .filter(|(_, _, current)| *current)
                .flat_map(|(_, meta, _)| meta.runs.iter().map(|r| r.feed))
                .collect()
        };
        let mut feeds = BTreeMap::new();
        for key in named {
            if let Some(f) = self.feeds.get(&key).await? {
                let whole = f.held().contiguous;
                feeds.insert(key, (f, whole));
            }
        }
        // Only files with a block past that are copied out and looked at block by block:
        // a space that holds everything costs one pass over its files.
        let gapped = |r: &cobox_drive::Run| {
            feeds
                .get(&r.feed)
                .is_none_or(|(_, whole)| r.start.saturating_add(r.count) > *whole)
        };
        let files: Vec<(String, u64, Vec<cobox_drive::Run>)> = self
            .view
            .read()
            .tree
            .drive()
            .file_versions()
            .filter(|(_, meta, current)| *current && meta.runs.iter().any(gapped))
            .map(|(path, meta, _)| (path.to_string(), meta.size, meta.runs.clone()))
            .collect();
        let mut out = cobox_schema::api::ToFetch::default();
        for (path, size, runs) in files {
            let blocks: u64 = runs.iter().map(|r| r.count).sum();
            let mut missing = 0;
            for r in &runs {
                let Some((feed, whole)) = feeds.get(&r.feed) else {
                    missing += r.count;
                    continue;
                };
                let end = r.start.saturating_add(r.count);
                if end <= *whole {
                    continue;
                }
                let f = feed.lock().await;
                missing += (r.start.max(*whole)..end).filter(|&i| !f.has(i)).count() as u64;
            }
            if missing == 0 {
                continue;
            }
            out.total += 1;
            if out.files.len() < limit {
                out.files.push(cobox_schema::api::FileToFetch {
                    path,
                    size,
                    blocks,
                    missing,
                });
            }
        }
        Ok(out)
    }

    /// What the space shows, readable without the space's lock.
    pub fn view(&self) -> view::SharedView {
        self.view.clone()
    }

    /// Start storing a file's content (one at a time per space).
    pub fn begin_content(&mut self) -> ContentStream {
        ContentStream::new(
            self.feeds.content_key,
            self.content_len,
            self.hashes.clone(),
            self.pins.pin([]),
        )
    }

    /// Keep the blocks of `blocks` from being cleared until the pin is dropped (a file
    /// open for editing refers to them). Take it under the same lock that read them.
    pub fn pin(&self, blocks: &FileBlocks) -> pins::Pin {
        self.pins.pin(blocks.runs.iter().copied())
    }

    pub async fn content_write(
        &mut self,
        stream: &mut ContentStream,
        data: &[u8],
    ) -> Result<(), SpaceError> {
        let content = self.feeds.content().clone();
        let mut feed = content.lock().await;
        let written = stream.write(&mut feed, &self.block, data).await;
        self.content_len = feed.len();
        Ok(written?)
    }

    /// Append blocks sealed outside the lock by [`ContentStream::seal`].
    pub async fn content_append_sealed(&mut self, blocks: &[Vec<u8>]) -> Result<u64, SpaceError> {
        let content = self.feeds.content().clone();
        let mut feed = content.lock().await;
        let appended = content::append_sealed(&mut feed, blocks).await;
        self.content_len = feed.len();
        Ok(appended?)
    }

    /// Store the rest of a file's content: durable (and servable) on return, or with the
    /// space's next commit (see [`Space::durability`]).
    pub async fn content_finish(
        &mut self,
        stream: ContentStream,
    ) -> Result<FileBlocks, SpaceError> {
        let content = self.feeds.content().clone();
        let now = self.durability() == Durability::Now;
        let finished = {
            let mut feed = content.lock().await;
            let finished = stream.finish(&mut feed, &self.block, now).await;
            self.content_len = feed.len();
            if finished.is_ok() && now {
                content.publish(&feed);
            }
            finished
        };
        if finished.is_ok() && !now {
            self.dirtied();
        }
        Ok(finished?)
    }

    /// The keys that open this space's blocks, to decrypt outside the space's lock.
    pub fn block_key(&self) -> Arc<Keyring> {
        self.block.clone()
    }

    /// The content block stored at `at`, sealed; open it with [`Space::block_key`] and
    /// [`content::open_block`].
    pub async fn sealed_block(&mut self, at: BlockAt) -> Result<Vec<u8>, SpaceError> {
        let missing = || ContentError::Missing {
            feed: cobox_keys::secret::hex(&at.0),
            index: at.1,
        };
        let feed = self.feeds.get(&at.0).await?.ok_or_else(missing)?;
        let sealed = feed.lock().await.get(at.1).await?;
        Ok(sealed.ok_or_else(missing)?)
    }

    /// The content feed `key` as shared with peers, when this device has a copy of it.
    pub async fn content_feed(
        &mut self,
        key: &[u8; 32],
    ) -> Result<Option<Arc<crate::feed::SharedFeed>>, SpaceError> {
        Ok(self.feeds.get(key).await?)
    }

    /// The content block stored at `at`, decrypted.
    pub async fn read_block(&mut self, at: BlockAt) -> Result<Vec<u8>, SpaceError> {
        let sealed = self.sealed_block(at).await?;
        Ok(content::open_block(&self.block, at, &sealed)?)
    }

    /// Append a drive operation and apply it: durable on return, or within the commit
    /// interval (see [`Space::durability`]).
    async fn commit_op(&mut self, op: Vec<u8>) -> Result<(), SpaceError> {
        self.record_op(op, self.durability()).await
    }

    async fn record_op(&mut self, op: Vec<u8>, durability: Durability) -> Result<(), SpaceError> {
        self.append_to_log(&[Message::Drive(op)], durability)
            .await?;
        self.refresh().await
    }
}

/// Why a log entry was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// Sealed under an epoch whose key this device does not hold (yet).
    NoKey(u32),
    /// Damaged, forged or not a message: skipped.
    Invalid(String),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::NoKey(epoch) => write!(
                f,
                "sealed under key epoch {epoch}, whose key this device does not hold"
            ),
            EntryError::Invalid(e) => f.write_str(e),
        }
    }
}

/// Take in one epoch message or grant read from a log or the epoch file; what does not
/// decode or verify is ignored.
fn learn_epoch_record(
    epochs: &mut epochs::Epochs,
    me: &SigningKeyPair,
    kind: epoch_file::Kind,
    bytes: &[u8],
) -> epochs::Learnt {
    use cobox_keys::epoch::{Epoch, Grant};
    match kind {
        epoch_file::Kind::Epoch => Epoch::decode(bytes).map(|e| epochs.learn_epoch(&e, me)),
        epoch_file::Kind::Grant => Grant::decode(bytes).map(|g| epochs.learn_grant(&g, me)),
    }
    .unwrap_or(epochs::Learnt::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_of_unknown_types_and_damaged_entries_are_skipped_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = Secret32::from_bytes([4; 32]);
        let keys = SpaceKeys::generate("s");
        let mut s = Space::open(tmp.path(), &parent, keys.clone(), "dev")
            .await
            .unwrap();
        let key = s.feeds.log_key;
        let at = s.feeds.log().held().length;
        // A message type from a newer version, a garbage entry, then a real operation.
        let unknown = s.block.seal(&key, at, &[message::VERSION, 200, 1, 2, 3]);
        let garbage = vec![0u8; 60];
        s.feeds.log().append(&[unknown, garbage]).await.unwrap();
        s.mkdir("after", 0o755, 1).await.unwrap();
        assert_eq!(s.stats().unknown, 1);
        assert_eq!(s.stats().invalid, 1);
        assert!(
            s.node("after").is_some(),
            "entries after the skipped ones still apply"
        );
        drop(s);
        let s = Space::open(tmp.path(), &parent, keys, "dev").await.unwrap();
        assert!(s.node("after").is_some());
    }
}
