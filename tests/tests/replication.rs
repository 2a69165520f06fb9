//! Agents replicating a space over direct TCP on loopback: two members converge both ways
//! through their mounts; a blind seed keeps only ciphertext; a new member restores the
//! whole space from the seed while every writer is offline.

use cobox_tests::files::{MARKER, data_bytes, files_under, tree, write_corpus};
use cobox_tests::node::{Node, QUIET, eventually, free_port};

#[test]
fn members_converge_over_tcp_and_a_blind_seed_restores_a_new_member() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, s, c) = (
        Node::new(tmp.path(), "a"),
        Node::new(tmp.path(), "b"),
        Node::new(tmp.path(), "s"),
        Node::new(tmp.path(), "c"),
    );
    let (pa, ps, pm) = (free_port(), free_port(), free_port());
    let (kb, ks, kc) = (b.identity(), s.identity(), c.identity());
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [api]\nmetrics = \"127.0.0.1:{pm}\"\n\
         [[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\nmin_replicas = 2\n"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let mut want = write_corpus(&a.mount("home"));

    // B joins by invite and dials A.
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    b.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent_b = b.start();
    b.wait_converged(60);
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    eventually(
        "A's files appear in B's mount",
        90,
        || tree(&b.mount("home")) == want,
        logs,
    );
    // The invitee's first session with its inviter was not refused.
    assert!(
        !a.log().contains(&format!("peer {kb} refused")),
        "A refused B once\n{}",
        logs()
    );
    // Status shows where A listens and that B replicates "home" with it.
    let text = a.status_text();
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{pa}")),
        "{text}"
    );
    let status: serde_json::Value = a.status();
    assert!(
        status["network"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["identity"] == kb.as_str() && p["shared"][0] == "home"),
        "{status}"
    );

    // An edit on B appears on A, without remounting.
    let from_b = b"written on b".to_vec();
    std::fs::write(b.mount("home").join("from-b.txt"), &from_b).unwrap();
    want.insert("from-b.txt".into(), from_b);
    eventually(
        "B's file appears in A's mount",
        60,
        || tree(&a.mount("home")) == want,
        logs,
    );

    // The seed, dialled by A, takes every feed without the key.
    let address = a.space_address();
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let agent_s = s.start();
    s.wait_converged(60);
    let seed_feeds = s.data().join("seeds").join(&address);
    let space_feeds = a.data().join("spaces").join(&address).join("feeds");
    eventually(
        "the seed holds every block of the space",
        90,
        || data_bytes(&seed_feeds) == data_bytes(&space_feeds),
        logs,
    );
    assert!(
        !s.data().join("spaces").exists(),
        "a seed never holds space keys"
    );
    for f in files_under(&s.data()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "plaintext in {}",
            f.display()
        );
    }

    // With B and the seed connected and up to date, A's space has its two replicas; the
    // seed going away makes it Degraded, its return Ready again.
    let degraded = || {
        let status: serde_json::Value = a.status();
        let space = status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "space" && r["name"] == "home")
            .cloned()
            .unwrap();
        space["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Degraded")
            .map(|c| c["status"] == true)
    };
    eventually(
        "A's space has its replicas",
        60,
        || degraded() == Some(false),
        || format!("{}\n{}", a.status_text(), logs()),
    );
    let text = a.status_text();
    assert!(text.contains(&format!("{ks} seeder  up to date")), "{text}");
    // The same, for Prometheus.
    let metrics = http_get(pm, "/metrics");
    for line in [
        "cobox_replicas_up_to_date{kind=\"space\",name=\"home\"} 2",
        "cobox_resource_degraded{kind=\"space\",name=\"home\"} 0",
        "cobox_window_open{kind=\"space\",name=\"home\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    let sent: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cobox_sent_bytes_total{kind=\"space\",name=\"home\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bytes sent in\n{metrics}"));
    assert!(sent > 1_000_000.0, "A sent its corpus: {sent}");
    // And per peer, on the wire: A's session with the seed carried at least the corpus.
    let to_seed: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "cobox_peer_sent_bytes_total{{peer=\"{ks}\",transport=\"tcp\"}} "
            ))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bytes sent to the seed in\n{metrics}"));
    assert!(
        to_seed > 1_000_000.0,
        "A sent its corpus to the seed: {to_seed}"
    );
    // B never connects to the seed, yet sees its state through A's health reports.
    let ka = a.identity();
    let seen_by_b = || {
        let status: serde_json::Value = b.status();
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "space" && r["name"] == "home")
            .flat_map(|r| r["replicas"].as_array().cloned().unwrap_or_default())
            .find(|c| c["peer"] == ks.as_str())
    };
    eventually(
        "B sees the seed up to date, as A reported",
        90,
        || {
            seen_by_b().is_some_and(|c| {
                c["reported_by"] == ka.as_str() && c["up_to_date"] == true && c["role"] == "seeder"
            })
        },
        || format!("{:?}\n{}", seen_by_b(), b.status_text()),
    );
    let text = b.status_text();
    assert!(text.contains("as reported by member"), "{text}");
    agent_s.stop();
    eventually(
        "A's space turns Degraded when the seed goes away",
        60,
        || degraded() == Some(true),
        || a.status_text(),
    );
    let agent_s = s.start();
    eventually(
        "A's space is whole again when the seed returns",
        120,
        || degraded() == Some(false),
        || format!("{}\n{}", a.status_text(), logs()),
    );

    // A device that knows the address but that no member admitted gets nothing.
    let x = Node::new(tmp.path(), "x");
    let kx = x.identity();
    x.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let agent_x = x.start();
    x.wait_converged(60);
    eventually(
        "A refuses the unlisted device",
        30,
        || a.log().contains(&format!("peer {kx} refused")),
        || format!("{}\nx:\n{}", logs(), x.log()),
    );
    agent_x.stop();
    assert_eq!(
        data_bytes(&x.data().join("seeds")),
        0,
        "an unlisted device receives zero blocks"
    );

    // C is invited while A runs; the admission reaches the seed; then every writer stops.
    let code_c = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kc]);
    s.wait_admitted(&address, &kc, logs);
    agent_a.stop();
    agent_b.stop();
    c.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code_c}\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent_c = c.start();
    c.wait_converged(60);
    eventually(
        "C restores the whole space from the seed alone",
        90,
        || tree(&c.mount("home")) == want,
        || format!("{}\nc:\n{}", logs(), c.log()),
    );
    agent_c.stop();
    agent_s.stop();
    // Peers came and went: each end is an ordinary line, never a library's ERROR.
    for (name, log) in [("a", a.log()), ("s", s.log()), ("c", c.log())] {
        assert!(!log.contains("TODO Error"), "{name}:\n{log}");
    }
}

/// The body of `GET path` on 127.0.0.1:`port`, over plain HTTP/1.0.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}
