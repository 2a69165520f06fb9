//! Fleets at size. First, rendering and diffing fleets of 10, 100 and 1,000 devices
//! (`coboxctl fleet render DIR` offline, `coboxctl fleet diff DIR` through a real admin's
//! agent on loopback): the time per device should not grow with the fleet. Second, ten
//! hubs, two admins' devices and a seed in network namespaces (the fleet test's lab):
//! the time from `coboxctl fleet apply` of a base edit until it has seen every hub report
//! the change converged, in one wave and in three (1, 50%, 100%), `COBOX_BENCH_ROLLOUTS`
//! (default 10) times each. The hubs' probation is off (`0s`): with it on, a hub reports
//! success once probation passes (at least 3 s after the apply).
//!
//! Run (as root, for the namespaces): `cargo bench -p cobox-tests --bench fleet`.

use std::path::Path;
use std::time::Instant;

use cobox_keys::{Secret32, SigningKeyPair};
use cobox_tests::fleet_lab::FleetLab;
use cobox_tests::node::{Node, QUIET, free_port};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// A fleet directory of `n` devices in four sites (a group each), a base, a layer per
/// site and one for every tenth device.
fn write_fleet(dir: &Path, n: usize, admin: &str) {
    std::fs::create_dir_all(dir.join("groups")).unwrap();
    std::fs::create_dir_all(dir.join("devices")).unwrap();
    let mut listing = String::from("[fleet]\nname = \"big\"\n");
    for site in 0..4 {
        listing.push_str(&format!(
            "\n[[group]]\nname = \"site{site}\"\nlabels = {{ site = \"s{site}\" }}\n"
        ));
        std::fs::write(
            dir.join(format!("groups/site{site}.toml")),
            format!(
                "[[seed]]\nname = \"site-archive\"\naddress = \"{}\"\n",
                format!("{site:x}").repeat(64)
            ),
        )
        .unwrap();
    }
    for i in 0..n {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let key = SigningKeyPair::from_seed(&Secret32::from_bytes(seed)).public;
        listing.push_str(&format!(
            "\n[[device]]\nname = \"d{i:04}\"\nkey = \"{key}\"\nlabels = {{ site = \"s{}\", rack = \"r{}\" }}\n",
            i % 4,
            i % 7
        ));
        if i % 10 == 0 {
            std::fs::write(
                dir.join(format!("devices/d{i:04}.toml")),
                "[[seed]]\nname = \"site-archive\"\nquota = \"20 GiB\"\n",
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("fleet.toml"), listing).unwrap();
    std::fs::write(
        dir.join("base.toml"),
        format!(
            "version = 1\n[device]\nname = \"{{{{device.name}}}}-{{{{labels.rack}}}}\"\n\
             [network]\npeers = [\"192.0.2.1:7400\"]\n{QUIET}\
             [admins]\nkeys = [\"{admin}\"]\nfleet = \"fleet\"\n\
             [[space]]\nname = \"fleet\"\nmount = false\n"
        ),
    )
    .unwrap();
}

fn timed(a: &Node, args: &[&str], ok: &[i32]) -> f64 {
    let t = Instant::now();
    let out = a.ctl(args);
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.code().is_some_and(|c| ok.contains(&c)),
        "coboxctl {args:?}: {}",
        cobox_tests::node::show(&out)
    );
    secs
}

fn render_and_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Node::new(tmp.path(), "a");
    let ka = a.identity();
    let port = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port}\"]\n{QUIET}[[space]]\nname = \"fleet\"\nmount = false\n\
         [admins]\nkeys = [\"{ka}\"]\nfleet = \"fleet\"\n"
    ));
    let _agent = a.start();
    a.wait_converged(60);
    println!("fleet size | render (s) | per device (ms) | diff (s) | per device (ms)");
    for n in [10, 100, 1000] {
        let dir = tmp.path().join(format!("fleet-{n}"));
        write_fleet(&dir, n, &ka);
        let d = dir.to_str().unwrap();
        let mut render = Vec::new();
        let mut diff = Vec::new();
        for _ in 0..3 {
            render.push(timed(&a, &["fleet", "render", d], &[0]));
            // Exit 1: the devices never reported, so every one differs.
            diff.push(timed(&a, &["fleet", "diff", d], &[1]));
        }
        render.sort_by(f64::total_cmp);
        diff.sort_by(f64::total_cmp);
        let (r, df) = (render[1], diff[1]);
        println!(
            "{n:>10} | {r:>10.3} | {:>15.3} | {df:>8.3} | {:>15.3}",
            r * 1000.0 / n as f64,
            df * 1000.0 / n as f64
        );
    }
}

fn rollouts() {
    let runs: usize = std::env::var("COBOX_BENCH_ROLLOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
    let lab = FleetLab::new(tmp.path(), 10, 93, "0s");
    let mut change = 0;
    for waves in ["100%", "1,50%,100%"] {
        let mut took = Vec::new();
        for _ in 0..runs {
            change += 1;
            lab.write_base(&format!(
                "[[seed]]\nname = \"archive\"\naddress = \"{}\"\nquota = \"{change} GiB\"\n",
                "ab".repeat(32)
            ));
            let t = Instant::now();
            let (code, outcome) = lab.apply(0, &["--waves", waves, "--timeout", "120s"]);
            took.push(t.elapsed().as_secs_f64());
            assert_eq!(code, Some(0), "{outcome}\n{}", lab.logs());
        }
        took.sort_by(f64::total_cmp);
        println!(
            "fleet apply of a base edit to 10 hubs, waves {waves}: p50 {:.3} s, p95 {:.3} s, min {:.3} s, max {:.3} s ({runs} runs)",
            percentile(&took, 0.5),
            percentile(&took, 0.95),
            took[0],
            took[took.len() - 1]
        );
    }
}

fn main() {
    render_and_diff();
    rollouts();
}
