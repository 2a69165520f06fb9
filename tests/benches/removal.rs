//! How fast a removal takes hold: two members A and C and a seed of their space, with a
//! third member B connected to all three (B dials A, C and the seed). Timed from the start
//! of `coboxctl members remove home B --yes` on A until no session with B is left on A,
//! on C and on the seed (each device's own list of peers), `COBOX_BENCH_REMOVALS` times
//! (default 5), a fresh space each time. Also the size of the statements a removal adds to
//! a roster (what travels to every member and seed), the time until C holds the key epoch
//! A started to answer the removal, and the size of a rotation message (`coboxctl keys
//! rotate` on A afterwards, sealed to A and C).
//!
//! Run: `cargo bench -p cobox-tests --bench removal`.

use std::path::Path;
use std::time::{Duration, Instant};

use cobox_tests::node::{Agent, Node, QUIET, free_port};

fn wait(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What one run measured.
struct Run {
    /// Seconds until A, C and the seed had no session with B.
    refused: f64,
    /// Seconds until C held the key epoch A started.
    rotated: f64,
    /// Bytes the removal added to A's roster file.
    statements: u64,
    /// Bytes of a rotation message, and the members it was sealed to.
    rotation: (u64, usize),
}

/// Key epochs after the first that `n` holds.
fn held_epochs(n: &Node) -> usize {
    let e: Vec<serde_json::Value> =
        serde_json::from_str(&n.ctl_ok(&["keys", "epochs", "--space", "home", "-o", "json"]))
            .unwrap_or_default();
    e.iter()
        .filter(|e| e["number"] != 0 && e["held"] == true)
        .count()
}

fn run(dir: &Path) -> Run {
    let (a, b, c, s) = (
        Node::new(dir, "a"),
        Node::new(dir, "b"),
        Node::new(dir, "c"),
        Node::new(dir, "s"),
    );
    let (pa, pc, ps) = (free_port(), free_port(), free_port());
    let ks = s.identity();
    let at = |p: u16| format!("\"127.0.0.1:{p}\"");
    a.write_config(&format!(
        "[network]\nlisten = [{}]\npeers = [{}]\n{QUIET}[[space]]\nname = \"home\"\nmount = false\nseeders = [\"{ks}\"]\n",
        at(pa),
        at(ps)
    ));
    let mut agents: Vec<Agent> = vec![a.start()];
    a.wait_converged(60);
    let address = a.space_address();
    s.write_config(&format!(
        "[network]\nlisten = [{}]\n{QUIET}[[seed]]\nname = \"home\"\naddress = \"{address}\"\n",
        at(ps)
    ));
    agents.push(s.start());
    for (n, listen, dial) in [(&c, Some(pc), vec![pa, ps]), (&b, None, vec![pa, pc, ps])] {
        let code = a.ctl_ok(&[
            "invite",
            "create",
            "--space",
            "home",
            "--for",
            &n.identity(),
        ]);
        let listen = listen.map_or(String::new(), |p| format!("listen = [{}]\n", at(p)));
        let dial: Vec<String> = dial.into_iter().map(at).collect();
        n.write_config(&format!(
            "[network]\n{listen}peers = [{}]\n{QUIET}[[space]]\nname = \"home\"\nmount = false\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n",
            dial.join(", ")
        ));
        agents.push(n.start());
        n.wait_converged(60);
    }
    let kb = b.identity();
    wait("B is connected to A, C and the seed", || {
        [&a, &c, &s].iter().all(|n| n.peers().contains(&kb))
    });
    let roster = a.data().join("spaces").join(&address).join("roster");
    let before = std::fs::metadata(&roster).map_or(0, |m| m.len());
    let t = Instant::now();
    a.ctl_ok(&["members", "remove", "home", &kb, "--yes"]);
    wait("A, C and the seed refuse B", || {
        [&a, &c, &s].iter().all(|n| !n.peers().contains(&kb))
    });
    let refused = t.elapsed().as_secs_f64();
    wait("C holds the new key epoch", || held_epochs(&c) == 1);
    let rotated = t.elapsed().as_secs_f64();
    let statements = std::fs::metadata(&roster).map_or(0, |m| m.len()) - before;
    let r: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["keys", "rotate", "--space", "home", "-o", "json"]))
            .unwrap();
    let rotation = (
        r["bytes"].as_u64().unwrap(),
        r["epoch"]["holders"].as_array().unwrap().len(),
    );
    drop(agents);
    Run {
        refused,
        rotated,
        statements,
        rotation,
    }
}

fn summary(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "median {:.3} s, min {:.3} s, max {:.3} s",
        xs[xs.len() / 2],
        xs[0],
        xs[xs.len() - 1]
    )
}

fn main() {
    let runs: usize = std::env::var("COBOX_BENCH_REMOVALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let results: Vec<Run> = (0..runs)
        .map(|i| {
            let tmp = tempfile::tempdir().unwrap();
            run(&tmp.path().join(format!("run{i}")))
        })
        .collect();
    println!(
        "removal applied on A until A, C and the seed have no session with B: {} ({runs} runs)",
        summary(results.iter().map(|r| r.refused).collect())
    );
    println!(
        "removal applied on A until C holds the key epoch A started: {} ({runs} runs)",
        summary(results.iter().map(|r| r.rotated).collect())
    );
    let last = results.last().unwrap();
    println!(
        "statements a removal adds to the remover's roster: {} bytes",
        last.statements
    );
    let (bytes, members) = last.rotation;
    println!(
        "a rotation message sealed to {members} members: {bytes} bytes ({} per member, {} for the rest)",
        cobox_keys::epoch::PER_MEMBER,
        bytes as usize - members * cobox_keys::epoch::PER_MEMBER
    );
}
