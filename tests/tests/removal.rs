//! Removing a member and a seeder from a space with real agents: after A removes B, B gets
//! no block written later from A, from C (offline during the removal) or from the seed,
//! keeps what it had and shows `Removed`; A starts a new key epoch B holds no key of, so
//! blocks copied to B by hand stay closed; C rotates nothing again; a replayed stale
//! admission does not bring B back; a seeder taken out of `seeders` is no longer served;
//! rotations concurrent with writes lose nothing, and a member admitted later reads it all.

use std::collections::BTreeMap;

use cobox_tests::files::feed_sizes;
use cobox_tests::node::{Agent, Node, QUIET, Trio, eventually, show, two_members_and_a_seed};

fn condition(n: &Node, kind: &str, reason: &str) -> bool {
    let out = n.ctl(&["status", "--output", "json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    s["resources"].as_array().is_some_and(|rs| {
        rs.iter().any(|r| {
            r["kind"] == "space"
                && r["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == kind && c["reason"] == reason && c["status"] == true)
                })
        })
    })
}

fn sizes(dir: &std::path::Path) -> BTreeMap<String, u64> {
    feed_sizes(dir)
}

/// `coboxctl keys epochs --space home -o json` on `n`.
fn epochs(n: &Node) -> Vec<serde_json::Value> {
    serde_json::from_str(&n.ctl_ok(&["keys", "epochs", "--space", "home", "-o", "json"]))
        .unwrap_or_default()
}

