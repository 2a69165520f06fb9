//! Helpers for end-to-end tests: locating the workspace's binaries and files.

use std::path::PathBuf;

pub mod dashboard;
pub mod files;
pub mod fleet_lab;
pub mod lan;
pub mod node;
pub mod syncthing;
pub mod web;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A binary of the workspace, never older than the sources it is built from: the first
/// call in a test process runs `cargo build` for the agent and the CLI when any source of
/// theirs is newer than either binary, so a stale binary is never the one tested. (After a
/// `cargo test` of the workspace they are fresh, and building them again with this
/// package's feature set would only relink them.)
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("the test knows its path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf();
    BUILT.call_once(|| {
        let built = ["coboxd", "coboxctl"]
            .iter()
            .map(|b| modified(&dir.join(b)))
            .min()
            .flatten();
        if built.is_some_and(|b| newest_source().is_none_or(|s| s <= b)) {
            return;
        }
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .args(["-p", "coboxd", "-p", "coboxctl", "--bins"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building the binaries under test failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time among the sources the binaries are built from: the
/// sources and manifests of the crates they depend on (not their tests or benchmarks),
/// the workspace manifest and the lock file.
fn newest_source() -> Option<std::time::SystemTime> {
    const CRATES: [&str; 8] = [
        "agent", "ctl", "client", "protocol", "feed", "keys", "schema", "drive",
    ];
    let root = root();
    let mut stack: Vec<PathBuf> = CRATES.iter().map(|c| root.join(c).join("src")).collect();
    let mut newest = CRATES
        .iter()
        .flat_map(|c| {
            [
                root.join(c).join("Cargo.toml"),
                root.join(c).join("build.rs"),
            ]
        })
        .chain([root.join("Cargo.toml"), root.join("Cargo.lock")])
        .filter_map(|f| modified(&f))
        .max();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if path.file_name().is_none_or(|n| n != "target") {
                    stack.push(path);
                }
            } else if let Some(m) = modified(&path) {
                newest = newest.max(Some(m));
            }
        }
    }
    newest
}

/// The `.toml` files of a workspace directory, sorted.
pub fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}
