//! Spaces shared by several devices (feeds copied between them through verified proofs, as
//! replication will carry them), seen through a real mount; and the index as derived state.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::{KeyStore, Secret32, SpaceKeys};
use coboxd::feed::copy::copy_missing;
use coboxd::space::flush::CommitInterval;
use coboxd::space::{NodeKind, Space};

struct Device {
    parent: Secret32,
    data: std::path::PathBuf,
}

fn device(root: &Path, name: &str) -> Device {
    let data = root.join(name);
    let (parent, _) = KeyStore::new(&data).load_or_create_parent().unwrap();
    Device { parent, data }
}

async fn open(d: &Device, keys: &SpaceKeys, name: &str) -> Space {
    Space::open(&d.data, &d.parent, keys.clone(), name)
        .await
        .unwrap()
}

async fn write(space: &mut Space, path: &str, data: &[u8], mtime: i64) {
    let mut s = space.begin_content();
    space.content_write(&mut s, data).await.unwrap();
    let extent = space.content_finish(s).await.unwrap();
    space.put_file(path, extent, 0o644, mtime).await.unwrap();
}

/// Bring `to` up to date with `from`'s own feeds, and merge `from`'s log.
async fn sync(from: &mut Space, to: &mut Space) {
    for key in [from.log_key(), from.content_key()] {
        let src = from.feeds_mut().get(&key).await.unwrap().unwrap();
        let dst = to.feeds_mut().replica(&key).await.unwrap();
        let mut to_feed = dst.lock().await;
        copy_missing(&mut *src.lock().await, &mut to_feed)
            .await
            .unwrap();
        dst.publish(&to_feed);
    }
    to.add_log(from.log_key()).await.unwrap();
}

/// One device with a space's keys (not opened yet), and a runtime to open it on.
fn one_device() -> (
    tempfile::TempDir,
    Device,
    SpaceKeys,
    tokio::runtime::Runtime,
) {
    let tmp = tempfile::tempdir().unwrap();
    let a = device(tmp.path(), "a");
    let keys = SpaceKeys::generate("s");
    (tmp, a, keys, tokio::runtime::Runtime::new().unwrap())
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn another_writers_files_and_conflicts_appear_in_a_mount_without_remounting() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (device(tmp.path(), "a"), device(tmp.path(), "b"));
    let keys = SpaceKeys::generate("shared");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let space_a = rt.block_on(open(&a, &keys, "ada"));
    let mut space_b = rt.block_on(open(&b, &keys, "bea"));
    let staging = space_a.layout().staging();
    let space_a = Arc::new(tokio::sync::Mutex::new(space_a));
    let mnt = tmp.path().join("mnt");
    let mounted =
        coboxd::mount::mount(space_a.clone(), rt.handle().clone(), &mnt, staging).unwrap();

    std::fs::write(mnt.join("shared.txt"), "from ada\n").unwrap();
    rt.block_on(async {
        write(&mut space_b, "from-bea.txt", b"hello from bea\n", 1_000).await;
        // Bea edits shared.txt without having seen Ada's version: a concurrent edit.
        write(&mut space_b, "shared.txt", b"from bea\n", 2_000).await;
        sync(&mut space_b, &mut *space_a.lock().await).await;
    });
    eventually("bea's file appearing", || {
        std::fs::read_to_string(mnt.join("from-bea.txt")).is_ok_and(|s| s == "hello from bea\n")
    });
    eventually("the conflict copy appearing", || {
        std::fs::read_dir(&mnt)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".conflict-"))
    });
    let mut contents: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shared.txt")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        ["from ada\n", "from bea\n"],
        "both versions are kept"
    );
    mounted.unmount().unwrap();
}

#[test]
fn the_index_is_derived_state_and_rebuilds_from_the_feeds() {
    let (tmp, a, keys, rt) = one_device();
    let listing = rt.block_on(async {
        let mut s = open(&a, &keys, "ada").await;
        s.mkdir("docs", 0o755, 5).await.unwrap();
        write(&mut s, "docs/a.txt", b"a", 1).await;
        write(&mut s, "b.txt", b"b", 2).await;
        s.rename("b.txt", "docs/b.txt").await.unwrap();
        s.checkpoint().await.unwrap();
        s.children("docs").unwrap()
    });
    assert_eq!(
        listing.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["a.txt", "b.txt"]
    );
    let index = tmp.path().join("a/drive-index");
    assert!(index.exists());
    std::fs::remove_dir_all(&index).unwrap();
    let rebuilt = rt.block_on(async {
        let s = open(&a, &keys, "ada").await;
        assert_eq!(s.node("docs").unwrap().kind, NodeKind::Dir);
        s.children("docs").unwrap()
    });
    assert_eq!(rebuilt, listing);
}

