//! What the agent observes of a device, and how each planned action changes it — the
//! model the planner plans against (and that tests apply plans to).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use cobox_schema::hexkey::{Address, PublicKey};

use super::{Action, EndpointSpec, PolicySpec};

/// A space as observed on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedSpace {
    /// Its keys are on disk.
    pub exists: bool,
    pub address: Option<Address>,
    /// The agent has it open.
    pub open: bool,
    /// The seeders it admits and the identities it removed (as declared when it was
    /// opened or its roster last changed).
    pub seeders: Vec<PublicKey>,
    pub removed: Vec<PublicKey>,
}

/// A seed as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSeed {
    pub address: Address,
    pub running: bool,
}

/// The observed state of a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub identity: bool,
    /// The traffic and storage policy in force, once one was applied.
    pub policy: Option<PolicySpec>,
    /// By name.
    pub spaces: BTreeMap<String, ObservedSpace>,
    /// By name.
    pub seeds: BTreeMap<String, ObservedSeed>,
    /// Mounts this agent made: path → space name. Nothing else is ever unmounted.
    pub mounts: BTreeMap<PathBuf, String>,
    /// TCP listeners: the configured address → the address bound (port 0 resolved).
    pub listeners: BTreeMap<SocketAddr, SocketAddr>,
    /// `peers` entries being dialled, as written.
    pub dialers: BTreeSet<String>,
    /// The iroh endpoint running, with its settings.
    pub endpoint: Option<EndpointSpec>,
    /// The fleet space whose admins the device follows.
    pub fleet: Option<String>,
}

impl Observed {
    /// The state after `action` succeeds. `address_of` names the address a created or
    /// joined space gets.
    pub fn apply(&mut self, action: &Action, address_of: impl Fn(&str) -> Address) {
        match action {
            Action::Unmount { path, .. } => {
                self.mounts.remove(path);
            }
            Action::CloseSpace { space } => {
                if let Some(s) = self.spaces.get_mut(space) {
                    s.open = false;
                }
            }
            Action::StopSeed { seed } => {
                if let Some(s) = self.seeds.get_mut(seed) {
                    s.running = false;
                }
            }
            Action::StopDialing { peer } => {
                self.dialers.remove(peer);
            }
            Action::StopListening { address } => {
                self.listeners.remove(address);
            }
            Action::StopEndpoint => self.endpoint = None,
            Action::CreateIdentity => self.identity = true,
            Action::ApplyPolicy { policy } => self.policy = Some(policy.clone()),
            Action::CreateSpace { space } | Action::JoinSpace { space, .. } => {
                let s = self.spaces.entry(space.clone()).or_default();
                s.exists = true;
                s.address = Some(address_of(space));
            }
            Action::OpenSpace {
                space,
                seeders,
                removed,
            }
            | Action::UpdateRoster {
                space,
                seeders,
                removed,
            } => {
                let s = self.spaces.entry(space.clone()).or_default();
                s.open = true;
                s.seeders = seeders.clone();
                s.removed = removed.clone();
            }
            Action::Mount { space, path } => {
                self.mounts.insert(path.clone(), space.clone());
            }
            Action::StartSeed { seed, address } => {
                self.seeds.insert(
                    seed.clone(),
                    ObservedSeed {
                        address: *address,
                        running: true,
                    },
                );
            }
            Action::Listen { address } => {
                self.listeners.insert(*address, *address);
            }
            Action::Dial { peer } => {
                self.dialers.insert(peer.to_string());
            }
            Action::StartEndpoint { endpoint } => self.endpoint = Some(endpoint.clone()),
            Action::FollowFleet { space } => self.fleet = Some(space.clone()),
            Action::StopFollowing { .. } => self.fleet = None,
        }
    }
}
