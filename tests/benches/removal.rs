//! How fast a removal takes hold: two members A and C and a seed of their space, with a
//! third member B connected to all three (B dials A, C and the seed). Timed from the start
//! of `coboxctl members remove home B --yes` on A until no session with B is left on A,
//! on C and on the seed (each device's own list of peers), `COBOX_BENCH_REMOVALS` times
//! (default 5), a fresh space each time. Also the size of the statements a removal adds to
//! a roster (what travels to every member and seed).
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

/// One run: returns the seconds until A, C and the seed had no session with B, and the
/// bytes the removal added to A's roster file.
fn run(dir: &Path) -> (f64, u64) {
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
    let took = t.elapsed().as_secs_f64();
    let added = std::fs::metadata(&roster).map_or(0, |m| m.len()) - before;
    drop(agents);
    (took, added)
}

fn main() {
    let runs: usize = std::env::var("COBOX_BENCH_REMOVALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut took = Vec::new();
    let mut bytes = 0;
    for i in 0..runs {
        let tmp = tempfile::tempdir().unwrap();
        let (t, b) = run(&tmp.path().join(format!("run{i}")));
        took.push(t);
        bytes = b;
    }
    took.sort_by(f64::total_cmp);
    println!(
        "removal applied on A until A, C and the seed have no session with B: median {:.3} s, min {:.3} s, max {:.3} s ({runs} runs)",
        took[took.len() / 2],
        took[0],
        took[took.len() - 1]
    );
    println!("statements a removal adds to the remover's roster: {bytes} bytes");
}
