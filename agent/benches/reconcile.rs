//! Time from saving cobox.toml to the new space being mounted, over 20 edits (p50/p95),
//! with the real `coboxd` binary; the planner alone on 1,000 declared spaces; and a real
//! agent holding 1,000 open spaces: a no-op reconcile (observe, plan, record status) as the
//! agent reports it, and its resident memory when idle.
//!
//! Run: `cargo bench -p coboxd --bench reconcile` (needs FUSE; builds `coboxd` first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cobox_schema::{FixedHost, Source, validate};
use coboxd::mount::is_mounted;
use coboxd::plan::{Observed, ObservedSpace, plan};

fn coboxd() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "coboxd",
            "--bin",
            "coboxd",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("coboxd")
}

fn config(root: &Path, n: usize) -> String {
    let mut t = format!(
        "version = 1\n[device]\nname = \"bench\"\ndata_dir = \"{}\"\nmount_root = \"{}\"\n[network]\nlan_discovery = false\ninternet_discovery = false\nrelays = []\nportmapper = false\n",
        root.join("data").display(),
        root.join("mnt").display()
    );
    for i in 0..n {
        t.push_str(&format!("[[space]]\nname = \"s{i}\"\n"));
    }
    t
}

/// `coboxd` on `config`, quiet.
fn start_agent(bin: &Path, config: &Path) -> std::process::Child {
    Command::new(bin)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let bin = coboxd();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let file = root.join("cobox.toml");
    std::fs::write(&file, config(root, 1)).unwrap();
    let mut child = start_agent(&bin, &file);
    let wait = |p: &Path| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(p) {
            assert!(Instant::now() < deadline, "{} never mounted", p.display());
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait(&root.join("mnt/s0"));
    let mut times = Vec::new();
    for n in 2..=21 {
        let tmp_file = root.join("cobox.toml.new");
        std::fs::write(&tmp_file, config(root, n)).unwrap();
        let start = Instant::now();
        std::fs::rename(&tmp_file, &file).unwrap();
        wait(&root.join(format!("mnt/s{}", n - 1)));
        times.push(start.elapsed());
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let _ = child.wait();
    times.sort();
    println!(
        "save to mounted, 20 edits each adding a space: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3
    );

    thousand(&bin);

    // The planner alone, everything converged.
    let mut text = String::from("version = 1\n");
    let mut observed = Observed {
        identity: true,
        ..Default::default()
    };
    for i in 0..1000 {
        text.push_str(&format!("[[space]]\nname = \"s{i}\"\nmount = false\n"));
        observed.spaces.insert(
            format!("s{i}"),
            ObservedSpace {
                exists: true,
                open: true,
                address: None,
                seeders: vec![],
                removed: vec![],
            },
        );
    }
    let desired = validate(&Source::new("bench", text), &FixedHost::example())
        .config
        .unwrap();
    observed.policy = Some(coboxd::plan::PolicySpec::of(&desired));
    observed.endpoint = coboxd::plan::EndpointSpec::of(&desired.network);
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        assert!(std::hint::black_box(plan(&desired, &observed)).is_converged());
    }
    println!(
        "plan, 1,000 declared spaces, nothing to do: {:.3} ms",
        start.elapsed().as_secs_f64() * 1e3 / rounds as f64
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An agent with 1,000 open (unmounted) spaces.
fn thousand(bin: &Path) {
    use cobox_schema::api::Status;
    use coboxd::control::client::Client;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let file = root.join("cobox.toml");
    let text = config(root, 0)
        + &(0..1000)
            .map(|i| format!("[[space]]\nname = \"s{i}\"\nmount = false\n"))
            .collect::<String>();
    std::fs::write(&file, text).unwrap();
    let start = Instant::now();
    let mut child = start_agent(bin, &file);
    let client = Client::new(&root.join("data/coboxd.sock"));
    let status = || client.get::<Status>("/v1/status").ok();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(s) = status()
            && s.converged
        {
            assert_eq!(s.resources.len(), 1002, "config, identity and 1,000 spaces");
            break;
        }
        assert!(Instant::now() < deadline, "1,000 spaces never converged");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "1,000 spaces: first start to converged {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let pid = rustix::process::Pid::from_child(&child);
    let mut took = Vec::new();
    for _ in 0..20 {
        let before = status().unwrap().reconciles;
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = status().unwrap();
            if s.reconciles > before {
                took.push(Duration::from_micros(s.last_reconcile_us));
                break;
            }
            assert!(Instant::now() < deadline, "no reconcile after SIGHUP");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    took.sort();
    println!(
        "no-op reconcile, 1,000 open spaces (observe + plan + status), 20 runs: p50 {:.2} ms, p95 {:.2} ms",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.95).as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "idle agent, 1,000 open spaces: resident memory {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let _ = child.wait();
}
