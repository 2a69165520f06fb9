//! Removing a member and a seeder from a space with real agents: after A removes B, B gets
//! no block written later from A, from C (offline during the removal) or from the seed,
//! keeps what it had and shows `Removed`; a replayed stale admission does not bring it
//! back; a seeder taken out of `seeders` is no longer served.

use std::collections::BTreeMap;

use cobox_tests::files::feed_sizes;
use cobox_tests::node::{Node, QUIET, Trio, eventually, two_members_and_a_seed};

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

#[test]
fn a_removed_member_gets_nothing_new_and_keeps_what_it_had() {
    let tmp = tempfile::tempdir().unwrap();
    let t: Trio = two_members_and_a_seed(tmp.path(), "");
    let (a, b, s) = (&t.a, &t.b, &t.s);
    let (kb, ks) = (b.identity(), s.identity());
    std::fs::write(a.mount("home").join("before.txt"), b"written before").unwrap();
    eventually(
        "B has A's file",
        60,
        || std::fs::read(b.mount("home").join("before.txt")).is_ok_and(|d| d == b"written before"),
        || t.logs(),
    );
    // C joins, dialling A and the seed.
    let c = Node::new(tmp.path(), "c");
    let pa = a.status()["network"]["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let ps = s.status()["network"]["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "home",
        "--for",
        &c.identity(),
    ]);
    let c_config = format!(
        "[network]\npeers = [\"{pa}\", \"{ps}\"]\n{QUIET}[[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    );
    c.write_config(&c_config);
    let agent_c = c.start();
    c.wait_converged(60);
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
    let me_on_b = members(b);
    let me_on_b = me_on_b.iter().find(|m| m["me"] == true).unwrap();
    assert_eq!(me_on_b["standing"], "removed");
    // What B holds of the others' feeds now; then A writes, C comes back and writes.
    let b_feeds = b.data().join("spaces").join(&t.address).join("feeds");
    let held = sizes(&b_feeds);
    std::fs::write(a.mount("home").join("after-a.txt"), b"written by a after").unwrap();
    let _agent_c = c.start();
    eventually(
        "C, back, learned the removal from A or the seed and refuses B",
        60,
        || c.mount("home").join("after-a.txt").exists() && !c.peers().contains(&kb),
        logs,
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
    drop(t);
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