/// A new member `name` of the Trio's space, invited by A, dialling A and the seed.
fn join(t: &Trio, dir: &std::path::Path, name: &str) -> (Node, Agent) {
    let n = Node::new(dir, name);
    let listening = |x: &Node| {
        x.status()["network"]["listening"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pa, ps) = (listening(&t.a), listening(&t.s));
    let ks = t.s.identity();
    let code = t.a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "home",
        "--for",
        &n.identity(),
    ]);
    n.write_config(&format!(
        "[network]\npeers = [\"{pa}\", \"{ps}\"]\n{QUIET}[[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent = n.start();
    n.wait_converged(60);
    (n, agent)
}

/// Copy `from` to `to` (a directory tree).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_removed_member_gets_nothing_new_and_keeps_what_it_had() {
    let tmp = tempfile::tempdir().unwrap();
    let t: Trio = two_members_and_a_seed(tmp.path(), "");
    let (a, b, s) = (&t.a, &t.b, &t.s);
    let kb = b.identity();
    std::fs::write(a.mount("home").join("before.txt"), b"written before").unwrap();
    eventually(
        "B has A's file",
        60,
        || std::fs::read(b.mount("home").join("before.txt")).is_ok_and(|d| d == b"written before"),
        || t.logs(),
    );
    // C joins, dialling A and the seed.
    let (c, agent_c) = join(&t, tmp.path(), "c");
    let kc = c.identity();
    eventually(
        "C has A's file",
        60,
        || c.mount("home").join("before.txt").exists(),
        || c.log(),
    );
    let roster_before =
        std::fs::read(a.data().join("spaces").join(&t.address).join("roster")).unwrap_or_default();
    // C goes offline; A removes B.
    agent_c.stop();
    let removed_at = std::time::Instant::now();
    let out = a.ctl(&["members", "remove", "home", &kb, "--yes"]);
    assert!(out.status.success(), "{}", cobox_tests::node::show(&out));
    assert!(
        std::fs::read_to_string(a.config())
            .unwrap()
            .contains(&format!("removed = [\"{kb}\"]")),
        "the removal stays in A's config file"
    );
    let logs = || format!("{}\nc:\n{}", t.logs(), c.log());
    eventually(
        "A and the seed refuse B, and B shows it was removed",
        60,
        || {
            !a.peers().contains(&kb)
                && !s.peers().contains(&kb)
                && condition(b, "Degraded", "Removed")
        },
        logs,
    );
    eprintln!(
        "removal applied to refused by A and the seed: {:.2} s",
        removed_at.elapsed().as_secs_f64()
    );
    // `coboxctl members` on A and on B say who removed whom.
    let ka = a.identity();
    let members = |n: &Node| -> Vec<serde_json::Value> {
        serde_json::from_str(&n.ctl_ok(&["members", "home", "--output", "json"])).unwrap()
    };
    let on_a = members(a);
    let b_on_a = on_a.iter().find(|m| m["identity"] == kb.as_str()).unwrap();
    assert_eq!(b_on_a["standing"], "removed", "{on_a:?}");
    assert_eq!(b_on_a["removed_by"], serde_json::json!([ka]), "{on_a:?}");
    // When the admission and the removal reached A (RFC 3339, the removal after).
    let at = |k: &str| b_on_a[k].as_str().unwrap_or_default().to_string();
    let (admitted_at, removed_at) = (at("admitted_at"), at("removed_at"));
    assert!(
        removed_at.len() == 20 && removed_at.ends_with('Z') && admitted_at.len() == 20,
        "{on_a:?}"
    );
    assert!(admitted_at <= removed_at, "{on_a:?}");
    let me_on_b = members(b);
    let me_on_b = me_on_b.iter().find(|m| m["me"] == true).unwrap();
    assert_eq!(me_on_b["standing"], "removed");
    // A answered the removal with key epoch 1, sealed to A and C only.
    let mut remaining = vec![ka.clone(), kc.clone()];
    remaining.sort();
    let on_a = epochs(a);
    assert_eq!(on_a.len(), 2, "{on_a:?}");
    assert_eq!(on_a[1]["number"], 1);
    assert_eq!(on_a[1]["author"], ka.as_str());
    assert_eq!(on_a[1]["holders"], serde_json::json!(remaining));
    assert_eq!(on_a[1]["current"], true);
    // What B holds of the others' feeds now; then A writes, C comes back and writes.
    let b_feeds = b.data().join("spaces").join(&t.address).join("feeds");
    let held = sizes(&b_feeds);
    std::fs::write(a.mount("home").join("after-a.txt"), b"written by a after").unwrap();
    let agent_c = c.start();
    eventually(
        "C, back, learned the removal from A or the seed and refuses B",
        60,
        || c.mount("home").join("after-a.txt").exists() && !c.peers().contains(&kb),
        logs,
    );
    assert_eq!(
        std::fs::read(c.mount("home").join("after-a.txt")).unwrap(),
        b"written by a after",
        "C reads what A wrote under the new epoch"
    );
    std::fs::write(c.mount("home").join("after-c.txt"), b"written by c after").unwrap();
    eventually(
        "A has C's file and the seed holds both",
        60,
        || a.mount("home").join("after-c.txt").exists(),
        logs,
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        sizes(&b_feeds),
        held,
        "B received blocks written after its removal"
    );
    assert!(!b.mount("home").join("after-a.txt").exists());
    assert!(!b.mount("home").join("after-c.txt").exists());
    assert_eq!(
        std::fs::read(b.mount("home").join("before.txt")).unwrap(),
        b"written before",
        "what B had stays"
    );
    // A stale admission replayed (A's roster from before the removal, appended to C's
    // roster file again) does not bring B back.
    let c_roster = c.data().join("spaces").join(&t.address).join("roster");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&c_roster)
        .unwrap();
    std::io::Write::write_all(&mut f, &roster_before).unwrap();
    drop(f);
    std::fs::write(a.mount("home").join("after-replay.txt"), b"later still").unwrap();
    eventually(
        "C has A's latest file",
        60,
        || c.mount("home").join("after-replay.txt").exists(),
        logs,
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!c.peers().contains(&kb) && !a.peers().contains(&kb));
    assert_eq!(sizes(&b_feeds), held, "B received blocks after the replay");
    assert!(condition(b, "Degraded", "Removed"));
    // C, offline during the removal, rotated nothing again: A's epoch is the only one
    // after the first, on A and on C, and C holds it.
    for n in [a, &c] {
        let e = epochs(n);
        assert_eq!(e.len(), 2, "{}: {e:?}", n.name);
        assert_eq!(e[1]["digest"], on_a[1]["digest"]);
        assert_eq!(e[1]["held"], true);
    }
    // Even given them by hand, B cannot open the blocks written after: A's and C's feeds
    // copied from A into B's data directory.
    let [agent_a, agent_b, _agent_s] = t.agents;
    agent_a.stop();
    agent_b.stop();
    let a_feeds = a.data().join("spaces").join(&t.address).join("feeds");
    let mut copied = 0;
    for (feed, size) in sizes(&a_feeds) {
        if held.get(&feed).is_some_and(|h| *h < size) {
            copy_tree(&a_feeds.join(&feed), &b_feeds.join(&feed));
            copied += 1;
        }
    }
    assert!(copied >= 2, "A's and C's logs grew after the removal");
    let _agent_b = b.start();
    eventually(
        "B, started again on the copied feeds, shows it was removed",
        60,
        || condition(b, "Degraded", "Removed"),
        || b.log(),
    );
    let on_b = epochs(b);
    let new = on_b
        .iter()
        .find(|e| e["digest"] == on_a[1]["digest"])
        .unwrap_or_else(|| panic!("B learns of the epoch from A's log: {on_b:?}"));
    assert_eq!(new["held"], false, "B holds no key of the new epoch");
    assert!(sizes(&b_feeds) != held, "B has the blocks now");
    for f in ["after-a.txt", "after-c.txt", "after-replay.txt"] {
        assert!(!b.mount("home").join(f).exists(), "B reads {f}");
    }
    assert_eq!(
        std::fs::read(b.mount("home").join("before.txt")).unwrap(),
        b"written before",
        "what B had stays readable"
    );
    // C's keys come back from the logs: its drive index (the epochs read among it) deleted
    // while stopped, as after a restore from its paper key, C reads the new epoch again.
    agent_c.stop();
    std::fs::remove_dir_all(c.data().join("drive-index")).unwrap();
    let _agent_c = c.start();
    eventually(
        "C, its index rebuilt from the logs, reads what was written under the new epoch",
        60,
        || {
            std::fs::read(c.mount("home").join("after-a.txt"))
                .is_ok_and(|d| d == b"written by a after")
                && epochs(&c)
                    .iter()
                    .any(|e| e["digest"] == on_a[1]["digest"] && e["held"] == true)
        },
        || c.log(),
    );
}

