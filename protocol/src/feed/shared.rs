//! A feed shared by its local users and every replication session that offers it, with
//! the durable length published to those sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, MutexGuard, watch};

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

use super::{Feed, FeedError};
use crate::replicate::traffic::Traffic;

/// How much of a feed this device holds durably.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Length of the verified tree.
    pub length: u64,
    /// Blocks held from the start without a gap.
    pub contiguous: u64,
    /// Bytes of the `length` blocks.
    pub bytes: u64,
    /// Blocks below it were evicted (a seed making room).
    pub floor: u64,
    /// Blocks from `floor` up to it are held (or cleared by the writer) without a gap.
    pub run: u64,
    /// The number of the writer's newest cleared-blocks statement kept (0: none).
    pub cleared: u64,
}

impl Held {
    pub fn of(feed: &Feed) -> Held {
        let contiguous = feed.contiguous_len();
        let floor = feed.floor();
        Held {
            length: feed.len(),
            contiguous,
            bytes: feed.byte_len(),
            floor,
            // Without an eviction the run from the floor is the contiguous prefix.
            run: if floor == 0 {
                contiguous
            } else {
                feed.run_end()
            },
            cleared: feed.cleared().map_or(0, |c| c.seq),
        }
    }
}

/// What a peer said it holds of a feed, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteCopy {
    /// The length it announced.
    pub length: u64,
    /// Blocks it holds from the start without a gap.
    pub contiguous: u64,
    /// When it last told us anything (or its channel ended).
    pub seen: SystemTime,
    /// Whether a channel with it is open.
    pub connected: bool,
    /// Requests to it waiting for their answers.
    pub asking: usize,
}

/// A feed behind a lock, with what of it is durable published to the sessions.
///
/// Sessions serve and announce only the published state, so a block the writer has not
/// yet made durable never leaves the device: write through [`SharedFeed::append`], or
/// call [`SharedFeed::publish`] after a commit made through [`SharedFeed::lock`].
#[derive(Debug)]
pub struct SharedFeed {
    key: [u8; 32],
    discovery_key: [u8; 32],
    feed: Mutex<Feed>,
    held: watch::Sender<Held>,
    /// What each peer (by name) holds of this feed, as it last said.
    remotes: std::sync::Mutex<BTreeMap<String, RemoteCopy>>,
    /// The policy of the space or seed the feed belongs to.
    traffic: std::sync::Mutex<Arc<Traffic>>,
    /// Why the feed could not be read or written here, the first time it happened.
    fault: std::sync::Mutex<Option<String>>,
    /// Blocks local readers wait for (asked for first); bumped on each change.
    wanted: std::sync::Mutex<BTreeSet<u64>>,
    wanted_changed: watch::Sender<u64>,
    /// Blocks a local reader needed that no connected peer could supply.
    unavailable: std::sync::Mutex<BTreeSet<u64>>,
    /// The writer's newest cleared-blocks statement as published, encoded.
    statement: std::sync::Mutex<Option<Arc<Vec<u8>>>>,
    /// Whether a statement received clears this device's copy at once (a seed's feeds);
    /// otherwise the space that holds the feed clears what nothing here refers to.
    auto_clear: std::sync::atomic::AtomicBool,
}

