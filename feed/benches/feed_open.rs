//! How long a feed takes to open against its size: tiny-block feeds of 10^5, 10^6 and 10^7
//! blocks and feeds of 1, 10 and 100 GiB in 64 KiB blocks, each opened five times (median
//! and range), warm page cache; and the hypercore crate opening the same kind of feed at
//! the largest size it can (below 32,768 blocks), in the same run. The 100 GiB feed is
//! written whole (tree, bitfield, header and data), but its data is freed again as it is
//! written (punched out of the file) so that it fits on a small disk: opening reads no
//! block data.
//!
//! Run: `cargo bench -p cobox-feed --bench feed_open` (`COBOX_BENCH_QUICK=1`: skip the
//! 10^7-block, 10 GiB and 100 GiB feeds).

use std::path::Path;
use std::time::{Duration, Instant};

use cobox_feed::Core;
use cobox_feed::crypto::Signer;

const SEED: [u8; 32] = [3; 32];

fn public() -> [u8; 32] {
    Signer::from_seed(&SEED).public()
}

/// Write a feed of `n` blocks, `size(i)` bytes each, in batches; returns the time taken.
fn build(dir: &Path, n: u64, size: impl Fn(u64) -> usize) -> Duration {
    let start = Instant::now();
    let mut core = Core::open(dir, public(), Some(&SEED)).unwrap();
    let batch = if size(0) > 4096 { 256 } else { 65_536 };
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let blocks: Vec<Vec<u8>> = (i..end)
            .map(|j| {
                let mut b = vec![(j % 251) as u8; size(j)];
                b[0] = j as u8;
                b
            })
            .collect();
        core.append(&blocks).unwrap();
        core.commit().unwrap();
        i = end;
    }
    start.elapsed()
}

/// Median, min and max of five opens (each a new `Core` on the same directory).
fn open_times(open: impl Fn() -> u64, n: u64) -> (Duration, Duration, Duration) {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(open(), n);
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[2], times[0], times[4])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, n: u64, built: Duration, (median, min, max): (Duration, Duration, Duration)) {
    println!(
        "{what:<28} {n:>10} blocks  built in {:>8.1} s  open {:>8.2} ms (min {:.2}, max {:.2})",
        built.as_secs_f64(),
        ms(median),
        ms(min),
        ms(max)
    );
}

/// A feed of `gib` GiB of identical 64 KiB blocks (hashed once), its data freed as it goes.
fn build_hollow(dir: &Path, gib: u64) -> Duration {
    let start = Instant::now();
    let mut core = Core::open(dir, public(), Some(&SEED)).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    let hash = cobox_feed::crypto::leaf_hash(&block);
    let batch: Vec<&[u8]> = vec![&block; 1024];
    let hashes = vec![hash; batch.len()];
    let data = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("data"))
        .unwrap();
    for _ in 0..gib * 16 {
        let from = core.byte_len();
        core.append_hashed(&batch, &hashes).unwrap();
        core.commit().unwrap();
        rustix::fs::fallocate(
            &data,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            from,
            core.byte_len() - from,
        )
        .unwrap();
    }
    data.sync_all().unwrap();
    start.elapsed()
}

fn disk_usage(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn main() {
    let quick = std::env::var_os("COBOX_BENCH_QUICK").is_some();
    let root =
        tempfile::tempdir_in(std::env::var_os("COBOX_BENCH_DIR").unwrap_or(".".into())).unwrap();
    println!("feed open time (warm cache), five opens each:");
    let ours = |dir: &Path| {
        let dir = dir.to_path_buf();
        move || Core::open(&dir, public(), Some(&SEED)).unwrap().len()
    };

    // The largest feed the hypercore crate can reopen, opened by both.
    let n = 32_000;
    let dir = root.path().join("reference");
    let built = build(&dir, n, |i| 1 + (i % 8) as usize);
    report("ours, tiny blocks", n, built, open_times(ours(&dir), n));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let theirs = || {
        rt.block_on(async {
            let storage = hypercore::Storage::new_disk(&dir, false).await.unwrap();
            let core = hypercore::HypercoreBuilder::new(storage)
                .open(true)
                .build()
                .await
                .unwrap();
            core.info().length
        })
    };
    report(
        "hypercore crate, same feed",
        n,
        built,
        open_times(theirs, n),
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let tiny: &[u64] = if quick {
        &[100_000, 1_000_000]
    } else {
        &[100_000, 1_000_000, 10_000_000]
    };
    for &n in tiny {
        let dir = root.path().join(format!("tiny-{n}"));
        let built = build(&dir, n, |i| 1 + (i % 8) as usize);
        report("ours, tiny blocks", n, built, open_times(ours(&dir), n));
        println!("{:>41} {} MiB on disk", "", disk_usage(&dir) >> 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let gib: &[u64] = if quick { &[1] } else { &[1, 10] };
    for &g in gib {
        let n = g << 14;
        let dir = root.path().join(format!("content-{g}"));
        let built = build(&dir, n, |_| 64 * 1024);
        report(
            &format!("ours, {g} GiB of 64 KiB"),
            n,
            built,
            open_times(ours(&dir), n),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    if !quick {
        let n = 100 << 14;
        let dir = root.path().join("content-100");
        let built = build_hollow(&dir, 100);
        report(
            "ours, 100 GiB (data freed)",
            n,
            built,
            open_times(ours(&dir), n),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
