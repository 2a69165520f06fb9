//! Admins steering devices through a fleet, with real agents: a config published by an
//! admin is applied and reported; a config that would cut the device off is refused; a hub
//! offline during several publications converges on the newest through a seed while the
//! admin is away; a change of the admin set needs its threshold of signatures; a non-admin's
//! envelope is refused and reported; the owner's local edit takes the device back.

use std::path::Path;

use cobox_tests::node::{Agent, Node, QUIET, eventually, free_port, show};

/// A fleet space `fleet` created by admin `a` (listening), `b` a second admin device, and
/// hub `h` joined to it by invite; `admins` is the `[admins]` table every device gets.
struct Fleet {
    a: Node,
    h: Node,
    /// The hub's config text after its `[device]` table: what admins publish changes of.
    hub_base: String,
    port_a: u16,
}

fn admins_table(keys: &[&str], threshold: u8) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "[admins]\nkeys = [{}]\nthreshold = {threshold}\nfleet = \"fleet\"\n",
        keys.join(", ")
    )
}

/// Admin `a` with the fleet space, listening on loopback and dialling `more_peers`.
fn admin(dir: &Path, admins: &str, more: &str) -> (Node, Agent, u16) {
    let a = Node::new(dir, "a");
    let port = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port}\"]\n{more}{QUIET}[[space]]\nname = \"fleet\"\nmount = false\n{admins}"
    ));
    let agent = a.start();
    a.wait_converged(60);
    (a, agent, port)
}

/// Join `node` to the fleet by an invite from `a`, with `network` lines and `admins`.
fn join(a: &Node, node: &Node, network: &str, admins: &str) -> String {
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "fleet",
        "--for",
        &node.identity(),
    ]);
    let base = format!(
        "[network]\n{network}{QUIET}[[space]]\nname = \"fleet\"\ninvite = \"{code}\"\nmount = false\n{admins}"
    );
    node.write_config(&base);
    base
}

fn hub_config(f: &Fleet, extra: &str) -> std::path::PathBuf {
    let path = f.a.root.join(format!("hub-{}.toml", extra.len()));
    std::fs::write(
        &path,
        format!("{}{}{extra}", f.h.device_table(), f.hub_base),
    )
    .unwrap();
    path
}

fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}:\n{}", n.name, n.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The device's `admins` status (null while its agent does not answer).
fn admins_status(n: &Node) -> serde_json::Value {
    let out = n.ctl(&["status", "--output", "json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()["admins"].clone()
}

#[test]
fn an_admin_changes_a_hubs_config_and_a_config_that_cuts_it_off_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Node::new(dir.path(), "a");
    let ka = a0.identity();
    let admins = admins_table(&[&ka], 1);
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let h = Node::new(dir.path(), "h");
    let hub_base = join(
        &a,
        &h,
        &format!("peers = [\"127.0.0.1:{port_a}\"]\n"),
        &admins,
    );
    let _agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    let f = Fleet {
        a,
        h,
        hub_base,
        port_a,
    };
    let st = admins_status(&f.h);
    assert_eq!(st["keys"], serde_json::json!([ka]), "{st}");
    assert_eq!(st["admin_generation"], 0);

    // A new space on the hub, published by the admin from its own device.
    let next = hub_config(&f, "[[space]]\nname = \"notes\"\nmount = false\n");
    let out = f.a.ctl(&[
        "remote",
        "apply",
        &kh,
        next.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert!(
        out.status.success(),
        "remote apply: {}\n{}",
        show(&out),
        logs(&[&f.a, &f.h])
    );
    f.h.resource("space", "notes");
    let running = std::fs::read_to_string(f.h.config()).unwrap();
    assert!(
        running.contains("name = \"notes\""),
        "the hub's file is the config it runs"
    );
    let gens: serde_json::Value =
        serde_json::from_str(&f.h.ctl_ok(&["generations", "--output", "json"])).unwrap();
    let newest = &gens["generations"][0];
    assert_eq!(newest["source"], "remote-admin", "{gens}");
    assert_eq!(newest["name"], format!("admin {ka} gen 1"));
    let remote = f.a.ctl(&["remote", "status", &kh, "--output", "json"]);
    assert_eq!(remote.status.code(), Some(0), "{}", show(&remote));
    let r: serde_json::Value = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(r["report"]["admins"]["admin_generation"], 1);
    assert_eq!(r["report"]["converged"], true);
    // The admin compares a file with what the hub reported running, and reads its events.
    let same = f.a.ctl(&["remote", "diff", &kh, next.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0), "{}", show(&same));
    let events = f.a.ctl_ok(&["remote", "events", &kh]);
    assert!(events.contains("envelope generation 1"), "{events}");

    // Listening on nothing, dialling nobody, no discovery, no relays: refused.
    let cut = f.a.root.join("cut.toml");
    let base_cut = f
        .hub_base
        .replace(&format!("peers = [\"127.0.0.1:{}\"]\n", f.port_a), "");
    std::fs::write(&cut, format!("{}{base_cut}", f.h.device_table())).unwrap();
    let out = f.a.ctl(&[
        "remote",
        "apply",
        &kh,
        cut.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no way onto the network"), "{err}");
    let st = admins_status(&f.h);
    assert_eq!(
        st["admin_generation"], 2,
        "the refused envelope moved the mark: {st}"
    );
    assert_eq!(st["last_envelope"]["outcome"], "refused");
    // The admin's status of the hub says it did not take the newest envelope.
    let remote = f.a.ctl(&["remote", "status", &kh]);
    assert_eq!(remote.status.code(), Some(1), "{}", show(&remote));
    let fleet = f.h.resource("fleet", "fleet");
    let degraded = fleet["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .cloned()
        .unwrap_or_default();
    assert_eq!(degraded["reason"], "EnvelopeRefused", "{fleet}");
    assert!(
        std::fs::read_to_string(f.h.config())
            .unwrap()
            .contains("127.0.0.1:"),
        "the hub keeps the config it ran"
    );
    // The chain goes on after a refusal.
    let again = hub_config(
        &f,
        "[[space]]\nname = \"notes\"\nmount = false\n[[space]]\nname = \"more\"\nmount = false\n",
    );
    let out = f.a.ctl(&[
        "remote",
        "apply",
        &kh,
        again.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        logs(&[&f.a, &f.h])
    );
    f.h.resource("space", "more");
    let changed = f.a.ctl(&["remote", "diff", &kh, next.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1), "{}", show(&changed));
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(text.contains("-name = \"more\""), "{text}");

    // The owner edits the hub locally: allowed, and the admin sees it as drift.
    let local = format!(
        "{}{}[[space]]\nname = \"local\"\nmount = false\n",
        f.h.device_table(),
        f.hub_base
    );
    std::fs::write(f.h.config(), local).unwrap();
    eventually(
        "the admin sees the hub's local edit as drift",
        60,
        || {
            let r: serde_json::Value = serde_json::from_slice(
                &f.a.ctl(&["remote", "status", &kh, "--output", "json"])
                    .stdout,
            )
            .unwrap_or_default();
            r["report"]["admins"]["drift"].is_string() && r["report"]["source"] == "file"
        },
        || logs(&[&f.a, &f.h]),
    );
}

#[test]
fn a_hub_offline_during_three_publications_converges_on_the_newest_through_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a0, s) = (Node::new(dir.path(), "a"), Node::new(dir.path(), "s"));
    let (ka, ks) = (a0.identity(), s.identity());
    let admins = admins_table(&[&ka], 1);
    let port_s = free_port();
    // The fleet is seeded by `s`; the admin dials it.
    let a = Node::new(dir.path(), "a");
    let port_a = free_port();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port_a}\"]\npeers = [\"127.0.0.1:{port_s}\"]\n{QUIET}[[space]]\nname = \"fleet\"\nmount = false\nseeders = [\"{ks}\"]\n{admins}"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let address = std::fs::read_dir(a.data().join("spaces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.len() == 64)
        .unwrap();
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{port_s}\"]\n{QUIET}[[seed]]\nname = \"fleet\"\naddress = \"{address}\"\n"
    ));
    let agent_s = s.start();
    s.wait_converged(60);
    // The hub dials the seed only.
    let h = Node::new(dir.path(), "h");
    let code = a.ctl_ok(&[
        "invite",
        "create",
        "--space",
        "fleet",
        "--for",
        &h.identity(),
    ]);
    let hub_base = format!(
        "[network]\npeers = [\"127.0.0.1:{port_s}\"]\n{QUIET}[[space]]\nname = \"fleet\"\ninvite = \"{code}\"\nmount = false\nseeders = [\"{ks}\"]\n{admins}"
    );
    h.write_config(&hub_base);
    let agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    s.wait_admitted(&address, &kh, || logs(&[&a, &h, &s]));
    agent_h.stop();

    // Three publications while the hub is away; then the admin goes away too.
    for i in 1..=3 {
        let path = a.root.join(format!("hub{i}.toml"));
        std::fs::write(
            &path,
            format!(
                "{}{hub_base}[[space]]\nname = \"v{i}\"\nmount = false\n",
                h.device_table()
            ),
        )
        .unwrap();
        a.ctl_ok(&["remote", "apply", &kh, path.to_str().unwrap(), "--no-wait"]);
    }
    // The seed holds the admin's log with the three envelopes before the admin stops.
    let admin_log_len = || -> u64 {
        let r: serde_json::Value = a.status();
        r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "space" && r["name"] == "fleet")
            .and_then(|r| r["replicas"].as_array().cloned())
            .map_or(1, |reps| {
                reps.iter()
                    .map(|p| p["behind_blocks"].as_u64().unwrap_or(1))
                    .sum()
            })
    };
    eventually(
        "the seed holds everything the admin wrote",
        60,
        || admin_log_len() == 0,
        || format!("{}\n{}", a.status(), logs(&[&a, &s])),
    );
    agent_a.stop();

    let _agent_h = h.start();
    eventually(
        "the hub converges on the third publication through the seed",
        90,
        || {
            std::fs::read_to_string(h.config()).is_ok_and(|t| t.contains("name = \"v3\""))
                && h.ctl(&["status"]).status.success()
        },
        || logs(&[&h, &s]),
    );
    let st = admins_status(&h);
    assert_eq!(st["admin_generation"], 3, "{st}");
    // Success once probation saw the seed, reached before, reached again.
    eventually(
        "the hub's probation passes",
        30,
        || admins_status(&h)["last_envelope"]["outcome"] == "applied",
        || {
            format!(
                "{}
{}",
                admins_status(&h),
                logs(&[&h])
            )
        },
    );
    let running = std::fs::read_to_string(h.config()).unwrap();
    assert!(
        !running.contains("\"v1\"") && !running.contains("\"v2\""),
        "the newest only"
    );
    drop(agent_s);
}

#[test]
fn the_admin_set_changes_only_with_its_threshold_and_outsiders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a0, b, c, o) = (
        Node::new(dir.path(), "a"),
        Node::new(dir.path(), "b"),
        Node::new(dir.path(), "c"),
        Node::new(dir.path(), "o"),
    );
    let (ka, kb, kc, ko) = (a0.identity(), b.identity(), c.identity(), o.identity());
    // The hub trusts A and B, two signatures needed; so does C, not an admin yet. O is a
    // member of the fleet and names itself an admin in its own config, which counts for
    // nothing on the hub.
    let admins = admins_table(&[&ka, &kb], 2);
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let peers = format!("peers = [\"127.0.0.1:{port_a}\"]\n");
    join(&a, &b, &peers, &admins);
    let c_base = join(&a, &c, &peers, &admins);
    join(&a, &o, &peers, &admins_table(&[&ko], 1));
    let h = Node::new(dir.path(), "h");
    let hub_base = join(&a, &h, &peers, &admins);
    let (_agent_b, agent_c, _agent_o, _agent_h) = (b.start(), c.start(), o.start(), h.start());
    for n in [&b, &c, &o, &h] {
        n.wait_converged(60);
    }
    let kh = h.identity();
    let hub_file = |name: &str, from: &Node| {
        let path = from.root.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "{}{hub_base}[[space]]\nname = \"{name}\"\nmount = false\n",
                h.device_table()
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };

    // O publishes a config for the hub: refused as not an admin, and reported.
    o.ctl_ok(&["remote", "apply", &kh, &hub_file("evil", &o), "--no-wait"]);
    eventually(
        "the hub refuses O's envelope",
        60,
        || {
            admins_status(&h)["refused"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|x| x["reason"] == "not-an-admin" && x["signer"] == ko.as_str())
            })
        },
        || logs(&[&o, &h]),
    );
    assert!(
        !std::fs::read_to_string(h.config())
            .unwrap()
            .contains("evil")
    );
    eventually(
        "A reads the hub's report of the refusal",
        60,
        || {
            let r: serde_json::Value = serde_json::from_slice(
                &a.ctl(&["remote", "status", &kh, "--output", "json"]).stdout,
            )
            .unwrap_or_default();
            r["report"]["admins"]["refused"]
                .as_array()
                .is_some_and(|x| !x.is_empty())
        },
        || logs(&[&a, &h]),
    );
    // C cannot publish while it is not an admin in its own view either.
    let early = c.ctl(&["remote", "apply", &kh, &hub_file("early", &c), "--no-wait"]);
    assert_eq!(early.status.code(), Some(2), "{}", show(&early));

    // A proposes adding C: one signature of two is not enough.
    let proposed = a.ctl_ok(&["admins", "add", &kc]);
    let entry = proposed.lines().last().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let keys = || admins_status(&h)["keys"].as_array().map_or(0, Vec::len);
    assert_eq!(
        keys(),
        2,
        "one signature changed the set: {}",
        admins_status(&h)
    );
    // B co-signs: the hub takes it, and so does C.
    let signed = b.ctl_ok(&["admins", "sign", &entry]);
    assert!(signed.contains("applied"), "{signed}");
    eventually(
        "the hub adds C with two signatures",
        60,
        || keys() == 3,
        || logs(&[&a, &b, &h]),
    );
    assert_eq!(admins_status(&h)["changes"], 1);
    eventually(
        "C counts itself among the admins",
        60,
        || {
            admins_status(&c)["keys"]
                .as_array()
                .is_some_and(|k| k.len() == 3)
        },
        || c.log(),
    );
    // C, now an admin, changes the hub.
    let out = c.ctl(&[
        "remote",
        "apply",
        &kh,
        &hub_file("by-c", &c),
        "--timeout",
        "60s",
    ]);
    assert!(out.status.success(), "{}\n{}", show(&out), logs(&[&c, &h]));

    // While C's device is away, A and B remove C. C, not knowing, publishes again; once
    // back, its envelope reaches the hub and is refused: a removed admin counts for nothing.
    agent_c.stop();
    let entry = a
        .ctl_ok(&["admins", "remove", &kc])
        .lines()
        .last()
        .unwrap()
        .to_string();
    b.ctl_ok(&["admins", "sign", &entry]);
    eventually(
        "the hub removes C",
        60,
        || keys() == 2,
        || logs(&[&a, &b, &h]),
    );
    std::fs::write(
        c.config(),
        format!("{}{}", c.device_table(), c_base.replace(&peers, "")),
    )
    .unwrap();
    let _agent_c = c.start();
    c.wait_converged(60);
    c.ctl_ok(&["remote", "apply", &kh, &hub_file("late", &c), "--no-wait"]);
    std::fs::write(c.config(), format!("{}{c_base}", c.device_table())).unwrap();
    eventually(
        "the hub refuses the removed admin's envelope",
        60,
        || {
            admins_status(&h)["refused"].as_array().is_some_and(|r| {
                r.iter().any(|x| {
                    x["reason"] == "not-an-admin"
                        && x["signer"] == kc.as_str()
                        && x["generation"] == 2
                })
            })
        },
        || format!("{}\n{}", admins_status(&h), logs(&[&c, &h])),
    );
    let running = std::fs::read_to_string(h.config()).unwrap();
    assert!(
        running.contains("by-c") && !running.contains("late"),
        "{running}"
    );
}