impl SharedFeed {
    /// Share an open feed. Call with a feed whose writes are all committed.
    pub fn new(feed: Feed) -> Arc<SharedFeed> {
        let key = feed.public_key();
        let (held, _) = watch::channel(Held::of(&feed));
        let statement = feed.cleared().map(|c| Arc::new(c.encode()));
        Arc::new(SharedFeed {
            key,
            discovery_key: hypercore_protocol::discovery_key(&key),
            feed: Mutex::new(feed),
            held,
            remotes: std::sync::Mutex::default(),
            traffic: std::sync::Mutex::new(Traffic::unlimited()),
            fault: std::sync::Mutex::default(),
            wanted: std::sync::Mutex::default(),
            wanted_changed: watch::channel(0).0,
            unavailable: std::sync::Mutex::default(),
            statement: std::sync::Mutex::new(statement),
            auto_clear: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The writer's newest cleared-blocks statement, encoded, as last published.
    pub fn statement(&self) -> Option<Arc<Vec<u8>>> {
        lock(&self.statement).clone()
    }

    /// Whether a statement received clears this device's copy at once.
    pub fn auto_clear(&self) -> bool {
        self.auto_clear.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Leave clearing to the holder of the feed (a member space, which keeps what its own
    /// tree or an open file still refers to).
    pub fn set_auto_clear(&self, on: bool) {
        self.auto_clear
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The blocks local readers wait for, lowest first.
    pub fn wanted(&self) -> Vec<u64> {
        lock(&self.wanted).iter().copied().collect()
    }

    /// Told whenever the blocks readers wait for change.
    pub fn watch_wanted(&self) -> watch::Receiver<u64> {
        self.wanted_changed.subscribe()
    }

    fn set_wanted(&self, index: u64, wanted: bool) {
        let changed = {
            let mut w = lock(&self.wanted);
            if wanted {
                w.insert(index)
            } else {
                w.remove(&index)
            }
        };
        if changed {
            self.wanted_changed.send_modify(|n| *n += 1);
        }
    }

    /// Whether a connected peer's copy of the feed reaches past block `index`.
    pub fn offered(&self, index: u64) -> bool {
        self.remotes_lock()
            .values()
            .any(|r| r.connected && r.length > index)
    }

    /// Block `index` is not here: have it fetched first from a connected peer that has it,
    /// and wait up to `within`. Whether it is here now. When no connected peer could
    /// supply it, it is remembered as unavailable (see [`SharedFeed::unavailable`]).
    pub async fn fetch(&self, index: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut held = self.subscribe();
        self.set_wanted(index, true);
        let got = loop {
            if self.lock().await.core().has(index) {
                break true;
            }
            if !self.offered(index) {
                break false;
            }
            tokio::select! {
                r = held.changed() => if r.is_err() { break false },
                // Peers come and go: look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::time::sleep_until(deadline) => break false,
            }
        };
        self.set_wanted(index, false);
        let mut u = lock(&self.unavailable);
        if got {
            u.remove(&index);
        } else {
            u.insert(index);
        }
        got
    }

    /// Blocks a local reader needed that no connected peer supplied (those held since, as
    /// far as the published contiguous length tells, are left out).
    pub fn unavailable(&self) -> Vec<u64> {
        let held = self.held().contiguous;
        let mut u = lock(&self.unavailable);
        u.retain(|&i| i >= held);
        u.iter().copied().collect()
    }

    /// The feed's public key: knowing it is the capability to replicate it.
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// The hash of the key that peers announce and open channels by.
    pub fn discovery_key(&self) -> [u8; 32] {
        self.discovery_key
    }

    pub async fn lock(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().await
    }

    /// Append blocks, make them durable, and tell the sessions. Returns the new length.
    pub async fn append<B: AsRef<[u8]> + Sync>(&self, blocks: &[B]) -> Result<u64, FeedError> {
        let mut feed = self.feed.lock().await;
        let length = feed.append_batch(blocks).await?;
        self.publish(&feed);
        Ok(length)
    }

    /// Publish the feed's state to the sessions. Only after a commit: what is published is
    /// served to peers.
    pub fn publish(&self, feed: &Feed) {
        let now = Held::of(feed);
        if now.cleared != self.held().cleared {
            *lock(&self.statement) = feed.cleared().map(|c| Arc::new(c.encode()));
        }
        self.held.send_if_modified(|held| {
            let changed = *held != now;
            *held = now;
            changed
        });
    }

    /// The last published state.
    pub fn held(&self) -> Held {
        *self.held.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Held> {
        self.held.subscribe()
    }

    /// Put the feed under the policy of its space or seed (channels opened from now on
    /// follow it).
    pub fn set_traffic(&self, traffic: Arc<Traffic>) {
        *self.traffic.lock().unwrap_or_else(|e| e.into_inner()) = traffic;
    }

    pub fn traffic(&self) -> Arc<Traffic> {
        self.traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record that the feed could not be read or written here (the first reason is kept);
    /// whether this is new.
    pub fn set_fault(&self, reason: String) -> bool {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if fault.is_some() {
            return false;
        }
        tracing::error!(feed = %crate::replicate::error::hex(&self.key), %reason, "feed fault: its replication stops");
        *fault = Some(reason);
        true
    }

    /// Why the feed could not be read or written here, if it could not.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remotes_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RemoteCopy>> {
        self.remotes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record what peer `peer` says it holds, and how many requests to it wait for their
    /// answers.
    pub fn note_remote(&self, peer: &str, length: u64, contiguous: u64, asking: usize) {
        self.remotes_lock().insert(
            peer.to_string(),
            RemoteCopy {
                length,
                contiguous,
                seen: SystemTime::now(),
                connected: true,
                asking,
            },
        );
    }

    /// Record how many requests to `peer` wait for their answers (once it said anything).
    pub fn note_asking(&self, peer: &str, asking: usize) {
        if let Some(r) = self.remotes_lock().get_mut(peer) {
            r.asking = asking;
        }
    }

    /// The channel with `peer` ended: what it held stays known, as of now.
    pub fn remote_gone(&self, peer: &str) {
        if let Some(r) = self.remotes_lock().get_mut(peer) {
            r.connected = false;
            r.asking = 0;
            r.seen = SystemTime::now();
        }
    }

    /// What every peer that ever replicated this feed here said it holds, by peer name.
    pub fn remotes(&self) -> BTreeMap<String, RemoteCopy> {
        self.remotes_lock().clone()
    }
}
