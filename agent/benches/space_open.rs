//! Restart cost of a space against its size: a space holding 1 GiB and 10 GiB of content
//! (written through its mount), and one whose log holds 10^4 and 10^5 drive operations,
//! is closed cleanly, then opened and mounted five times (median and range): the time from
//! `Space::open` to the first file answering through the mount.
//!
//! Run: `cargo bench -p coboxd --bench space_open` (as root or with FUSE access).
//! `COBOX_BENCH_QUICK=1` skips the 10 GiB space and the 10^5-operation log;
//! `COBOX_BENCH_DIR` sets where the spaces are written (default /var/tmp).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::{KeyStore, Secret32, SpaceKeys};
use coboxd::space::Space;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Open the space and mount it, then wait for `probe` to answer through the mount.
fn open_and_mount(
    rt: &tokio::runtime::Runtime,
    data: &Path,
    parent: &Secret32,
    keys: &SpaceKeys,
    mnt: &Path,
    probe: &str,
) -> (
    Duration,
    coboxd::mount::Mounted,
    Arc<tokio::sync::Mutex<Space>>,
) {
    let start = Instant::now();
    let space = rt
        .block_on(Space::open(data, parent, keys.clone(), "bench"))
        .unwrap();
    let staging = space.layout().staging();
    let space = Arc::new(tokio::sync::Mutex::new(space));
    let m = coboxd::mount::mount(space.clone(), rt.handle().clone(), mnt, staging).unwrap();
    std::fs::metadata(mnt.join(probe)).unwrap();
    (start.elapsed(), m, space)
}

fn close(
    rt: &tokio::runtime::Runtime,
    m: coboxd::mount::Mounted,
    space: Arc<tokio::sync::Mutex<Space>>,
) {
    m.unmount().unwrap();
    rt.block_on(async { space.lock().await.checkpoint().await.unwrap() });
}

fn main() {
    let quick = std::env::var_os("COBOX_BENCH_QUICK").is_some();
    let root = tempfile::tempdir_in(
        std::env::var("COBOX_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("space restart (open + mount + first stat), five runs each, warm page cache:");
    let mut cases: Vec<(String, u64, u64)> = vec![("content 1 GiB".into(), 1, 0)];
    if !quick {
        cases.push(("content 10 GiB".into(), 10, 0));
    }
    cases.push(("log 10^4 operations".into(), 0, 10_000));
    if !quick {
        cases.push(("log 10^5 operations".into(), 0, 100_000));
    }
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
    for (what, gib, ops) in cases {
        let data = root.path().join(format!("data-{gib}-{ops}"));
        let mnt = root.path().join(format!("mnt-{gib}-{ops}"));
        let store = KeyStore::new(&data);
        let (parent, _) = store.load_or_create_parent().unwrap();
        let keys = SpaceKeys::generate("bench");
        store.save_space(&keys).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::create_dir_all(data.join("spaces")).unwrap();
        // Fill it.
        let space = rt
            .block_on(Space::open(&data, &parent, keys.clone(), "bench"))
            .unwrap();
        let staging = space.layout().staging();
        let space = Arc::new(tokio::sync::Mutex::new(space));
        let m = coboxd::mount::mount(space.clone(), rt.handle().clone(), &mnt, staging).unwrap();
        let filled = Instant::now();
        for g in 0..gib {
            let mut f = std::fs::File::create(mnt.join(format!("big-{g}"))).unwrap();
            for _ in 0..1024 {
                f.write_all(&chunk).unwrap();
            }
            f.sync_all().unwrap();
        }
        rt.block_on(async {
            let mut s = space.lock().await;
            for i in 0..ops {
                s.mkdir(&format!("d{i}"), 0o755, i as i64).await.unwrap();
            }
        });
        std::fs::write(mnt.join("probe"), b"probe").unwrap();
        let filled = filled.elapsed();
        close(&rt, m, space);
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let (t, m, space) = open_and_mount(&rt, &data, &parent, &keys, &mnt, "probe");
                close(&rt, m, space);
                t
            })
            .collect();
        times.sort();
        println!(
            "  {what:<22} filled in {:>7.1} s   restart {:>8.1} ms (min {:.1}, max {:.1})",
            filled.as_secs_f64(),
            ms(times[2]),
            ms(times[0]),
            ms(times[4])
        );
        std::fs::remove_dir_all(&data).unwrap();
    }
}
