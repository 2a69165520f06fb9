//! Data directories written by the first release (the `hypercore` crate's feeds, its log
//! entries not yet folded into the header) open unchanged: a member's space mounts with
//! every file intact, a seed's replicas serve again, and a new member restores the whole
//! space from the seed alone.
//!
//! `tests/fixtures/datadir-0.1.tar.gz` holds a member `a` (space `home`, files written
//! through its mount, edited, renamed, deleted) and a seed `s` of it, both stopped
//! cleanly, and `manifest.sha256` of the files in the mount. See tests/fixtures/README.md.

use std::path::Path;
use std::process::Command;

use cobox_tests::files::{data_bytes, tree};
use cobox_tests::node::{Node, QUIET, eventually, free_port, show};

fn unpack(into: &Path) {
    let fixture = cobox_tests::root().join("tests/fixtures/datadir-0.1.tar.gz");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

/// Whether every file of the manifest is in `mount` with its content.
fn manifest_holds(manifest: &Path, mount: &Path) -> bool {
    Command::new("sha256sum")
        .arg("--check")
        .arg("--quiet")
        .arg(manifest)
        .current_dir(mount)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_data_directory_of_the_first_release_opens_and_replicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, s, c) = (
        Node::new(tmp.path(), "a"),
        Node::new(tmp.path(), "s"),
        Node::new(tmp.path(), "c"),
    );
    unpack(tmp.path());
    let manifest = tmp.path().join("manifest.sha256");
    let address = a.space_address();
    let (pa, ps) = (free_port(), free_port());
    let (ks, kc) = (s.identity(), c.identity());
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let logs = || format!("a:\n{}\ns:\n{}\nc:\n{}", a.log(), s.log(), c.log());
    assert!(
        manifest_holds(&manifest, &a.mount("home")),
        "the files written by the first release read back\n{}",
        logs()
    );
    let feeds = a.data().join("spaces").join(&address).join("feeds");
    for f in std::fs::read_dir(&feeds).unwrap() {
        let f = f.unwrap().path();
        assert!(f.join("format").exists(), "{} was checked", f.display());
        assert_eq!(
            std::fs::metadata(f.join("oplog")).unwrap().len(),
            8192,
            "{}: the log entries are in the header now",
            f.display()
        );
    }

    // The seed reopens its replicas and takes what is written now.
    s.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{ps}\"]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n"
    ));
    let agent_s = s.start();
    s.wait_converged(60);
    std::fs::write(a.mount("home").join("after-upgrade.txt"), b"written after").unwrap();
    let seed_feeds = s.data().join("seeds").join(&address).join("feeds");
    eventually(
        "the seed holds every block of the space",
        90,
        || data_bytes(&seed_feeds) == data_bytes(&feeds),
        logs,
    );

    // A new member, admitted while A runs, restores the space from the seed alone.
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kc]);
    s.wait_admitted(&address, &kc, logs);
    let want = tree(&a.mount("home"));
    agent_a.stop();
    c.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{ps}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\nseeders = [\"{ks}\"]\n"
    ));
    let agent_c = c.start();
    c.wait_converged(60);
    eventually(
        "the new member has every file from the seed",
        90,
        || tree(&c.mount("home")) == want,
        logs,
    );
    assert!(manifest_holds(&manifest, &c.mount("home")));
    agent_c.stop();
    agent_s.stop();
}
