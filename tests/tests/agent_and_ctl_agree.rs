//! The agent never accepts a config that `coboxctl validate` rejects, and the reverse:
//! both binaries judge every example and corpus file alike.

use std::process::Command;

use cobox_tests::{binary, root, toml_files};

#[test]
fn coboxd_and_coboxctl_accept_and_reject_the_same_files() {
    let home = tempfile::tempdir().unwrap();
    let mut files = toml_files("examples");
    files.extend(toml_files("tests/corpus/invalid"));
    // Judged four files at a time: each is two process starts.
    let (coboxctl, coboxd) = (binary("coboxctl"), binary("coboxd"));
    let judge = |file: &std::path::PathBuf| -> bool {
        let ctl = Command::new(&coboxctl)
            .args(["validate", "--output", "json"])
            .arg(file)
            .env("HOME", home.path())
            .current_dir(root())
            .output()
            .unwrap();
        let agent = Command::new(&coboxd)
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
        !agent_ok
    };
    let rejected: usize = std::thread::scope(|s| {
        let chunks: Vec<_> = files
            .chunks(files.len().div_ceil(4))
            .map(|chunk| s.spawn(|| chunk.iter().filter(|f| judge(f)).count()))
            .collect();
        chunks.into_iter().map(|c| c.join().unwrap()).sum()
    });
    // Only warning-level corpus files may be accepted.
    let warnings_only = [
        "admins-without-fleet",
        "deny-covers-allow",
        "duplicate-admin-key",
        "fleet-with-a-cap",
        "quota-exceeds-disk",
        "seed-quota-over-total",
        "window-longer-than-its-period",
    ];
    let corpus = toml_files("tests/corpus/invalid").len();
    assert_eq!(rejected, corpus - warnings_only.len());
}
