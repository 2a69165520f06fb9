//! The conditions of each resource after a reconcile: pure, from the config, what was
//! observed, what is still planned and what failed.

use std::collections::BTreeMap;

use cobox_schema::Config;
use cobox_schema::api::{
    ConditionType, PeerStatus, QuotaStatus, Replica, ResourceKind, TrafficStatus, WindowStatus,
};

use crate::plan::{Action, EndpointSpec, Observed, Plan, PolicySpec, ResourceId};

/// One condition before it is stamped with a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub kind: ConditionType,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// A resource and its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Res {
    pub kind: ResourceKind,
    pub name: String,
    pub conditions: Vec<Cond>,
    pub details: BTreeMap<String, String>,
    pub replicas: Vec<Replica>,
    pub flow: Option<Flow>,
    pub usage: Option<cobox_schema::api::UsageStatus>,
}

/// A space's or seed's window, traffic and quota, as the policy in force has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    pub window: WindowStatus,
    pub traffic: TrafficStatus,
    pub quota: Option<QuotaStatus>,
}

/// What the running network knows of spaces and seeds, by name.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub replicas: BTreeMap<String, Vec<Replica>>,
    pub spaces: BTreeMap<String, Flow>,
    pub seeds: BTreeMap<String, Flow>,
    /// Feeds of a space or seed (by name) that cannot be read or written here.
    pub faults: BTreeMap<String, Vec<String>>,
    /// Peers with a session, and what each shares.
    pub peers: Vec<PeerStatus>,
    /// Blocks readers of a space (by name) needed that no connected peer supplied.
    pub unavailable: BTreeMap<String, usize>,
    /// What each space's content takes (by name), as of its last reclaim pass.
    pub usage: BTreeMap<String, cobox_schema::api::UsageStatus>,
    /// The spaces (by name) this device was removed from.
    pub removed: std::collections::BTreeSet<String>,
}

/// A space or seed with feeds that cannot be read or written here is stalled (an operator
/// must look: the disk or the files are damaged) and degraded (those feeds no longer
/// replicate); what still works keeps working.
fn feed_faults(conditions: &mut Vec<Cond>, faults: Option<&Vec<String>>) {
    let Some(faults) = faults.filter(|f| !f.is_empty()) else {
        return;
    };
    let message = faults.join("; ");
    conditions.retain(|c| !matches!(c.kind, ConditionType::Stalled | ConditionType::Degraded));
    conditions.push(cond(
        ConditionType::Stalled,
        true,
        "FeedFault",
        message.clone(),
    ));
    conditions.push(cond(ConditionType::Degraded, true, "FeedFault", message));
}

/// What happened to a resource's actions in the last reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub action: Action,
    pub error: String,
    /// When it is tried again; `None`: not until the config or the action changes.
    pub retry_in_s: Option<u64>,
}

fn cond(kind: ConditionType, status: bool, reason: &str, message: impl Into<String>) -> Cond {
    Cond {
        kind,
        status,
        reason: reason.into(),
        message: message.into(),
    }
}

/// Ready / Progressing / Stalled for a resource with `pending` actions and maybe a
/// failure or a block.
fn standard(
    ready: Option<(&str, String)>,
    pending: &[&Action],
    failure: Option<&Failure>,
    blocked: Option<&str>,
) -> Vec<Cond> {
    use ConditionType::*;
    if let Some(f) = failure {
        let when = match f.retry_in_s {
            Some(s) => format!("retrying in {s} s"),
            None => "not retried until the config changes".to_string(),
        };
        let msg = format!(
            "{}: {}; {when}",
            f.action
                .to_string()
                .trim_start_matches(['+', '-', '~', ' ']),
            f.error,
        );
        return vec![
            cond(Ready, false, "ActionFailed", msg.clone()),
            cond(Progressing, false, "ActionFailed", ""),
            cond(Stalled, true, "ActionFailed", msg),
        ];
    }
    if let Some(reason) = blocked {
        return vec![
            cond(Ready, false, "Blocked", reason),
            cond(Progressing, false, "Blocked", ""),
            cond(Stalled, true, "Blocked", reason),
        ];
    }
    if let Some(next) = pending.first() {
        let msg = next.to_string();
        return vec![
            cond(Ready, false, "Pending", msg.clone()),
            cond(Progressing, true, "Pending", msg),
            cond(Stalled, false, "Pending", ""),
        ];
    }
    match ready {
        Some((reason, msg)) => vec![
            cond(Ready, true, reason, msg),
            cond(Progressing, false, reason, ""),
            cond(Stalled, false, reason, ""),
        ],
        None => vec![cond(Ready, false, "Unknown", "")],
    }
}

