//! Planning: what to do to bring a device from what is observed to what is declared.
//!
//! `plan(desired, observed)` is pure and deterministic: no I/O, no clock. Every resource the
//! device runs goes through it: the identity, the traffic and storage policy, spaces,
//! mounts, seeds, TCP listeners and dialers, the iroh endpoint and following the admins.
//! It tears down in reverse dependency order (following, unmounts, closes, seeds, dialers,
//! listeners, the endpoint), then sets up (identity, policy, spaces, mounts, seeds,
//! listeners, dialers, endpoint, following),
//! each in declaration order. What an action needs travels in it. It only ever removes
//! what the agent created, and never deletes data: a space that leaves the config is
//! unmounted and closed, its feeds kept. What cannot be done is `blocked`, with why.

pub mod resource;
pub mod spec;
pub mod world;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use cobox_schema::Config;
use cobox_schema::config::Peer;
use cobox_schema::hexkey::{Address, PublicKey};

pub use resource::{ResourceId, ResourceKind};
pub use spec::{EndpointSpec, PolicySpec};
pub use world::{Observed, ObservedSeed, ObservedSpace};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Unmount {
        space: String,
        path: PathBuf,
    },
    CloseSpace {
        space: String,
    },
    StopSeed {
        seed: String,
    },
    StopDialing {
        peer: String,
    },
    StopListening {
        address: SocketAddr,
    },
    StopEndpoint,
    /// Stop following the admins in the fleet space.
    StopFollowing {
        space: String,
    },
    CreateIdentity,
    /// Put the traffic and storage policy in force.
    ApplyPolicy {
        policy: PolicySpec,
    },
    /// A new space: fresh address and key.
    CreateSpace {
        space: String,
    },
    /// Join with a sealed invite code.
    JoinSpace {
        space: String,
        invite: String,
    },
    /// Open a space and share it with peers, admitting its declared seeders and removing
    /// the identities removed from it.
    OpenSpace {
        space: String,
        seeders: Vec<PublicKey>,
        removed: Vec<PublicKey>,
    },
    /// Sign what the roster of an open space lacks (its declared seeders or removals
    /// changed): admissions, removals, readmissions.
    UpdateRoster {
        space: String,
        seeders: Vec<PublicKey>,
        removed: Vec<PublicKey>,
    },
    Mount {
        space: String,
        path: PathBuf,
    },
    StartSeed {
        seed: String,
        address: Address,
    },
    Listen {
        address: SocketAddr,
    },
    Dial {
        peer: Peer,
    },
    StartEndpoint {
        endpoint: EndpointSpec,
    },
    /// Follow the admins in the fleet space (read their envelopes and changes of the
    /// admin set, report there).
    FollowFleet {
        space: String,
    },
}

impl Action {
    /// The resource the action changes.
    pub fn resource(&self) -> ResourceId {
        match self {
            Action::Unmount { path, .. } | Action::Mount { path, .. } => ResourceId::mount(path),
            Action::CloseSpace { space }
            | Action::CreateSpace { space }
            | Action::JoinSpace { space, .. }
            | Action::OpenSpace { space, .. }
            | Action::UpdateRoster { space, .. } => ResourceId::space(space),
            Action::StopSeed { seed } | Action::StartSeed { seed, .. } => ResourceId::seed(seed),
            Action::StopDialing { peer } => ResourceId::dialer(peer),
            Action::Dial { peer } => ResourceId::dialer(&peer.to_string()),
            Action::StopListening { address } | Action::Listen { address } => {
                ResourceId::listener(address)
            }
            Action::StopEndpoint | Action::StartEndpoint { .. } => ResourceId::endpoint(),
            Action::CreateIdentity => ResourceId::identity(),
            Action::ApplyPolicy { .. } => ResourceId::policy(),
            Action::StopFollowing { space } | Action::FollowFleet { space } => {
                ResourceId::fleet(space)
            }
        }
    }

