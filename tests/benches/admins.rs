//! How fast a config an admin publishes reaches a hub, and what it costs on the wire: an
//! admin device and a hub on loopback, the hub dialling the admin directly, then the same
//! through a seed of the fleet (the hub dials only the seed). Each of `COBOX_BENCH_CHANGES`
//! (default 20) publications changes one setting; timed from the publish until the hub runs
//! it (its status) and until the admin has read the hub's report of it, with the bytes the
//! hub's fleet space received and sent per change. Probation is off here (`0s`): with it
//! on, success is reported once it passes (at least 3 s after the apply).
//!
//! Run: `cargo bench -p cobox-tests --bench admins`.

use std::path::Path;
use std::time::{Duration, Instant};

use cobox_tests::node::{Agent, Node, QUIET, free_port};

fn json(n: &Node, args: &[&str]) -> serde_json::Value {
    let out = n.ctl(args);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn fleet_traffic(n: &Node) -> (u64, u64) {
    let s = json(n, &["status", "--output", "json"]);
    let r = s["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["kind"] == "space" && r["name"] == "fleet")
                .cloned()
        })
        .unwrap_or_default();
    (
        r["traffic"]["received_bytes"].as_u64().unwrap_or(0),
        r["traffic"]["sent_bytes"].as_u64().unwrap_or(0),
    )
}

fn wait(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Publish `changes` configs to the hub and print the figures under `label`.
fn run(label: &str, a: &Node, h: &Node, hub_base: &str, changes: u64) {
    let kh = h.identity();
    let mut applied = Vec::new();
    let mut reported = Vec::new();
    let (mut down, mut up) = (0u64, 0u64);
    for i in 1..=changes {
        let path = a.root.join(format!("{label}-{i}.toml"));
        std::fs::write(
            &path,
            format!(
                "{}{hub_base}[storage]\nmin_free = \"{} MiB\"\n",
                h.device_table(),
                100 + i
            ),
        )
        .unwrap();
        let (r0, s0) = fleet_traffic(h);
        let start = Instant::now();
        let out = a.ctl(&["remote", "apply", &kh, path.to_str().unwrap(), "--no-wait"]);
        assert!(out.status.success(), "{out:?}");
        let published: u64 = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse().ok())
            .expect("the envelope's generation");
        wait("the hub runs the new config", || {
            let s = json(h, &["status", "--output", "json"]);
            s["admins"]["last_envelope"]["generation"] == published
                && s["admins"]["last_envelope"]["outcome"] == "applied"
        });
        applied.push(start.elapsed().as_secs_f64());
        wait("the admin reads the hub's report", || {
            let r = json(a, &["remote", "status", &kh, "--output", "json"]);
            r["report"]["admins"]["last_envelope"]["generation"] == published
                && r["report"]["converged"] == true
        });
        reported.push(start.elapsed().as_secs_f64());
        // Let the report's own traffic finish before counting.
        std::thread::sleep(Duration::from_millis(300));
        let (r1, s1) = fleet_traffic(h);
        down += r1 - r0;
        up += s1 - s0;
    }
    for v in [&mut applied, &mut reported] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "{label}: {changes} changes · publish → hub runs it p50 {:.3} s p95 {:.3} s · → admin read its report p50 {:.3} s p95 {:.3} s · hub fleet traffic per change: received {} B, sent {} B",
        percentile(&applied, 0.5),
        percentile(&applied, 0.95),
        percentile(&reported, 0.5),
        percentile(&reported, 0.95),
        down / changes,
        up / changes,
    );
}

fn admins_table(ka: &str) -> String {
    format!("[admins]\nkeys = [\"{ka}\"]\nfleet = \"fleet\"\nprobation = \"0s\"\n")
}

fn direct(dir: &Path, changes: u64) {
    let (a, h) = (Node::new(dir, "a"), Node::new(dir, "h"));
    let ka = a.identity();
    let port = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port}\"]\n{QUIET}[[space]]\nname = \"fleet\"\nmount = false\n{}",
        admins_table(&ka)
    ));
    let _agent_a = a.start();
    a.wait_converged(60);
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "fleet",
        "--for",
        &h.identity(),
    ]);
    let base = format!(
        "[network]\npeers = [\"127.0.0.1:{port}\"]\n{QUIET}[[space]]\nname = \"fleet\"\ninvite = \"{code}\"\nmount = false\n{}",
        admins_table(&ka)
    );
    h.write_config(&base);
    let _agent_h = h.start();
    h.wait_converged(60);
    run("direct", &a, &h, &base, changes);
}

fn through_seed(dir: &Path, changes: u64) {
    let (a, h, s) = (
        Node::new(dir, "a"),
        Node::new(dir, "h"),
        Node::new(dir, "s"),
    );
    let (ka, ks) = (a.identity(), s.identity());
    let (pa, ps) = (free_port(), free_port());
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}[[space]]\nname = \"fleet\"\nmount = false\nseeders = [\"{ks}\"]\n{}",
        admins_table(&ka)
    ));
    let _agent_a: Agent = a.start();
    a.wait_converged(60);
    let address = std::fs::read_dir(a.data().join("spaces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.len() == 64)
        .unwrap();
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{ps}\"]\n{QUIET}[[seed]]\nname = \"fleet\"\naddress = \"{address}\"\nfleet = true\n"
    ));
    let _agent_s = s.start();
    s.wait_converged(60);
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "fleet",
        "--for",
        &h.identity(),
    ]);
    let base = format!(
        "[network]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}[[space]]\nname = \"fleet\"\ninvite = \"{code}\"\nmount = false\nseeders = [\"{ks}\"]\n{}",
        admins_table(&ka)
    );
    h.write_config(&base);
    let _agent_h = h.start();
    h.wait_converged(60);
    s.wait_admitted(&address, &h.identity(), String::new);
    run("through a seed", &a, &h, &base, changes);
}

fn main() {
    let changes: u64 = std::env::var("COBOX_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    direct(&dir.path().join("direct"), changes);
    through_seed(&dir.path().join("seed"), changes);
}