/// What the device's admins did to it, on its fleet resource: `Degraded` after an
/// envelope was refused or rolled back, or while the owner's local override or a local
/// edit (drift) stands; `Progressing` while a config from the admins is on probation; the
/// mark and the authority head as details.
pub fn admins(res: &mut Res, a: &cobox_schema::api::AdminsStatus) {
    use ConditionType::*;
    res.details
        .insert("admin_generation".into(), a.admin_generation.to_string());
    res.details.insert("authority".into(), a.head.clone());
    res.details.insert(
        "admins".into(),
        format!("{} key(s), threshold {}", a.keys.len(), a.threshold),
    );
    let last = a.last_envelope.as_ref();
    let degraded = match last {
        Some(e) if e.outcome == "refused" || e.outcome == "rolled-back" => Some((
            if e.outcome == "refused" {
                "EnvelopeRefused"
            } else {
                "RolledBack"
            },
            format!(
                "envelope {} from {}: {}",
                e.generation,
                e.signer,
                e.reason.as_deref().unwrap_or(&e.outcome)
            ),
        )),
        _ => match (&a.local_override, &a.drift) {
            (Some(o), _) => Some(("LocalOverride", o.clone())),
            (None, Some(d)) => Some(("Drift", d.clone())),
            (None, None) => None,
        },
    };
    if let Some((reason, message)) = degraded {
        res.conditions.push(cond(Degraded, true, reason, message));
    }
    if let Some(e) = last.filter(|e| e.outcome == "probation") {
        res.conditions.retain(|c| c.kind != Progressing);
        res.conditions.push(cond(
            Progressing,
            true,
            "Probation",
            format!(
                "envelope {} applied; waiting to reach a peer reached before",
                e.generation
            ),
        ));
    }
}

/// `Degraded` when fewer than `wanted` other devices are connected and hold everything this
/// one holds; `None` when no replicas are wanted.
fn replica_shortage(wanted: u32, copies: &[Replica]) -> Option<Cond> {
    if wanted == 0 {
        return None;
    }
    let good = copies
        .iter()
        .filter(|r| r.connected && r.up_to_date && r.reported_by.is_none())
        .count();
    let short = good < wanted as usize;
    let message = format!("{good} of {wanted} wanted up-to-date replicas are connected");
    let reason = if short { "FewReplicas" } else { "Replicated" };
    Some(cond(ConditionType::Degraded, short, reason, message))
}

/// `Degraded` with `QuotaExceeded` while a seed's downloads are refused for its quota (or
/// the total one).
fn quota_condition(q: &QuotaStatus) -> Cond {
    let gib = |b: u64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
    if !q.full {
        let message = match q.limit {
            Some(l) => format!("{} of {} used", gib(q.used), gib(l)),
            None => format!("{} used", gib(q.used)),
        };
        return cond(ConditionType::Degraded, false, "WithinQuota", message);
    }
    let which = match (q.limit, q.total_limit) {
        (Some(l), _) if q.used + (1 << 20) >= l => format!("its quota of {}", gib(l)),
        (_, Some(t)) => format!("the total quota of {} for seeded data", gib(t)),
        (Some(l), None) => format!("its quota of {}", gib(l)),
        (None, None) => "its quota".into(),
    };
    let action = if q.when_full == "stop" {
        "downloads stopped"
    } else {
        "evicting its oldest blocks for newer ones"
    };
    cond(
        ConditionType::Degraded,
        true,
        "QuotaExceeded",
        format!("{} used: {which} is reached; {action}", gib(q.used)),
    )
}

