//! Real FUSE mounts of a space, driven by the tools people use: rsync, cp, mv, rm,
//! editors' save-by-rename, and kill -9 of the process holding the mount.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coboxd::mount::{is_mounted, is_stale};

/// A `coboxd mount` process.
struct Mount {
    child: Option<Child>,
    at: PathBuf,
}

/// `coboxd mount` of the space `test` of the device in `data` at `at`.
fn mount_command(data: &Path, at: &Path) -> Command {
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
    fn start(data: &Path, at: &Path) -> Mount {
        let child = mount_command(data, at)
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
    fn stop(mut self) {
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
    fn kill(mut self) {
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

fn sh(dir: &Path, script: &str) {
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
fn fingerprint(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
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
fn make_tree(root: &Path, count: usize, big: usize) {
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

#[test]
fn an_rsynced_tree_survives_unmount_and_remount_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, data, at) = (
        tmp.path().join("src"),
        tmp.path().join("data"),
        tmp.path().join("mnt"),
    );
    make_tree(&src, 1000, 100);
    let m = Mount::start(&data, &at);
    if rustix::process::geteuid().is_root() {
        assert_eq!(
            readahead_kib(&at),
            4096,
            "sequential reads reach the space in large requests"
        );
    }
    let out = Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", at.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = fingerprint(&src);
    assert_eq!(expected.keys().filter(|k| !k.ends_with('/')).count(), 1001);
    assert_eq!(
        fingerprint(&at),
        expected,
        "the mount matches the source before unmounting"
    );
    m.stop();

    let m = Mount::start(&data, &at);
    assert_eq!(
        fingerprint(&at),
        expected,
        "the mount matches the source after remounting"
    );
    // rsync -a kept modification times: a second run has nothing to copy.
    let out = Command::new("rsync")
        .args(["-a", "--itemize-changes"])
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", at.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let changes = String::from_utf8_lossy(&out.stdout);
    assert!(
        changes.lines().all(|l| !l.starts_with(">f")),
        "rsync re-copied files:\n{changes}"
    );
    m.stop();
    // No plaintext of the big file is in the data directory.
    let marker = std::fs::read(src.join("big.bin")).unwrap()[..64].to_vec();
    let feeds = fingerprint(&data);
    assert!(!feeds.is_empty());
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(64).any(|w| w == marker.as_slice()),
            "plaintext in {}",
            entry.display()
        );
    }
}

/// The readahead the kernel uses for the file system mounted at `at`, in KiB.
fn readahead_kib(at: &Path) -> u32 {
    let st = rustix::fs::stat(at).unwrap();
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    std::fs::read_to_string(format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn everyday_file_operations_behave_like_a_local_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    sh(
        &at,
        "mkdir -p a/b/c && echo hello > a/b/c/x.txt && cp -r a copy && ls copy/b/c/x.txt",
    );
    sh(&at, "test \"$(cat copy/b/c/x.txt)\" = hello");
    sh(
        &at,
        "echo more >> a/b/c/x.txt && test \"$(cat a/b/c/x.txt)\" = \"$(printf 'hello\\nmore')\"",
    );
    sh(
        &at,
        "truncate -s 3 a/b/c/x.txt && test \"$(cat a/b/c/x.txt)\" = hel",
    );
    sh(&at, "truncate -s 0 a/b/c/x.txt && test ! -s a/b/c/x.txt");
    sh(
        &at,
        "mv copy moved && test ! -e copy && test -f moved/b/c/x.txt",
    );
    sh(
        &at,
        "chmod 600 moved/b/c/x.txt && test \"$(stat -c %a moved/b/c/x.txt)\" = 600",
    );
    sh(
        &at,
        "touch -d '2020-01-02 03:04:05' moved/b/c/x.txt && test \"$(stat -c %Y moved/b/c/x.txt)\" = \"$(date -d '2020-01-02 03:04:05' +%s)\"",
    );
    sh(&at, "rm -r moved && test ! -e moved && ls a/b/c");
    sh(&at, "if rmdir a 2>/dev/null; then exit 1; fi");
    sh(&at, "if mkdir a 2>/dev/null; then exit 1; fi");
    m.stop();
    let m = Mount::start(&data, &at);
    sh(
        &at,
        "test -d a/b/c && test ! -e moved && test -f a/b/c/x.txt && test ! -s a/b/c/x.txt",
    );
    m.stop();
}

#[test]
fn an_editor_style_save_replaces_the_file_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    std::fs::write(at.join("notes.md"), "first draft\n").unwrap();
    // Write a temporary file, sync it, rename it over the original (gedit, VS Code, vim's
    // writebackup).
    let tmpfile = at.join(".notes.md.swp");
    let mut f = std::fs::File::create(&tmpfile).unwrap();
    f.write_all(b"second draft\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&tmpfile, at.join("notes.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(at.join("notes.md")).unwrap(),
        "second draft\n"
    );
    let names: Vec<String> = std::fs::read_dir(&at)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["notes.md"]);
    m.stop();
    let m = Mount::start(&data, &at);
    assert_eq!(
        std::fs::read_to_string(at.join("notes.md")).unwrap(),
        "second draft\n"
    );
    m.stop();
}

#[test]
fn kill_9_leaves_no_corrupt_feed_and_the_next_start_mounts_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    let write = |i: usize| {
        std::fs::write(
            at.join(format!("kept-{i}.txt")),
            format!("file {i}\n").repeat(1000),
        )
        .unwrap()
    };
    // Closed more than the commit interval (1 s) before the kill: durable.
    (0..10).for_each(write);
    std::thread::sleep(Duration::from_millis(1500));
    // Closed just before, then one fsync: durable with it, as everything closed before.
    (10..20).for_each(write);
    std::fs::File::open(at.join("kept-19.txt"))
        .unwrap()
        .sync_all()
        .unwrap();
    // Kill while a large write is under way.
    let writer = {
        let at = at.clone();
        std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::File::create(at.join("interrupted.bin")) {
                let chunk = vec![7u8; 1 << 20];
                for _ in 0..200 {
                    if f.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    m.kill();
    let _ = writer.join();
    assert!(
        is_stale(&at) || !is_mounted(&at),
        "after kill -9 the mount is stale or gone"
    );

    let m = Mount::start(&data, &at);
    for i in 0..20 {
        assert_eq!(
            std::fs::read_to_string(at.join(format!("kept-{i}.txt"))).unwrap(),
            format!("file {i}\n").repeat(1000)
        );
    }
    if let Ok(bytes) = std::fs::read(at.join("interrupted.bin")) {
        assert!(
            bytes.iter().all(|b| *b == 7),
            "an interrupted file holds only what was written"
        );
    }
    std::fs::write(at.join("after.txt"), "still writable").unwrap();
    m.stop();
    let m = Mount::start(&data, &at);
    assert_eq!(
        std::fs::read_to_string(at.join("after.txt")).unwrap(),
        "still writable"
    );
    m.stop();
}

#[test]
fn interleaved_writers_seeks_and_reads_while_writing_land_intact() {
    use std::io::{Read, Seek, SeekFrom};
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    let block: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    // Two files written at once: only one can stream; the other's commit moves it aside.
    let mut a = std::fs::File::create(at.join("a.bin")).unwrap();
    let mut b = std::fs::File::create(at.join("b.bin")).unwrap();
    for _ in 0..3 {
        a.write_all(&block).unwrap();
        b.write_all(&block[..1000]).unwrap();
    }
    drop(b);
    a.write_all(b"tail").unwrap();
    drop(a);
    let mut expected_a = block.repeat(3);
    expected_a.extend_from_slice(b"tail");
    assert_eq!(std::fs::read(at.join("a.bin")).unwrap(), expected_a);
    assert_eq!(
        std::fs::read(at.join("b.bin")).unwrap(),
        block[..1000].repeat(3)
    );
    // A write behind the end of what was written, then reading back through the same file.
    let mut c = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(at.join("c.bin"))
        .unwrap();
    c.write_all(&block).unwrap();
    c.seek(SeekFrom::Start(10)).unwrap();
    c.write_all(b"XYZ").unwrap();
    c.seek(SeekFrom::Start(0)).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    let mut expected_c = block.clone();
    expected_c[10..13].copy_from_slice(b"XYZ");
    assert_eq!(back, expected_c);
    drop(c);
    // Rewriting the middle of an existing file keeps the rest.
    let mut d = std::fs::OpenOptions::new()
        .write(true)
        .open(at.join("c.bin"))
        .unwrap();
    d.seek(SeekFrom::Start(150_000)).unwrap();
    d.write_all(b"middle").unwrap();
    drop(d);
    expected_c[150_000..150_006].copy_from_slice(b"middle");
    m.stop();
    let m = Mount::start(&data, &at);
    assert_eq!(std::fs::read(at.join("c.bin")).unwrap(), expected_c);
    assert_eq!(std::fs::read(at.join("a.bin")).unwrap(), expected_a);
    m.stop();
}

/// Chunk `i` (1 MiB) of file `f` of the large-space test: a random-looking buffer with the
/// file, chunk and block stamped into each 64 KiB block, so that every block differs (equal
/// blocks are stored once).
fn big_chunk(base: &[u8], f: u64, i: u64) -> Vec<u8> {
    let mut c = base.to_vec();
    for (b, block) in c.chunks_mut(64 * 1024).enumerate() {
        block[..8].copy_from_slice(&f.to_le_bytes());
        block[8..16].copy_from_slice(&i.to_le_bytes());
        block[16..24].copy_from_slice(&(b as u64).to_le_bytes());
    }
    c
}

#[test]
fn a_space_past_two_gib_stops_restarts_and_reads_back_every_byte() {
    // 2 GiB of content is 32,768 blocks of 64 KiB: the first size the reference
    // implementation could not reopen. Four files of 528 MiB pass it.
    let (files, chunks) = (4u64, 528u64);
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    std::fs::create_dir_all(&at).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let base: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let m = Mount::start(&data, &at);
    for f in 0..files {
        let mut out = std::fs::File::create(at.join(format!("big-{f}.bin"))).unwrap();
        for i in 0..chunks {
            out.write_all(&big_chunk(&base, f, i)).unwrap();
        }
        out.sync_all().unwrap();
    }
    m.stop();
    // The content feed is past a bitfield page.
    let spaces = std::fs::read_dir(data.join("spaces")).unwrap();
    let space = spaces
        .map(|e| e.unwrap().path())
        .find(|p| p.join("space.key").exists())
        .unwrap();
    let biggest = std::fs::read_dir(space.join("feeds"))
        .unwrap()
        .map(|e| {
            std::fs::metadata(e.unwrap().path().join("bitfield"))
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    assert!(biggest > 4096, "bitfield of {biggest} bytes");
    let m = Mount::start(&data, &at);
    for f in 0..files {
        let mut input = std::fs::File::open(at.join(format!("big-{f}.bin"))).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..chunks {
            std::io::Read::read_exact(&mut input, &mut buf).unwrap();
            assert!(buf == big_chunk(&base, f, i), "file {f}, MiB {i}");
        }
        let mut rest = vec![];
        std::io::Read::read_to_end(&mut input, &mut rest).unwrap();
        assert!(rest.is_empty(), "file {f} is longer");
    }
    m.stop();
}

/// `coboxd mount` at `at`, expected to refuse: its exit status and what it said.
fn refused_mount(data: &Path, at: &Path) -> String {
    let out = mount_command(data, at).output().expect("coboxd runs");
    assert!(
        !out.status.success(),
        "mounting at {} was refused",
        at.display()
    );
    assert!(!is_mounted(at), "{} is not mounted", at.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_mount_never_hides_files_or_lands_on_a_system_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Files written into the mount point while nothing was mounted stay in view.
    let at = tmp.path().join("m");
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(at.join("notes.txt"), "written while unmounted\n").unwrap();
    let said = refused_mount(&data, &at);
    assert!(
        said.contains("is not empty (1 entries: notes.txt)"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(at.join("notes.txt")).unwrap(),
        "written while unmounted\n"
    );
    // Moved away, the mount goes ahead.
    std::fs::rename(at.join("notes.txt"), tmp.path().join("notes.txt")).unwrap();
    Mount::start(&data, &at).stop();
    // The system's directories are refused whatever validation said.
    for system in ["/etc", "/usr/share/cobox-test"] {
        let said = refused_mount(&data, Path::new(system));
        assert!(
            said.contains("refused") && said.contains("system"),
            "{said}"
        );
    }
    assert!(!Path::new("/usr/share/cobox-test").exists());
}

#[test]
fn earlier_versions_are_read_only_files_under_a_hidden_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let m = Mount::start(&data, &at);
    std::fs::create_dir(at.join("docs")).unwrap();
    std::fs::write(at.join("docs/a.md"), "one\n").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    std::fs::write(at.join("docs/a.md"), "two\n").unwrap();
    std::fs::remove_file(at.join("docs/a.md")).unwrap();
    std::fs::write(at.join("b.txt"), "bee\n").unwrap();
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // Not listed (a copy of the mount copies no versions), reached by name.
    assert_eq!(names(&at), ["b.txt", "docs"]);
    let versions = at.join(".cobox/versions");
    assert_eq!(names(&versions), ["b.txt", "docs"]);
    assert_eq!(names(&versions.join("docs")), ["a.md"]);
    let kept = names(&versions.join("docs/a.md"));
    assert_eq!(kept.len(), 2, "{kept:?}");
    let read = |name: &str| std::fs::read_to_string(versions.join("docs/a.md").join(name)).unwrap();
    assert_eq!(
        (read(&kept[0]).as_str(), read(&kept[1]).as_str()),
        ("one\n", "two\n")
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(&kept[0]).is_ok(),
        "named by the time it was written: {}",
        kept[0]
    );
    let first = versions.join("docs/a.md").join(&kept[0]);
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o444
    );

    // Nothing in it can be changed; a version is put back by copying it out.
    let erofs = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(30), "{what}: {e}");
    };
    erofs(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .map(drop),
        "writing a version",
    );
    erofs(std::fs::remove_file(&first), "deleting a version");
    erofs(
        std::fs::write(versions.join("new"), "x").map(drop),
        "creating a file",
    );
    erofs(
        std::fs::create_dir(versions.join("d")),
        "making a directory",
    );
    erofs(
        std::fs::rename(&first, at.join("moved.md")),
        "moving a version out",
    );
    std::fs::copy(&first, at.join("docs/a.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(at.join("docs/a.md")).unwrap(),
        "one\n"
    );
    assert_eq!(names(&versions.join("docs/a.md")).len(), 3);
    m.stop();
}

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
        let child = mount_command(&data, &at)
            .args(["--commit-interval", "200ms"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let m = Mount {
            child: Some(child),
            at: at.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&at) {
            assert!(Instant::now() < deadline, "the space did not mount");
            std::thread::sleep(Duration::from_millis(20));
        }
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
