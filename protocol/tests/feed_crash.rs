//! Crash test of appends: a child process appends batches to a feed and reports every
//! length it was acknowledged; it is killed with SIGKILL at random points, and after each
//! kill the reopened feed must hold every acknowledged block, intact, and verify block by
//! block (Merkle proofs and signature) into a fresh replica. The next child appends to the
//! same feed. Likewise for evictions: a child evicts a replica a few blocks at a time and
//! is killed; no block may be left marked present with its data gone. And for clears: a
//! writer states blocks nothing refers to cleared (and appends) and is killed; every block
//! still referred to must be intact, every acknowledged clear must hold.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::feed::copy::copy_missing;
use cobox_schema::hexkey::Address;

const CHILD_ENV: &str = "COBOX_FEED_CRASH_CHILD";
/// Set to a seed printed by a failed run to replay its crash points.
const SEED_ENV: &str = "COBOX_FEED_CRASH_SEED";
const ROUNDS: u32 = 8;
/// A child that outlives this (its parent is gone) stops by itself.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// How long the parent waits for the child to reach its kill point.
const PATIENCE: Duration = Duration::from_secs(15);

fn keys() -> (cobox_keys::SigningKeyPair, [u8; 32]) {
    let k = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 0);
    let seed = k.secret_bytes()[..32].try_into().unwrap();
    (k, seed)
}

/// splitmix64: a well-mixed pure function of its input.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The size of block `i`: 1 byte to 70 KiB, mixed.
fn block_len(i: u64) -> usize {
    const SIZES: [usize; 8] = [1, 70 * 1024, 300, 4096, 64 * 1024, 17, 20_000, 1500];
    SIZES[(mix(i) % SIZES.len() as u64) as usize]
}

/// Block `i`: its content depends only on its index.
fn block(i: u64) -> Vec<u8> {
    let s = mix(i ^ 0x5eed);
    (0..block_len(i) as u64)
        .map(|j| (mix(s ^ (j / 8)) >> ((j % 8) * 8)) as u8)
        .collect()
}

/// How many blocks the append at `length` adds: 1 to 8.
fn batch_len(length: u64) -> u64 {
    1 + mix(length ^ 0xba7c) % 8
}

/// Not a test on its own: the child process of the crash test. It appends to the feed in
/// the directory it is given and prints `acked N` after every append that returned.
#[tokio::test]
async fn crash_child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (k, seed) = keys();
    let mut feed = Feed::open(Path::new(&dir), k.public.0, Some(&seed))
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = std::io::stdout();
    while started.elapsed() < CHILD_LIFETIME {
        let from = feed.len();
        let blocks: Vec<Vec<u8>> = (from..from + batch_len(from)).map(block).collect();
        let length = feed.append_batch(&blocks).await.unwrap();
        writeln!(out, "acked {length}").unwrap();
        out.flush().unwrap();
    }
}

/// A small xorshift generator for the crash points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Run the child test `test` of this binary on the feed in `dir` (passed in `env`); each
/// number it prints after one of `prefixes` arrives on the receiver with that prefix's
/// position in the list.
fn spawn_child(
    test: &str,
    env: &str,
    dir: &Path,
    prefixes: &'static [&'static str],
) -> (
    std::process::Child,
    mpsc::Receiver<(usize, u64)>,
    std::thread::JoinHandle<()>,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(env, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let said = prefixes
                .iter()
                .enumerate()
                .find_map(|(i, p)| Some((i, line.strip_prefix(p)?.parse::<u64>().unwrap())));
            if let Some(said) = said {
                let _ = tx.send(said);
            }
        }
    });
    (child, rx, reader)
}