#[test]
fn the_owner_takes_a_hub_back_with_a_local_edit_and_the_admin_is_refused_after() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Node::new(dir.path(), "a");
    let ka = a0.identity();
    let admins = admins_table(&[&ka], 1);
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let h = Node::new(dir.path(), "h");
    let hub_base = join(
        &a,
        &h,
        &format!("peers = [\"127.0.0.1:{port_a}\"]\n"),
        &admins,
    );
    let _agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    // The owner names another admin in the file: re-rooted, loudly.
    let other = Node::new(dir.path(), "o").identity();
    h.write_config(&hub_base.replace(&ka, &other));
    eventually(
        "the hub reports the local override",
        30,
        || admins_status(&h)["local_override"].is_string(),
        || h.log(),
    );
    assert_eq!(admins_status(&h)["keys"], serde_json::json!([other]));
    let events = h.ctl_ok(&["events"]);
    assert!(events.contains("edited locally"), "{events}");
    // A's next envelope is refused on the hub: A is no longer its admin.
    let path = a.root.join("after.toml");
    std::fs::write(&path, format!("{}{hub_base}", h.device_table())).unwrap();
    a.ctl_ok(&["remote", "apply", &kh, path.to_str().unwrap(), "--no-wait"]);
    eventually(
        "the hub refuses the former admin's envelope",
        60,
        || {
            admins_status(&h)["refused"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["reason"] == "not-an-admin"))
        },
        || logs(&[&a, &h]),
    );
    assert!(
        std::fs::read_to_string(h.config())
            .unwrap()
            .contains(&other)
    );
}