    /// The resource that must be ready first: an action is not tried in a reconcile in
    /// which that resource failed.
    pub fn depends_on(&self) -> Option<ResourceId> {
        match self {
            Action::Mount { space, .. } | Action::FollowFleet { space } => {
                Some(ResourceId::space(space))
            }
            Action::OpenSpace { .. }
            | Action::StartSeed { .. }
            | Action::Listen { .. }
            | Action::Dial { .. }
            | Action::StartEndpoint { .. } => Some(ResourceId::identity()),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Unmount { space, path } => {
                write!(f, "- unmount space {space} at {}", path.display())
            }
            Action::CloseSpace { space } => write!(f, "- close space {space} (data kept)"),
            Action::StopSeed { seed } => write!(f, "- stop seed {seed} (data kept)"),
            Action::StopDialing { peer } => write!(f, "- stop dialling {peer}"),
            Action::StopListening { address } => write!(f, "- stop listening on {address}"),
            Action::StopEndpoint => write!(f, "- stop the iroh endpoint"),
            Action::StopFollowing { space } => {
                write!(f, "- stop following the admins in space {space}")
            }
            Action::CreateIdentity => write!(f, "+ create identity"),
            Action::ApplyPolicy { .. } => write!(f, "~ apply the traffic and storage policy"),
            Action::CreateSpace { space } => write!(f, "+ create space {space}"),
            Action::JoinSpace { space, .. } => write!(f, "+ join space {space} by invite"),
            Action::OpenSpace { space, .. } => write!(f, "+ open space {space}"),
            Action::UpdateRoster {
                space,
                seeders,
                removed,
            } => write!(
                f,
                "~ roster of space {space}: {} seeder(s), {} removed",
                seeders.len(),
                removed.len()
            ),
            Action::Mount { space, path } => {
                write!(f, "+ mount space {space} at {}", path.display())
            }
            Action::StartSeed { seed, address } => write!(f, "+ start seed {seed} ({address})"),
            Action::Listen { address } => write!(f, "+ listen on {address}"),
            Action::Dial { peer } => write!(f, "+ dial {peer}"),
            Action::StartEndpoint { endpoint } => {
                write!(f, "+ start the iroh endpoint ({})", endpoint.describe())
            }
            Action::FollowFleet { space } => write!(f, "+ follow the admins in space {space}"),
        }
    }
}

/// What cannot be done for a resource, and why (shown as a condition; nothing is tried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub resource: ResourceId,
    pub reason: String,
}

/// The steps to converge, in order, and what is blocked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub blocked: Vec<Blocked>,
}

impl Plan {
    /// Nothing is left to do (blocked resources aside).
    pub fn is_converged(&self) -> bool {
        self.actions.is_empty()
    }

    /// Why `resource` is blocked, if it is.
    pub fn blocked_reason(&self, resource: &ResourceId) -> Option<&str> {
        self.blocked
            .iter()
            .find(|b| b.resource == *resource)
            .map(|b| b.reason.as_str())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        for b in &self.blocked {
            writeln!(f, "! {}: {}", b.resource, b.reason)?;
        }
        Ok(())
    }
}