#[test]
fn reopening_reads_only_the_entries_after_the_last_checkpoint() {
    let (_tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut s = open(&a, &keys, "ada").await;
        for i in 0..50 {
            write(&mut s, &format!("f{i}"), b"x", i).await;
        }
        s.checkpoint().await.unwrap();
        drop(s);
        let mut s = open(&a, &keys, "ada").await;
        assert_eq!(s.stats().read, 0, "a clean reopen replays nothing");
        for i in 0..7 {
            write(&mut s, &format!("g{i}"), b"y", i).await;
        }
        // Dropped without a checkpoint, as after a crash.
        drop(s);
        let s = open(&a, &keys, "ada").await;
        assert_eq!(
            s.stats().read,
            7,
            "only the entries after the checkpoint are replayed"
        );
        assert_eq!(s.children("").unwrap().len(), 57);
    });
}

#[test]
fn a_created_file_is_durable_and_shown_to_peers_with_its_content_not_before() {
    let (_tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut s = open(&a, &keys, "ada").await;
        let shown = s.feeds().log().held().length;
        s.create_file("new.txt", 0o600, 1).await.unwrap();
        assert_eq!(
            s.node("new.txt").unwrap().kind,
            NodeKind::File,
            "the file is there on this device at once"
        );
        assert_eq!(
            s.feeds().log().held().length,
            shown,
            "peers are not offered the creation before it is durable"
        );
        // A crash before the file was closed: only the empty file is gone.
        drop(s);
        let mut s = open(&a, &keys, "ada").await;
        assert!(s.node("new.txt").is_none());
        s.create_file("new.txt", 0o600, 2).await.unwrap();
        write(&mut s, "new.txt", b"content", 3).await;
        assert_eq!(
            s.feeds().log().held().length,
            shown + 2,
            "the close makes the creation durable with the content"
        );
        s.create_file("kept.txt", 0o600, 4).await.unwrap();
        s.checkpoint().await.unwrap();
        assert_eq!(
            s.feeds().log().held().length,
            shown + 3,
            "a checkpoint makes what it counts durable"
        );
        drop(s);
        let s = open(&a, &keys, "ada").await;
        assert_eq!(s.stats().read, 0, "the index counted only durable entries");
        let names = top_names(&s);
        assert_eq!(
            names,
            ["kept.txt", "new.txt"],
            "no conflict copy, nothing lost"
        );
        assert_eq!(s.node("new.txt").unwrap().blocks.unwrap().size, 7);
    });
}

/// The bytes of the file at `path`, read block by block.
async fn read(space: &mut Space, path: &str) -> Vec<u8> {
    let blocks = space.node(path).unwrap().blocks.unwrap();
    if let Some(data) = blocks.inline {
        return data.to_vec();
    }
    let mut out = vec![];
    for at in blocks.from(0).collect::<Vec<_>>() {
        out.extend(space.read_block(at).await.unwrap());
    }
    out
}

#[test]
fn a_deleted_file_is_restored_as_it_was_at_a_time_without_storing_its_content_again() {
    let (_tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut s = open(&a, &keys, "ada").await;
        let first = vec![1u8; 200_000];
        write(&mut s, "doc.txt", &first, 1).await;
        let after_first = now_ms();
        tokio::time::sleep(Duration::from_millis(5)).await;
        write(&mut s, "doc.txt", b"second", 2).await;
        s.remove("doc.txt", NodeKind::File).await.unwrap();
        assert!(s.node("doc.txt").is_none());
        let stored = s.feeds().content().lock().await.len();

        let v = s.restore("doc.txt", after_first).await.unwrap();
        assert_eq!(v.meta.size, first.len() as u64);
        assert_eq!(read(&mut s, "doc.txt").await, first);
        assert_eq!(
            s.feeds().content().lock().await.len(),
            stored,
            "a restore stores no content"
        );
        let sizes: Vec<u64> = s.versions("doc.txt").iter().map(|v| v.meta.size).collect();
        assert_eq!(sizes, [200_000, 6, 200_000]);
        assert!(s.restore("doc.txt", after_first - 60_000).await.is_err());
        s.checkpoint().await.unwrap();
        drop(s);
        // The versions survive a reopen (they are in the checkpoint).
        let s = open(&a, &keys, "ada").await;
        assert_eq!(s.versions("doc.txt").len(), 3);
    });
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How many blocks of `space`'s content feed `key` this device holds.
async fn held(space: &mut Space, key: &[u8; 32]) -> u64 {
    let f = space.feeds_mut().get(key).await.unwrap().unwrap();
    let feed = f.lock().await;
    (0..feed.len()).filter(|&i| feed.core().has(i)).count() as u64
}

