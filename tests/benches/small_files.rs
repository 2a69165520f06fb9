//! Ten thousand small files between two devices, side by side with Syncthing in the same
//! run: 10,000 files of 4 KiB (all different, in ten directories) written into the
//! writer's mounted space (a Syncthing folder), timed from the first write until the
//! other device shows every one at its size, and the writing alone.
//!
//! Then `rsync -a` of the same tree from a local directory into the mounted space, against
//! into a plain directory on the same disk.
//!
//! Run: `cargo bench -p cobox-tests --bench small_files` (count: `COBOX_BENCH_FILES`,
//! default 10000; Syncthing from Debian's package `syncthing`, skipped when it is not
//! installed).

use std::path::Path;
use std::time::{Duration, Instant};

use cobox_tests::files::noise;
use cobox_tests::node::two_members;
use cobox_tests::syncthing::{Syncthing, installed};

/// Write `n` files of 4 KiB under `dir`; the seconds it took.
fn write_tree(dir: &Path, n: usize) -> f64 {
    let start = Instant::now();
    for d in 0..10 {
        std::fs::create_dir_all(dir.join(format!("d{d}"))).unwrap();
    }
    for i in 0..n {
        std::fs::write(
            dir.join(format!("d{}/f{i:05}", i % 10)),
            noise(4096, i as u64),
        )
        .unwrap();
    }
    start.elapsed().as_secs_f64()
}

/// How many files of 4 KiB are under `dir`'s ten directories.
fn arrived(dir: &Path) -> usize {
    (0..10)
        .filter_map(|d| std::fs::read_dir(dir.join(format!("d{d}"))).ok())
        .flatten()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.metadata().is_ok_and(|m| m.len() == 4096))
        })
        .count()
}

/// Seconds to write the tree into `src`, and until `dst` shows all of it.
fn run(src: &Path, dst: &Path, n: usize, settle: &dyn Fn()) -> (f64, f64) {
    let start = Instant::now();
    let wrote = write_tree(src, n);
    settle();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while arrived(dst) < n {
        assert!(Instant::now() < deadline, "the files never all arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    (wrote, start.elapsed().as_secs_f64())
}

fn main() {
    let n: usize = std::env::var("COBOX_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let ours = {
        let ((a, agent_a), (b, agent_b)) = two_members(&tmp.path().join("cobox"), "");
        let r = run(
            &a.mount("home").join("tree"),
            &b.mount("home").join("tree"),
            n,
            &|| {},
        );
        // rsync -a of the same tree from a local directory, into the mount and into a
        // plain directory.
        let src = tmp.path().join("src");
        write_tree(&src, n);
        let rsync = |to: &Path| {
            let start = Instant::now();
            let ok = std::process::Command::new("rsync")
                .arg("-a")
                .arg(format!("{}/", src.display()))
                .arg(format!("{}/", to.display()))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "rsync into {} failed", to.display());
            start.elapsed().as_secs_f64()
        };
        let plain = rsync(&tmp.path().join("plain"));
        let mounted = rsync(&a.mount("home").join("rsynced"));
        println!(
            "rsync -a of {n} files: plain directory {plain:.2} s ({:.0} files/s), mounted space {mounted:.2} s ({:.0} files/s): {:.3}x the disk's rate",
            n as f64 / plain,
            n as f64 / mounted,
            plain / mounted
        );
        agent_b.stop();
        agent_a.stop();
        r
    };
    println!(
        "cobox: wrote {n} files in {:.2} s ({:.0} files/s), all on the other device after {:.2} s",
        ours.0,
        n as f64 / ours.0,
        ours.1
    );
    if !installed() {
        println!("syncthing is not installed: no comparison (apt-get install syncthing)");
        return;
    }
    let dir = tmp.path().join("syncthing");
    let (fa, fb) = (dir.join("fa"), dir.join("fb"));
    let (a, _b) = Syncthing::pair(&dir, &fa, &fb);
    let theirs = run(&fa.join("tree"), &fb.join("tree"), n, &|| a.scan());
    println!(
        "syncthing: wrote {n} files in {:.2} s ({:.0} files/s), all on the other device after {:.2} s",
        theirs.0,
        n as f64 / theirs.0,
        theirs.1
    );
    println!(
        "end to end: cobox {:.2} s, Syncthing {:.2} s: {:.2}x Syncthing's time",
        ours.1,
        theirs.1,
        ours.1 / theirs.1
    );
}
