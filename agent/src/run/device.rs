//! The live device the agent manages: its identity, the policy in force, open spaces, the
//! mounts it made, seeds, TCP listeners and dialers and the iroh endpoint; observed for
//! planning and changed by executing plan actions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use cobox_keys::{KeyStore, Secret32, SpaceKeys};
use cobox_schema::Config;
use cobox_schema::hexkey::PublicKey;

use super::action_error::{ActionError, io_is_permanent};
use crate::control::conditions::{Flow, Live};
use crate::mount::{Mounted, is_mounted};
use crate::net::Network;
use crate::net::housekeeping::{Housekeeping, disk_usage};
use crate::net::iroh::IrohLink;
use crate::net::policy::{Class, Policy};
use crate::net::seed::{SeedStore, seed_root};
use crate::net::tcp::Tcp;
use crate::plan::{Action, Observed, ObservedSeed, ObservedSpace, PolicySpec};
use crate::space::Space;
use crate::space::layout::Layout;
use crate::space::roster::{Role as RosterRole, Roster, Statement};
use cobox_schema::api::PruneCandidate;

/// What the agent holds open on this device.
pub struct Device {
    pub(super) rt: tokio::runtime::Handle,
    store: KeyStore,
    parent: Option<Secret32>,
    device_name: String,
    pub(super) spaces: BTreeMap<String, Arc<tokio::sync::Mutex<Space>>>,
    /// Each open space's declared seeders and removed identities, as its last open or
    /// roster update declared them.
    rosters: BTreeMap<String, (Vec<PublicKey>, Vec<PublicKey>)>,
    mounts: BTreeMap<PathBuf, (String, Mounted)>,
    /// Seeds running, by name.
    seeds: BTreeMap<String, cobox_schema::hexkey::Address>,
    /// Replication with peers, once the device has an identity.
    pub(super) network: Option<Network>,
    /// The network's upkeep, once it runs.
    housekeeping: Option<Housekeeping>,
    tcp: Tcp,
    iroh: Option<IrohLink>,
    /// The fleet space whose admins the device follows.
    following: Option<String>,
    /// Caps, windows and quotas, and the policy last put in force.
    policy: Arc<Policy>,
    applied: Option<PolicySpec>,
    /// What changed behind the agent's back since last asked.
    drift: Vec<(String, String)>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("spaces", &self.spaces.keys())
            .field("mounts", &self.mounts.keys())
            .finish_non_exhaustive()
    }
}