/// The resources of `config` with their conditions. `remaining` is what a fresh plan
/// still wants (and what is blocked); `failures` are keyed by resource.
pub fn resources(
    config: &Config,
    observed: &Observed,
    remaining: &Plan,
    failures: &BTreeMap<ResourceId, Failure>,
    live: &Live,
) -> Vec<Res> {
    let replicas = &live.replicas;
    let mut out = Vec::new();
    let pending = |id: &ResourceId| -> Vec<&Action> {
        remaining
            .actions
            .iter()
            .filter(|a| a.resource() == *id)
            .collect()
    };
    let res = |id: &ResourceId, conditions, details| Res {
        kind: id.kind,
        name: id.name.clone(),
        conditions,
        details,
        replicas: Vec::new(),
        flow: None,
        usage: None,
    };
    let plain = |id: &ResourceId, ready: Option<(&str, String)>| {
        standard(
            ready,
            &pending(id),
            failures.get(id),
            remaining.blocked_reason(id),
        )
    };

    let id = ResourceId::identity();
    let ready = observed
        .identity
        .then(|| ("Present", "the device has its identity".to_string()));
    out.push(res(&id, plain(&id, ready), BTreeMap::new()));

    let id = ResourceId::policy();
    let want = PolicySpec::of(config);
    let ready = (observed.policy.as_ref() == Some(&want)).then(|| {
        (
            "Applied",
            "the caps, windows and quotas of the config are in force".to_string(),
        )
    });
    out.push(res(&id, plain(&id, ready), BTreeMap::new()));

    for s in &config.spaces {
        let id = ResourceId::space(&s.name);
        let seen = observed.spaces.get(&s.name);
        let mut details = BTreeMap::new();
        if let Some(a) = seen.and_then(|o| o.address) {
            details.insert("address".into(), a.to_string());
        }
        let ready = seen
            .filter(|o| o.open)
            .map(|_| ("Open", "the space is open".to_string()));
        let copies = replicas.get(&s.name).cloned().unwrap_or_default();
        let mut conditions = plain(&id, ready);
        if let Some(c) = replica_shortage(s.min_replicas, &copies) {
            conditions.push(c);
        }
        if let Some(&n) = live.unavailable.get(&s.name) {
            conditions.retain(|c| c.kind != ConditionType::Degraded);
            conditions.push(cond(
                ConditionType::Degraded,
                true,
                "ContentMissing",
                format!(
                    "{n} block(s) read here have not arrived and no connected peer has them: reads of them fail (ENODATA) until a peer that holds them connects"
                ),
            ));
        }
        if live.removed.contains(&s.name) {
            conditions.retain(|c| c.kind != ConditionType::Degraded);
            conditions.push(cond(
                ConditionType::Degraded,
                true,
                "Removed",
                "a member removed this device from the space: it is not replicated any more; what it holds stays here",
            ));
        }
        feed_faults(&mut conditions, live.faults.get(&s.name));
        out.push(Res {
            replicas: copies,
            flow: live.spaces.get(&s.name).cloned(),
            usage: live.usage.get(&s.name).cloned(),
            ..res(&id, conditions, details)
        });
        if let Some(path) = &s.mount {
            let mid = ResourceId::mount(path);
            let ready = (observed.mounts.get(path) == Some(&s.name))
                .then(|| ("Mounted", format!("space {} is mounted", s.name)));
            // A mount depends on its space: the space's failure is the mount's reason.
            let space_down = failures.contains_key(&id) || remaining.blocked_reason(&id).is_some();
            let conditions = if space_down && ready.is_none() && !failures.contains_key(&mid) {
                vec![
                    cond(
                        ConditionType::Ready,
                        false,
                        "SpaceNotReady",
                        format!("space {} is not open", s.name),
                    ),
                    cond(ConditionType::Stalled, true, "SpaceNotReady", ""),
                ]
            } else {
                plain(&mid, ready)
            };
            let mut details = BTreeMap::new();
            details.insert("space".into(), s.name.clone());
            out.push(res(&mid, conditions, details));
        }
    }
    for s in &config.seeds {
        let id = ResourceId::seed(&s.name);
        let ready = observed
            .seeds
            .get(&s.name)
            .filter(|o| o.running && o.address == s.address)
            .map(|_| ("Seeding", "the seed replicates".to_string()));
        let mut details = BTreeMap::new();
        details.insert("address".into(), s.address.to_string());
        let flow = live.seeds.get(&s.name).cloned();
        let mut conditions = plain(&id, ready);
        if let Some(q) = flow.as_ref().and_then(|f| f.quota.as_ref()) {
            conditions.push(quota_condition(q));
        }
        feed_faults(&mut conditions, live.faults.get(&s.name));
        out.push(Res {
            replicas: live.replicas.get(&s.name).cloned().unwrap_or_default(),
            flow,
            ..res(&id, conditions, details)
        });
    }
    for address in &config.network.listen {
        let id = ResourceId::listener(address);
        let bound = observed.listeners.get(address);
        let ready = bound.map(|b| ("Listening", format!("listening on {b}")));
        let mut details = BTreeMap::new();
        if let Some(b) = bound {
            details.insert("bound".into(), b.to_string());
        }
        out.push(res(&id, plain(&id, ready), details));
    }
    for peer in &config.network.peers {
        let id = ResourceId::dialer(&peer.to_string());
        let ready = observed
            .dialers
            .contains(&id.name)
            .then(|| ("Dialling", format!("keeps {peer} connected")));
        out.push(res(&id, plain(&id, ready), BTreeMap::new()));
    }
    if let Some(want) = EndpointSpec::of(&config.network) {
        let id = ResourceId::endpoint();
        let ready = (observed.endpoint.as_ref() == Some(&want)).then(|| {
            (
                "Running",
                format!("the iroh endpoint runs: {}", want.describe()),
            )
        });
        out.push(res(&id, plain(&id, ready), BTreeMap::new()));
    }
    if let Some(space) = &config.admins.fleet {
        let id = ResourceId::fleet(space);
        let ready = (observed.fleet.as_deref() == Some(space.as_str()))
            .then(|| ("Following", format!("follows the admins in space {space}")));
        out.push(res(&id, plain(&id, ready), BTreeMap::new()));
    }
    for p in &live.peers {
        let mut details = BTreeMap::new();
        details.insert("shared".into(), p.shared.join(", "));
        let message = if p.shared.is_empty() {
            "connected".to_string()
        } else {
            format!("connected, sharing {}", p.shared.join(", "))
        };
        out.push(Res {
            kind: ResourceKind::Peer,
            name: p.identity.clone(),
            conditions: vec![cond(ConditionType::Ready, true, "Connected", message)],
            details,
            replicas: Vec::new(),
            flow: None,
            usage: None,
        });
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use cobox_schema::{FixedHost, Source, validate};

    fn config(text: &str) -> Config {
        let v = validate(&Source::new("t.toml", text), &FixedHost::example());
        v.config.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn ready(rs: &[Res], kind: ResourceKind, name: &str) -> (bool, String) {
        let r = rs
            .iter()
            .find(|r| r.kind == kind && r.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        let c = r
            .conditions
            .iter()
            .find(|c| c.kind == ConditionType::Ready)
            .unwrap();
        (c.status, c.reason.clone())
    }

    #[test]
    fn pending_then_ready_and_a_failure_stalls_the_space_and_its_mount() {
        let c = config(
            "version = 1\n[device]\ndata_dir = \"/d\"\nmount_root = \"/m\"\n\
             [[space]]\nname = \"a\"\nmount = \"/m/a\"\n",
        );
        let mut o = Observed::default();
        let p = plan(&c, &o);
        let rs = resources(&c, &o, &p, &BTreeMap::new(), &Live::default());
        assert_eq!(
            ready(&rs, ResourceKind::Space, "a"),
            (false, "Pending".into())
        );
        assert_eq!(
            ready(&rs, ResourceKind::Mount, "/m/a"),
            (false, "Pending".into())
        );

        let mut failures = BTreeMap::new();
        failures.insert(
            ResourceId::space("a"),
            Failure {
                action: Action::OpenSpace {
                    space: "a".into(),
                    seeders: vec![],
                    removed: vec![],
                },
                error: "disk full".into(),
                retry_in_s: Some(2),
            },
        );
        let rs = resources(&c, &o, &p, &failures, &Live::default());
        assert_eq!(
            ready(&rs, ResourceKind::Space, "a"),
            (false, "ActionFailed".into())
        );
        assert_eq!(
            ready(&rs, ResourceKind::Mount, "/m/a"),
            (false, "SpaceNotReady".into())
        );

        let fake = "1".repeat(64).parse().unwrap();
        for a in &p.actions {
            o.apply(a, |_| fake);
        }
        let rs = resources(&c, &o, &plan(&c, &o), &BTreeMap::new(), &Live::default());
        assert_eq!(ready(&rs, ResourceKind::Space, "a"), (true, "Open".into()));
        assert_eq!(
            ready(&rs, ResourceKind::Mount, "/m/a"),
            (true, "Mounted".into())
        );
        assert_eq!(
            ready(&rs, ResourceKind::Identity, "device"),
            (true, "Present".into())
        );
    }

    #[test]
    fn a_failed_mount_stalls_the_mount_and_a_failed_open_blames_the_space() {
        let c = config(
            "version = 1\n[device]\ndata_dir = \"/d\"\nmount_root = \"/m\"\n\
             [[space]]\nname = \"mountain\"\n",
        );
        let o = Observed::default();
        let p = plan(&c, &o);
        let fail = |action: Action| {
            let mut f = BTreeMap::new();
            f.insert(
                action.resource(),
                Failure {
                    action,
                    error: "no".into(),
                    retry_in_s: Some(1),
                },
            );
            f
        };
        let open = fail(Action::OpenSpace {
            space: "mountain".into(),
            seeders: vec![],
            removed: vec![],
        });
        let rs = resources(&c, &o, &p, &open, &Live::default());
        assert_eq!(
            ready(&rs, ResourceKind::Mount, "/m/mountain"),
            (false, "SpaceNotReady".into())
        );
        let mount = fail(Action::Mount {
            space: "mountain".into(),
            path: "/m/mountain".into(),
        });
        let rs = resources(&c, &o, &p, &mount, &Live::default());
        assert_eq!(
            ready(&rs, ResourceKind::Mount, "/m/mountain"),
            (false, "ActionFailed".into())
        );
    }

    #[test]
    fn min_replicas_counts_connected_up_to_date_copies_only() {
        let copy = |connected, up_to_date| Replica {
            peer: "p".into(),
            role: "seeder".into(),
            connected,
            up_to_date,
            behind_blocks: u64::from(!up_to_date),
            behind_bytes: u64::from(!up_to_date) << 16,
            behind_since: None,
            last_seen: "2026-01-01T00:00:00Z".into(),
            reported_by: None,
            ahead_blocks: 0,
            fetching: 0,
        };
        assert_eq!(replica_shortage(0, &[]), None, "none wanted: no condition");
        let short = |copies: &[Replica]| replica_shortage(1, copies).unwrap().status;
        assert!(short(&[]));
        assert!(
            short(&[copy(false, true)]),
            "a copy out of reach does not count"
        );
        assert!(short(&[copy(true, false)]), "a copy behind does not count");
        assert!(!short(&[copy(true, true)]));
        let hearsay = Replica {
            reported_by: Some("m".into()),
            ..copy(true, true)
        };
        assert!(
            short(&[hearsay]),
            "a copy only another member reported does not count"
        );
        let c = replica_shortage(2, &[copy(true, true)]).unwrap();
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            (
                "FewReplicas",
                "1 of 2 wanted up-to-date replicas are connected"
            )
        );
    }
}