/// Plan the way from `observed` to `desired`.
pub fn plan(desired: &Config, observed: &Observed) -> Plan {
    let mut teardown = Vec::new();
    // Following the admins depends on the fleet space: it stops first.
    if let Some(followed) = &observed.fleet
        && desired.admins.fleet.as_ref() != Some(followed)
    {
        teardown.push(Action::StopFollowing {
            space: followed.clone(),
        });
    }
    let mut setup = Vec::new();
    let mut blocked = Vec::new();
    let declared: BTreeSet<&str> = desired.spaces.iter().map(|s| s.name.as_str()).collect();
    let wanted_mounts: BTreeSet<(&str, &std::path::Path)> = desired
        .spaces
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.mount.as_deref()?)))
        .collect();

    // Teardown, reverse dependency order: mounts, spaces, seeds, then the network.
    for (path, space) in &observed.mounts {
        if !wanted_mounts.contains(&(space.as_str(), path.as_path())) {
            teardown.push(Action::Unmount {
                space: space.clone(),
                path: path.clone(),
            });
        }
    }
    for (name, s) in &observed.spaces {
        if s.open && !declared.contains(name.as_str()) {
            teardown.push(Action::CloseSpace {
                space: name.clone(),
            });
        }
    }
    let seeds: BTreeSet<&str> = desired.seeds.iter().map(|s| s.name.as_str()).collect();
    for (name, s) in &observed.seeds {
        let still = desired
            .seeds
            .iter()
            .any(|d| d.name == *name && d.address == s.address);
        if s.running && (!seeds.contains(name.as_str()) || !still) {
            teardown.push(Action::StopSeed { seed: name.clone() });
        }
    }
    let peers: BTreeSet<String> = desired
        .network
        .peers
        .iter()
        .map(|p| p.to_string())
        .collect();
    for peer in &observed.dialers {
        if !peers.contains(peer) {
            teardown.push(Action::StopDialing { peer: peer.clone() });
        }
    }
    for address in observed.listeners.keys() {
        if !desired.network.listen.contains(address) {
            teardown.push(Action::StopListening { address: *address });
        }
    }
    let endpoint = EndpointSpec::of(&desired.network);
    if observed.endpoint.is_some() && observed.endpoint != endpoint {
        teardown.push(Action::StopEndpoint);
    }

    // Setup, in declaration order.
    if !observed.identity {
        setup.push(Action::CreateIdentity);
    }
    let policy = PolicySpec::of(desired);
    if observed.policy.as_ref() != Some(&policy) {
        setup.push(Action::ApplyPolicy { policy });
    }
    for s in &desired.spaces {
        let seen = observed.spaces.get(&s.name);
        let exists = seen.is_some_and(|o| o.exists);
        let open = seen.is_some_and(|o| o.open);
        let block = |reason: String| Blocked {
            resource: ResourceId::space(&s.name),
            reason,
        };
        if let (Some(want), Some(have)) = (s.address, seen.and_then(|o| o.address))
            && want != have
        {
            blocked.push(block(format!(
                "this device holds space {} under that name, not {want}",
                have
            )));
            continue;
        }
        if !exists && open {
            blocked.push(block(format!(
                "the data of space {} vanished from the data directory while it was open; restore it from a backup, or remove the space from the config and prune it",
                s.name
            )));
            continue;
        }
        if !exists {
            match (&s.invite, s.address) {
                (Some(invite), _) => setup.push(Action::JoinSpace {
                    space: s.name.clone(),
                    invite: invite.clone(),
                }),
                (None, None) => setup.push(Action::CreateSpace {
                    space: s.name.clone(),
                }),
                (None, Some(address)) => {
                    blocked.push(block(format!(
                        "no keys for address {address} on this device: add an `invite` or restore its key"
                    )));
                    continue;
                }
            }
        }
        if !open {
            setup.push(Action::OpenSpace {
                space: s.name.clone(),
                seeders: s.seeders.clone(),
                removed: s.removed.clone(),
            });
        } else if seen.is_some_and(|o| o.seeders != s.seeders || o.removed != s.removed) {
            setup.push(Action::UpdateRoster {
                space: s.name.clone(),
                seeders: s.seeders.clone(),
                removed: s.removed.clone(),
            });
        }
        if let Some(path) = &s.mount
            && observed.mounts.get(path) != Some(&s.name)
        {
            setup.push(Action::Mount {
                space: s.name.clone(),
                path: path.clone(),
            });
        }
    }
    for s in &desired.seeds {
        let running = observed
            .seeds
            .get(&s.name)
            .is_some_and(|o| o.running && o.address == s.address);
        if !running {
            setup.push(Action::StartSeed {
                seed: s.name.clone(),
                address: s.address,
            });
        }
    }
    for address in &desired.network.listen {
        if !observed.listeners.contains_key(address) {
            setup.push(Action::Listen { address: *address });
        }
    }
    for peer in &desired.network.peers {
        if !observed.dialers.contains(&peer.to_string()) {
            setup.push(Action::Dial { peer: peer.clone() });
        }
    }
    if let Some(endpoint) = endpoint
        && observed.endpoint.as_ref() != Some(&endpoint)
    {
        setup.push(Action::StartEndpoint { endpoint });
    }
    if let Some(fleet) = &desired.admins.fleet
        && observed.fleet.as_ref() != Some(fleet)
    {
        setup.push(Action::FollowFleet {
            space: fleet.clone(),
        });
    }
    teardown.extend(setup);
    Plan {
        actions: teardown,
        blocked,
    }
}
