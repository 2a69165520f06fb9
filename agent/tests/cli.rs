//! `coboxd` on its own: the embedded default, an explicit config, a bad config.

use std::process::{Command, Output};

fn coboxd(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coboxd"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("coboxd runs")
}

#[test]
fn without_a_config_file_the_embedded_default_runs_and_says_where_a_config_goes() {
    let home = tempfile::tempdir().unwrap();
    let out = coboxd(home.path(), &["--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected_path = home.path().join(".config/cobox/cobox.toml");
    assert!(
        stderr.contains(&expected_path.display().to_string()),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mount = home.path().join("cobox/home");
    assert!(
        stdout.contains(&format!(
            "space    home address=(new) mount={}",
            mount.display()
        )),
        "{stdout}"
    );
}

#[test]
fn the_default_config_path_is_used_when_it_exists() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/cobox");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cobox.toml"),
        "version = 1\n[[space]]\nname = \"notes\"\nmount = false\n",
    )
    .unwrap();
    let out = coboxd(home.path(), &["--check", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["spaces"][0]["name"], "notes");
    assert_eq!(state["spaces"][0]["mount"], serde_json::Value::Null);
}

#[test]
fn an_invalid_config_exits_1_with_its_diagnostics_and_no_desired_state() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("bad.toml");
    std::fs::write(
        &file,
        "version = 1\n[[space]]\nname = \"x\"\nmount = \"relative\"\n",
    )
    .unwrap();
    let out = coboxd(
        home.path(),
        &["--check", "--config", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[relative-path]"), "{stderr}");
    assert!(stderr.contains("bad.toml:4:9"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "an invalid config must not produce a desired state"
    );
}

#[test]
fn a_missing_config_file_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let out = coboxd(
        home.path(),
        &["--check", "--config", "/nonexistent/cobox.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read config /nonexistent/cobox.toml")
    );
}