/// The reopened feed holds every block up to its length as written, and a fresh replica
/// accepts all of it through proofs.
async fn assert_intact_and_verifies(dir: &Path, replica_dir: &Path, acked: u64, round: u32) {
    let (k, seed) = keys();
    let mut feed = Feed::open(dir, k.public.0, Some(&seed)).await.unwrap();
    let len = feed.len();
    assert!(
        len >= acked,
        "round {round}: reopened at {len} blocks, {acked} were acknowledged"
    );
    assert_eq!(
        feed.contiguous_len(),
        len,
        "round {round}: a gap in own feed"
    );
    let bytes: u64 = (0..len).map(|i| block_len(i) as u64).sum();
    assert_eq!(feed.byte_len(), bytes, "round {round}: byte length");
    for i in 0..len {
        let got = feed.get(i).await.unwrap();
        assert!(
            got.as_deref() == Some(block(i).as_slice()),
            "round {round}: block {i} of {len} differs: {:?} bytes",
            got.map(|b| b.len())
        );
    }
    let mut replica = Feed::open(replica_dir, k.public.0, None).await.unwrap();
    let copied = copy_missing(&mut feed, &mut replica).await.unwrap();
    assert_eq!(copied, len, "round {round}: blocks copied");
    assert_eq!(replica.len(), len, "round {round}: replica length");
    for i in 0..len {
        let got = replica.get(i).await.unwrap();
        assert!(
            got.as_deref() == Some(block(i).as_slice()),
            "round {round}: replica block {i} differs"
        );
    }
}

