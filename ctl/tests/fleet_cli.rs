//! `coboxctl fleet render` on the example fleet directory: every hub's config valid, one
//! hub's config printed as its layers make it, a broken layer reported in that layer with
//! exit status 1.

use std::path::PathBuf;
use std::process::{Command, Output};

fn coboxctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coboxctl"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap()
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet")
}

#[test]
fn the_example_fleet_renders_every_hub_and_one_hub_as_its_layers_make_it() {
    let dir = example();
    let all = coboxctl(&["fleet", "render", dir.to_str().unwrap()]);
    assert_eq!(all.status.code(), Some(0), "{all:?}");
    let text = String::from_utf8(all.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.ends_with("valid")).count(),
        3,
        "{text}"
    );
    let one = coboxctl(&["fleet", "render", dir.to_str().unwrap(), "hub-03"]);
    assert_eq!(one.status.code(), Some(0), "{one:?}");
    let config = String::from_utf8(one.stdout).unwrap();
    // Not in the Berlin group: the base's cap, no housing association seed, its own invite.
    assert!(config.contains("name = \"hub-03\""), "{config}");
    assert!(config.contains("upload = \"4 MiB/s\""), "{config}");
    assert!(!config.contains("housing-association"), "{config}");
    assert!(config.contains("invite = \"coboxinvite1"), "{config}");
}

#[test]
fn a_broken_layer_is_reported_where_it_is_and_the_render_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |rel: &str| {
        let to = tmp.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(example().join(rel), to).unwrap();
    };
    for rel in [
        "fleet.toml",
        "base.toml",
        "groups/berlin.toml",
        "groups/canary.toml",
        "devices/hub-01.toml",
        "devices/hub-02.toml",
        "devices/hub-03.toml",
    ] {
        copy(rel);
    }
    std::fs::write(
        tmp.path().join("groups/canary.toml"),
        "[api]\nmetrics = \"localhost\"\n",
    )
    .unwrap();
    let out = coboxctl(&[
        "fleet",
        "render",
        tmp.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hubs = v.as_array().unwrap();
    assert_eq!(hubs[0]["device"], "hub-01");
    assert_eq!(hubs[0]["valid"], false);
    let d = &hubs[0]["diagnostics"][0];
    assert!(
        d["file"].as_str().unwrap().ends_with("groups/canary.toml"),
        "{d}"
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(2), Some(11)),
        "{d}"
    );
    assert_eq!(hubs[1]["valid"], true, "hub-02 is not a canary");
}
