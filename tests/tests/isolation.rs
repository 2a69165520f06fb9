//! One broken space never takes the device down: a space whose feeds are damaged on disk
//! shows `Stalled` with the reason (and an event), while the device's other space stays
//! mounted and keeps replicating with a peer, and the control API answers.

use std::path::Path;

use cobox_tests::files::tree;
use cobox_tests::node::{Node, QUIET, eventually, free_port};

/// The conditions of resource `kind`/`name` in `coboxctl status --output json`.
fn conditions(node: &Node, kind: &str, name: &str) -> Vec<serde_json::Value> {
    // Before the agent answers, there is nothing.
    let out = node.ctl(&["status", "--output", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    status["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
        .and_then(|r| r["conditions"].as_array().cloned())
        .unwrap_or_default()
}

fn stalled(node: &Node, kind: &str, name: &str) -> Option<String> {
    conditions(node, kind, name)
        .into_iter()
        .find(|c| c["type"] == "Stalled" && c["status"] == true)
        .map(|c| c["message"].as_str().unwrap_or_default().to_string())
}

/// Overwrite every feed file `name` of the space in `space_dir` with garbage of its size.
fn damage(space_dir: &Path, name: &str) {
    for feed in std::fs::read_dir(space_dir.join("feeds")).unwrap() {
        let file = feed.unwrap().path().join(name);
        let len = std::fs::metadata(&file).unwrap().len() as usize;
        std::fs::write(&file, vec![0x5a; len]).unwrap();
    }
}

#[test]
fn a_damaged_space_stalls_alone_while_the_other_one_mounts_and_replicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Node::new(tmp.path(), "a"), Node::new(tmp.path(), "b"));
    let pa = free_port();
    let kb = b.identity();
    let a_config = format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"bad\"\n[[space]]\nname = \"good\"\n"
    );
    a.write_config(&a_config);
    let agent_a = a.start();
    a.wait_converged(60);
    std::fs::write(a.mount("bad").join("x.txt"), b"in the space to be damaged").unwrap();
    std::fs::write(a.mount("good").join("y.txt"), b"in the good space").unwrap();
    let code = a.ctl_ok(&["invite", "create", "--space", "good", "--for", &kb]);
    agent_a.stop();

    // The trees of every feed of space `bad` are overwritten.
    let spaces = a.data().join("spaces");
    let bad_dir = std::fs::read_dir(&spaces)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("space.key")).is_ok_and(|k| k.contains("\nname bad\n"))
        })
        .expect("space bad on disk");
    damage(&bad_dir, "tree");

    let agent_a = a.start();
    let logs = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    eventually(
        "space bad is stalled with the reason",
        60,
        || stalled(&a, "space", "bad").is_some_and(|m| m.contains("damaged")),
        || format!("{:?}\n{}", conditions(&a, "space", "bad"), logs()),
    );
    let events = a.ctl_ok(&["events", "--output", "json"]);
    assert!(
        events.lines().any(|l| l.contains("\"action-failed\"")
            && l.contains("space bad")
            && l.contains("damaged")),
        "{events}"
    );
    // Space good is open and mounted, with its file.
    eventually(
        "space good is mounted",
        60,
        || std::fs::read(a.mount("good").join("y.txt")).is_ok_and(|c| c == b"in the good space"),
        logs,
    );
    assert_eq!(stalled(&a, "space", "good"), None);

    // And it replicates: B joins it and gets its files, then a file written on A now.
    b.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"good\"\ninvite = \"{code}\"\n"
    ));
    let agent_b = b.start();
    b.wait_converged(60);
    std::fs::write(a.mount("good").join("z.txt"), b"written with bad stalled").unwrap();
    eventually(
        "B has every file of space good",
        90,
        || tree(&b.mount("good")) == tree(&a.mount("good")) && tree(&b.mount("good")).len() == 2,
        logs,
    );
    // The agent still runs and answers.
    assert!(stalled(&a, "space", "bad").is_some());
    agent_b.stop();
    agent_a.stop();
}
