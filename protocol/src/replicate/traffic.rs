//! What the replication of one space or seed may do: byte-rate caps on what it sends and
//! receives (its own and the device's, token buckets from `governor`), whether its window is
//! open, the storage quota it fills, and counters of what it moved.
//!
//! Every channel of a feed asks its [`Traffic`] before it sends block data, after it
//! received some, and before it requests blocks; control messages (synchronize, ranges,
//! requests, topic messages) are never held back.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use governor::{DefaultDirectRateLimiter, Quota as Rate, RateLimiter};
use tokio::sync::watch;

/// Smallest burst of a bucket: a block and its proof fit in a few.
const MIN_BURST: u64 = 16 * 1024;

/// A byte-rate cap that can be changed while waiters use it. Unlimited until set.
#[derive(Debug, Default)]
pub struct Bucket {
    limiter: Mutex<Option<(u64, Arc<DefaultDirectRateLimiter>)>>,
}

impl Bucket {
    pub fn new(rate: Option<u64>) -> Arc<Bucket> {
        let bucket = Arc::new(Bucket::default());
        bucket.set(rate);
        bucket
    }

    /// Cap at `rate` bytes per second (`None`: no cap). The new rate holds from the next
    /// wait on; a rate equal to the current one changes nothing.
    pub fn set(&self, rate: Option<u64>) {
        let mut limiter = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = rate.map(|r| r.clamp(1, u64::from(u32::MAX)));
        if limiter.as_ref().map(|(r, _)| *r) == rate {
            return;
        }
        *limiter = rate.map(|r| {
            // A burst of 1/20 s keeps the rate over any second within a few per cent.
            let burst = (r / 20).clamp(MIN_BURST, u64::from(u32::MAX));
            let per_second = NonZeroU32::new(r as u32).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst as u32).unwrap_or(NonZeroU32::MIN);
            (
                r,
                Arc::new(RateLimiter::direct(
                    Rate::per_second(per_second).allow_burst(burst),
                )),
            )
        });
    }

    /// The cap in bytes per second.
    pub fn rate(&self) -> Option<u64> {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(r, _)| *r)
    }

    fn current(&self) -> Option<(u64, Arc<DefaultDirectRateLimiter>)> {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Wait until `bytes` may pass, in bursts; at once when uncapped.
    pub async fn take(&self, bytes: u64) {
        let mut left = bytes;
        while left > 0 {
            // Looked up per burst, so a changed cap applies within one burst.
            let Some((rate, limiter)) = self.current() else {
                return;
            };
            let burst = (rate / 20).clamp(MIN_BURST, u64::from(u32::MAX));
            let n = left.min(burst);
            left -= n;
            let cells = NonZeroU32::new(n as u32).unwrap_or(NonZeroU32::MIN);
            // `n` never exceeds the burst, so capacity always suffices.
            let _ = limiter.until_n_ready(cells).await;
        }
    }
}

/// The caps of one direction that apply to a space or seed: its own and the device's.
#[derive(Debug, Clone)]
pub struct Caps {
    pub own: Arc<Bucket>,
    pub device: Arc<Bucket>,
}

impl Caps {
    fn unlimited() -> Caps {
        Caps {
            own: Bucket::new(None),
            device: Bucket::new(None),
        }
    }

    async fn take(&self, bytes: u64) {
        self.own.take(bytes).await;
        self.device.take(bytes).await;
    }

