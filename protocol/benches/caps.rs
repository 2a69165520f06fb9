//! Bandwidth caps: the rate a fresh replica achieves against a download cap and against
//! the source's upload cap, at 1, 5 and 20 MiB/s over 10 s, counted on the bytes that cross
//! the socket (from the first byte, handshake included); then the cost of capping: a 256 MiB
//! replication uncapped and capped far above line rate (4 GiB/s), alternating, in the same
//! run, with the process's CPU time for each. Both peers run in this process over TCP
//! loopback, feeds on disk.
//!
//! Run: `cargo bench -p cobox-protocol --bench caps`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::feed::SharedFeed;
use cobox_protocol::replicate::{self, Bucket, Caps, Options, Traffic};
use cobox_schema::hexkey::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[path = "../tests/support/tcp.rs"]
mod tcp;
use tcp::tcp_pair;

const BLOCK: usize = 64 * 1024;
const MIB: u64 = 1 << 20;
const SOURCE_MIB: usize = 256;
const WINDOW: Duration = Duration::from_secs(10);

/// A stream that counts the bytes read from it.
struct Counted<T> {
    inner: T,
    read: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn keys(n: u32) -> (cobox_keys::SigningKeyPair, [u8; 32]) {
    let k = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n);
    let seed = k.secret_bytes()[..32].try_into().unwrap();
    (k, seed)
}

fn capped(upload: Option<u64>, download: Option<u64>) -> Arc<Traffic> {
    Traffic::new(
        Caps {
            own: Bucket::new(upload),
            device: Bucket::new(None),
        },
        Caps {
            own: Bucket::new(download),
            device: Bucket::new(None),
        },
        None,
    )
}

/// CPU time of this process so far (user and system, from `/proc/self/stat`, in the
/// kernel's USER_HZ of 100 ticks per second).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Duration::from_millis((f[11] + f[12]) * 10)
}

struct Run {
    /// Bytes read from the replica's socket.
    wire: u64,
    /// Block bytes the replica received.
    blocks: u64,
    took: Duration,
    cpu: Duration,
}

/// Replicate `source` (with `up`) into a fresh replica in `dir` (with `down`) until it
/// holds everything or `limit` passes.
async fn run(
    source: &Arc<SharedFeed>,
    up: Arc<Traffic>,
    down: Arc<Traffic>,
    dir: &Path,
    limit: Option<Duration>,
) -> Run {
    let copy = SharedFeed::new(Feed::open(dir, keys(0).0.public.0, None).await.unwrap());
    source.set_traffic(up);
    copy.set_traffic(down.clone());
    let length = source.held().length;
    let (a, b) = tcp_pair().await;
    let read = Arc::new(AtomicU64::new(0));
    let b = Counted {
        inner: b,
        read: read.clone(),
    };
    let mut held = copy.subscribe();
    let (start, cpu0) = (Instant::now(), cpu());
    let sa = replicate::spawn(a, false, [source.clone()], Options::default());
    let sb = replicate::spawn(b, true, [copy.clone()], Options::default());
    let done = async {
        while held.borrow_and_update().contiguous < length {
            held.changed().await.unwrap();
        }
    };
    match limit {
        Some(l) => {
            let _ = tokio::time::timeout(l, done).await;
        }
        None => done.await,
    }
    let (took, wire, spent) = (start.elapsed(), read.load(Ordering::Relaxed), cpu() - cpu0);
    sb.handle().close();
    let _ = sb.join().await;
    let _ = sa.join().await;
    Run {
        wire,
        blocks: down.counters.get()[1],
        took,
        cpu: spent,
    }
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
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
    let count = SOURCE_MIB * (MIB as usize) / BLOCK;
    for start in (0..count).step_by(blocks.len()) {
        let n = blocks.len().min(count - start);
        source.append_batch(&blocks[..n]).await.unwrap();
    }
    let source = SharedFeed::new(source);
    let mut n = 0;
    let mut dir = || {
        n += 1;
        let d = tmp.path().join(format!("copy{n}"));
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("copy{}", n - 1)));
        d
    };
    println!(
        "caps over {} s, fresh replica, counted at the replica's socket:",
        WINDOW.as_secs()
    );
    println!("  cap          side      wire MiB/s  error   block MiB/s");
    for cap_mib in [1u64, 5, 20] {
        let cap = cap_mib * MIB;
        for (side, up, down) in [("download", None, Some(cap)), ("upload", Some(cap), None)] {
            let r = run(
                &source,
                capped(up, None),
                capped(None, down),
                &dir(),
                Some(WINDOW),
            )
            .await;
            let wire = mib_s(r.wire, r.took);
            println!(
                "  {cap_mib:>3} MiB/s    {side:<8}  {wire:>9.3}  {:>+5.1}%  {:>10.3}",
                (wire / cap_mib as f64 - 1.0) * 100.0,
                mib_s(r.blocks, r.took),
            );
        }
    }
    println!("cost of capping: {SOURCE_MIB} MiB, uncapped vs capped at 4 GiB/s both ways:");
    let mut totals = [(0u64, Duration::ZERO, Duration::ZERO); 2];
    for round in 0..4 {
        let which = round % 2;
        let traffic = |both: bool| {
            let c = both.then_some(4 << 30);
            capped(c, c)
        };
        let r = run(
            &source,
            traffic(which == 1),
            traffic(which == 1),
            &dir(),
            None,
        )
        .await;
        let label = ["uncapped", "capped  "][which];
        println!(
            "  round {round}: {label} {:>7.1} MiB/s  cpu {:.2} s ({:.2} cpu-s/GiB)",
            mib_s(r.wire, r.took),
            r.cpu.as_secs_f64(),
            r.cpu.as_secs_f64() / (r.wire as f64 / (1u64 << 30) as f64)
        );
        totals[which].0 += r.wire;
        totals[which].1 += r.took;
        totals[which].2 += r.cpu;
    }
    let rate = |t: (u64, Duration, Duration)| mib_s(t.0, t.1);
    let per_gib =
        |t: (u64, Duration, Duration)| t.2.as_secs_f64() / (t.0 as f64 / (1u64 << 30) as f64);
    println!(
        "  uncapped {:.1} MiB/s, {:.2} cpu-s/GiB; capped {:.1} MiB/s, {:.2} cpu-s/GiB; throughput ratio capped/uncapped {:.3}, cpu ratio {:.3}",
        rate(totals[0]),
        per_gib(totals[0]),
        rate(totals[1]),
        per_gib(totals[1]),
        rate(totals[1]) / rate(totals[0]),
        per_gib(totals[1]) / per_gib(totals[0]),
    );
}
