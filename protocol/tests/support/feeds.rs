//! Feeds on disk for the replication tests: writers and replicas, and waiting for and
//! checking what a replica holds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::feed::SharedFeed;
use cobox_schema::hexkey::Address;
use tokio::time::timeout;

pub const LONG: Duration = Duration::from_secs(180);

pub fn keys(n: u32) -> cobox_keys::SigningKeyPair {
    cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n)
}

pub fn seed(k: &cobox_keys::SigningKeyPair) -> [u8; 32] {
    k.secret_bytes()[..32].try_into().unwrap()
}

pub async fn writer(dir: &Path, n: u32, data: &[Vec<u8>]) -> Arc<SharedFeed> {
    let k = keys(n);
    let mut f = Feed::open(dir, k.public.0, Some(&seed(&k))).await.unwrap();
    for chunk in data.chunks(100) {
        f.append_batch(chunk).await.unwrap();
    }
    SharedFeed::new(f)
}

pub async fn replica(dir: &Path, n: u32) -> Arc<SharedFeed> {
    SharedFeed::new(Feed::open(dir, keys(n).public.0, None).await.unwrap())
}

/// Wait (bounded) until `feed` holds `length` blocks contiguously.
pub async fn until_held(feed: &SharedFeed, length: u64) {
    let mut rx = feed.subscribe();
    let wait = async {
        loop {
            if rx.borrow_and_update().contiguous >= length {
                return;
            }
            rx.changed().await.unwrap();
        }
    };
    timeout(LONG, wait).await.unwrap_or_else(|_| {
        panic!(
            "feed did not reach {length} blocks in time (has {:?})",
            feed.held()
        )
    });
}

pub async fn assert_same(feed: &SharedFeed, data: &[Vec<u8>]) {
    let mut f = feed.lock().await;
    assert_eq!(f.len(), data.len() as u64);
    let bytes: usize = data.iter().map(Vec::len).sum();
    assert_eq!(f.byte_len(), bytes as u64, "no block stored twice");
    for (i, b) in data.iter().enumerate() {
        assert_eq!(
            f.get(i as u64).await.unwrap().as_ref(),
            Some(b),
            "block {i}"
        );
    }
}