#[test]
fn rotations_concurrent_with_writes_lose_nothing_and_a_later_member_reads_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let t: Trio = two_members_and_a_seed(tmp.path(), "");
    let (a, b) = (&t.a, &t.b);
    let kb = b.identity();
    let (c, _agent_c) = join(&t, tmp.path(), "c");
    let logs = || format!("{}\nc:\n{}", t.logs(), c.log());
    // A and C write while A removes B and C rotates on demand: the two rotations may make
    // two epochs of one number.
    const FILES: usize = 12;
    let write = |n: &Node, tag: &str| {
        for i in 0..FILES {
            let body = format!("{tag} file {i}");
            std::fs::write(n.mount("home").join(format!("{tag}-{i}.txt")), body).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| write(a, "a"));
        scope.spawn(|| write(&c, "c"));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let removed = a.ctl(&["members", "remove", "home", &kb, "--yes"]);
        assert!(removed.status.success(), "{}", show(&removed));
        let rotated = c.ctl(&["keys", "rotate", "--space", "home", "-o", "json"]);
        assert!(rotated.status.success(), "{}", show(&rotated));
        let r: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
        assert!(r["bytes"].as_u64().unwrap() > 0);
        assert_eq!(r["epoch"]["author"], c.identity().as_str());
    });
    let all_there = |n: &Node| {
        (0..FILES).all(|i| {
            ["a", "c"].iter().all(|tag| {
                std::fs::read_to_string(n.mount("home").join(format!("{tag}-{i}.txt")))
                    .is_ok_and(|s| s == format!("{tag} file {i}"))
            })
        })
    };
    let started = std::time::Instant::now();
    eventually(
        "every file either wrote reads back on A and on C",
        90,
        || all_there(a) && all_there(&c),
        logs,
    );
    // A and C agree on the epochs, hold every one, and seal under the same.
    let ids = |n: &Node| -> Vec<(serde_json::Value, serde_json::Value, bool, bool)> {
        epochs(n)
            .into_iter()
            .map(|e| {
                (
                    e["number"].clone(),
                    e["digest"].clone(),
                    e["held"] == true,
                    e["current"] == true,
                )
            })
            .collect()
    };
    eventually(
        "A and C know the same epochs",
        60,
        || ids(a) == ids(&c),
        logs,
    );
    eprintln!(
        "A and C read every file and agree on the epochs {:.1} s after the writes",
        started.elapsed().as_secs_f64()
    );
    let known = ids(a);
    assert!(
        known.len() >= 3,
        "two rotations after the first key: {known:?}"
    );
    assert!(known.iter().all(|e| e.2), "every epoch held: {known:?}");
    // A member admitted now is granted the keys and reads every file.
    let joined = std::time::Instant::now();
    let (d, _agent_d) = join(&t, tmp.path(), "d");
    eventually(
        "D, admitted after the rotations, reads every file",
        90,
        || all_there(&d),
        || {
            let listing: Vec<String> = std::fs::read_dir(d.mount("home"))
                .map(|r| {
                    r.flatten()
                        .map(|e| e.file_name().to_string_lossy().into())
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}\nd:\n{}\nD's files: {listing:?}\nepochs on A: {:?}\nepochs on D: {:?}",
                logs(),
                d.log(),
                epochs(a),
                epochs(&d)
            )
        },
    );
    eprintln!(
        "D read every file {:.1} s after joining",
        joined.elapsed().as_secs_f64()
    );
    assert!(
        epochs(&d).iter().all(|e| e["held"] == true),
        "D holds every epoch"
    );
}

