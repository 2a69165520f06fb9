//! Sequential write and read of a large file through a mounted space, against the same on
//! the underlying disk in the same run; and create, stat and a long listing of many small files, with every
//! close durable and with the default commit interval (group commit), against the disk
//! with and without an fsync per file.
//!
//! Run: `cargo bench -p coboxd --bench mount_io` (as root or with FUSE access).
//! `COBOX_BENCH_MIB` sets the large file's size (default 1024).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::{KeyStore, SpaceKeys};
use coboxd::space::Space;
use coboxd::space::flush::CommitInterval;

const CHUNK: usize = 1 << 20;

fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// MiB/s writing `mib` MiB to `path` in 1 MiB writes, then fsync and close. Every 64 KiB
/// block differs (a block written before is stored once, which would flatter the mount).
fn write_file(path: &Path, mib: usize) -> f64 {
    let mut chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let start = Instant::now();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    for m in 0..mib {
        for (b, block) in chunk.chunks_mut(64 * 1024).enumerate() {
            block[..8].copy_from_slice(&((m * 16 + b) as u64).to_le_bytes());
        }
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    mib as f64 / start.elapsed().as_secs_f64()
}

/// MiB/s reading `path` in 1 MiB reads.
fn read_file(path: &Path) -> f64 {
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut f = File::open(path).unwrap();
    let mut total = 0usize;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    (total as f64 / CHUNK as f64) / start.elapsed().as_secs_f64()
}

/// Files per second creating `n` files of 4 KiB under `dir` (each synced with `fsync`
/// before its close), then stat-ing each.
fn create_and_stat(dir: &Path, n: usize, fsync: bool) -> (f64, f64) {
    let mut data = vec![7u8; 4096];
    std::fs::create_dir_all(dir).unwrap();
    let start = Instant::now();
    for i in 0..n {
        // Each file differs, so that each is stored.
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let mut f = File::create(dir.join(format!("f{i:05}"))).unwrap();
        f.write_all(&data).unwrap();
        if fsync {
            f.sync_all().unwrap();
        }
    }
    let create = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(
            std::fs::metadata(dir.join(format!("f{i:05}")))
                .unwrap()
                .len(),
            4096
        );
    }
    (create, n as f64 / start.elapsed().as_secs_f64())
}

/// Entries per second listing `dir` with every entry's attributes, as `ls -l` does (after
/// the kernel's one-second cache of names and attributes has expired).
fn list_long(dir: &Path, n: usize) -> f64 {
    std::thread::sleep(Duration::from_millis(1100));
    let start = Instant::now();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(std::fs::symlink_metadata(entry.path()).unwrap().len(), 4096);
        seen += 1;
    }
    assert_eq!(seen, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mib: usize = std::env::var("COBOX_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let files: usize = std::env::var("COBOX_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir_in(
        std::env::var("COBOX_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let mnt = tmp.path().join("mnt");
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = KeyStore::new(&data);
    let (parent, _) = store.load_or_create_parent().unwrap();
    let keys = SpaceKeys::generate("bench");
    store.save_space(&keys).unwrap();
    let mut space = rt
        .block_on(Space::open(&data, &parent, keys, "bench"))
        .unwrap();
    // Every close durable first (the sequential part syncs at its end either way).
    let interval = CommitInterval::new(Duration::ZERO);
    space.set_commit_interval(interval.clone());
    let staging = space.layout().staging();
    let space = Arc::new(tokio::sync::Mutex::new(space));
    coboxd::space::flush::spawn_flusher(rt.handle(), Arc::downgrade(&space), interval.clone());
    let mounted = coboxd::mount::mount(space.clone(), rt.handle().clone(), &mnt, staging).unwrap();

    let cold = drop_caches();
    let rounds = 3;
    println!(
        "sequential {mib} MiB, 1 MiB writes then fsync; reads {}; median of {rounds} interleaved rounds:",
        if cold {
            "after dropping the page cache"
        } else {
            "with a warm page cache (cannot drop it here)"
        }
    );
    let (mut dw, mut mw, mut dr, mut mr) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        dw.push(write_file(&plain.join("big"), mib));
        mw.push(write_file(&mnt.join("big"), mib));
        drop_caches();
        dr.push(read_file(&plain.join("big")));
        drop_caches();
        mr.push(read_file(&mnt.join("big")));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (disk_w, mount_w, disk_r, mount_r) = (
        median(&mut dw),
        median(&mut mw),
        median(&mut dr),
        median(&mut mr),
    );
    println!(
        "  write: disk {disk_w:8.1} MiB/s   mount {mount_w:8.1} MiB/s   ratio {:.2}",
        mount_w / disk_w
    );
    println!(
        "  read:  disk {disk_r:8.1} MiB/s   mount {mount_r:8.1} MiB/s   ratio {:.2}",
        mount_r / disk_r
    );

    // Space log appends: drive operations (directories), each durable before the next.
    let ops = 2_000;
    let start = Instant::now();
    rt.block_on(async {
        let mut s = space.lock().await;
        for i in 0..ops {
            s.mkdir(&format!("log-bench-{i}"), 0o755, i).await.unwrap();
        }
    });
    let log_rate = ops as f64 / start.elapsed().as_secs_f64();
    println!("space log: {ops} operations appended, each durable: {log_rate:.0} ops/s");

    let (dc, ds) = create_and_stat(&plain.join("many"), files, false);
    let (dcf, _) = create_and_stat(&plain.join("many-fsync"), files, true);
    let (mc0, _) = create_and_stat(&mnt.join("many-0s"), files, false);
    interval.set(Duration::from_secs(1));
    let (mc, ms) = create_and_stat(&mnt.join("many"), files, false);
    println!("{files} x 4 KiB files:");
    println!("  create: disk {dc:9.0}/s   disk, fsync each {dcf:9.0}/s");
    println!(
        "  create: mount, every close durable {mc0:9.0}/s   ratio {:.3}",
        mc0 / dc
    );
    println!(
        "  create: mount, commit interval 1s  {mc:9.0}/s   ratio {:.3}   vs fsync each {:.2}",
        mc / dc,
        mc / dcf
    );
    println!(
        "  stat:   disk {ds:9.0}/s   mount {ms:9.0}/s   ratio {:.3}",
        ms / ds
    );
    let (dl, ml) = (
        list_long(&plain.join("many"), files),
        list_long(&mnt.join("many"), files),
    );
    println!(
        "  list with attributes (ls -l): disk {dl:9.0}/s   mount {ml:9.0}/s   ratio {:.3}",
        ml / dl
    );
    mounted.unmount().unwrap();
}
