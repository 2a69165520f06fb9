//! A seeder added to a running member's `seeders` is admitted at the next reconcile: the
//! member refused the seed before, and once the changed config is applied it replicates at
//! once, without a restart and without waiting out the dialer's backoff.

use cobox_tests::files::data_bytes;
use cobox_tests::node::{Node, QUIET, eventually, free_port};

#[test]
fn a_seeder_added_while_the_member_runs_is_admitted_at_the_next_reconcile() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, s) = (Node::new(tmp.path(), "a"), Node::new(tmp.path(), "s"));
    let (pa, ps) = (free_port(), free_port());
    let member = |seeders: &str| {
        format!(
            "[network]\nlisten = [\"127.0.0.1:{pa}\"]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}\
             [[space]]\nname = \"home\"\n{seeders}"
        )
    };
    a.write_config(&member(""));
    let agent_a = a.start();
    a.wait_converged(60);
    let address = a.space_address();
    std::fs::write(
        a.mount("home").join("kept.bin"),
        cobox_tests::files::noise(300_000, 7),
    )
    .unwrap();
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let agent_s = s.start();
    s.wait_converged(60);
    let logs = || format!("a:\n{}\ns:\n{}", a.log(), s.log());
    let ks = s.identity();
    let refused = format!("peer {ks} refused by the authorization hook");
    eventually(
        "A refuses the seed it does not know",
        60,
        || a.log().contains(&refused),
        logs,
    );

    // Declared as a seeder: admitted at the next reconcile, and the seed gets the data.
    a.write_config(&member(&format!("seeders = [\"{ks}\"]\n")));
    eventually(
        "A admits the seeder (declares the roster)",
        30,
        || a.log().contains("roster declared"),
        logs,
    );
    let seed_feeds = s.data().join("seeds").join(&address).join("feeds");
    eventually(
        "the seed holds the file's blocks",
        60,
        || data_bytes(&seed_feeds) >= 300_000,
        logs,
    );
    let log = a.log();
    let after = &log[log.find("roster declared").unwrap()..];
    assert!(
        !after.contains(&refused),
        "refused after it was admitted\n{}",
        logs()
    );
    agent_a.stop();
    agent_s.stop();
}
