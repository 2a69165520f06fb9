//! Planning: what to do to bring a device from what is observed to what is declared.
//!
//! `plan(desired, observed)` is pure and deterministic: no I/O, no clock. It tears down in
//! reverse dependency order (unmounts, then closes, then stops seeds), then sets up
//! (identity, spaces, mounts, seeds), each in declaration order. It only ever removes
//! what the agent created, and never deletes data: a space that leaves the config is
//! unmounted and closed, its feeds kept.

pub mod world;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use cobox_schema::Config;
use cobox_schema::hexkey::Address;

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
    CreateIdentity,
    /// A new space: fresh address and key.
    CreateSpace {
        space: String,
    },
    /// Join with a sealed invite code.
    JoinSpace {
        space: String,
        invite: String,
    },
    OpenSpace {
        space: String,
    },
    Mount {
        space: String,
        path: PathBuf,
    },
    StartSeed {
        seed: String,
        address: Address,
    },
    /// What cannot be done, and why (shown as a condition; nothing is attempted).
    Blocked {
        resource: String,
        reason: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Unmount { space, path } => {
                write!(f, "- unmount space {space} at {}", path.display())
            }
            Action::CloseSpace { space } => write!(f, "- close space {space} (data kept)"),
            Action::StopSeed { seed } => write!(f, "- stop seed {seed} (data kept)"),
            Action::CreateIdentity => write!(f, "+ create identity"),
            Action::CreateSpace { space } => write!(f, "+ create space {space}"),
            Action::JoinSpace { space, .. } => write!(f, "+ join space {space} by invite"),
            Action::OpenSpace { space } => write!(f, "+ open space {space}"),
            Action::Mount { space, path } => {
                write!(f, "+ mount space {space} at {}", path.display())
            }
            Action::StartSeed { seed, address } => write!(f, "+ start seed {seed} ({address})"),
            Action::Blocked { resource, reason } => write!(f, "! {resource}: {reason}"),
        }
    }
}

/// The steps to converge, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    /// No step changes anything (blocked resources aside).
    pub fn is_converged(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a, Action::Blocked { .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Plan the way from `observed` to `desired`.
pub fn plan(desired: &Config, observed: &Observed) -> Plan {
    let mut teardown = Vec::new();
    let mut setup = Vec::new();
    let declared: BTreeSet<&str> = desired.spaces.iter().map(|s| s.name.as_str()).collect();
    let wanted_mounts: BTreeSet<(&str, &std::path::Path)> = desired
        .spaces
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.mount.as_deref()?)))
        .collect();

    // Teardown, reverse dependency order: mounts, then spaces, then seeds.
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

    // Setup, in declaration order.
    if !observed.identity {
        setup.push(Action::CreateIdentity);
    }
    for s in &desired.spaces {
        let seen = observed.spaces.get(&s.name);
        let exists = seen.is_some_and(|o| o.exists);
        if let (Some(want), Some(have)) = (s.address, seen.and_then(|o| o.address))
            && want != have
        {
            setup.push(Action::Blocked {
                resource: format!("space {}", s.name),
                reason: format!(
                    "this device holds space {} under that name, not {want}",
                    have
                ),
            });
            continue;
        }
        if !exists && seen.is_some_and(|o| o.open) {
            setup.push(Action::Blocked {
                resource: format!("space {}", s.name),
                reason: format!(
                    "the data of space {} vanished from the data directory while it was open; restore it from a backup, or remove the space from the config and prune it",
                    s.name
                ),
            });
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
                    setup.push(Action::Blocked {
                        resource: format!("space {}", s.name),
                        reason: format!("no keys for address {address} on this device: add an `invite` or restore its key"),
                    });
                    continue;
                }
            }
        }
        if !seen.is_some_and(|o| o.open) {
            setup.push(Action::OpenSpace {
                space: s.name.clone(),
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
    teardown.extend(setup);
    Plan { actions: teardown }
}
