//! Files as lists of blocks, end to end: an append or a change in the middle of a large file
//! costs what changed — on the writer's disk, on the wire, on the other member's disk and on
//! the seed's — and a file saved again unchanged, or copied, costs no content.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use cobox_tests::files::{files_under, noise};
use cobox_tests::node::{Node, eventually, two_members_and_a_seed};

const MIB: u64 = 1 << 20;

/// Bytes a device's copy of the space's feeds takes on disk: their blocks, Merkle trees
/// and bitfields (not the operation logs, which shrink as they are flushed).
fn disk(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n == "data" || n == "tree" || n == "bitfield")
        })
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// Block data the device received for `kind` `name` since its agent started.
fn received(n: &Node, kind: &str, name: &str) -> u64 {
    n.resource(kind, name)["traffic"]["received_bytes"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn an_append_or_an_edit_in_place_costs_what_changed_on_every_device() {
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "");
    let (a, b, s) = (&trio.a, &trio.b, &trio.s);
    let logs = || trio.logs();
    let [feeds_a, feeds_b, feeds_s] = trio.feeds();
    let data = |dir: &Path| cobox_tests::files::data_bytes(dir);
    // Every device holds every block of the space, and B's mount shows `want`.
    let settled = |want: &[u8], what: &str| {
        eventually(
            what,
            120,
            || {
                let n = data(&feeds_a);
                data(&feeds_b) == n
                    && data(&feeds_s) == n
                    && std::fs::metadata(b.mount("home").join("big.bin"))
                        .is_ok_and(|m| m.len() == want.len() as u64)
            },
            logs,
        );
        let got = std::fs::read(b.mount("home").join("big.bin")).unwrap();
        assert!(got == want, "{what}: B reads back what A wrote");
    };

    let mut big = noise(32 * MIB as usize, 1);
    std::fs::write(a.mount("home").join("big.bin"), &big).unwrap();
    settled(&big, "the 32 MiB file reaches B and the seed");

    // What one change costs: growth of each device's disk and of what B and the seed
    // received, against the bytes changed. A whole copy would be 32 times the change.
    let mut cost = |what: &str, changed: u64, change: &dyn Fn(&mut Vec<u8>)| {
        let before = [disk(&feeds_a), disk(&feeds_b), disk(&feeds_s)];
        let wire = [received(b, "space", "home"), received(s, "seed", "home")];
        change(&mut big);
        settled(&big, what);
        let after = [disk(&feeds_a), disk(&feeds_b), disk(&feeds_s)];
        let wire_after = [received(b, "space", "home"), received(s, "seed", "home")];
        // Within twice the change, plus the operation and the feeds' own bookkeeping.
        let bound = 2 * changed + 256 * 1024;
        for (who, (x, y)) in ["A's disk", "B's disk", "the seed's disk"]
            .iter()
            .zip(before.iter().zip(after))
        {
            let grew = y.saturating_sub(*x);
            assert!(
                grew >= changed && grew <= bound,
                "{what}: {who} grew by {grew} bytes for {changed} changed\n{}",
                logs()
            );
        }
        for (who, (x, y)) in ["B", "the seed"].iter().zip(wire.iter().zip(wire_after)) {
            let moved = y.saturating_sub(*x);
            assert!(
                moved >= changed && moved <= bound,
                "{what}: {who} received {moved} bytes for {changed} changed\n{}",
                logs()
            );
        }
    };

    let path = a.mount("home").join("big.bin");
    cost("an append of 1 MiB", MIB, &|big| {
        let tail = noise(MIB as usize, 2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&tail).unwrap();
        drop(f);
        big.extend(tail);
    });
    cost("1 MiB changed in the middle", MIB, &|big| {
        let patch = noise(MIB as usize, 3);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(16 * MIB)).unwrap();
        f.write_all(&patch).unwrap();
        drop(f);
        big[16 * MIB as usize..17 * MIB as usize].copy_from_slice(&patch);
    });

    // A file saved twenty times with the same content (through O_TRUNC, as editors and
    // `cp` do) costs one copy; a copy of the large file costs no content.
    let saved = noise(4 * MIB as usize, 4);
    let before = data(&feeds_a);
    std::fs::write(a.mount("home").join("saved.bin"), &saved).unwrap();
    let once = data(&feeds_a) - before;
    assert!(
        once > 4 * MIB,
        "the first save stores the file: {once} bytes"
    );
    for _ in 1..20 {
        std::fs::write(a.mount("home").join("saved.bin"), &saved).unwrap();
    }
    std::fs::copy(&path, a.mount("home").join("copy.bin")).unwrap();
    let grew = data(&feeds_a) - before - once;
    assert!(
        grew < MIB / 4,
        "19 more saves of 4 MiB and a copy of 33 MiB stored {grew} bytes\n{}",
        logs()
    );
    eventually(
        "the copy reaches B",
        120,
        || std::fs::read(b.mount("home").join("copy.bin")).is_ok_and(|c| c == big),
        logs,
    );
    assert!(std::fs::read(b.mount("home").join("saved.bin")).unwrap() == saved);

    // Every version is kept: the first one, restored through the API, reads back as it
    // was written, on both members, and costs no content.
    let listed: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["versions", "home", "big.bin", "-o", "json"])).unwrap();
    let versions = listed["versions"].as_array().unwrap();
    assert!(versions.len() >= 3, "{listed}");
    assert_eq!(versions[0]["size"], 32 * MIB);
    assert_eq!(versions.last().unwrap()["current"], true, "{listed}");
    let first = versions[0]["time"].as_str().unwrap().to_string();
    let text = a.ctl_ok(&["versions", "home", "big.bin"]);
    assert!(text.lines().any(|l| l.starts_with('*')), "{text}");
    let before = data(&feeds_a);
    let said = a.ctl_ok(&["restore", "home", "/big.bin", "--at", &first]);
    assert!(said.contains("restored big.bin in space home"), "{said}");
    let original = noise(32 * MIB as usize, 1);
    assert!(
        std::fs::read(&path).unwrap() == original,
        "A reads the first version"
    );
    assert!(
        data(&feeds_a) - before < 64 * 1024,
        "a restore stores no content"
    );
    eventually(
        "B shows the restored version",
        120,
        || std::fs::read(b.mount("home").join("big.bin")).is_ok_and(|c| c == original),
        logs,
    );
    // Bad requests change nothing and say why.
    for (args, says) in [
        (
            vec!["restore", "home", "big.bin", "--at", "yesterday"],
            "RFC 3339",
        ),
        (
            vec!["restore", "home", "big.bin", "--at", "2000-01-01T00:00:00Z"],
            "no version written at or before",
        ),
        (
            vec!["versions", "home", "never.txt"],
            "no file has been there",
        ),
        (vec!["versions", "home", "../etc/passwd"], "path"),
        (vec!["versions", "nowhere", "big.bin"], "nowhere"),
    ] {
        let out = a.ctl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    assert!(std::fs::read(&path).unwrap() == original);

    trio.stop();
}
