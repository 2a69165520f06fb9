//! The traffic policy at the engine: a window closing mid-transfer and opening again, a
//! quota reached and raised, and evicted blocks (space freed, kept across a reopen, not
//! fetched again, the rest still served) between real feeds on disk over TCP loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cobox_protocol::feed::{RemoteCopy, SharedFeed};
use cobox_protocol::replicate::{self, Bucket, Caps, Options, Quota, Traffic};
use tokio::time::timeout;

#[path = "support/feeds.rs"]
mod feeds;
use feeds::{LONG, assert_same, replica, until_held, writer};
#[path = "support/tcp.rs"]
mod tcp;
use tcp::tcp_pair;

/// Wait (bounded) until `feed`'s channel with a connected peer notes what `done` wants:
/// it notes the peer's copy after each batch of the peer's messages, and how many requests
/// wait for answers after every step, so this is what the channel decided, not a guess.
async fn until_remote(feed: &SharedFeed, done: impl Fn(&RemoteCopy) -> bool) -> RemoteCopy {
    let wait = async {
        loop {
            if let Some(r) = feed.remotes().values().find(|r| r.connected && done(r)) {
                return *r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(LONG, wait)
        .await
        .unwrap_or_else(|_| panic!("the channel never got there: {:?}", feed.remotes()))
}

fn traffic(download: Option<u64>, quota: Option<u64>) -> Arc<Traffic> {
    Traffic::new(
        Caps {
            own: Bucket::new(None),
            device: Bucket::new(None),
        },
        Caps {
            own: Bucket::new(download),
            device: Bucket::new(None),
        },
        quota.map(|q| Quota::new(Some(q), None)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_stops_a_transfer_and_the_opening_resumes_it_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<Vec<u8>> = (0..300u32).map(|i| vec![i as u8; 64 * 1024]).collect();
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    // 4 MiB/s: the 18.75 MiB take about 5 s, so the window closes mid-transfer.
    let gate = traffic(Some(4 << 20), None);
    copy.set_traffic(gate.clone());
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    until_held(&copy, 20).await;
    gate.set_open(false);
    // What was in flight lands, and nothing more is asked for (the rules' unit tests show
    // a closed window asks for nothing): the channel says so.
    until_remote(&copy, |r| r.asking == 0).await;
    let stopped = copy.held().contiguous;
    assert!(stopped < data.len() as u64, "closed mid-transfer");
    assert_eq!(
        gate.counters.get()[3],
        stopped,
        "what arrived is what is held: nothing moves while closed"
    );
    gate.set_open(true);
    until_held(&copy, data.len() as u64).await;
    assert_same(&copy, &data).await;
    assert_eq!(
        gate.counters.get()[3],
        data.len() as u64,
        "every block was received once: the transfer resumed where it stopped"
    );
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_stops_downloads_within_one_request_and_a_raised_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; 64 * 1024]).collect();
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let limit = 3 << 20;
    let gate = traffic(None, Some(limit));
    copy.set_traffic(gate.clone());
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    let quota = gate.quota.clone().unwrap();
    let full = async {
        while !quota.is_full() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(LONG, full).await.expect("the quota fills");
    // What was in flight lands or is refused; nothing more is asked for. (A step that
    // stored blocks notes what it still asks for after publishing them.)
    until_remote(&copy, |r| r.asking == 0 && copy.held().contiguous > 0).await;
    let held = copy.held().contiguous;
    let stored = {
        let mut f = copy.lock().await;
        let mut n = 0;
        for i in 0..data.len() as u64 {
            n += f.get(i).await.unwrap().map_or(0, |b| b.len() as u64);
        }
        n
    };
    assert!(quota.used() <= limit, "used {} of {limit}", quota.used());
    assert!(
        stored <= limit && stored >= limit - 2 * 64 * 1024,
        "{stored} block bytes stored against {limit}"
    );
    assert!(held < data.len() as u64);
    quota.set_limit(None);
    gate.nudge();
    until_held(&copy, data.len() as u64).await;
    assert_same(&copy, &data).await;
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}

/// Bytes allocated to `file` on disk.
fn allocated(file: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(file).unwrap().blocks() * 512
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_blocks_free_their_space_survive_a_reopen_and_are_not_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; 64 * 1024]).collect();
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let dir = tmp.path().join("seed");
    let seed = replica(&dir, 0).await;
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [seed.clone()], Options::default());
    until_held(&seed, 200).await;
    sb.handle().close();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    timeout(LONG, sa.join()).await.unwrap().unwrap();

    let before = allocated(&dir.join("data"));
    {
        let mut f = seed.lock().await;
        f.evict_below(120).await.unwrap();
        seed.publish(&f);
    }
    let after = allocated(&dir.join("data"));
    assert!(
        before - after >= 119 * 64 * 1024,
        "evicting 120 blocks of 64 KiB freed {} bytes",
        before - after
    );
    drop(seed);
    // Reopened: the floor and the newer blocks are there, the older ones are not.
    let seed = replica(&dir, 0).await;
    {
        let mut f = seed.lock().await;
        assert_eq!(f.floor(), 120);
        for i in [0u64, 60, 119] {
            assert!(f.get(i).await.unwrap().is_none(), "block {i} was evicted");
        }
        for i in 120..200u64 {
            let b = f.get(i).await.unwrap();
            assert!(b.as_ref() == Some(&data[i as usize]), "block {i} is kept");
        }
    }
    // Replicating with the writer again fetches nothing below the floor.
    let gate = Traffic::unlimited();
    seed.set_traffic(gate.clone());
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [seed.clone()], Options::default());
    // The seed heard that the writer holds all 200 blocks, asked for what it wanted and
    // had every request answered: none was for an evicted block.
    until_remote(&seed, |r| r.contiguous == 200 && r.asking == 0).await;
    assert_eq!(
        gate.counters.get()[3],
        0,
        "evicted blocks are not fetched again"
    );
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    // A fresh replica served by the seed alone gets what the seed still holds.
    let copy = replica(&tmp.path().join("c"), 0).await;
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [seed.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    let wait = async {
        loop {
            let got = {
                let mut f = copy.lock().await;
                let mut n = 0;
                for i in 120..200u64 {
                    n += u64::from(f.get(i).await.unwrap().is_some());
                }
                n
            };
            if got == 80 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    timeout(LONG, wait)
        .await
        .expect("the seed serves the blocks it kept");
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}