#[test]
fn reclaiming_clears_only_what_no_file_kept_version_or_open_file_refers_to() {
    use cobox_drive::Retention;
    use cobox_tests::files::noise;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (device(tmp.path(), "a"), device(tmp.path(), "b"));
    let keys = SpaceKeys::generate("s");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut sa = open(&a, &keys, "ada").await;
        let mut sb = open(&b, &keys, "bo").await;
        let own = sa.content_key();
        let (keep, gone, edit1, edit2) = (
            noise(300_000, 1),
            noise(200_000, 2),
            noise(150_000, 3),
            noise(150_000, 4),
        );
        write(&mut sa, "keep.bin", &keep, 1).await;
        write(&mut sa, "gone.bin", &gone, 1).await;
        write(&mut sa, "edit.bin", &edit1, 1).await;
        write(&mut sa, "edit.bin", &edit2, 2).await;
        assert_eq!(held(&mut sa, &own).await, 5 + 4 + 3 + 3);
        // B holds all of it, and (unknown to A) makes a copy of gone.bin.
        sync(&mut sa, &mut sb).await;
        let gone_blocks = sb.node("gone.bin").unwrap().blocks.unwrap();
        sb.put_file("mine.bin", gone_blocks.clone(), 0o644, 3)
            .await
            .unwrap();
        sa.remove("gone.bin", NodeKind::File).await.unwrap();

        // Versions are kept while the retention keeps them; an open file's base too.
        let keep_hour = Retention {
            keep_ms: Some(3_600_000),
            min: 0,
        };
        let r = sa.reclaim(keep_hour, now_ms()).await.unwrap();
        assert_eq!((r.versions, r.cleared), (0, 0));
        let none = Retention {
            keep_ms: Some(0),
            min: 0,
        };
        let open_file = sa.pin(&gone_blocks);
        let r = sa.reclaim(none, now_ms() + 1).await.unwrap();
        assert_eq!((r.versions, r.cleared), (2, 3), "edit.bin's first version");
        assert_eq!(held(&mut sa, &own).await, 5 + 4 + 3);
        drop(open_file);
        let r = sa.reclaim(none, now_ms() + 1).await.unwrap();
        assert_eq!(r.cleared, 4, "gone.bin, once closed");
        assert_eq!(held(&mut sa, &own).await, 5 + 3);
        assert_eq!(read(&mut sa, "keep.bin").await, keep);
        assert_eq!(read(&mut sa, "edit.bin").await, edit2);
        let u = sa.usage().await;
        assert_eq!(u.total.tree, 450_000);
        assert_eq!((u.total.versions, u.reclaimable, u.versions), (0, 0, 0));

        // B takes A's statement: it clears A's blocks except those its own copy refers to.
        let statement = sa.feeds().content().lock().await.statement_bytes().unwrap();
        let st = coboxd::feed::Statement::decode(&own, &statement).unwrap();
        sync(&mut sa, &mut sb).await;
        {
            let f = sb.feeds_mut().get(&own).await.unwrap().unwrap();
            assert!(f.lock().await.take_cleared(st).unwrap());
        }
        assert_eq!(held(&mut sb, &own).await, 15);
        let r = sb.reclaim(none, now_ms() + 1).await.unwrap();
        assert_eq!(
            r.cleared, 3,
            "edit.bin's first version; gone.bin stays for mine.bin"
        );
        assert_eq!(held(&mut sb, &own).await, 12);
        assert_eq!(read(&mut sb, "mine.bin").await, gone);
        assert!(sb.node("gone.bin").is_none());

        // A cleared block is never reused: the same content is stored again.
        let before = sa.feeds().content().lock().await.len();
        write(&mut sa, "again.bin", &gone, 4).await;
        assert_eq!(sa.feeds().content().lock().await.len(), before + 4);
        assert_eq!(read(&mut sa, "again.bin").await, gone);
        // ... and what was cleared stays cleared across a reopen.
        sa.checkpoint().await.unwrap();
        drop(sa);
        let mut sa = open(&a, &keys, "ada").await;
        assert_eq!(held(&mut sa, &own).await, 5 + 3 + 4);
        assert_eq!(read(&mut sa, "keep.bin").await, keep);
        write(&mut sa, "twice.bin", &edit1, 5).await;
        assert_eq!(sa.feeds().content().lock().await.len(), before + 7);
    });
}

