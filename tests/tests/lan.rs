//! Three hosts on a LAN of network namespaces, two members and a seed, over direct TCP:
//! convergence with every file compared, an edit on one host shown in the other's mount,
//! a partition and its healing, and each agent killed (kill -9) and restarted while a
//! large file is being transferred: nothing lost, nothing stored twice.

use cobox_tests::files::{data_bytes, feed_sizes, tree, write_corpus};
use cobox_tests::lan::Lan;
use cobox_tests::node::{Node, QUIET, eventually};

const PORT: u16 = 7411;

fn on(lan: &Lan, dir: &std::path::Path, name: &str, host: usize) -> Node {
    let mut n = Node::new(dir, name);
    n.netns = Some(lan.host(host));
    n
}

#[test]
fn two_members_and_a_seed_converge_across_a_partition_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(3, 77);
    let (a, b, s) = (
        on(&lan, tmp.path(), "a", 0),
        on(&lan, tmp.path(), "b", 1),
        on(&lan, tmp.path(), "s", 2),
    );
    let (aa, sa) = (lan.addr(0), lan.addr(2));
    let (kb, ks) = (b.identity(), s.identity());
    let a_config = format!(
        "[network]\nlisten = [\"{aa}:{PORT}\"]\npeers = [\"{sa}:{PORT}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\n"
    );
    a.write_config(&a_config);
    let mut agent_a = a.start();
    a.wait_converged(60);
    let mut want = write_corpus(&a.mount("home"));
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    b.write_config(&format!(
        "[network]\npeers = [\"{aa}:{PORT}\", \"{sa}:{PORT}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    ));
    let mut agent_b = b.start();
    let address = a.space_address();
    s.write_config(&format!(
        "[network]\nlisten = [\"{sa}:{PORT}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let agent_s = s.start();
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    b.wait_converged(60);
    eventually(
        "B's mount shows A's files",
        90,
        || tree(&b.mount("home")) == want,
        logs,
    );
    let a_feeds = a.data().join("spaces").join(&address).join("feeds");
    let b_feeds = b.data().join("spaces").join(&address).join("feeds");
    let s_feeds = s.data().join("seeds").join(&address).join("feeds");

    // Partition B; both sides edit; heal; both edits everywhere.
    lan.partition(1);
    std::fs::write(a.mount("home").join("while-apart-a.txt"), b"from a").unwrap();
    std::fs::write(b.mount("home").join("while-apart-b.txt"), b"from b").unwrap();
    want.insert("while-apart-a.txt".into(), b"from a".to_vec());
    want.insert("while-apart-b.txt".into(), b"from b".to_vec());
    // The partition holds: a connection from B's host to A's listener gets no answer.
    let reached = std::process::Command::new("ip")
        .args(["netns", "exec", &lan.host(1), "timeout", "2", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{}/{PORT}", lan.addr(0)))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!reached.success(), "B reaches A across the partition");
    assert!(
        !b.mount("home").join("while-apart-a.txt").exists(),
        "nothing crosses a partition"
    );
    lan.heal(1);
    for (who, node) in [("A", &a), ("B", &b)] {
        eventually(
            &format!("{who} has both edits after the partition heals"),
            120,
            || tree(&node.mount("home")) == want,
            logs,
        );
    }

    // A large file; B killed and restarted while receiving it, then A while the seed and B
    // still fetch.
    let large = cobox_tests::files::noise(32 << 20, 40503);
    let before = data_bytes(&b_feeds);
    std::fs::write(a.mount("home").join("large.bin"), &large).unwrap();
    want.insert("large.bin".into(), large);
    eventually(
        "B starts receiving the large file",
        60,
        || data_bytes(&b_feeds) > before + 1024 * 1024,
        logs,
    );
    drop(agent_b); // kill -9
    agent_b = b.start();
    let seed_before = data_bytes(&s_feeds);
    eventually(
        "the seed is receiving",
        60,
        || data_bytes(&s_feeds) > seed_before,
        logs,
    );
    drop(agent_a); // kill -9
    agent_a = a.start();
    for (who, node) in [("A", &a), ("B", &b)] {
        eventually(
            &format!("{who} converges after the restarts"),
            180,
            || tree(&node.mount("home")) == want,
            logs,
        );
    }
    eventually(
        "the seed holds every feed whole",
        120,
        || feed_sizes(&s_feeds) == feed_sizes(&a_feeds),
        logs,
    );
    assert_eq!(
        feed_sizes(&b_feeds),
        feed_sizes(&a_feeds),
        "every feed stored once, byte for byte as long as its writer's"
    );
    agent_a.stop();
    agent_b.stop();
    agent_s.stop();
}

#[test]
fn with_no_addresses_configured_members_and_a_seed_find_each_other_by_mdns() {
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(3, 78);
    let (a, b, s) = (
        on(&lan, tmp.path(), "a", 0),
        on(&lan, tmp.path(), "b", 1),
        on(&lan, tmp.path(), "s", 2),
    );
    let mdns_only = "[network]\nlan_discovery = true\ninternet_discovery = false\nrelays = []\nportmapper = false\n";
    let (kb, ks) = (b.identity(), s.identity());
    a.write_config(&format!(
        "{mdns_only}[[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    // No TCP address is configured: status says how the device is reachable instead.
    let text = a.status_text();
    assert!(
        text.contains("reachable through iroh by this device's identity"),
        "{text}"
    );
    let mut want = write_corpus(&a.mount("home"));
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    b.write_config(&format!(
        "{mdns_only}[[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    ));
    let address = a.space_address();
    s.write_config(&format!(
        "{mdns_only}[[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let (agent_b, agent_s) = (b.start(), s.start());
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    eventually(
        "B's mount shows A's files",
        120,
        || tree(&b.mount("home")) == want,
        logs,
    );
    std::fs::write(b.mount("home").join("from-b.txt"), b"from b").unwrap();
    want.insert("from-b.txt".into(), b"from b".to_vec());
    eventually(
        "A's mount shows B's edit",
        60,
        || tree(&a.mount("home")) == want,
        logs,
    );
    let a_feeds = a.data().join("spaces").join(&address).join("feeds");
    let s_feeds = s.data().join("seeds").join(&address).join("feeds");
    eventually(
        "the seed holds every feed whole",
        120,
        || feed_sizes(&s_feeds) == feed_sizes(&a_feeds),
        logs,
    );
    agent_a.stop();
    agent_b.stop();
    agent_s.stop();
}
