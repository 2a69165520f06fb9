//! A fleet directory rolled out by an admin to three hubs on loopback: `fleet status` and
//! `fleet diff` against what the hubs report, a change reaching every hub wave by wave, and
//! a wave whose canary refuses its config stopping the rollout with the later hubs
//! untouched.

use cobox_tests::node::{Node, QUIET, eventually, free_port, show};

fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}:\n{}", n.name, n.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_change_rolls_out_in_waves_and_a_failing_canary_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = Node::new(dir.path(), "a");
    let ka = a.identity();
    let admins = format!("[admins]\nkeys = [\"{ka}\"]\nfleet = \"fleet\"\n");
    let port = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port}\"]\n{QUIET}[[space]]\nname = \"fleet\"\nmount = false\n{admins}"
    ));
    let _agent_a = a.start();
    a.wait_converged(60);

    // The fleet directory: a base every hub shares, each hub's own layer (its device
    // table and its invite), a canary group of one.
    let fleet = dir.path().join("fleet");
    std::fs::create_dir_all(fleet.join("devices")).unwrap();
    std::fs::create_dir_all(fleet.join("groups")).unwrap();
    let hubs: Vec<Node> = (1..=3)
        .map(|i| Node::new(dir.path(), &format!("h{i}")))
        .collect();
    let mut listing = String::from(
        "[fleet]\nname = \"test\"\n\n[[group]]\nname = \"canary\"\ndevices = [\"h1\"]\n",
    );
    for h in &hubs {
        let key = h.identity();
        listing.push_str(&format!(
            "\n[[device]]\nname = \"{}\"\nkey = \"{key}\"\n",
            h.name
        ));
        let code = a.ctl_ok(&["invite", "create", "--space", "fleet", "--for", &key]);
        std::fs::write(
            fleet.join(format!("devices/{}.toml", h.name)),
            format!(
                "{}[[space]]\nname = \"fleet\"\ninvite = \"{code}\"\nmount = false\n",
                h.device_table()
            ),
        )
        .unwrap();
    }
    std::fs::write(fleet.join("fleet.toml"), listing).unwrap();
    let base = format!("version = 1\n[network]\npeers = [\"127.0.0.1:{port}\"]\n{QUIET}{admins}");
    std::fs::write(fleet.join("base.toml"), &base).unwrap();
    let fleet_dir = fleet.to_str().unwrap();

    // Each hub starts on the config the fleet renders for it.
    let mut agents = Vec::new();
    for h in &hubs {
        let text = a.ctl_ok(&["fleet", "render", fleet_dir, &h.name]);
        std::fs::write(h.config(), format!("{text}\n")).unwrap();
        agents.push(h.start());
    }
    for h in &hubs {
        h.wait_converged(60);
    }
    let everyone: Vec<&Node> = std::iter::once(&a).chain(hubs.iter()).collect();
    eventually(
        "fleet status shows every hub converged on its rendered config",
        60,
        || a.ctl(&["fleet", "status", fleet_dir]).status.success(),
        || {
            format!(
                "{}\n{}",
                show(&a.ctl(&["fleet", "status", fleet_dir])),
                logs(&everyone)
            )
        },
    );

    // A change of the base: every hub differs, and a rollout in two waves reaches them.
    std::fs::write(
        fleet.join("base.toml"),
        format!("{base}[[space]]\nname = \"wave2\"\nmount = false\n"),
    )
    .unwrap();
    let diff = a.ctl(&["fleet", "diff", fleet_dir]);
    assert_eq!(diff.status.code(), Some(1), "{}", show(&diff));
    let text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("~ ")).count(),
        3,
        "{text}"
    );
    let out = a.ctl(&[
        "fleet",
        "apply",
        fleet_dir,
        "--waves",
        "1,100%",
        "--timeout",
        "60s",
        "--yes",
    ]);
    assert!(out.status.success(), "{}\n{}", show(&out), logs(&everyone));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wave 1: h1") && text.contains("wave 2: h2, h3"),
        "{text}"
    );
    for h in &hubs {
        h.resource("space", "wave2");
    }
    eventually(
        "fleet status shows the change everywhere",
        60,
        || a.ctl(&["fleet", "status", fleet_dir]).status.success(),
        || show(&a.ctl(&["fleet", "status", fleet_dir])),
    );

    // The next change cuts the canary off the network: it refuses it, the rollout stops
    // after the first wave, the other hubs never see the change.
    std::fs::write(
        fleet.join("base.toml"),
        format!("{base}[[space]]\nname = \"wave2\"\nmount = false\n[[space]]\nname = \"wave3\"\nmount = false\n"),
    )
    .unwrap();
    std::fs::write(fleet.join("groups/canary.toml"), "[network]\npeers = []\n").unwrap();
    let out = a.ctl(&[
        "fleet",
        "apply",
        fleet_dir,
        "--waves",
        "1,100%",
        "--timeout",
        "60s",
        "--yes",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        show(&out),
        logs(&everyone)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rollout stopped at wave 1"), "{text}");
    assert!(text.contains("untouched: h2, h3"), "{text}");
    assert!(text.contains("no way onto the network"), "{text}");
    for h in &hubs {
        let running = std::fs::read_to_string(h.config()).unwrap();
        assert!(
            !running.contains("wave3"),
            "{} runs the stopped change",
            h.name
        );
    }
    let status: serde_json::Value = serde_json::from_slice(
        &a.ctl(&["fleet", "status", fleet_dir, "--output", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(status[0]["state"], "refused", "{status}");
    assert_eq!(
        status[1]["published"], status[1]["applied"],
        "h2 got nothing new: {status}"
    );
    drop(agents);
}
