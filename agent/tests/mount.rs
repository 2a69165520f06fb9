//! Real FUSE mounts of a space, driven by the tools people use: rsync, cp, mv, rm,
//! editors' save-by-rename, and kill -9 of the process holding the mount.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coboxd::mount::{is_mounted, is_stale};
use support::{Mount, fingerprint, make_tree, mount_command, sh};

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
        // Raised by the agent right after the mount appears.
        let mut kib = readahead_kib(&at);
        for _ in 0..50 {
            if kib == 4096 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            kib = readahead_kib(&at);
        }
        assert_eq!(
            kib, 4096,
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
    // Each version made durable is kept (here by fsync; else by the next commit).
    let durable = |path: &Path, text: &str| {
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    };
    durable(&at.join("docs/a.md"), "one\n");
    std::thread::sleep(Duration::from_millis(5));
    durable(&at.join("docs/a.md"), "two\n");
    std::fs::remove_file(at.join("docs/a.md")).unwrap();
    std::fs::write(at.join("b.txt"), "bee\n").unwrap();
    // A file written and removed within one commit interval was never recorded.
    std::fs::write(at.join("scratch.tmp"), "gone\n").unwrap();
    std::fs::remove_file(at.join("scratch.tmp")).unwrap();
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
    // fsync of any file commits every change waiting.
    std::fs::File::open(at.join("b.txt"))
        .unwrap()
        .sync_all()
        .unwrap();
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
    std::fs::File::open(at.join("docs/a.md"))
        .unwrap()
        .sync_all()
        .unwrap();
    assert_eq!(names(&versions.join("docs/a.md")).len(), 3);
    m.stop();
}

/// `stat` and directory listings are answered while the space's lock is held (a commit
/// syncing, a read fetching blocks): they read the space's view, not the space.
#[test]
fn stat_and_listing_do_not_wait_for_the_spaces_lock() {
    use coboxd::space::Space;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let (data, at) = (tmp.path().join("data"), tmp.path().join("mnt"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = cobox_keys::KeyStore::new(&data);
    let (parent, _) = store.load_or_create_parent().unwrap();
    let keys = cobox_keys::SpaceKeys::generate("s");
    let space = rt
        .block_on(Space::open(&data, &parent, keys, "dev"))
        .unwrap();
    let staging = space.layout().staging();
    let space = Arc::new(tokio::sync::Mutex::new(space));
    let mounted = coboxd::mount::mount(space.clone(), rt.handle().clone(), &at, staging).unwrap();
    std::fs::create_dir(at.join("docs")).unwrap();
    std::fs::write(at.join("docs/a.txt"), "hello\n").unwrap();
    // Past the kernel's one-second cache of names and attributes: the next stat asks us.
    std::thread::sleep(Duration::from_millis(1500));
    let held = rt.block_on(space.lock());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let at = at.clone();
        std::thread::spawn(move || {
            let size = std::fs::metadata(at.join("docs/a.txt")).map(|m| m.len());
            let names: Vec<String> = std::fs::read_dir(at.join("docs"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            tx.send((size.ok(), names)).unwrap();
        })
    };
    let answered = rx.recv_timeout(Duration::from_secs(20));
    drop(held);
    reader.join().unwrap();
    assert_eq!(
        answered.expect("stat waited for the space's lock"),
        (Some(6), vec!["a.txt".to_string()])
    );
    // A long listing (attributes carried by the listing) shows each file as it is.
    std::fs::write(at.join("docs/b.txt"), "bee bee\n").unwrap();
    std::fs::set_permissions(
        at.join("docs/b.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut long: Vec<(String, u64, u32)> = std::fs::read_dir(at.join("docs"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            (
                e.file_name().into_string().unwrap(),
                m.len(),
                m.permissions().mode() & 0o777,
            )
        })
        .collect();
    long.sort();
    assert_eq!(
        long,
        [
            ("a.txt".to_string(), 6, 0o644),
            ("b.txt".to_string(), 8, 0o600)
        ]
    );
    drop(mounted);
}
