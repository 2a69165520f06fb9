//! When a space's changes become durable (group commit). Through a mount, a closed file is
//! visible at once to every process on the device and durable within the commit interval:
//! changes closed within it share one sync of the content feed and one of the log, as a
//! local file system's journal does; `fsync` makes them durable before it returns. The
//! content feed is always synced before the log that refers to it, so after a crash the
//! space is a prefix of what was closed, with no file torn. Peers are offered only what is
//! durable. With an interval of zero every change is durable before its call returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use super::{Durability, Space, SpaceError};

/// A commit interval shared by the device's spaces (changed live by a new config).
#[derive(Debug, Clone, Default)]
pub struct CommitInterval {
    millis: Arc<AtomicU64>,
    /// Told when a space gets changes waiting for a commit.
    dirtied: Arc<Notify>,
}

impl CommitInterval {
    pub fn new(every: Duration) -> CommitInterval {
        let c = CommitInterval::default();
        c.set(every);
        c
    }

    pub fn set(&self, every: Duration) {
        self.millis
            .store(every.as_millis() as u64, Ordering::Relaxed);
        self.dirtied.notify_waiters();
    }

    pub fn get(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

impl Space {
    /// Follow `interval` for the changes made from now on.
    pub fn set_commit_interval(&mut self, interval: CommitInterval) {
        self.commit = interval;
    }

    /// How the changes made now become durable: at once, or within the commit interval.
    pub fn durability(&self) -> Durability {
        if self.commit.get().is_zero() {
            Durability::Now
        } else {
            Durability::Later
        }
    }

    /// Changes wait for the next commit. With an interval of zero nothing waits on the
    /// flusher: what is not durable yet (a file's creation) becomes so with the next
    /// durable change, its close.
    pub(super) fn dirtied(&mut self) {
        if self.dirty_since.is_none() && !self.commit.get().is_zero() {
            self.dirty_since = Some(std::time::Instant::now());
            self.commit.dirtied.notify_waiters();
        }
    }

    /// Since when changes wait for a commit, if any do.
    pub fn dirty_since(&self) -> Option<std::time::Instant> {
        self.dirty_since
    }

    /// Make this device's content written so far durable, and offer it to peers.
    pub(super) async fn sync_content(&mut self) -> Result<(), SpaceError> {
        let content = self.feeds.content().clone();
        let mut feed = content.lock().await;
        if content.held().length != feed.len() {
            feed.commit()?;
            content.publish(&feed);
        }
        Ok(())
    }

    /// Make every change so far durable — the content first, then the log that refers to
    /// it — and offer them to peers. What `fsync` waits for.
    pub async fn sync(&mut self) -> Result<(), SpaceError> {
        self.record_pending().await?;
        self.sync_content().await?;
        let log = self.feeds.log().clone();
        {
            let mut feed = log.lock().await;
            if log.held().length != feed.len() {
                feed.commit()?;
                log.publish(&feed);
            }
        }
        self.dirty_since = None;
        Ok(())
    }
}

/// Commit `space`'s waiting changes once they are `interval` old, until the space is
/// dropped (or the task aborted).
pub fn spawn_flusher(
    rt: &tokio::runtime::Handle,
    space: Weak<Mutex<Space>>,
    interval: CommitInterval,
) -> JoinHandle<()> {
    rt.spawn(async move {
        loop {
            // Listening before looking, so a change made in between is not missed.
            let dirtied = interval.dirtied.notified();
            tokio::pin!(dirtied);
            dirtied.as_mut().enable();
            let Some(s) = space.upgrade() else { return };
            let waiting = s.lock().await.dirty_since();
            drop(s);
            let Some(since) = waiting else {
                // Woken by a change (of any space) or a new interval; now and then, to
                // notice the space is gone.
                let _ = tokio::time::timeout(Duration::from_secs(10), dirtied).await;
                continue;
            };
            tokio::time::sleep_until((since + interval.get()).into()).await;
            let Some(s) = space.upgrade() else { return };
            let mut s = s.lock().await;
            if s.dirty_since().is_some()
                && let Err(e) = s.sync().await
            {
                tracing::error!(space = %s.name(), error = %e, "cannot commit the space's changes");
                drop(s);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}
