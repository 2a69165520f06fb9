//! The network is planned like everything else: a listener whose port is taken is a
//! `Stalled` resource with the reason in `coboxctl status`, retried with backoff and
//! `Ready` once the port is free; one on an address this machine does not have is stalled
//! for good (not retried until the config changes); dialers, the policy and the other
//! listener are resources of their own and stay ready meanwhile.

use std::process::Command;

use cobox_tests::node::{Node, QUIET, eventually, free_port};

fn status(node: &Node) -> serde_json::Value {
    let out = node.ctl(&["status", "--output", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The resource `kind`/`name`'s condition `kind` as (status, reason, message).
fn condition(
    s: &serde_json::Value,
    kind: &str,
    name: &str,
    cond: &str,
) -> Option<(bool, String, String)> {
    let r = s["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)?;
    let c = r["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == cond)?;
    Some((
        c["status"].as_bool()?,
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

fn reconciles(node: &Node) -> u64 {
    status(node)["reconciles"].as_u64().unwrap_or(0)
}

#[test]
fn a_listener_that_cannot_bind_is_stalled_with_its_reason_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Node::new(tmp.path(), "a");
    let (taken, free) = (free_port(), free_port());
    let holder = std::net::TcpListener::bind(("127.0.0.1", taken)).unwrap();
    let busy = format!("127.0.0.1:{taken}");
    let good = format!("127.0.0.1:{free}");
    // 192.0.2.0/24 is for documentation: no machine has it.
    let foreign = "192.0.2.7:7411";
    a.write_config(&format!(
        "[network]\nlisten = [\"{busy}\", \"{good}\", \"{foreign}\"]\n\
         peers = [\"127.0.0.1:{}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\nmount = false\n",
        free_port()
    ));
    let agent = a.start();
    eventually(
        "the taken port shows as a stalled listener",
        60,
        || {
            condition(&status(&a), "listener", &busy, "Stalled").is_some_and(|(s, _, m)| {
                s && m.contains(&format!("listen on {busy}"))
                    && m.contains("in use")
                    && m.contains("retrying in")
            })
        },
        || a.log(),
    );
    let s = status(&a);
    assert_eq!(
        condition(&s, "listener", &good, "Ready").map(|c| c.0),
        Some(true),
        "{s}"
    );
    assert_eq!(
        condition(&s, "space", "home", "Ready").map(|c| c.0),
        Some(true)
    );
    assert_eq!(
        condition(&s, "policy", "traffic", "Ready").map(|c| c.0),
        Some(true)
    );
    let dialer = format!(
        "127.0.0.1:{}",
        s["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "dialer")
            .and_then(|r| r["name"].as_str()?.rsplit(':').next().map(str::to_string))
            .unwrap()
    );
    assert_eq!(
        condition(&s, "dialer", &dialer, "Ready").map(|c| c.0),
        Some(true)
    );
    assert_eq!(s["converged"], false, "a stalled listener is not converged");
    // The text status says which listener and why.
    let out = a.ctl(&["status", "--color", "never"]);
    assert_eq!(out.status.code(), Some(1), "not converged");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("listener") && l.contains(&busy))
        .unwrap_or_else(|| panic!("no listener line in\n{text}"));
    assert!(
        line.contains("Stalled") && line.contains("ActionFailed") && line.contains("in use"),
        "{line}"
    );

    // An address this machine does not have is not retried: however many reconciles
    // run, it failed once.
    eventually(
        "the foreign address is stalled for good",
        60,
        || {
            condition(&status(&a), "listener", foreign, "Stalled")
                .is_some_and(|(s, _, m)| s && m.contains("not retried until the config changes"))
        },
        || a.log(),
    );
    let pid = agent.0.id().to_string();
    for _ in 0..3 {
        let before = reconciles(&a);
        Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        eventually(
            "a reconcile after SIGHUP",
            30,
            || reconciles(&a) > before,
            || a.log(),
        );
    }
    let events = a.ctl_ok(&["events", "--output", "json"]);
    let tries = events
        .lines()
        .filter(|l| l.contains("\"action-failed\"") && l.contains(&format!("listener {foreign}")))
        .count();
    assert_eq!(tries, 1, "{events}");

    // The port is freed: the listener comes up on a retry.
    drop(holder);
    eventually(
        "the listener binds once the port is free",
        90,
        || condition(&status(&a), "listener", &busy, "Ready").is_some_and(|c| c.0),
        || a.log(),
    );
    // And a config without the foreign address converges.
    a.write_config(&format!(
        "[network]\nlisten = [\"{busy}\", \"{good}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\nmount = false\n"
    ));
    eventually(
        "converged",
        60,
        || status(&a)["converged"] == true,
        || a.log(),
    );
    let s = status(&a);
    assert!(condition(&s, "listener", foreign, "Ready").is_none(), "{s}");
    assert!(
        s["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] != "dialer"),
        "the dialer left with its peer: {s}"
    );
    agent.stop();
}
