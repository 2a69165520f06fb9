//! What a plan changes, per resource, for `coboxctl diff`: pure. A resource's line is `+`
//! (it comes into being), `~` (it changes) or `-` (it goes; data is kept), with the fields
//! that change. Settings that need no action (caps, windows, admins…) show as changes of
//! the config section or space that holds them.

use std::collections::BTreeMap;

use cobox_schema::Config;
use cobox_schema::api::{Change, ChangeOp, FieldChange, ResourceKind};
use serde_json::Value;

use crate::plan::{Action, Observed, Plan};

type Key = (ResourceKind, String);

fn entry<'a>(map: &'a mut BTreeMap<Key, Change>, kind: ResourceKind, name: &str) -> &'a mut Change {
    map.entry((kind, name.to_string()))
        .or_insert_with(|| Change {
            op: ChangeOp::Change,
            kind,
            name: name.to_string(),
            fields: vec![],
            actions: vec![],
        })
}

fn field(name: &str, from: Option<String>, to: Option<String>) -> FieldChange {
    FieldChange {
        field: name.to_string(),
        from,
        to,
    }
}

/// Flatten a JSON value into `path = value` leaves.
fn leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        // An empty list is the absence of its items: `windows = []` is no windows.
        Value::Array(a) if a.is_empty() => {}
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            out.insert(prefix.to_string(), v.to_string());
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::Null => {}
        Value::Number(n) if n.is_u64() => {
            out.insert(prefix.to_string(), unit_of(prefix, n.as_u64().unwrap_or(0)));
        }
        other => {
            out.insert(
                prefix.to_string(),
                match other {
                    Value::String(s) => s.clone(),
                    x => x.to_string(),
                },
            );
        }
    }
}

/// A number as people wrote it: rates and sizes of the config serialize as bytes.
fn unit_of(path: &str, n: u64) -> String {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    match leaf {
        "upload" | "download" => cobox_schema::units::Rate(n).to_string(),
        "quota" | "min_free" => cobox_schema::units::Size(n).to_string(),
        _ => n.to_string(),
    }
}

/// Fields that differ between two JSON values.
fn differing(prefix: &str, old: &Value, new: &Value) -> Vec<FieldChange> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(prefix, old, &mut a);
    leaves(prefix, new, &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| field(k, a.get(k).cloned(), b.get(k).cloned()))
        .collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The per-resource changes of `plan` (made from `observed` towards `candidate`), plus the