#[test]
fn configs_and_reports_flow_under_a_1_kib_cap_and_a_closed_window() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Node::new(dir.path(), "a");
    let ka = a0.identity();
    let admins = admins_table(&[&ka], 1);
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let h = Node::new(dir.path(), "h");
    // The hub's whole traffic is capped at 1 KiB/s each way, and the fleet space's own
    // window opens for a minute once a year: neither holds the fleet back.
    let network =
        format!("peers = [\"127.0.0.1:{port_a}\"]\nupload = \"1 KiB/s\"\ndownload = \"1 KiB/s\"\n");
    let base = join(&a, &h, &network, &admins).replace(
        "mount = false\n",
        "mount = false\n[[space.windows]]\nwhen = \"0 0 1 1 *\"\nfor = \"1m\"\n",
    );
    h.write_config(&base);
    let _agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    // 48 KiB of comment: 48 s at the cap, never within the window.
    let padding: String = (0..1200)
        .map(|i| format!("# padding line {i:05} of the config, to weigh it\n"))
        .collect();
    assert!(padding.len() > 48 * 1024);
    let path = a.root.join("heavy.toml");
    std::fs::write(
        &path,
        format!(
            "{}{base}{padding}[[space]]\nname = \"heavy\"\nmount = false\n",
            h.device_table()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = a.ctl(&[
        "remote",
        "apply",
        &kh,
        path.to_str().unwrap(),
        "--timeout",
        "30s",
    ]);
    assert!(out.status.success(), "{}\n{}", show(&out), logs(&[&a, &h]));
    h.resource("space", "heavy");
    eprintln!(
        "48 KiB config applied and reported under the cap in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_config_that_loses_every_peer_is_rolled_back_by_probation_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Node::new(dir.path(), "a");
    let ka = a0.identity();
    let admins = format!("{}probation = \"5s\"\n", admins_table(&[&ka], 1));
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let h = Node::new(dir.path(), "h");
    let peer = format!("peers = [\"127.0.0.1:{port_a}\"]\n");
    let base = join(&a, &h, &peer, &admins);
    let _agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    let before = std::fs::read_to_string(h.config()).unwrap();
    // It passes the pre-apply check (it dials a peer), but that peer is not there.
    let lost = a.root.join("lost.toml");
    let dead = free_port();
    std::fs::write(
        &lost,
        format!(
            "{}{}",
            h.device_table(),
            base.replace(&peer, &format!("peers = [\"127.0.0.1:{dead}\"]\n"))
        ),
    )
    .unwrap();
    let out = a.ctl(&[
        "remote",
        "apply",
        &kh,
        lost.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        show(&out),
        logs(&[&a, &h])
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rolled back"), "{err}");
    let st = admins_status(&h);
    assert_eq!(st["last_envelope"]["outcome"], "rolled-back", "{st}");
    assert_eq!(
        std::fs::read_to_string(h.config()).unwrap(),
        before,
        "the config before is back"
    );
    let gens: serde_json::Value =
        serde_json::from_str(&h.ctl_ok(&["generations", "--output", "json"])).unwrap();
    assert_eq!(gens["generations"][0]["source"], "rollback", "{gens}");
    // Not retried: the hub stays where it is, and takes the next envelope normally.
    h.wait_converged(30);
    let next = a.root.join("next.toml");
    std::fs::write(
        &next,
        format!(
            "{}{base}[[space]]\nname = \"after\"\nmount = false\n",
            h.device_table()
        ),
    )
    .unwrap();
    let out = a.ctl(&[
        "remote",
        "apply",
        &kh,
        next.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert!(out.status.success(), "{}\n{}", show(&out), logs(&[&a, &h]));
    assert_eq!(admins_status(&h)["admin_generation"], 2);
}

/// The hub's mark as kept on disk: the generation of the last envelope it accepted.
fn mark_on_disk(h: &Node) -> u64 {
    let text = std::fs::read_to_string(h.data().join("fleet/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["mark"]["generation"].as_u64().unwrap()
}

#[test]
fn a_hub_killed_during_remote_applies_ends_whole_and_replayed_envelopes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Node::new(dir.path(), "a");
    let ka = a0.identity();
    let admins = admins_table(&[&ka], 1);
    let (a, _agent_a, port_a) = admin(dir.path(), &admins, "");
    let h = Node::new(dir.path(), "h");
    let base = join(
        &a,
        &h,
        &format!("peers = [\"127.0.0.1:{port_a}\"]\n"),
        &admins,
    );
    let mut agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    let mut previous = std::fs::read_to_string(h.config()).unwrap();
    for i in 1..=6u64 {
        let text = format!(
            "{}{base}[[space]]\nname = \"k{i}\"\nmount = false\n",
            h.device_table()
        );
        let path = a.root.join(format!("k{i}.toml"));
        std::fs::write(&path, &text).unwrap();
        a.ctl_ok(&["remote", "apply", &kh, path.to_str().unwrap(), "--no-wait"]);
        // Killed at a different moment of the apply each time.
        std::thread::sleep(std::time::Duration::from_millis(i * 73 % 450));
        drop(agent_h);
        let on_disk = std::fs::read_to_string(h.config()).unwrap();
        let mark = mark_on_disk(&h);
        assert!(
            on_disk == previous || on_disk == text,
            "trial {i}: the config file is neither the old nor the new text:\n{on_disk}"
        );
        assert!(mark == i - 1 || mark == i, "trial {i}: mark {mark}");
        if on_disk == text {
            assert_eq!(
                mark, i,
                "trial {i}: the new config runs but the mark is behind"
            );
        }
        eprintln!(
            "trial {i}: killed with the {} config on disk, mark {mark}",
            if on_disk == text { "new" } else { "old" }
        );
        agent_h = h.start();
        eventually(
            &format!("trial {i}: the hub runs the new config after its restart"),
            60,
            || {
                std::fs::read_to_string(h.config()).is_ok_and(|t| t == text)
                    && mark_on_disk(&h) == i
                    && h.ctl(&["status"]).status.success()
            },
            || logs(&[&a, &h]),
        );
        previous = text;
    }
    // The hub reads every fleet log again from the start (its cursors lost): each older
    // envelope is a replay, refused and reported; nothing changes.
    let generations = || -> serde_json::Value {
        serde_json::from_str(&h.ctl_ok(&["generations", "--output", "json"])).unwrap()
    };
    let before = generations()["generations"][0]["number"].clone();
    agent_h.stop();
    let path = h.data().join("fleet/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    state["cursors"] = serde_json::json!({});
    state["refused"] = serde_json::json!([]);
    std::fs::write(&path, state.to_string()).unwrap();
    let _agent_h = h.start();
    eventually(
        "the hub refuses the five older envelopes as replays",
        60,
        || {
            admins_status(&h)["refused"]
                .as_array()
                .is_some_and(|r| r.iter().filter(|x| x["reason"] == "replayed").count() == 5)
        },
        || format!("{}\n{}", admins_status(&h), h.log()),
    );
    assert_eq!(generations()["generations"][0]["number"], before);
    assert_eq!(std::fs::read_to_string(h.config()).unwrap(), previous);
    assert_eq!(mark_on_disk(&h), 6);
}

#[test]
fn a_hub_baked_with_the_admin_set_in_force_joins_the_admins_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (a0, b) = (Node::new(dir.path(), "a"), Node::new(dir.path(), "b"));
    let (ka, kb) = (a0.identity(), b.identity());
    let (a, _agent_a, port_a) = admin(dir.path(), &admins_table(&[&ka], 1), "");
    // The set grows after the fleet began: A adds B (one signature is its threshold).
    let added = a.ctl_ok(&["admins", "add", &kb]);
    assert!(added.contains("applied"), "{added}");
    // A hub baked now names the set in force, not the one the fleet began with.
    let h = Node::new(dir.path(), "h");
    join(
        &a,
        &h,
        &format!("peers = [\"127.0.0.1:{port_a}\"]\n"),
        &admins_table(&[&ka, &kb], 1),
    );
    let base = std::fs::read_to_string(h.config()).unwrap();
    let _agent_h = h.start();
    h.wait_converged(60);
    let kh = h.identity();
    eventually(
        "the hub joins the admins' chain",
        60,
        || admins_status(&h)["changes"] == 1,
        || format!("{}\n{}", admins_status(&h), logs(&[&a, &h])),
    );
    let next = a.root.join("next.toml");
    std::fs::write(
        &next,
        format!("{base}[[space]]\nname = \"joined\"\nmount = false\n"),
    )
    .unwrap();
    let out = a.ctl(&[
        "remote",
        "apply",
        &kh,
        next.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    assert!(out.status.success(), "{}\n{}", show(&out), logs(&[&a, &h]));
    h.resource("space", "joined");
}
