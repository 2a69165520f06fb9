//! The agent never accepts a config that `coboxctl validate` rejects, and the reverse:
//! both binaries judge every example and corpus file alike.

use std::process::Command;

use cobox_tests::{binary, root, toml_files};

#[test]
fn coboxd_and_coboxctl_accept_and_reject_the_same_files() {
    let home = tempfile::tempdir().unwrap();
    let mut files = toml_files("examples");
    files.extend(toml_files("tests/corpus/invalid"));
    let mut rejected = 0;
    for file in &files {
        let ctl = Command::new(binary("coboxctl"))
            .args(["validate", "--output", "json"])
            .arg(file)
            .env("HOME", home.path())
            .current_dir(root())
            .output()
            .unwrap();
        let agent = Command::new(binary("coboxd"))
            .args(["--check", "--config"])
            .arg(file)
            .env("HOME", home.path())
            .current_dir(root())
            .output()
            .unwrap();
        let ctl_ok = ctl.status.code() == Some(0);
        let agent_ok = agent.status.code() == Some(0);
        assert_eq!(
            ctl_ok,
            agent_ok,
            "{}: coboxctl says {:?}, coboxd says {:?}\n{}",
            file.display(),
            ctl.status,
            agent.status,
            String::from_utf8_lossy(&agent.stderr)
        );
        if !agent_ok {
            rejected += 1;
            assert_eq!(agent.status.code(), Some(1), "{}", file.display());
            assert!(
                agent.stdout.is_empty(),
                "{}: a rejected config printed a desired state",
                file.display()
            );
        } else {
            let out = String::from_utf8_lossy(&agent.stdout);
            assert!(out.starts_with("desired state from "), "{out}");
        }
    }
    // Only warning-level corpus files may be accepted.
    let warnings_only = [
        "deny-covers-allow",
        "duplicate-admin-key",
        "quota-exceeds-disk",
        "seed-quota-over-total",
    ];
    let corpus = toml_files("tests/corpus/invalid").len();
    assert_eq!(rejected, corpus - warnings_only.len());
}
