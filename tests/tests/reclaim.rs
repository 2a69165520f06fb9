//! Reclaiming space end to end, with two members and a seed: with `keep = "0s"`, files
//! deleted on either member leave every device — both members and the seed, which cannot
//! read the space — at about the space's live size, the files that stay read back intact,
//! and status, metrics and `coboxctl space du` say what the content takes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cobox_tests::files::{files_under, noise};
use cobox_tests::node::{eventually, two_members_and_a_seed};

const MIB: u64 = 1 << 20;

/// Bytes the feeds' block data takes on disk (cleared blocks are holes punched in it).
fn stored(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "data"))
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.blocks() * 512))
        .sum()
}

#[test]
fn with_no_versions_kept_deleted_files_leave_every_device_including_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "versions = { keep = \"0s\" }\n");
    let (a, b) = (&trio.a, &trio.b);
    let logs = || trio.logs();
    let dirs = trio.feeds();

    // Four files of 4 MiB, two written on each member; every device holds them all.
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("f{i}.bin"), noise(4 * MIB as usize, 10 + i)))
        .collect();
    for (i, (name, data)) in files.iter().enumerate() {
        let writer = if i % 2 == 0 { &a } else { &b };
        std::fs::write(writer.mount("home").join(name), data).unwrap();
    }
    eventually(
        "every device holds the four files",
        120,
        || dirs.iter().all(|d| stored(d) >= 16 * MIB),
        logs,
    );
    let full: Vec<u64> = dirs.iter().map(|d| stored(d)).collect();

    // A deletes a file B wrote and one of its own; B deletes one of A's.
    std::fs::remove_file(a.mount("home").join("f1.bin")).unwrap();
    std::fs::remove_file(a.mount("home").join("f2.bin")).unwrap();
    eventually(
        "B sees A's deletes",
        60,
        || !b.mount("home").join("f2.bin").exists(),
        logs,
    );
    std::fs::remove_file(b.mount("home").join("f0.bin")).unwrap();

    // The live size is one file of 4 MiB: every device comes back to about it.
    let live = 4 * MIB;
    eventually(
        "every device returns to about the live size",
        120,
        || dirs.iter().all(|d| stored(d) <= live + live / 4),
        || {
            let now: Vec<u64> = dirs.iter().map(|d| stored(d)).collect();
            format!("stored {now:?} (was {full:?})\n{}", logs())
        },
    );
    for n in [&a, &b] {
        let got = std::fs::read(n.mount("home").join("f3.bin")).unwrap();
        assert!(got == files[3].1, "the file that stayed reads back intact");
        let names: Vec<_> = std::fs::read_dir(n.mount("home"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f3.bin"]);
    }

    // What the content takes, as status, metrics and `space du` say.
    eventually(
        "A's status shows the usage",
        60,
        || {
            let u = &a.resource("space", "home")["usage"];
            u["tree_bytes"] == live && u["versions_bytes"] == 0 && u["reclaimable_bytes"] == 0
        },
        || format!("{}", a.resource("space", "home")),
    );
    let du: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["space", "du", "home", "-o", "json"])).unwrap();
    assert_eq!(du["total"]["tree_bytes"], live, "{du}");
    assert_eq!(du["total"]["retention"], "keep 0s, min 0", "{du}");
    assert_eq!(du["entries"][0]["name"], "f3.bin", "{du}");
    let text = a.ctl_ok(&["space", "du", "home"]);
    assert!(text.contains("f3.bin") && text.contains("4 MiB"), "{text}");
    let status = a.status_text();
    assert!(status.contains("files 4 MiB · versions 0 B"), "{status}");
    let versions = a.ctl_ok(&["versions", "home", "f3.bin", "-o", "json"]);
    assert!(versions.contains("\"current\": true"), "{versions}");
}