#[test]
fn a_seeder_taken_out_of_seeders_is_no_longer_served() {
    let tmp = tempfile::tempdir().unwrap();
    let t = two_members_and_a_seed(tmp.path(), "");
    let (a, b, seed) = (&t.a, &t.b, &t.s);
    let ks = seed.identity();
    std::fs::write(a.mount("home").join("one.txt"), b"one").unwrap();
    let s_feeds = seed.data().join("seeds").join(&t.address).join("feeds");
    eventually(
        "the seed holds A's file",
        60,
        || sizes(&s_feeds).values().sum::<u64>() > 0 && seed.peers().len() == 1,
        || t.logs(),
    );
    // Both members take the seeder out of their lists.
    for n in [a, b] {
        let text = std::fs::read_to_string(n.config()).unwrap();
        std::fs::write(
            n.config(),
            text.replace(&format!("seeders = [\"{ks}\"]\n"), ""),
        )
        .unwrap();
    }
    eventually(
        "neither member has a session with the seed",
        60,
        || !a.peers().contains(&ks) && !b.peers().contains(&ks) && seed.peers().is_empty(),
        || t.logs(),
    );
    let held = sizes(&s_feeds);
    std::fs::write(a.mount("home").join("two.txt"), b"two").unwrap();
    eventually(
        "B has A's new file",
        60,
        || b.mount("home").join("two.txt").exists(),
        || t.logs(),
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(sizes(&s_feeds), held, "the removed seeder got new blocks");
    assert!(seed.peers().is_empty());
}

#[test]
fn a_member_offline_during_its_removal_learns_it_when_it_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let t: Trio = two_members_and_a_seed(tmp.path(), "");
    let (a, b, s) = (&t.a, &t.b, &t.s);
    let kb = b.identity();
    let b_feeds = b.data().join("spaces").join(&t.address).join("feeds");
    let [_agent_a, agent_b, _agent_s] = t.agents;
    agent_b.stop();
    let held = sizes(&b_feeds);
    let out = a.ctl(&["members", "remove", "home", &kb, "--yes"]);
    assert!(out.status.success(), "{}", show(&out));
    std::fs::write(a.mount("home").join("after.txt"), b"written after").unwrap();
    let _agent_b = b.start();
    eventually(
        "B, back, is told of its removal and shows it",
        60,
        || condition(b, "Degraded", "Removed"),
        || format!("a:\n{}\nb:\n{}", a.log(), b.log()),
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        !a.peers().contains(&kb) && !s.peers().contains(&kb),
        "nothing is served to B"
    );
    assert_eq!(sizes(&b_feeds), held, "B got no block while being told");
    assert!(!b.mount("home").join("after.txt").exists());
}
