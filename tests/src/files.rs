//! Files of end-to-end tests: a corpus with distinctive plaintext, trees read back whole,
//! and the sizes of the feeds a device stores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files of a tree (relative path → bytes), sorted. A file or directory that vanishes
/// while it is read, a mount whose agent is gone (being restarted), or a file whose content
/// no connected peer holds yet (ENODATA: listed from a log that arrived before the peer
/// holding its blocks connected) is left out; any other error reading one fails the test.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    /// Linux's "no data available".
    const ENODATA: i32 = 61;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let gone = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotConnected
            )
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if gone(&e) => return,
            Err(e) => panic!("cannot list {}: {e}", dir.display()),
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
                continue;
            }
            match std::fs::read(&p) {
                Ok(bytes) => {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, bytes);
                }
                Err(e) if gone(&e) || e.raw_os_error() == Some(ENODATA) => {}
                Err(e) => panic!("cannot read {}: {e}", p.display()),
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// The bytes of the hypercore data files under `dir`.
pub fn data_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "data"))
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub const MARKER: &str = "cobox-plaintext-marker";

/// A corpus with distinctive plaintext: small files, a nested one, one of 3 MiB.
pub fn write_corpus(at: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut want = BTreeMap::new();
    std::fs::create_dir_all(at.join("docs/minutes")).unwrap();
    for i in 0..20 {
        let path = if i % 4 == 0 {
            format!("docs/minutes/m{i}.txt")
        } else {
            format!("note{i}.txt")
        };
        let body = format!("{MARKER} {i} ").repeat(50 + i * 10).into_bytes();
        std::fs::write(at.join(&path), &body).unwrap();
        want.insert(path, body);
    }
    let big = noise(3 << 20, 13);
    std::fs::write(at.join("big.bin"), &big).unwrap();
    want.insert("big.bin".into(), big);
    want
}

/// The size of each feed's data file under `feeds` (a `feeds/` directory), by feed key.
pub fn feed_sizes(feeds: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(feeds)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let size = std::fs::metadata(e.path().join("data")).map_or(0, |m| m.len());
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect()
}

/// `bytes` bytes of xorshift noise from `seed`: no 64 KiB block repeats (equal blocks are
/// stored once, so a test of sizes or rates needs content that does not repeat).
pub fn noise(bytes: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
