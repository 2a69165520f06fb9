//! The web dashboard's weight and speed: a device with 100 spaces (not mounted) and its
//! dashboard on loopback. Prints each page's bytes with the stylesheet and script it loads
//! (the target is under 100 KiB a page), the time the agent takes to answer the overview
//! (`COBOX_BENCH_REQUESTS` requests, default 50), and headless Chromium's first contentful
//! paint of the overview (`COBOX_BENCH_LOADS` loads, default 10).
//!
//! Run: `cargo bench -p cobox-tests --bench dashboard` (needs `chromium` and
//! `chromium-driver`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cobox_tests::node::{Node, QUIET, eventually, free_port};
use cobox_tests::web::{Browser, request};

const SPACES: usize = 100;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.2} ms (min {:.2}, max {:.2}; {} runs)",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::new(tmp.path(), "bench");
    let port = free_port();
    let mut spaces = String::new();
    for i in 0..SPACES {
        spaces.push_str(&format!(
            "[[space]]\nname = \"space-{i:03}\"\nmount = false\nmin_replicas = {}\n",
            i % 2
        ));
    }
    node.write_config(&format!(
        "[network]\n{QUIET}{spaces}[api]\nweb = \"127.0.0.1:{port}\"\n"
    ));
    let agent = node.start();
    node.wait_converged(600);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("127.0.0.1:{port}");
    let get = |path: &str| request(addr, "GET", path, &host, &[], None).unwrap();
    eventually(
        "the dashboard answers",
        60,
        || request(addr, "GET", "/", &host, &[], None).is_ok_and(|a| a.status == 200),
        || node.log(),
    );

    let assets: usize = ["/assets/dashboard.css", "/assets/dashboard.js"]
        .iter()
        .map(|a| get(a).body.len())
        .sum();
    println!("device: {SPACES} spaces; assets (css + js): {assets} bytes");
    println!("page                 html bytes   with assets");
    for path in [
        "/",
        "/space/space-000",
        "/events",
        "/peers",
        "/config",
        "/identity",
    ] {
        let a = get(path);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let html = a.body.len();
        println!(
            "{path:<20} {html:>10}   {:>10} ({:.1} KiB)",
            html + assets,
            (html + assets) as f64 / 1024.0
        );
    }

    let requests = count("COBOX_BENCH_REQUESTS", 50);
    let mut answers = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let a = get("/");
        answers.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(a.status, 200);
    }
    println!("overview answered by the agent: {}", stats(answers));

    let browser = Browser::start(1280, 800);
    let loads = count("COBOX_BENCH_LOADS", 10);
    let mut paints = Vec::with_capacity(loads);
    for _ in 0..loads {
        browser.go("about:blank");
        browser.go(&format!("http://{host}/"));
        let mut fcp = serde_json::Value::Null;
        let deadline = Instant::now() + Duration::from_secs(30);
        while fcp.is_null() && Instant::now() < deadline {
            fcp = browser.script(
                "var p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
            );
        }
        paints.push(fcp.as_f64().expect("a first contentful paint"));
    }
    println!(
        "overview, first contentful paint in Chromium (from navigation start): {}",
        stats(paints)
    );
    drop(browser);
    agent.stop();
}
