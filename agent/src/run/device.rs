//! The live device the agent manages: its identity, open spaces and the mounts it made,
//! observed for planning and changed by executing plan actions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use cobox_keys::{KeyStore, Secret32, SpaceKeys};
use cobox_schema::Config;

use crate::control::conditions::{Flow, Live};
use crate::mount::{Mounted, is_mounted};
use crate::net::Network;
use crate::net::iroh::{IrohLink, Settings as IrohSettings};
use crate::net::policy::{Class, Policy};
use crate::net::seed::{SeedStore, seed_root};
use crate::net::tcp::Tcp;
use crate::plan::{Action, Observed, ObservedSeed, ObservedSpace};
use crate::space::Space;
use crate::space::layout::Layout;
use crate::space::roster::{Role as RosterRole, Roster, Statement};
use cobox_schema::api::PruneCandidate;

/// Bytes of the files under `dir`.
fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Each running seed's data directory, by name.
type SeedRoots = Arc<std::sync::Mutex<BTreeMap<String, PathBuf>>>;

/// Measure on disk what each seed stores and what the data directory has free, for the
/// quotas.
fn measure(policy: &Policy, roots: &SeedRoots, data_dir: &std::path::Path) {
    let roots = roots.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let used: BTreeMap<String, u64> = roots
        .into_iter()
        .map(|(name, root)| (name, disk_usage(&root)))
        .collect();
    let free = rustix::fs::statvfs(data_dir)
        .ok()
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize));
    policy.measured(&used, free);
}

/// What the agent holds open on this device.
pub struct Device {
    rt: tokio::runtime::Handle,
    store: KeyStore,
    parent: Option<Secret32>,
    device_name: String,
    spaces: BTreeMap<String, Arc<tokio::sync::Mutex<Space>>>,
    mounts: BTreeMap<PathBuf, (String, Mounted)>,
    /// Seeds running, by name.
    seeds: BTreeMap<String, cobox_schema::hexkey::Address>,
    /// The declared seeders of each space, as last observed.
    seeders: BTreeMap<String, Vec<[u8; 32]>>,
    /// Replication with peers, once the device has an identity.
    network: Option<Network>,
    tcp: Tcp,
    iroh: Option<IrohLink>,
    /// Caps, windows and quotas in force.
    policy: Arc<Policy>,
    /// Where each running seed keeps its data, for measuring quota usage.
    seed_roots: SeedRoots,
    /// Whether the task that evicts for full seeds runs.
    evictor: bool,
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

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl Device {
    pub fn new(rt: tokio::runtime::Handle, config: &Config) -> Result<Device> {
        let store = KeyStore::new(&config.device.data_dir);
        let parent = store.load_parent()?;
        let network = parent
            .as_ref()
            .map(|p| Network::new(rt.clone(), cobox_keys::derive::identity(p)));
        let policy = Policy::new();
        policy.configure(config);
        policy.spawn_clock(&rt);
        Ok(Device {
            policy,
            seed_roots: SeedRoots::default(),
            evictor: false,
            rt,
            store,
            parent,
            device_name: config.device.name.clone().unwrap_or_else(host_name),
            spaces: BTreeMap::new(),
            mounts: BTreeMap::new(),
            seeds: BTreeMap::new(),
            seeders: BTreeMap::new(),
            network,
            tcp: Tcp::default(),
            iroh: None,
            drift: Vec::new(),
        })
    }

    /// The device's replication, once it has an identity.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    fn net(&self) -> Result<&Network> {
        self.network
            .as_ref()
            .ok_or_else(|| anyhow!("this device has no identity yet"))
    }