    /// The tighter of the two caps.
    pub fn rate(&self) -> Option<u64> {
        match (self.own.rate(), self.device.rate()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Bytes stored against a limit, with room reserved for requests in flight, so usage never
/// passes the limit by more than the misestimate of one request.
#[derive(Debug, Default)]
pub struct Quota {
    /// Bytes allowed; `u64::MAX` when unlimited.
    limit: AtomicU64,
    used: AtomicU64,
    reserved: AtomicU64,
    /// A reservation was refused for want of room that stored data took (not requests in
    /// flight), since room was last freed or the limit changed.
    full: AtomicBool,
    /// The total this quota is part of.
    parent: Option<Arc<Quota>>,
    /// Told when the quota becomes full.
    on_full: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl Quota {
    pub fn new(limit: Option<u64>, parent: Option<Arc<Quota>>) -> Arc<Quota> {
        Arc::new(Quota {
            limit: AtomicU64::new(limit.unwrap_or(u64::MAX)),
            parent,
            ..Quota::default()
        })
    }

    /// Tell `notify` whenever this quota becomes full.
    pub fn on_full(&self, notify: Arc<tokio::sync::Notify>) {
        *self.on_full.lock().unwrap_or_else(PoisonError::into_inner) = Some(notify);
    }

    pub fn set_limit(&self, limit: Option<u64>) {
        let limit = limit.unwrap_or(u64::MAX);
        if self.limit.swap(limit, Ordering::AcqRel) != limit {
            self.full.store(false, Ordering::Release);
        }
    }

    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Acquire)).filter(|l| *l != u64::MAX)
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Whether a download was refused for want of room (and nothing freed room since).
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire) || self.parent.as_ref().is_some_and(|p| p.is_full())
    }

    /// Usage as measured on disk (replaces the running count).
    pub fn set_used(&self, bytes: u64) {
        let old = self.used.swap(bytes, Ordering::AcqRel);
        if bytes < old {
            self.full.store(false, Ordering::Release);
        }
    }

    /// Reserve room for `bytes` about to be requested; false (and nothing reserved) when
    /// that would pass this quota or its parent.
    pub fn reserve(&self, bytes: u64) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        let ok = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                let total = self.used().saturating_add(r).saturating_add(bytes);
                (total <= limit).then_some(r + bytes)
            })
            .is_ok();
        if !ok {
            // Full when what is stored leaves no room, not when requests in flight hold it.
            if self.used().saturating_add(bytes) > limit
                && !self.full.swap(true, Ordering::AcqRel)
                && let Some(n) = &*self.on_full.lock().unwrap_or_else(PoisonError::into_inner)
            {
                n.notify_one();
            }
            return false;
        }
        if let Some(p) = &self.parent
            && !p.reserve(bytes)
        {
            // Taken back from this quota only: the parent reserved nothing.
            let _ = self
                .reserved
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    Some(r.saturating_sub(bytes))
                });
            return false;
        }
        true
    }

    /// Give back a reservation of `bytes` (room freed: the refusal is forgotten).
    pub fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.full.store(false, Ordering::Release);
        }
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(bytes))
            });
        if let Some(p) = &self.parent {
            p.release(bytes);
        }
    }

    /// `reserved` bytes of a reservation became `stored` bytes on disk.
    pub fn stored(&self, reserved: u64, stored: u64) {
        self.used.fetch_add(stored, Ordering::AcqRel);
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(reserved))
            });
        if let Some(p) = &self.parent {
            p.stored(reserved, stored);
        }
    }
}

/// What one space or seed moved, since the agent started.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent_bytes: AtomicU64,
    pub received_bytes: AtomicU64,
    pub sent_blocks: AtomicU64,
    pub received_blocks: AtomicU64,
}

impl Counters {
    pub fn get(&self) -> [u64; 4] {
        [
            self.sent_bytes.load(Ordering::Relaxed),
            self.received_bytes.load(Ordering::Relaxed),
            self.sent_blocks.load(Ordering::Relaxed),
            self.received_blocks.load(Ordering::Relaxed),
        ]
    }
}

/// The traffic policy and counters of one space or seed, shared by every channel of its
/// feeds.
#[derive(Debug)]
pub struct Traffic {
    pub upload: Caps,
    pub download: Caps,
    open: watch::Sender<bool>,
    /// Bumped when room may have appeared (a quota raised or measured lower): channels
    /// that stopped asking look again.
    nudge: watch::Sender<u64>,
    /// Present for seeded data only: a member's own data is never refused for quota.
    pub quota: Option<Arc<Quota>>,
    pub counters: Counters,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            upload: Caps::unlimited(),
            download: Caps::unlimited(),
            open: watch::channel(true).0,
            nudge: watch::channel(0).0,
            quota: None,
            counters: Counters::default(),
        }
    }
}

