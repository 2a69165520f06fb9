//! The durability contract of a mounted space under `kill -9`: every file fsync-ed, and
//! every file closed more than a commit interval before, survives; no file is torn; a peer
//! merges the same tree; an interrupted rsync leaves nothing half-written.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Mount, fingerprint, make_tree, sh};

/// Version `v` of file `i` of writer `w`: its size (0 to 20 KiB, most near 4 KiB) and
/// bytes depend only on (w, i, v), and every version starts with a header naming them.
fn versioned(w: u64, i: u64, v: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (w << 48) ^ (i << 8) ^ v;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let size = match next() % 8 {
        0 => 0,
        1 => 20 * 1024,
        _ => 4096 + (next() % 64) as usize,
    };
    let mut out = format!("w{w} i{i} v{v}\n").into_bytes();
    out.extend((0..size).map(|_| next() as u8));
    out
}

/// One close a writer saw return: which version, when, and whether an fsync followed.
#[derive(Debug, Clone, Copy)]
struct Closed {
    w: u64,
    i: u64,
    v: u64,
    at: Instant,
    fsynced: bool,
}

/// The version of file (w, i) that `bytes` is, if it is exactly one.
fn which_version(w: u64, i: u64, bytes: &[u8]) -> Option<u64> {
    (0..2).find(|&v| bytes == versioned(w, i, v).as_slice())
}

#[test]
fn kill_9_under_concurrent_writers_keeps_every_fsync_and_every_commit_and_tears_nothing() {
    // Closes older than this at the kill must be durable: the 200 ms interval, plus room
    // for the sync itself on a machine busy with other tests.
    const DURABLE_AFTER: Duration = Duration::from_millis(2000);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("kill points from seed {seed}");
    for round in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let tmp = tempfile::tempdir().unwrap();
        let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
        let m = Mount::start_with(&data, &at, &["--commit-interval", "200ms"]);
        // Two writers: each writes new files, rewrites every fifth one (O_TRUNC, as
        // editors and cp do), and fsyncs every seventh, until the mount goes away.
        let closed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Closed>::new()));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (at, closed) = (at.clone(), closed.clone());
                std::thread::spawn(move || {
                    let dir = at.join(format!("w{w}"));
                    if std::fs::create_dir(&dir).is_err() {
                        return;
                    }
                    for i in 0.. {
                        let versions = if i % 5 == 0 { 2 } else { 1 };
                        for v in 0..versions {
                            let path = dir.join(format!("f{i}"));
                            let Ok(mut f) = std::fs::File::create(&path) else {
                                return;
                            };
                            if f.write_all(&versioned(w, i, v)).is_err() {
                                return;
                            }
                            let fsync = i % 7 == 0;
                            if fsync && f.sync_all().is_err() {
                                return;
                            }
                            drop(f);
                            closed.lock().unwrap().push(Closed {
                                w,
                                i,
                                v,
                                at: Instant::now(),
                                fsynced: fsync,
                            });
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2000 + seed % 2000));
        let killed_at = Instant::now();
        m.kill();
        for w in writers {
            let _ = w.join();
        }
        let closed = closed.lock().unwrap().clone();

        let m = Mount::start(&data, &at);
        let mut durable = BTreeMap::new();
        for c in &closed {
            if c.fsynced || killed_at.duration_since(c.at) > DURABLE_AFTER {
                durable.insert((c.w, c.i), c.v);
            }
        }
        let mut present = 0;
        for w in 0..2u64 {
            let Ok(entries) = std::fs::read_dir(at.join(format!("w{w}"))) else {
                assert!(
                    !durable.keys().any(|(x, _)| *x == w),
                    "round {round}: writer {w}'s directory is gone"
                );
                continue;
            };
            for e in entries {
                let name = e.unwrap().file_name().into_string().unwrap();
                let i: u64 = name[1..].parse().unwrap();
                let bytes = std::fs::read(at.join(format!("w{w}")).join(&name)).unwrap();
                // A created file is durable with its content, so a file shows nothing
                // but a whole version (or, created just before the kill, nothing yet).
                let v = which_version(w, i, &bytes);
                assert!(
                    v.is_some() || bytes.is_empty(),
                    "round {round}: w{w}/{name} is torn ({} bytes, starting {:?})",
                    bytes.len(),
                    String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
                );
                if let (Some(v), Some(&want)) = (v, durable.get(&(w, i))) {
                    assert!(
                        v >= want,
                        "round {round}: w{w}/{name} went back to version {v} from {want}"
                    );
                }
                present += 1;
            }
        }
        for ((w, i), v) in &durable {
            let bytes = std::fs::read(at.join(format!("w{w}/f{i}")))
                .unwrap_or_else(|e| panic!("round {round}: durable w{w}/f{i} (v{v}) lost: {e}"));
            assert!(
                which_version(*w, *i, &bytes).is_some_and(|got| got >= *v),
                "round {round}: durable w{w}/f{i} does not hold version {v} or later"
            );
        }
        eprintln!(
            "round {round}: killed after {} closes; {} were durable by the contract, {present} files present",
            closed.len(),
            durable.len()
        );
        assert!(
            !durable.is_empty(),
            "round {round}: nothing was durable yet"
        );
        m.stop();
        merges_identically_on_a_peer(&data, tmp.path());
    }
}