    /// Listen and dial as `config` says, and take in roster changes made by other paths
    /// (invites). Returns one message per listen address that could not be bound.
    pub fn sync_network(&mut self, config: &Config) -> Vec<String> {
        let Some(net) = self.network.clone() else {
            return vec![];
        };
        let _enter = self.rt.enter();
        let failed = self
            .tcp
            .configure(&net, &config.network.listen, &config.network.peers);
        let mut errors: Vec<String> = failed
            .into_iter()
            .map(|(addr, e)| format!("cannot listen on {addr}: {e}"))
            .collect();
        let wanted = IrohSettings::of(&config.network);
        if self.iroh.as_ref().map(IrohLink::settings) != Some(&wanted).filter(|w| w.useful()) {
            if let Some(old) = self.iroh.take() {
                self.rt.block_on(old.stop());
            }
            if wanted.useful()
                && let Some(parent) = &self.parent
            {
                let seed = *cobox_keys::derive::identity_seed(parent).expose();
                match self.rt.block_on(IrohLink::start(&net, seed, wanted)) {
                    Ok(link) => self.iroh = Some(link),
                    Err(e) => errors.push(format!("cannot start iroh: {e}")),
                }
            }
        }
        self.rt.block_on(net.reload_rosters());
        self.rt.block_on(net.publish_health());
        self.policy.configure(config);
        self.policy.poke();
        let data_dir = self.store.data_dir().to_path_buf();
        *self.seed_roots.lock().unwrap_or_else(|e| e.into_inner()) = self
            .seeds
            .iter()
            .map(|(name, a)| (name.clone(), seed_root(&data_dir, a)))
            .collect();
        measure(&self.policy, &self.seed_roots, &data_dir);
        if !self.evictor {
            // Full seeds set to evict make room as soon as they fill, not at the next pass.
            self.evictor = true;
            let (policy, roots, net) = (
                Arc::downgrade(&self.policy),
                self.seed_roots.clone(),
                net.clone(),
            );
            self.rt.spawn(async move {
                while let Some(policy) = policy.upgrade() {
                    policy.until_full(std::time::Duration::from_secs(10)).await;
                    if !policy.evicts() {
                        continue;
                    }
                    measure(&policy, &roots, &data_dir);
                    let wanted = policy.to_evict();
                    for (seed, bytes) in &wanted {
                        let freed = net.evict(seed, *bytes).await;
                        tracing::info!(seed, wanted = bytes, freed, "made room for newer blocks");
                    }
                    if !wanted.is_empty() {
                        measure(&policy, &roots, &data_dir);
                    }
                }
            });
        }
        for class in self.policy.syncing() {
            let name = match &class {
                Class::Space(n) | Class::Seed(n) => n,
            };
            if net.in_sync(name) {
                tracing::info!(%class, "one-off sync caught up");
                self.policy.end_sync(&class);
            }
        }
        errors
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
        }
    }

    /// The TCP addresses the device listens on (ports resolved).
    pub fn listening(&self) -> Vec<std::net::SocketAddr> {
        self.tcp.bound()
    }

    /// The device's identity public key, once it has one.
    pub fn identity(&self) -> Option<String> {
        self.parent
            .as_ref()
            .map(|p| cobox_keys::derive::identity(p).public.to_string())
    }

    /// The state to plan from. Mounts that vanished (unmounted by hand, or whose process
    /// died) are forgotten here, so the plan makes them again.
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
                },
            );
        }
        self.seeders = desired
            .spaces
            .iter()
            .map(|s| (s.name.clone(), s.seeders.iter().map(|k| k.0).collect()))
            .collect();
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

    /// Carry out one action.
    pub fn execute(&mut self, action: &Action) -> Result<()> {
        match action {
            Action::Unmount { path, .. } => {
                if let Some((_, m)) = self.mounts.remove(path) {
                    m.unmount()?;
                }
            }
            Action::CloseSpace { space } => {
                if let Some(s) = self.spaces.remove(space) {
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
                }
            }
            Action::CreateIdentity => {
                let (parent, created) = self.store.load_or_create_parent()?;
                if created {
                    tracing::info!(public_key = %cobox_keys::derive::identity(&parent).public, "created the device identity");
                }
                if self.network.is_none() {
                    self.network = Some(Network::new(
                        self.rt.clone(),
                        cobox_keys::derive::identity(&parent),
                    ));
                }
                self.parent = Some(parent);
            }
            Action::CreateSpace { space } => {
                let keys = SpaceKeys::generate(space);
                self.store.save_space(&keys)?;
                tracing::info!(space, address = %keys.address, "created a space");
            }
            Action::JoinSpace { space, invite } => {
                let me = cobox_keys::derive::identity(self.parent()?);
                let now = crate::keyops::unix_now();
                let opened = cobox_keys::invite::open(invite, &me, now)
                    .with_context(|| format!("cannot join space {space}"))?;
                if opened.encryption_key.is_none() {
                    bail!("the invite to {space} is a seeder invite: declare it as a [[seed]]");
                }
                // This device admits its inviter: that is its root of trust in the space.
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
                    name: space.clone(),
                    address: opened.address,
                    encryption_key: opened.encryption_key,
                })?;
                tracing::info!(space, address = %opened.address, "joined a space");
            }
            Action::OpenSpace { space } => {
                let keys = self
                    .store
                    .find_space(space)?
                    .ok_or_else(|| anyhow!("space {space} has no keys"))?;
                let parent = self.parent()?.clone();
                let data_dir = self.store.data_dir().to_path_buf();
                let opened =
                    self.rt
                        .block_on(Space::open(&data_dir, &parent, keys, &self.device_name))?;
                let opened = Arc::new(tokio::sync::Mutex::new(opened));
                let seeders = self.seeders.get(space).cloned().unwrap_or_default();
                let traffic = self.policy.traffic(&Class::Space(space.clone()));
                self.rt
                    .block_on(
                        self.net()?
                            .add_space(space, opened.clone(), &seeders, traffic),
                    )
                    .with_context(|| format!("cannot share space {space}"))?;
                self.spaces.insert(space.clone(), opened);
            }
            Action::Mount { space, path } => {
                let s = self
                    .spaces
                    .get(space)
                    .ok_or_else(|| anyhow!("space {space} is not open"))?
                    .clone();
                let staging = self
                    .rt
                    .block_on(async { s.lock().await.layout().staging() });
                let m = crate::mount::mount(s, self.rt.clone(), path, staging)?;
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
            }
            Action::Blocked { .. } => {}
        }
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