/// The names at the top of the space, in order.
fn top_names(space: &Space) -> Vec<String> {
    space
        .children("")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Log entries on this device, durable or not.
async fn log_len(space: &Space) -> u64 {
    space.feeds().log().lock().await.len()
}

#[test]
fn a_file_created_written_touched_and_renamed_within_a_commit_is_one_operation() {
    let (tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut s = open(&a, &keys, "ada").await;
        s.set_commit_interval(CommitInterval::new(Duration::from_secs(60)));
        let before = log_len(&s).await;
        let blocks = s.feeds().content().lock().await.len();
        // What `rsync -a` does for each file: a temporary name, content, times, rename.
        s.create_file(".minutes.md.Xa12", 0o600, 1).await.unwrap();
        write(&mut s, ".minutes.md.Xa12", b"the minutes", 2).await;
        s.set_meta(".minutes.md.Xa12", 0o644, 1_700_000_000_000)
            .await
            .unwrap();
        s.rename(".minutes.md.Xa12", "minutes.md").await.unwrap();
        // A scratch file written and deleted before the commit leaves nothing.
        s.create_file("scratch", 0o600, 3).await.unwrap();
        s.remove("scratch", NodeKind::File).await.unwrap();
        let shown = s.node("minutes.md").unwrap();
        assert_eq!((shown.size, shown.mode), (11, 0o644));
        assert!(s.node(".minutes.md.Xa12").is_none() && s.node("scratch").is_none());
        let names = top_names(&s);
        assert_eq!(names, ["minutes.md"], "listed before it is recorded");
        assert_eq!(
            log_len(&s).await,
            before,
            "nothing recorded before the commit"
        );
        s.sync().await.unwrap();
        assert_eq!(log_len(&s).await, before + 1, "one operation for the file");
        assert_eq!(
            s.feeds().content().lock().await.len(),
            blocks,
            "a small file's content is in its operation: no block"
        );

        // A peer sees only the outcome.
        let b = device(tmp.path(), "b");
        let mut p = open(&b, &keys, "bob").await;
        sync(&mut s, &mut p).await;
        let names = top_names(&p);
        assert_eq!(names, ["minutes.md"]);
        let node = p.node("minutes.md").unwrap();
        assert_eq!((node.mode, node.mtime_ms), (0o644, 1_700_000_000_000));
        assert_eq!(read(&mut p, "minutes.md").await, b"the minutes");
        assert_eq!(
            p.versions(".minutes.md.Xa12").len(),
            0,
            "no trace of the temporary name"
        );
    });
}

#[test]
fn a_file_waiting_for_its_commit_stays_concurrent_with_an_edit_that_arrives_meanwhile() {
    let (tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut ada = open(&a, &keys, "ada").await;
        let b = device(tmp.path(), "b");
        let mut bob = open(&b, &keys, "bob").await;
        write(&mut bob, "plan.md", b"bob's plan", now_ms()).await;
        ada.set_commit_interval(CommitInterval::new(Duration::from_secs(60)));
        write(&mut ada, "plan.md", b"ada's plan", now_ms()).await;
        // Bob's edit arrives before Ada's commits: Ada wrote hers without seeing his.
        sync(&mut bob, &mut ada).await;
        ada.sync().await.unwrap();
        sync(&mut ada, &mut bob).await;
        for s in [&ada, &bob] {
            let names = top_names(s);
            assert_eq!(
                names.len(),
                2,
                "both edits shown, one as a conflict copy: {names:?}"
            );
            assert!(
                names.iter().any(|n| n.starts_with("plan.md.conflict-")),
                "{names:?}"
            );
        }
        let mut contents = vec![];
        for (name, _) in ada.children("").unwrap() {
            contents.push(read(&mut ada, &name).await);
        }
        contents.sort();
        assert_eq!(contents, [b"ada's plan".to_vec(), b"bob's plan".to_vec()]);
    });
}

