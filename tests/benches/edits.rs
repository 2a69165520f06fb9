//! What an edit of a large file costs, side by side with Syncthing in the same run: two
//! devices on loopback, the writer's file in a mounted space (a Syncthing folder), three
//! workloads — a new file of 1 GiB, 1 MiB appended to it, 1 MiB changed in its middle —
//! each timed from the start of the write until the other device reads the change, with
//! the bytes the other device received and how much its disk grew.
//!
//! Run: `cargo bench -p cobox-tests --bench edits` (size: `COBOX_BENCH_MIB`, default 1024;
//! Syncthing from Debian's package `syncthing`, skipped when it is not installed).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use cobox_tests::files::{data_bytes, files_under, noise};
use cobox_tests::node::two_members;
use cobox_tests::syncthing::Syncthing;

const MIB: u64 = 1 << 20;

/// One workload's figures.
struct Cost {
    secs: f64,
    wire: u64,
    disk: u64,
}

/// Bytes of every file under `dir`.
fn du(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// Bytes of the feeds' data files under `dir` that are on disk (holes left out).
fn held(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    files_under(dir)
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "data"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len().min(m.blocks() * 512))
        .sum()
}

/// Wait until `path` is `len` bytes long and its bytes at `at` are `expect`.
fn wait_for(path: &Path, len: u64, at: u64, expect: &[u8], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let ok = std::fs::File::open(path).is_ok_and(|mut f| {
            f.metadata().is_ok_and(|m| m.len() == len) && {
                let mut got = vec![0u8; expect.len()];
                f.seek(SeekFrom::Start(at)).is_ok()
                    && f.read_exact(&mut got).is_ok()
                    && got == expect
            }
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not arrive within {secs} s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The three workloads against a writer's file `src` and the reader's copy `dst`;
/// `wire()` and `disk()` read the reader's received bytes and disk use; `settle()` runs
/// after each write (Syncthing: ask for a scan at once).
fn workloads(
    src: &Path,
    dst: &Path,
    mib: u64,
    wire: &dyn Fn() -> u64,
    disk: &dyn Fn() -> u64,
    settle: &dyn Fn(),
    complete: &dyn Fn() -> bool,
) -> Vec<(&'static str, Cost)> {
    let mut out = vec![];
    let mut run = |name: &'static str, write: &dyn Fn() -> (u64, u64, Vec<u8>)| {
        let (w0, d0) = (wire(), disk());
        let start = Instant::now();
        let (len, at, expect) = write();
        settle();
        wait_for(dst, len, at, &expect, 1200);
        let deadline = Instant::now() + Duration::from_secs(1200);
        while !complete() {
            assert!(
                Instant::now() < deadline,
                "{name}: the reader never held every block"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let secs = start.elapsed().as_secs_f64();
        // Let the last acknowledgements and index updates land before reading counters.
        std::thread::sleep(Duration::from_secs(2));
        out.push((
            name,
            Cost {
                secs,
                wire: wire() - w0,
                disk: disk().saturating_sub(d0),
            },
        ));
    };
    let size = mib * MIB;
    run("new file", &|| {
        let mut f = std::fs::File::create(src).unwrap();
        for i in 0..mib {
            f.write_all(&noise(MIB as usize, 1000 + i)).unwrap();
        }
        f.sync_all().unwrap();
        let tail = noise(MIB as usize, 1000 + mib - 1);
        (size, size - MIB, tail)
    });
    run("append 1 MiB", &|| {
        let tail = noise(MIB as usize, 1);
        let mut f = std::fs::OpenOptions::new().append(true).open(src).unwrap();
        f.write_all(&tail).unwrap();
        f.sync_all().unwrap();
        (size + MIB, size, tail)
    });
    run("change 1 MiB in the middle", &|| {
        let patch = noise(MIB as usize, 2);
        let mut f = std::fs::OpenOptions::new().write(true).open(src).unwrap();
        f.seek(SeekFrom::Start(size / 2)).unwrap();
        f.write_all(&patch).unwrap();
        f.sync_all().unwrap();
        (size + MIB, size / 2, patch)
    });
    out
}

fn cobox(dir: &Path, mib: u64) -> Vec<(&'static str, Cost)> {
    let ((a, agent_a), (b, agent_b)) = two_members(dir, "");
    let address = a.space_address();
    let feeds_a = a.data().join("spaces").join(&address).join("feeds");
    let feeds_b = b.data().join("spaces").join(&address).join("feeds");
    let costs = workloads(
        &a.mount("home").join("big.bin"),
        &b.mount("home").join("big.bin"),
        mib,
        &|| {
            b.resource("space", "home")["traffic"]["received_bytes"]
                .as_u64()
                .unwrap_or(0)
        },
        &|| du(&feeds_b),
        &|| {},
        // B holds every block A has (a file is shown before its blocks arrive, and
        // blocks fetched out of order leave holes in B's data files).
        &|| held(&feeds_b) == data_bytes(&feeds_a),
    );
    agent_b.stop();
    agent_a.stop();
    costs
}

fn syncthing(dir: &Path, mib: u64) -> Option<Vec<(&'static str, Cost)>> {
    if !cobox_tests::syncthing::installed() {
        return None;
    }
    let (fa, fb) = (dir.join("fa"), dir.join("fb"));
    let (a, b) = Syncthing::pair(dir, &fa, &fb);
    let costs = workloads(
        &fa.join("big.bin"),
        &fb.join("big.bin"),
        mib,
        &|| b.received(),
        &|| du(&fb) + du(&b.home),
        &|| {
            a.scan();
        },
        // Syncthing shows a file only once it is whole (a temporary file renamed).
        &|| true,
    );
    Some(costs)
}

fn main() {
    let mib: u64 = std::env::var("COBOX_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir().unwrap();
    let ours = cobox(&tmp.path().join("cobox"), mib);
    for (name, c) in &ours {
        println!(
            "cobox {name}: {:.2} s, received {:.2} MB, disk +{:.2} MB",
            c.secs,
            c.wire as f64 / 1e6,
            c.disk as f64 / 1e6
        );
    }
    let theirs = syncthing(&tmp.path().join("syncthing"), mib);
    println!("edits of a {mib} MiB file between two devices on loopback");
    println!(
        "{:<28} {:>10} {:>14} {:>14} | {:>10} {:>14} {:>14}",
        "workload", "cobox s", "wire MB", "disk MB", "syncthing s", "wire MB", "disk MB"
    );
    let mb = |b: u64| b as f64 / 1e6;
    for (i, (name, c)) in ours.iter().enumerate() {
        let t = theirs.as_ref().map(|t| &t[i].1);
        println!(
            "{:<28} {:>10.2} {:>14.2} {:>14.2} | {:>10} {:>14} {:>14}",
            name,
            c.secs,
            mb(c.wire),
            mb(c.disk),
            t.map_or("-".into(), |t| format!("{:.2}", t.secs)),
            t.map_or("-".into(), |t| format!("{:.2}", mb(t.wire))),
            t.map_or("-".into(), |t| format!("{:.2}", mb(t.disk))),
        );
    }
    if let Some(t) = &theirs {
        for ((name, c), (_, s)) in ours.iter().zip(t) {
            println!(
                "{name}: time {:.2}x, wire {:.2}x, disk {:.2}x Syncthing's",
                c.secs / s.secs,
                c.wire as f64 / s.wire.max(1) as f64,
                c.disk as f64 / s.disk.max(1) as f64
            );
        }
    } else {
        println!("syncthing is not installed: no comparison (apt-get install syncthing)");
    }
}