pub(crate) fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl Device {
    pub fn new(rt: tokio::runtime::Handle, config: &Config) -> Result<Device> {
        let store = KeyStore::new(&config.device.data_dir);
        let parent = store.load_parent()?;
        let policy = Policy::new();
        policy.spawn_clock(&rt);
        let mut device = Device {
            policy,
            applied: None,
            rt,
            store,
            parent: None,
            device_name: config.device.name.clone().unwrap_or_else(host_name),
            spaces: BTreeMap::new(),
            rosters: BTreeMap::new(),
            mounts: BTreeMap::new(),
            seeds: BTreeMap::new(),
            network: None,
            housekeeping: None,
            tcp: Tcp::default(),
            iroh: None,
            following: None,
            drift: Vec::new(),
        };
        if let Some(parent) = parent {
            device.take_identity(parent);
        }
        Ok(device)
    }

    /// Hold the device's parent key and start its network and the network's upkeep.
    fn take_identity(&mut self, parent: Secret32) {
        if self.network.is_none() {
            let net = Network::new(self.rt.clone(), cobox_keys::derive::identity(&parent));
            self.housekeeping = Some(Housekeeping::start(
                &self.rt,
                net.clone(),
                self.policy.clone(),
                self.store.data_dir().to_path_buf(),
            ));
            self.network = Some(net);
        }
        self.parent = Some(parent);
    }

    /// The device's replication, once it has an identity.
    /// The runtime the device's work runs on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// The open space `name`.
    pub fn space(&self, name: &str) -> Option<Arc<tokio::sync::Mutex<Space>>> {
        self.spaces.get(name).cloned()
    }

    /// The traffic and storage policy in force (its counters are live).
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    fn net(&self) -> Result<&Network> {
        self.network
            .as_ref()
            .ok_or_else(|| anyhow!("this device has no identity yet"))
    }

    /// Run the network's upkeep now (rosters, health reports, quotas, syncs).
    pub fn housekeep(&self) {
        if let Some(h) = &self.housekeeping {
            h.poke();
        }
    }

    fn set_seed_roots(&self) {
        if let Some(h) = &self.housekeeping {
            let data_dir = self.store.data_dir();
            h.set_seed_roots(
                self.seeds
                    .iter()
                    .map(|(name, a)| (name.clone(), seed_root(data_dir, a)))
                    .collect(),
            );
        }
    }

    /// Open the window of a space or seed until `until` (or until it caught up with its
    /// connected peers). False when no such space or seed is open.
    pub fn sync(&self, class: &Class, until: chrono::DateTime<chrono::Utc>) -> bool {
        let open = match class {
            Class::Space(n) => self.spaces.contains_key(n),
            Class::Seed(n) => self.seeds.contains_key(n),
        };
        open && self.policy.sync(class, until, chrono::Utc::now())
    }

    /// What the network knows of spaces and seeds now: replicas, windows, traffic, quotas.
    pub fn live(&self) -> Live {
        let flow = |class: Class| {
            self.policy
                .status(&class)
                .map(|(window, traffic, quota)| Flow {
                    window,
                    traffic,
                    quota,
                })
        };
        Live {
            replicas: self
                .network
                .as_ref()
                .map(|n| n.replicas())
                .unwrap_or_default(),
            spaces: self
                .spaces
                .keys()
                .filter_map(|n| Some((n.clone(), flow(Class::Space(n.clone()))?)))
                .collect(),
            seeds: self
                .seeds
                .keys()
                .filter_map(|n| Some((n.clone(), flow(Class::Seed(n.clone()))?)))
                .collect(),
            faults: self
                .network
                .as_ref()
                .map(|n| n.faults())
                .unwrap_or_default(),
            peers: self
                .network
                .as_ref()
                .map(|n| crate::control::board::network_status(n, vec![]).peers)
                .unwrap_or_default(),
            unavailable: self
                .network
                .as_ref()
                .map(|n| n.unavailable())
                .unwrap_or_default(),
            usage: self.network.as_ref().map(|n| n.usage()).unwrap_or_default(),
            removed: self
                .network
                .as_ref()
                .map(|n| n.removed_here())
                .unwrap_or_default(),
        }
    }

    /// The TCP addresses the device listens on (ports resolved).
    pub fn listening(&self) -> Vec<std::net::SocketAddr> {
        self.tcp.bound()
    }

    /// The fleet space whose admins the device follows (a planned resource).
    pub fn following(&self) -> Option<&str> {
        self.following.as_deref()
    }

    /// The device's name, as it gives it to others.
    pub fn name(&self) -> &str {
        &self.device_name
    }

    /// The device's identity key pair, once it has one (it signs what the device
    /// publishes to its fleet).
    pub fn signer(&self) -> Option<cobox_keys::SigningKeyPair> {
        self.parent.as_ref().map(cobox_keys::derive::identity)
    }

    /// The device's identity public key, once it has one.
    pub fn identity(&self) -> Option<String> {
        self.parent
            .as_ref()
            .map(|p| cobox_keys::derive::identity(p).public.to_string())
    }

    /// The state to plan from. Mounts that vanished (unmounted by hand, or whose process
    /// died) and listeners whose task ended are forgotten here, so the plan makes them
    /// again.
    pub fn observe(&mut self, desired: &Config) -> Result<Observed> {
        let gone: Vec<PathBuf> = self
            .mounts
            .keys()
            .filter(|p| !is_mounted(p))
            .cloned()
            .collect();
        for path in gone {
            tracing::warn!(path = %path.display(), "a mount disappeared; it will be restored");
            self.drift.push((
                format!("mount {}", path.display()),
                "the mount disappeared; it will be restored".into(),
            ));
            if let Some((_, m)) = self.mounts.remove(&path) {
                drop(m);
            }
        }
        let mut observed = Observed {
            identity: self.parent.is_some(),
            policy: self.applied.clone(),
            listeners: self.tcp.listeners(),
            dialers: self.tcp.dialers(),
            endpoint: self.iroh.as_ref().map(|l| l.settings().clone()),
            fleet: self.following.clone(),
            ..Default::default()
        };
        let mut names: Vec<String> = desired.spaces.iter().map(|s| s.name.clone()).collect();
        names.extend(self.spaces.keys().cloned());
        names.sort();
        names.dedup();
        // One scan of the key store, not one per space.
        let mut on_disk: BTreeMap<String, SpaceKeys> = BTreeMap::new();
        for k in self.store.spaces()? {
            on_disk.entry(k.name.clone()).or_insert(k);
        }
        for name in names {
            let keys = on_disk.get(&name);
            observed.spaces.insert(
                name.clone(),
                ObservedSpace {
                    exists: keys.is_some(),
                    address: keys.map(|k| k.address),
                    open: self.spaces.contains_key(&name),
                    seeders: self
                        .rosters
                        .get(&name)
                        .map(|r| r.0.clone())
                        .unwrap_or_default(),
                    removed: self
                        .rosters
                        .get(&name)
                        .map(|r| r.1.clone())
                        .unwrap_or_default(),
                },
            );
        }
        observed.seeds = self
            .seeds
            .iter()
            .map(|(name, address)| {
                (
                    name.clone(),
                    ObservedSeed {
                        address: *address,
                        running: true,
                    },
                )
            })
            .collect();
        observed.mounts = self
            .mounts
            .iter()
            .map(|(p, (s, _))| (p.clone(), s.clone()))
            .collect();
        Ok(observed)
    }

    /// Drift seen by `observe` since the last call: (resource, what happened).
    pub fn take_drift(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.drift)
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// Spaces with keys on this device that `desired` does not declare and that are not
    /// open: what `prune` may delete.
    pub fn prune_candidates(&self, desired: &Config) -> Result<Vec<PruneCandidate>> {
        let mut out = Vec::new();
        for k in self.store.spaces()? {
            if desired.spaces.iter().any(|s| s.name == k.name)
                || desired.seeds.iter().any(|s| s.address == k.address)
                || self.spaces.contains_key(&k.name)
            {
                continue;
            }
            let root = Layout::new(self.store.data_dir(), &k.address)
                .root()
                .to_path_buf();
            out.push(PruneCandidate {
                name: k.name.clone(),
                address: k.address.to_string(),
                bytes: disk_usage(&root),
            });
        }
        out.sort_by(|a, b| (&a.name, &a.address).cmp(&(&b.name, &b.address)));
        Ok(out)
    }

    /// Delete the data and keys of an undeclared space: moved aside at once (so it is
    /// gone or whole), forgotten by the index, then removed.
    pub fn prune(&self, candidate: &PruneCandidate) -> Result<()> {
        let address: cobox_schema::hexkey::Address = candidate
            .address
            .parse()
            .map_err(|e| anyhow!("address {}: {e}", candidate.address))?;
        let layout = Layout::new(self.store.data_dir(), &address);
        let aside = self
            .store
            .data_dir()
            .join("spaces")
            .join(format!(".pruning-{address}"));
        std::fs::rename(layout.root(), &aside)
            .with_context(|| format!("cannot move {} aside", layout.root().display()))?;
        crate::space::index::forget(&layout.index(), &address.0)?;
        std::fs::remove_dir_all(&aside)
            .with_context(|| format!("cannot delete {}", aside.display()))?;
        tracing::warn!(space = %candidate.name, %address, "pruned the data of an undeclared space");
        Ok(())
    }

    fn parent(&self) -> Result<&Secret32> {
        self.parent
            .as_ref()
            .ok_or_else(|| anyhow!("this device has no identity yet"))
    }

    /// Carry out one action. The error says whether trying again can help.
    pub fn execute(&mut self, action: &Action) -> Result<(), ActionError> {
        match action {
            Action::Unmount { path, .. } => {
                if let Some((_, m)) = self.mounts.remove(path) {
                    m.unmount()?;
                }
            }
            Action::CloseSpace { space } => {
                if let Some(s) = self.spaces.remove(space) {
                    self.rosters.remove(space);
                    let address = self.rt.block_on(async {
                        let mut s = s.lock().await;
                        s.checkpoint().await.map(|()| s.keys().address)
                    })?;
                    if let Some(net) = &self.network {
                        net.remove(&address.0);
                    }
                }
            }
            Action::StopSeed { seed } => {
                if let Some(address) = self.seeds.remove(seed) {
                    self.net()?.remove(&address.0);
                    tracing::info!(seed, %address, "stopped seeding (data kept)");
                    self.set_seed_roots();
                }
            }
            Action::StopDialing { peer } => self.tcp.stop_dialing(peer),
            Action::StopListening { address } => {
                self.tcp.stop_listening(address);
                tracing::info!(%address, "stopped listening");
            }
            Action::StopEndpoint => {
                if let Some(old) = self.iroh.take() {
                    self.rt.block_on(old.stop());
                }
            }
            Action::StopFollowing { space } => {
                tracing::info!(space, "stopped following the admins");
                self.following = None;
            }
            Action::FollowFleet { space } => {
                if !self.spaces.contains_key(space) {
                    return Err(anyhow!("the fleet space {space} is not open").into());
                }
                tracing::info!(space, "following the admins");
                self.following = Some(space.clone());
            }
            Action::CreateIdentity => {
                let (parent, created) = self.store.load_or_create_parent()?;
                if created {
                    tracing::info!(public_key = %cobox_keys::derive::identity(&parent).public, "created the device identity");
                }
                self.take_identity(parent);
            }
            Action::ApplyPolicy { policy } => {
                self.policy.configure(policy);
                self.policy.poke();
                self.applied = Some(policy.clone());
                self.housekeep();
            }
            Action::CreateSpace { space } => {
                let keys = SpaceKeys::generate(space);
                self.store.save_space(&keys)?;
                tracing::info!(space, address = %keys.address, "created a space");
            }
            Action::JoinSpace { space, invite } => self.join(space, invite)?,
            Action::OpenSpace {
                space,
                seeders,
                removed,
            } => {
                let keys = self
                    .store
                    .find_space(space)?
                    .ok_or_else(|| anyhow!("space {space} has no keys"))?;
                let parent = self.parent()?.clone();
                let data_dir = self.store.data_dir().to_path_buf();
                let mut opened =
                    self.rt
                        .block_on(Space::open(&data_dir, &parent, keys, &self.device_name))?;
                opened.set_commit_interval(self.policy.commit_interval());
                let opened = Arc::new(tokio::sync::Mutex::new(opened));
                crate::space::flush::spawn_flusher(
                    &self.rt,
                    Arc::downgrade(&opened),
                    self.policy.commit_interval(),
                );
                let traffic = self.policy.traffic(&Class::Space(space.clone()));
                self.rt
                    .block_on(self.net()?.add_space(space, opened.clone(), traffic))
                    .with_context(|| format!("cannot share space {space}"))?;
                let address = self
                    .rt
                    .block_on(async { opened.lock().await.keys().address });
                self.rt.block_on(self.net()?.declare_roster(
                    address.0,
                    &keys_of(seeders),
                    &keys_of(removed),
                ));
                self.spaces.insert(space.clone(), opened);
                self.rosters
                    .insert(space.clone(), (seeders.clone(), removed.clone()));
            }
            Action::UpdateRoster {
                space,
                seeders,
                removed,
            } => {
                let s = self
                    .spaces
                    .get(space)
                    .ok_or_else(|| anyhow!("space {space} is not open"))?
                    .clone();
                let address = self.rt.block_on(async { s.lock().await.keys().address });
                self.rt.block_on(self.net()?.declare_roster(
                    address.0,
                    &keys_of(seeders),
                    &keys_of(removed),
                ));
                tracing::info!(
                    space,
                    seeders = seeders.len(),
                    removed = removed.len(),
                    "roster declared"
                );
                self.rosters
                    .insert(space.clone(), (seeders.clone(), removed.clone()));
            }
            Action::Mount { space, path } => {
                if std::fs::metadata(path).is_ok_and(|m| !m.is_dir()) {
                    return Err(ActionError::permanent(anyhow!(
                        "mount point {} is not a directory",
                        path.display()
                    )));
                }
                let s = self
                    .spaces
                    .get(space)
                    .ok_or_else(|| anyhow!("space {space} is not open"))?
                    .clone();
                let staging = self
                    .rt
                    .block_on(async { s.lock().await.layout().staging() });
                let m = match crate::mount::mount(s, self.rt.clone(), path, staging) {
                    Ok(m) => m,
                    Err(e @ crate::mount::MountError::Refused { .. }) => {
                        return Err(ActionError::permanent(e));
                    }
                    Err(e) => return Err(e.into()),
                };
                tracing::info!(space, path = %path.display(), "mounted");
                self.mounts.insert(path.clone(), (space.clone(), m));
            }
            Action::StartSeed { seed, address } => {
                let net = self.net()?.clone();
                let data_dir = self.store.data_dir().to_path_buf();
                let traffic = self.policy.traffic(&Class::Seed(seed.clone()));
                if let Some(q) = &traffic.quota {
                    q.set_used(disk_usage(&seed_root(&data_dir, address)));
                }
                self.rt
                    .block_on(async {
                        let store = SeedStore::open(&data_dir, *address).await?;
                        net.add_seed(seed, store, traffic).await?;
                        anyhow::Ok(())
                    })
                    .with_context(|| format!("cannot start seed {seed}"))?;
                tracing::info!(seed, %address, "seeding");
                self.seeds.insert(seed.clone(), *address);
                self.set_seed_roots();
            }
            Action::Listen { address } => {
                let net = self.net()?.clone();
                let _enter = self.rt.enter();
                if let Err(e) = self.tcp.listen(&net, *address) {
                    let permanent = io_is_permanent(&e);
                    let error = anyhow::Error::new(e);
                    return Err(if permanent {
                        ActionError::permanent(error)
                    } else {
                        error.into()
                    });
                }
            }
            Action::Dial { peer } => {
                let net = self.net()?.clone();
                let _enter = self.rt.enter();
                self.tcp.dial(&net, peer);
            }
            Action::StartEndpoint { endpoint } => {
                if let Some(old) = self.iroh.take() {
                    self.rt.block_on(old.stop());
                }
                let net = self.net()?.clone();
                let seed = *cobox_keys::derive::identity_seed(self.parent()?).expose();
                let link = self
                    .rt
                    .block_on(IrohLink::start(&net, seed, endpoint.clone()))
                    .context("cannot start the iroh endpoint")?;
                self.iroh = Some(link);
            }
        }
        Ok(())
    }

    /// Join `space` with `invite`: keep the inviter as this device's root of trust in it,
    /// then the keys. An invite that cannot be opened here never will be (expired, sealed
    /// for another device, a seeder invite): that is not retried.
    fn join(&mut self, space: &str, invite: &str) -> Result<(), ActionError> {
        let me = cobox_keys::derive::identity(self.parent()?);
        let now = crate::keyops::unix_now();
        let opened = cobox_keys::invite::open(invite, &me, now)
            .with_context(|| format!("cannot join space {space}"))
            .map_err(ActionError::permanent)?;
        if opened.encryption_key.is_none() {
            return Err(ActionError::permanent(anyhow!(
                "the invite to {space} is a seeder invite: declare it as a [[seed]]"
            )));
        }
        let roster = Layout::new(self.store.data_dir(), &opened.address).roster();
        if let Some(dir) = roster.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Roster::member(opened.address.0, me.public.0)
            .add_and_keep(
                &roster,
                [Statement::allow(
                    &me,
                    &opened.address.0,
                    RosterRole::Member,
                    opened.inviter.0,
                )],
            )
            .with_context(|| format!("cannot write {}", roster.display()))?;
        self.store.save_space(&SpaceKeys {
            name: space.to_string(),
            address: opened.address,
            encryption_key: opened.encryption_key,
        })?;
        tracing::info!(space, address = %opened.address, "joined a space");
        Ok(())
    }

    /// Unmount everything and checkpoint every space.
    pub fn shutdown(&mut self) {
        if let Some(link) = self.iroh.take() {
            self.rt.block_on(link.stop());
        }
        for (path, (_, m)) in std::mem::take(&mut self.mounts) {
            if let Err(e) = m.unmount() {
                tracing::error!(path = %path.display(), error = %e, "unmount failed");
            }
        }
        for (name, s) in std::mem::take(&mut self.spaces) {
            if let Err(e) = self
                .rt
                .block_on(async { s.lock().await.checkpoint().await })
            {
                tracing::error!(space = %name, error = %e, "checkpoint failed");
            }
        }
    }
}

fn keys_of(keys: &[PublicKey]) -> Vec<[u8; 32]> {
    keys.iter().map(|k| k.0).collect()
}