/// settings that differ from `running`. Sorted by kind, then name.
pub fn changes(
    running: Option<&Config>,
    candidate: &Config,
    observed: &Observed,
    plan: &Plan,
) -> Vec<Change> {
    let mut map: BTreeMap<Key, Change> = BTreeMap::new();
    for action in &plan.actions {
        let text = action.to_string();
        match action {
            Action::CreateIdentity => {
                let c = entry(&mut map, ResourceKind::Identity, "device");
                c.op = ChangeOp::Add;
                c.actions.push(text);
            }
            Action::CreateSpace { space } | Action::JoinSpace { space, .. } => {
                let c = entry(&mut map, ResourceKind::Space, space);
                c.op = ChangeOp::Add;
                let how = if matches!(action, Action::CreateSpace { .. }) {
                    "new"
                } else {
                    "from invite"
                };
                c.fields.push(field("address", None, Some(how.into())));
                c.actions.push(text);
            }
            Action::OpenSpace { space, .. } => {
                // New, declared again, or not yet opened since the agent started: it comes.
                let c = entry(&mut map, ResourceKind::Space, space);
                c.op = ChangeOp::Add;
                c.actions.push(text);
            }
            Action::CloseSpace { space } => {
                let c = entry(&mut map, ResourceKind::Space, space);
                c.op = ChangeOp::Remove;
                c.actions.push(text);
            }
            Action::Unmount { space, path } => {
                let c = entry(&mut map, ResourceKind::Space, space);
                c.fields
                    .push(field("mount", Some(path.display().to_string()), None));
                c.actions.push(text);
            }
            Action::Mount { space, path } => {
                let c = entry(&mut map, ResourceKind::Space, space);
                let to = Some(path.display().to_string());
                match c.fields.iter_mut().find(|f| f.field == "mount") {
                    Some(f) => f.to = to,
                    None => c.fields.push(field("mount", None, to)),
                }
                c.actions.push(text);
            }
            Action::StopSeed { seed } => {
                let c = entry(&mut map, ResourceKind::Seed, seed);
                let from = observed.seeds.get(seed).map(|s| s.address.to_string());
                c.op = ChangeOp::Remove;
                c.fields.push(field("address", from, None));
                c.actions.push(text);
            }
            Action::StartSeed { seed, address } => {
                let c = entry(&mut map, ResourceKind::Seed, seed);
                let to = Some(address.to_string());
                match c.fields.iter_mut().find(|f| f.field == "address") {
                    Some(f) => {
                        f.to = to;
                        c.op = ChangeOp::Change;
                    }
                    None => {
                        c.op = ChangeOp::Add;
                        c.fields.push(field("address", None, to));
                    }
                }
                c.actions.push(text);
            }
            Action::UpdateRoster {
                space,
                seeders,
                removed,
            } => {
                let c = entry(&mut map, ResourceKind::Space, space);
                let keys = |ks: &[cobox_schema::hexkey::PublicKey]| {
                    ks.iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let seen = observed.spaces.get(space);
                if seen.is_none_or(|o| o.seeders != *seeders) {
                    let from = seen.map(|o| keys(&o.seeders));
                    c.fields.push(field("seeders", from, Some(keys(seeders))));
                }
                if seen.is_none_or(|o| o.removed != *removed) {
                    let from = seen.map(|o| keys(&o.removed));
                    c.fields.push(field("removed", from, Some(keys(removed))));
                }
                c.actions.push(text);
            }
            Action::StopDialing { peer } => {
                let c = entry(&mut map, ResourceKind::Dialer, peer);
                c.op = ChangeOp::Remove;
                c.actions.push(text);
            }
            Action::Dial { peer } => {
                let c = entry(&mut map, ResourceKind::Dialer, &peer.to_string());
                c.op = ChangeOp::Add;
                c.actions.push(text);
            }
            Action::StopListening { address } => {
                let c = entry(&mut map, ResourceKind::Listener, &address.to_string());
                c.op = ChangeOp::Remove;
                c.actions.push(text);
            }
            Action::Listen { address } => {
                let c = entry(&mut map, ResourceKind::Listener, &address.to_string());
                c.op = ChangeOp::Add;
                c.actions.push(text);
            }
            Action::StopFollowing { space } => {
                let c = entry(&mut map, ResourceKind::Fleet, space);
                c.op = ChangeOp::Remove;
                c.actions.push(text);
            }
            Action::FollowFleet { space } => {
                let c = entry(&mut map, ResourceKind::Fleet, space);
                c.op = ChangeOp::Add;
                c.actions.push(text);
            }
            Action::StopEndpoint => {
                let c = entry(&mut map, ResourceKind::Endpoint, "iroh");
                c.op = ChangeOp::Remove;
                c.actions.push(text);
            }
            Action::StartEndpoint { endpoint } => {
                let c = entry(&mut map, ResourceKind::Endpoint, "iroh");
                let from = observed.endpoint.as_ref().map(|e| e.describe());
                c.op = if from.is_some() {
                    ChangeOp::Change
                } else {
                    ChangeOp::Add
                };
                c.fields
                    .push(field("settings", from, Some(endpoint.describe())));
                c.actions.push(text);
            }
            Action::ApplyPolicy { policy } => {
                // The device-wide rules; each space's and seed's own show on its line.
                let device = |v: Value| -> Value {
                    let mut v = v;
                    if let Value::Object(m) = &mut v {
                        m.remove("spaces");
                        m.remove("seeds");
                    }
                    v
                };
                let old = observed.policy.as_ref().map(|p| device(p.to_json()));
                let new = device(policy.to_json());
                let fields = differing("", old.as_ref().unwrap_or(&Value::Null), &new);
                if old.is_none() || !fields.is_empty() {
                    let c = entry(&mut map, ResourceKind::Policy, "traffic");
                    if old.is_none() {
                        c.op = ChangeOp::Add;
                    }
                    c.fields.extend(fields);
                    c.actions.push(text);
                }
            }
        }
    }
    if let Some(running) = running {
        settings(running, candidate, &mut map);
    }
    map.into_values()
        .filter(|c| !c.actions.is_empty() || !c.fields.is_empty())
        .collect()
}

/// Differences in settings that no action carries.
fn settings(running: &Config, candidate: &Config, map: &mut BTreeMap<Key, Change>) {
    let (old, new) = (to_json(running), to_json(candidate));
    // `[network]` and `[storage]` are carried by actions (listeners, dialers, the endpoint,
    // the policy), each shown as its own resource.
    for section in ["device", "admins", "api"] {
        let (a, b) = (&old[section], &new[section]);
        if a == b {
            continue;
        }
        let fields = differing(section, a, b);
        if !fields.is_empty() {
            let c = entry(map, ResourceKind::Config, section);
            c.fields.extend(fields);
        }
    }
    let structural = ["name", "mount", "address", "invite", "seeders", "removed"];
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            for k in structural {
                m.remove(k);
            }
        }
        v
    };
    for (kind, list) in [
        (ResourceKind::Space, "spaces"),
        (ResourceKind::Seed, "seeds"),
    ] {
        let by_name = |doc: &Value| -> BTreeMap<String, Value> {
            doc[list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["name"].as_str()?.to_string(), strip(s))))
                .collect()
        };
        let (a, b) = (by_name(&old), by_name(&new));
        for (name, newv) in &b {
            let Some(oldv) = a.get(name) else { continue };
            let fields = differing("", oldv, newv);
            if fields.is_empty() {
                continue;
            }
            let c = entry(map, kind, name);
            if c.op == ChangeOp::Remove {
                continue;
            }
            c.fields.extend(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use cobox_schema::{FixedHost, Source, validate};

    #[test]
    fn an_empty_list_is_no_items_not_a_value_of_its_own() {
        let none = serde_json::json!({ "windows": [] });
        let one = serde_json::json!({ "windows": [{ "when": "0 22 * * *" }] });
        let fields: Vec<(String, Option<String>, Option<String>)> = differing("space", &none, &one)
            .into_iter()
            .map(|f| (f.field, f.from, f.to))
            .collect();
        assert_eq!(
            fields,
            [(
                "space.windows[0].when".to_string(),
                None,
                Some("0 22 * * *".to_string())
            )]
        );
        assert!(differing("space", &none, &serde_json::json!({})).is_empty());
    }

    fn config(text: &str) -> Config {
        let v = validate(&Source::new("t.toml", text), &FixedHost::example());
        v.config.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                let fields: Vec<String> = c
                    .fields
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {} -> {}",
                            f.field,
                            f.from.as_deref().unwrap_or("-"),
                            f.to.as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                format!(
                    "{} {} {} [{}]",
                    c.op.sign(),
                    c.kind,
                    c.name,
                    fields.join("; ")
                )
            })
            .collect()
    }

    const BASE: &str = "version = 1\n[device]\ndata_dir = \"/d\"\nmount_root = \"/m\"\n\
        [[space]]\nname = \"a\"\nmount = \"/m/a\"\n";

    fn converged(c: &Config) -> Observed {
        let mut o = Observed::default();
        let p = plan(c, &o);
        let fake = "0".repeat(64).parse().unwrap();
        for a in &p.actions {
            o.apply(a, |_| fake);
        }
        o
    }

    #[test]
    fn nothing_changes_when_converged_on_the_same_config() {
        let c = config(BASE);
        let o = converged(&c);
        let p = plan(&c, &o);
        assert!(changes(Some(&c), &c, &o, &p).is_empty());
    }

    #[test]
    fn added_moved_and_removed_spaces_and_settings() {
        let running = config(BASE);
        let o = converged(&running);
        let candidate = config(
            "version = 1\n[device]\ndata_dir = \"/d\"\nmount_root = \"/m\"\n\
             [network]\nupload = \"5MiB/s\"\n\
             [[space]]\nname = \"b\"\nmount = \"/m/b\"\n",
        );
        let p = plan(&candidate, &o);
        assert_eq!(
            lines(&changes(Some(&running), &candidate, &o, &p)),
            vec![
                "~ policy traffic [upload: - -> 5 MiB/s]",
                "- space a [mount: /m/a -> -]",
                "+ space b [address: - -> new; mount: - -> /m/b]",
            ]
        );
        let moved = config(&BASE.replace("/m/a", "/m/elsewhere"));
        let p = plan(&moved, &o);
        assert_eq!(
            lines(&changes(Some(&running), &moved, &o, &p)),
            vec!["~ space a [mount: /m/a -> /m/elsewhere]"]
        );
    }
}
