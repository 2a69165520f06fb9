//! Replication throughput: 256 MiB in 64 KiB blocks from a feed on disk to a fresh replica
//! on disk over TCP loopback (durable at the end), next to a plain TCP copy of the same
//! bytes (file to socket to file, synced) in the same run; then the catch-up time of a
//! fresh replica of a feed made of 10,000 appends of 100 bytes. Both peers run in this
//! process, on the same cores.
//!
//! Run: `cargo bench -p coboxd --bench replicate`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::Secret32;
use cobox_schema::hexkey::Address;
use coboxd::feed::Feed;
use coboxd::replicate::{self, Options, SharedFeed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/support/tcp.rs"]
mod tcp;
use tcp::tcp_pair;

const BLOCK: usize = 64 * 1024;
const TOTAL: usize = 256 * 1024 * 1024;
const SMALL: usize = 10_000;

fn keys(n: u32) -> (cobox_keys::SigningKeyPair, [u8; 32]) {
    let k = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n);
    let seed = k.secret_bytes()[..32].try_into().unwrap();
    (k, seed)
}

/// Replicate `source` into a fresh replica in `dir`; the time until all of it is durable.
async fn replicate_into(source: &Arc<SharedFeed>, n: u32, dir: &Path) -> Duration {
    let copy = SharedFeed::new(Feed::open(dir, keys(n).0.public.0, None).await.unwrap());
    let length = source.held().length;
    let (a, b) = tcp_pair().await;
    let mut held = copy.subscribe();
    let start = Instant::now();
    let sa = replicate::spawn(a, false, [source.clone()], Options::default());
    let sb = replicate::spawn(b, true, [copy.clone()], Options::default());
    while held.borrow_and_update().contiguous < length {
        held.changed().await.unwrap();
    }
    let took = start.elapsed();
    sb.handle().close();
    sb.join().await.unwrap();
    sa.join().await.unwrap();
    took
}

/// The same bytes as plain TCP: the source's data file to a socket, into a file, synced.
async fn plain_copy(from: &Path, to: &Path) -> Duration {
    let (mut a, mut b) = tcp_pair().await;
    let from = from.to_path_buf();
    let to = to.to_path_buf();
    let start = Instant::now();
    let send = tokio::spawn(async move {
        let mut f = tokio::fs::File::open(&from).await.unwrap();
        let mut buf = vec![0u8; BLOCK];
        loop {
            let n = f.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            a.write_all(&buf[..n]).await.unwrap();
        }
        a.shutdown().await.unwrap();
    });
    let mut out = tokio::fs::File::create(&to).await.unwrap();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = b.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).await.unwrap();
    }
    out.sync_all().await.unwrap();
    send.await.unwrap();
    start.elapsed()
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let (k, seed) = keys(0);
    let mut source = Feed::open(&tmp.path().join("source"), k.public.0, Some(&seed))
        .await
        .unwrap();
    let blocks: Vec<Vec<u8>> = (0..64)
        .map(|i| (0..BLOCK).map(|j| (i * 7 + j * 13) as u8).collect())
        .collect();
    for _ in 0..TOTAL / BLOCK / blocks.len() {
        source.append_batch(&blocks).await.unwrap();
    }
    let source = SharedFeed::new(source);
    println!(
        "replicating {} MiB in {} KiB blocks over TCP loopback, disk to disk:",
        TOTAL >> 20,
        BLOCK >> 10
    );
    for round in 0..3 {
        let plain = plain_copy(
            &tmp.path().join("source/data"),
            &tmp.path().join(format!("plain{round}")),
        )
        .await;
        let repl = replicate_into(&source, 0, &tmp.path().join(format!("copy{round}"))).await;
        println!(
            "  round {round}: replication {:>7.1} MiB/s ({:.2} s)   plain TCP copy {:>7.1} MiB/s ({:.2} s)   ratio {:.3}",
            mib_s(TOTAL, repl),
            repl.as_secs_f64(),
            mib_s(TOTAL, plain),
            plain.as_secs_f64(),
            plain.as_secs_f64() / repl.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("copy{round}")));
        let _ = std::fs::remove_file(tmp.path().join(format!("plain{round}")));
    }

    let (k, seed) = keys(1);
    let mut small = Feed::open(&tmp.path().join("small"), k.public.0, Some(&seed))
        .await
        .unwrap();
    for i in 0..SMALL {
        small.append_batch(&[vec![i as u8; 100]]).await.unwrap();
    }
    let small = SharedFeed::new(small);
    println!("catch-up of a fresh replica of {SMALL} appends of 100 bytes:");
    for round in 0..3 {
        let took = replicate_into(&small, 1, &tmp.path().join(format!("small{round}"))).await;
        println!(
            "  round {round}: {:.2} s ({:.0} blocks/s)",
            took.as_secs_f64(),
            SMALL as f64 / took.as_secs_f64()
        );
    }
}
