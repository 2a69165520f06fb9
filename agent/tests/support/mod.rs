//! A `coboxd mount` process driven by the tests of real mounts, and trees to write and
//! compare through them.
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coboxd::mount::{is_mounted, is_stale};

/// A `coboxd mount` process.
pub struct Mount {
    child: Option<Child>,
    at: PathBuf,
}

/// `coboxd mount` of the space `test` of the device in `data` at `at`.
pub fn mount_command(data: &Path, at: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coboxd"));
    c.args([
        "mount",
        "--create",
        "--space",
        "test",
        "--device-name",
        "tester",
        "--data-dir",
    ])
    .arg(data)
    .arg(at)
    .env("RUST_LOG", "warn");
    c
}

impl Mount {
    pub fn start(data: &Path, at: &Path) -> Mount {
        Mount::start_with(data, at, &[])
    }

    /// [`Mount::start`] with more arguments for `coboxd mount`.
    pub fn start_with(data: &Path, at: &Path, args: &[&str]) -> Mount {
        let child = mount_command(data, at)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("coboxd starts");
        let m = Mount {
            child: Some(child),
            at: at.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(at) {
            assert!(
                Instant::now() < deadline,
                "the space did not mount at {}",
                at.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Stop with SIGTERM and wait: a clean unmount.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "coboxd exited with {status}");
        assert!(!is_mounted(&self.at), "still mounted after a clean stop");
    }

    /// kill -9: the mount is left stale.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.at) || is_stale(&self.at) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.at)
                .status();
        }
    }
}

pub fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// BLAKE2b of every file under `root`, with its mode, by relative path.
pub fn fingerprint(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if meta.is_dir() {
                out.insert(
                    format!("{rel}/"),
                    (meta.permissions().mode() & 0o777, vec![]),
                );
                stack.push(p);
            } else {
                let mut state = libsodium_rs::crypto_generichash::State::new(None, 32).unwrap();
                let mut f = std::fs::File::open(&p).unwrap();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    state.update(&buf[..n]);
                }
                out.insert(rel, (meta.permissions().mode() & 0o777, state.finalize()));
            }
        }
    }
    out
}

/// A tree of `count` small and medium files in nested directories, plus one big file.
pub fn make_tree(root: &Path, count: usize, big: usize) {
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..count {
        let dir = root.join(format!("d{}/e{}", i % 10, i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let size = match i % 5 {
            0 => 0,
            1 => (next() % 100) as usize,
            2 => (next() % 10_000) as usize,
            3 => 65_536 + (i % 3) - 1,
            _ => (next() % 300_000) as usize,
        };
        let data: Vec<u8> = (0..size).map(|_| next() as u8).collect();
        let path = dir.join(format!("f{i}.bin"));
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(if i % 4 == 0 { 0o600 } else { 0o644 }),
        )
        .unwrap();
    }
    let mut f = std::fs::File::create(root.join("big.bin")).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|_| next() as u8).collect();
    for _ in 0..big {
        f.write_all(&chunk).unwrap();
    }
}