#[test]
fn a_log_waiting_for_a_key_does_not_break_up_the_commit_of_what_waits_here() {
    let (tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut ada = open(&a, &keys, "ada").await;
        let b = device(tmp.path(), "b");
        let mut bob = open(&b, &keys, "bob").await;
        // Bob starts a key epoch sealed to himself alone and writes under it: Ada's
        // reading of his log stops at that entry until the key reaches her.
        bob.rotate(&[], vec![]).await.unwrap();
        write(&mut bob, "plan.md", b"bob's plan", now_ms()).await;
        sync(&mut bob, &mut ada).await;
        assert!(ada.node("plan.md").is_none(), "read without its key");

        ada.set_commit_interval(CommitInterval::new(Duration::from_secs(60)));
        let before = log_len(&ada).await;
        write(&mut ada, "a.md", b"first", now_ms()).await;
        ada.refresh().await.unwrap();
        write(&mut ada, "b.md", b"second", now_ms()).await;
        ada.refresh().await.unwrap();
        assert_eq!(
            log_len(&ada).await,
            before,
            "nothing recorded before the commit while Bob's log waits"
        );
        assert_eq!(top_names(&ada), ["a.md", "b.md"]);
        ada.sync().await.unwrap();
        assert_eq!(log_len(&ada).await, before + 1, "one operation for both");

        // The key arrives: Ada's waiting write is recorded before Bob's entries are read
        // (it did not see them), and his file shows.
        write(&mut ada, "c.md", b"third", now_ms()).await;
        bob.grant(ada.identity()).await.unwrap();
        sync(&mut bob, &mut ada).await;
        assert_eq!(log_len(&ada).await, before + 2, "c.md recorded on its own");
        assert_eq!(top_names(&ada), ["a.md", "b.md", "c.md", "plan.md"]);
        assert_eq!(read(&mut ada, "plan.md").await, b"bob's plan");
    });
}

#[test]
fn files_listed_before_their_content_arrives_are_still_to_fetch_until_it_does() {
    let (tmp, a, keys, rt) = one_device();
    rt.block_on(async {
        let mut ada = open(&a, &keys, "ada").await;
        let b = device(tmp.path(), "b");
        let mut bob = open(&b, &keys, "bob").await;
        let big = cobox_tests::files::noise(200_000, 3);
        write(&mut bob, "big.bin", &big, now_ms()).await;
        write(&mut bob, "small.txt", b"small", now_ms()).await;
        assert_eq!(ada.still_to_fetch(10).await.unwrap().total, 0);

        // Only Bob's log reaches Ada: both files show, the big one's blocks are missing
        // (the small one's content is in its operation).
        let key = bob.log_key();
        let log = bob.feeds_mut().get(&key).await.unwrap().unwrap();
        let dst = ada.feeds_mut().replica(&key).await.unwrap();
        {
            let mut to = dst.lock().await;
            copy_missing(&mut *log.lock().await, &mut to).await.unwrap();
            dst.publish(&to);
        }
        ada.add_log(key).await.unwrap();
        assert_eq!(top_names(&ada), ["big.bin", "small.txt"]);
        let waiting = ada.still_to_fetch(10).await.unwrap();
        assert_eq!(waiting.total, 1, "{waiting:?}");
        let f = &waiting.files[0];
        assert_eq!((f.path.as_str(), f.size), ("big.bin", 200_000));
        assert_eq!(
            (f.blocks, f.missing),
            (4, 4),
            "200,000 bytes are 4 blocks of 64 KiB"
        );
        assert_eq!(
            ada.still_to_fetch(0).await.unwrap().files.len(),
            0,
            "the limit"
        );

        // The content arrives: nothing is left to fetch.
        sync(&mut bob, &mut ada).await;
        assert_eq!(ada.still_to_fetch(10).await.unwrap().total, 0);
        assert_eq!(read(&mut ada, "big.bin").await, big);
    });
}