impl Traffic {
    pub fn new(upload: Caps, download: Caps, quota: Option<Arc<Quota>>) -> Arc<Traffic> {
        Arc::new(Traffic {
            upload,
            download,
            quota,
            ..Traffic::default()
        })
    }

    /// No caps, always open, no quota.
    pub fn unlimited() -> Arc<Traffic> {
        Arc::new(Traffic::default())
    }

    /// Open or close the window; channels follow at once.
    pub fn set_open(&self, open: bool) {
        self.open
            .send_if_modified(|o| std::mem::replace(o, open) != open);
    }

    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    pub fn watch_open(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    /// Have every channel look again at what it could ask for.
    pub fn nudge(&self) {
        self.nudge.send_modify(|n| *n += 1);
    }

    pub fn watch_nudge(&self) -> watch::Receiver<u64> {
        self.nudge.subscribe()
    }

    /// Wait until `bytes` of block data may be sent, and count them.
    pub async fn send(&self, bytes: u64) {
        self.upload.take(bytes).await;
        self.counters.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.counters.sent_blocks.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a block of `bytes` received (as it arrives, before it is stored).
    pub fn received(&self, bytes: u64) {
        self.counters
            .received_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        self.counters
            .received_blocks
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Wait until the download caps have room for `bytes` received.
    pub async fn pay_download(&self, bytes: u64) {
        self.download.take(bytes).await;
    }

    /// Bytes of requests to keep in flight so the download cap holds at the socket too:
    /// an eighth of a second's worth, at least two blocks of `block`, at most `max`.
    pub fn in_flight_bytes(&self, block: u64, max: u64) -> u64 {
        match self.download.rate() {
            Some(rate) => (rate / 8).clamp(2 * block.max(1), max.max(2 * block)),
            None => max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_reserves_up_to_its_limit_and_its_parents() {
        let total = Quota::new(Some(300), None);
        let seed = Quota::new(Some(250), Some(total.clone()));
        let other = Quota::new(None, Some(total.clone()));
        assert!(seed.reserve(100));
        assert!(seed.reserve(100));
        assert!(!seed.reserve(100), "250 is the seed's limit");
        assert!(
            !seed.is_full(),
            "requests in flight hold the room, not stored data"
        );
        assert!(other.reserve(100), "the total has 100 left");
        assert!(!other.reserve(1));
        // Reservations turn into usage; what was not stored comes back.
        seed.stored(100, 90);
        seed.stored(100, 100);
        other.release(100);
        assert_eq!((seed.used(), total.used()), (190, 190));
        assert!(seed.reserve(60), "190 used, 60 more fits 250");
        seed.stored(60, 60);
        assert!(!seed.reserve(1));
        assert!(seed.is_full(), "stored data fills it");
        assert!(
            !other.reserve(51) && other.is_full(),
            "the total is 250 of 300 used"
        );
        assert!(other.reserve(50));
        seed.set_limit(None);
        assert!(
            !seed.is_full() || total.is_full(),
            "a raised limit clears the seed's own"
        );
        seed.set_used(0);
        assert_eq!(
            total.used(),
            250,
            "measured usage replaces only the seed's own"
        );
    }

    #[tokio::test]
    async fn a_bucket_holds_a_stream_to_its_rate_and_follows_a_change() {
        let bucket = Bucket::new(Some(2 * 1024 * 1024));
        let start = std::time::Instant::now();
        // 1 MiB at 2 MiB/s: about half a second (less one burst).
        for _ in 0..16 {
            bucket.take(64 * 1024).await;
        }
        let capped = start.elapsed();
        assert!(capped.as_secs_f64() > 0.4, "{capped:?}");
        bucket.set(None);
        let start = std::time::Instant::now();
        for _ in 0..160 {
            bucket.take(64 * 1024).await;
        }
        assert!(start.elapsed() < capped, "uncapped is not held back");
        assert_eq!(bucket.rate(), None);
    }
}