/// The space `test` in `data`, copied to a new device by verified proofs, shows the same
/// tree there, every file with the same blocks.
fn merges_identically_on_a_peer(data: &Path, root: &Path) {
    use coboxd::space::Space;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = cobox_keys::KeyStore::new(data);
        let (parent, _) = store.load_or_create_parent().unwrap();
        let keys = store.find_space("test").unwrap().unwrap();
        let mut a = Space::open(data, &parent, keys.clone(), "tester")
            .await
            .unwrap();
        let peer_dir = root.join("peer");
        let (peer_parent, _) = cobox_keys::KeyStore::new(&peer_dir)
            .load_or_create_parent()
            .unwrap();
        let mut b = Space::open(&peer_dir, &peer_parent, keys, "peer")
            .await
            .unwrap();
        for key in [a.log_key(), a.content_key()] {
            let src = a.feeds_mut().get(&key).await.unwrap().unwrap();
            let dst = b.feeds_mut().replica(&key).await.unwrap();
            let mut to = dst.lock().await;
            coboxd::feed::copy::copy_missing(&mut *src.lock().await, &mut to)
                .await
                .unwrap();
            dst.publish(&to);
        }
        b.add_log(a.log_key()).await.unwrap();
        let tree = |s: &Space| {
            let mut out = BTreeMap::new();
            let mut dirs = vec![String::new()];
            while let Some(d) = dirs.pop() {
                for (name, node) in s.children(&d).unwrap() {
                    let path = if d.is_empty() {
                        name
                    } else {
                        format!("{d}/{name}")
                    };
                    if node.blocks.is_none() {
                        dirs.push(path.clone());
                    }
                    out.insert(path, (node.size, node.blocks));
                }
            }
            out
        };
        let (ta, tb) = (tree(&a), tree(&b));
        assert!(!ta.is_empty());
        assert!(ta == tb, "the peer's tree differs");
    });
}

#[test]
fn kill_9_during_an_rsync_of_small_files_tears_none_and_a_second_rsync_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 1500, 0);
    let want = fingerprint(&src);
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    let mut rsync = Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", at.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    std::thread::sleep(Duration::from_millis(800 + seed % 1500));
    m.kill();
    let _ = rsync.wait();

    let m = Mount::start(&data, &at);
    let got = fingerprint(&at);
    let mut whole = 0;
    for (path, (mode, hash)) in &got {
        let name = path.rsplit('/').next().unwrap();
        if path.ends_with('/') {
            continue;
        }
        if let Some(rest) = name.strip_prefix('.') {
            // rsync's temporary file: what it had closed (or the empty file it created).
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let of = rest.rsplit_once('.').map_or(rest, |(n, _)| n);
            let original = if dir.is_empty() {
                of.to_string()
            } else {
                format!("{dir}/{of}")
            };
            let empty = libsodium_rs::crypto_generichash::State::new(None, 32)
                .unwrap()
                .finalize();
            assert!(
                *hash == empty || want.get(&original).is_some_and(|(_, h)| h == hash),
                "{path} is torn"
            );
            continue;
        }
        let (want_mode, want_hash) = want
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the source"));
        assert!(want_hash == hash, "{path} is torn");
        assert_eq!(want_mode, mode, "{path}'s mode");
        whole += 1;
    }
    eprintln!("killed with {whole} of {} files in place", want.len());
    // A second rsync puts everything in place, temporary files gone.
    sh(
        &at,
        &format!("rsync -a --delete {}/ {}/", src.display(), at.display()),
    );
    assert_eq!(fingerprint(&at), want);
    m.stop();
}