#[tokio::test]
async fn appends_killed_at_random_points_keep_every_acknowledged_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
        })
        | 1;
    eprintln!("crash points from seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let mut acked = 0u64;
    for round in 0..ROUNDS {
        // Kill after a random number of acknowledged blocks and a random extra delay (so
        // inside an append, a commit, or between them); one round in four kills at a
        // random time after starting, which may fall while the child opens the feed.
        let after_start = rng.next().is_multiple_of(4);
        let more = 1 + rng.next() % 120;
        let delay = Duration::from_micros(if after_start {
            rng.next() % 400_000
        } else {
            rng.next() % 3_000
        });
        let (mut child, rx, reader) = spawn_child(
            "crash_child_appends_until_killed",
            CHILD_ENV,
            &dir,
            &["acked "],
        );
        let started = Instant::now();
        let mut last = acked;
        if after_start {
            std::thread::sleep(delay);
        } else {
            let target = acked + more;
            while last < target && started.elapsed() < PATIENCE {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok((_, n)) => last = n,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            std::thread::sleep(delay);
        }
        let ended_by_itself = child.try_wait().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        assert!(
            ended_by_itself.is_none(),
            "round {round}: the child ended by itself ({ended_by_itself:?})"
        );
        for (_, n) in rx.try_iter() {
            assert!(n > last, "round {round}: acknowledged lengths go up");
            last = n;
        }
        eprintln!(
            "round {round}: killed {} after {:?} with {last} blocks acknowledged",
            if after_start {
                "at a random time"
            } else {
                "mid-append"
            },
            started.elapsed()
        );
        acked = last;
        let replica = tmp.path().join(format!("replica{round}"));
        assert_intact_and_verifies(&dir, &replica, acked, round).await;
        std::fs::remove_dir_all(&replica).unwrap();
    }
    assert!(acked > 0, "no append was ever acknowledged");
}

const EVICT_CHILD_ENV: &str = "COBOX_EVICT_CRASH_CHILD";
/// Blocks in the replica the eviction crash test evicts from.
const EVICT_BLOCKS: u64 = 400;

/// Not a test on its own: the child process of the eviction crash test. It evicts the
/// replica in the directory it is given, a few blocks at a time, and prints `evicted N`
/// after every eviction that returned.
#[tokio::test]
async fn crash_child_evicts_until_killed() {
    let Ok(dir) = std::env::var(EVICT_CHILD_ENV) else {
        return;
    };
    let (k, _) = keys();
    let mut feed = Feed::open(Path::new(&dir), k.public.0, None).await.unwrap();
    let mut out = std::io::stdout();
    while feed.floor() < EVICT_BLOCKS {
        let to = (feed.floor() + batch_len(feed.floor())).min(EVICT_BLOCKS);
        feed.evict_below(to).await.unwrap();
        writeln!(out, "evicted {to}").unwrap();
        out.flush().unwrap();
    }
    // Done: wait to be killed, as a child that was cut short would be.
    tokio::time::sleep(CHILD_LIFETIME).await;
}

#[tokio::test]
async fn evictions_killed_at_random_points_never_leave_a_block_marked_without_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (k, seed) = keys();
    let mut writer = Feed::open(&tmp.path().join("writer"), k.public.0, Some(&seed))
        .await
        .unwrap();
    let blocks: Vec<Vec<u8>> = (0..EVICT_BLOCKS).map(block).collect();
    writer.append_batch(&blocks).await.unwrap();
    let dir = tmp.path().join("replica");
    {
        let mut replica = Feed::open(&dir, k.public.0, None).await.unwrap();
        copy_missing(&mut writer, &mut replica).await.unwrap();
    }
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1);
    let mut acked = 0u64;
    for round in 0..ROUNDS {
        let (mut child, rx, reader) = spawn_child(
            "crash_child_evicts_until_killed",
            EVICT_CHILD_ENV,
            &dir,
            &["evicted "],
        );
        // Kill after a few evictions and a random extra delay (inside one, or between).
        let target = (acked + 1 + rng.next() % 12).min(EVICT_BLOCKS);
        let started = Instant::now();
        while acked < target && started.elapsed() < PATIENCE {
            if let Ok((_, n)) = rx.recv_timeout(Duration::from_millis(100)) {
                acked = n;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 3_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acked = rx.try_iter().map(|(_, n)| n).fold(acked, u64::max);
        // Reopened: every acknowledged eviction holds, no block is marked present
        // without its data, and nothing past the eviction in progress was touched.
        let mut feed = Feed::open(&dir, k.public.0, None).await.unwrap();
        assert!(
            feed.floor() >= acked,
            "round {round}: floor {} < {acked}",
            feed.floor()
        );
        for i in 0..EVICT_BLOCKS {
            let got = feed.get(i).await.unwrap();
            if i < acked {
                assert!(got.is_none(), "round {round}: evicted block {i} is back");
            } else if i >= acked + 8 {
                assert!(
                    got.as_deref() == Some(block(i).as_slice()),
                    "round {round}: block {i} past the eviction was lost"
                );
            } else {
                assert!(
                    got.is_none() || got.as_deref() == Some(block(i).as_slice()),
                    "round {round}: block {i} is marked present but its data is gone"
                );
            }
        }
        if acked >= EVICT_BLOCKS {
            break;
        }
    }
}

const CLEAR_CHILD_ENV: &str = "COBOX_CLEAR_CRASH_CHILD";
/// Blocks the writer holds before the clear crash test starts clearing.
const CLEAR_BLOCKS: u64 = 1000;
/// Blocks cleared per statement.
const CLEAR_GROUP: usize = 5;

/// Whether block `i` is one nothing refers to any more (cleared by the test); blocks past
/// [`CLEAR_BLOCKS`] are appended while clearing and always referred to.
fn unreferenced(i: u64) -> bool {
    i < CLEAR_BLOCKS && mix(i ^ 0xc1ea).is_multiple_of(3)
}

/// The groups of unreferenced blocks, cleared one statement each, in order.
fn clear_groups() -> Vec<Vec<u64>> {
    let all: Vec<u64> = (0..CLEAR_BLOCKS).filter(|&i| unreferenced(i)).collect();
    all.chunks(CLEAR_GROUP).map(<[u64]>::to_vec).collect()
}

/// Not a test on its own: the child process of the clear crash test. As the writer, it
/// states one group of unreferenced blocks cleared and prints `cleared G` (groups done),
/// then appends a block and prints `acked N`, until killed.
#[tokio::test]
async fn crash_child_clears_until_killed() {
    let Ok(dir) = std::env::var(CLEAR_CHILD_ENV) else {
        return;
    };
    let (k, seed) = keys();
    let mut feed = Feed::open(Path::new(&dir), k.public.0, Some(&seed))
        .await
        .unwrap();
    let mut out = std::io::stdout();
    let groups = clear_groups();
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        let done = groups
            .iter()
            .take_while(|g| g.iter().all(|&i| feed.is_cleared(i)))
            .count();
        if let Some(group) = groups.get(done) {
            let mut ranges = cobox_protocol::replicate::have::Ranges::default();
            for &i in group {
                ranges.insert(i, i + 1);
            }
            feed.state_cleared(&ranges).unwrap().unwrap();
            writeln!(out, "cleared {}", done + 1).unwrap();
        }
        let from = feed.len();
        let length = feed.append_batch(&[block(from)]).await.unwrap();
        writeln!(out, "acked {length}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn clears_killed_at_random_points_never_lose_a_referenced_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("writer");
    let (k, seed) = keys();
    {
        let mut writer = Feed::open(&dir, k.public.0, Some(&seed)).await.unwrap();
        let blocks: Vec<Vec<u8>> = (0..CLEAR_BLOCKS).map(block).collect();
        writer.append_batch(&blocks).await.unwrap();
    }
    let groups = clear_groups();
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1);
    let (mut cleared, mut acked) = (0u64, CLEAR_BLOCKS);
    for round in 0..ROUNDS {
        let (mut child, rx, reader) = spawn_child(
            "crash_child_clears_until_killed",
            CLEAR_CHILD_ENV,
            &dir,
            &["cleared ", "acked "],
        );
        // Kill after a few statements and a random extra delay (inside a clear, an
        // append, or between them).
        let target = cleared + 1 + rng.next() % 6;
        let started = Instant::now();
        let take = |(said, n): (usize, u64), cleared: &mut u64, acked: &mut u64| {
            if said == 0 {
                *cleared = (*cleared).max(n);
            } else {
                *acked = (*acked).max(n);
            }
        };
        while cleared < target.min(groups.len() as u64) && started.elapsed() < PATIENCE {
            if let Ok(said) = rx.recv_timeout(Duration::from_millis(100)) {
                take(said, &mut cleared, &mut acked);
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 3_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for said in rx.try_iter() {
            take(said, &mut cleared, &mut acked);
        }

        // Reopened: every block something refers to is intact, every acknowledged clear
        // holds, and a fresh replica verifies what is left block by block.
        let mut feed = Feed::open(&dir, k.public.0, Some(&seed)).await.unwrap();
        let len = feed.len();
        assert!(
            len >= acked,
            "round {round}: {len} blocks, {acked} acknowledged"
        );
        let done: Vec<u64> = groups[..cleared as usize].concat();
        for i in 0..len {
            let got = feed.get(i).await.unwrap();
            if !unreferenced(i) {
                assert!(
                    got.as_deref() == Some(block(i).as_slice()),
                    "round {round}: referenced block {i} was lost"
                );
            } else if done.contains(&i) {
                assert!(got.is_none(), "round {round}: cleared block {i} is back");
                assert!(feed.is_cleared(i), "round {round}: block {i} not stated");
            } else {
                assert!(
                    got.is_none() || got.as_deref() == Some(block(i).as_slice()),
                    "round {round}: block {i} is marked present but its data is gone"
                );
            }
        }
        let replica_dir = tmp.path().join(format!("replica{round}"));
        let mut replica = Feed::open(&replica_dir, k.public.0, None).await.unwrap();
        copy_missing(&mut feed, &mut replica).await.unwrap();
        for i in (0..len).filter(|&i| !unreferenced(i)) {
            let got = replica.get(i).await.unwrap();
            assert!(
                got.as_deref() == Some(block(i).as_slice()),
                "round {round}: replica block {i} differs"
            );
        }
        eprintln!("round {round}: killed with {cleared} clears and {acked} blocks acknowledged");
    }
    assert!(cleared > 0, "no clear was ever acknowledged");
}
