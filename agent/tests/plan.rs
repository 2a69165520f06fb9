//! The planner, data-driven: each `tests/plans/*.plan` file holds a config, an observed
//! state and the expected plan; and property tests over random worlds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cobox_schema::hexkey::Address;
use cobox_schema::{Config, FixedHost, Source, validate};
use coboxd::plan::{EndpointSpec, Observed, ObservedSeed, ObservedSpace, PolicySpec, plan};
use proptest::prelude::*;

fn config(text: &str) -> Config {
    let v = validate(&Source::new("plan", text), &FixedHost::example());
    v.config
        .unwrap_or_else(|| panic!("invalid config in a plan file: {:?}", v.diagnostics))
}

/// The observed world of a plan file. `policy = true` and `endpoint = true` mean the
/// config's own policy and endpoint are in force; `listening` and `dialing` list the
/// listeners and dialers running, `fleet` the space whose admins the device follows.
fn observed(text: &str, desired: &Config) -> Observed {
    let t: toml::Table = toml::from_str(text).unwrap();
    let flag = |k: &str| t.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let list = |k: &str| -> Vec<String> {
        t.get(k)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut o = Observed {
        identity: flag("identity"),
        policy: flag("policy").then(|| PolicySpec::of(desired)),
        endpoint: if flag("endpoint") {
            EndpointSpec::of(&desired.network)
        } else {
            None
        },
        listeners: list("listening")
            .into_iter()
            .map(|a| (a.parse().unwrap(), a.parse().unwrap()))
            .collect(),
        dialers: list("dialing").into_iter().collect(),
        fleet: t.get("fleet").and_then(|v| v.as_str()).map(str::to_string),
        ..Default::default()
    };
    for (name, s) in t
        .get("spaces")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
    {
        o.spaces.insert(
            name.clone(),
            ObservedSpace {
                exists: s.get("exists").and_then(|v| v.as_bool()).unwrap_or(false),
                open: s.get("open").and_then(|v| v.as_bool()).unwrap_or(false),
                seeders: vec![],
                removed: vec![],
                address: s
                    .get("address")
                    .and_then(|v| v.as_str())
                    .map(|a| a.parse().unwrap()),
            },
        );
    }
    for (name, s) in t
        .get("seeds")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
    {
        o.seeds.insert(
            name.clone(),
            ObservedSeed {
                address: s["address"].as_str().unwrap().parse().unwrap(),
                running: s.get("running").and_then(|v| v.as_bool()).unwrap_or(false),
            },
        );
    }
    for (path, space) in t
        .get("mounts")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
    {
        o.mounts
            .insert(PathBuf::from(path), space.as_str().unwrap().to_string());
    }
    o
}

fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("--- {name}\n"))
        .unwrap_or_else(|| panic!("no `--- {name}` section"))
        + name.len()
        + 5;
    let end = text[start..].find("--- ").map_or(text.len(), |i| start + i);
    &text[start..end]
}

fn address_of(name: &str) -> Address {
    let mut a = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        a[i % 32] ^= b;
    }
    Address(a)
}

#[test]
fn every_plan_file_gives_its_plan_and_applying_it_converges() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let desired = config(section(&text, "config"));
        let mut world = observed(section(&text, "observed"), &desired);
        let got = plan(&desired, &world);
        assert_eq!(
            got.to_string(),
            section(&text, "plan"),
            "{}",
            file.display()
        );
        for a in &got.actions {
            world.apply(a, address_of);
        }
        let again = plan(&desired, &world);
        assert!(
            again.is_converged(),
            "{}: after applying, still: {again}",
            file.display()
        );
    }
}

/// A random declared config over a few names, and a random observed world over the same.
fn scenario() -> impl Strategy<Value = (String, Observed)> {
    let names = ["a", "b", "c"];
    let space = (0usize..3, 0u8..3);
    (
        proptest::collection::vec(space, 0..3),
        proptest::collection::vec((0usize..3, any::<bool>(), any::<bool>(), 0u8..3), 0..4),
        any::<bool>(),
        proptest::collection::vec((0usize..3, any::<bool>()), 0..3),
    )
        .prop_map(move |(declared, seen, identity, seeds)| {
            let mut text = String::from("version = 1\n");
            let mut used = std::collections::BTreeSet::new();
            for (n, mount) in declared {
                if !used.insert(n) {
                    continue;
                }
                let mount = match mount {
                    0 => "false".to_string(),
                    1 => "true".to_string(),
                    _ => format!("\"/srv/m/{}\"", names[n]),
                };
                text.push_str(&format!(
                    "[[space]]\nname = \"{}\"\nmount = {mount}\n",
                    names[n]
                ));
            }
            let mut world = Observed {
                identity,
                ..Default::default()
            };
            for (n, exists, open, mounted) in seen {
                world.spaces.insert(
                    names[n].into(),
                    ObservedSpace {
                        exists,
                        seeders: vec![],
                        removed: vec![],
                        open: exists && open,
                        address: exists.then(|| address_of(names[n])),
                    },
                );
                if exists && open && mounted > 0 {
                    let path = if mounted == 1 {
                        format!("/home/user/cobox/{}", names[n])
                    } else {
                        format!("/srv/m/{}", names[n])
                    };
                    world.mounts.insert(PathBuf::from(path), names[n].into());
                }
            }
            let mut seed_names = std::collections::BTreeSet::new();
            for (n, running) in seeds {
                if seed_names.insert(n) {
                    world.seeds.insert(
                        format!("s{n}"),
                        ObservedSeed {
                            address: Address([n as u8 + 1; 32]),
                            running,
                        },
                    );
                }
            }
            (text, world)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn plans_are_deterministic_and_converge_in_one_step((text, world) in scenario()) {
        let desired = config(&text);
        let first = plan(&desired, &world);
        prop_assert_eq!(&plan(&desired, &world), &first);
        let mut after = world.clone();
        for a in &first.actions {
            after.apply(a, address_of);
        }
        let again = plan(&desired, &after);
        prop_assert!(again.is_converged(), "still to do: {}", again);
        // Only mounts the agent made are ever unmounted.
        let unmounted: BTreeMap<_, _> = first.actions.iter().filter_map(|a| match a {
            coboxd::plan::Action::Unmount { path, space } => Some((path.clone(), space.clone())),
            _ => None,
        }).collect();
        for (path, space) in unmounted {
            prop_assert_eq!(world.mounts.get(&path), Some(&space));
        }
    }
}
