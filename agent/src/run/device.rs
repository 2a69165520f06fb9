//! The live device the agent manages: its identity, open spaces and the mounts it made,
//! observed for planning and changed by executing plan actions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use cobox_keys::{KeyStore, Secret32, SpaceKeys};
use cobox_schema::Config;

use crate::mount::{Mounted, is_mounted};
use crate::plan::{Action, Observed, ObservedSpace};
use crate::space::Space;
use crate::space::layout::Layout;
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

/// What the agent holds open on this device.
pub struct Device {
    rt: tokio::runtime::Handle,
    store: KeyStore,
    parent: Option<Secret32>,
    device_name: String,
    spaces: BTreeMap<String, Arc<tokio::sync::Mutex<Space>>>,
    mounts: BTreeMap<PathBuf, (String, Mounted)>,
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
        Ok(Device {
            rt,
            store,
            parent,
            device_name: config.device.name.clone().unwrap_or_else(host_name),
            spaces: BTreeMap::new(),
            mounts: BTreeMap::new(),
            drift: Vec::new(),
        })
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
                    self.rt.block_on(async { s.lock().await.checkpoint() })?;
                }
            }
            Action::StopSeed { seed } => {
                bail!("seed {seed}: seeding is not available in this version")
            }
            Action::CreateIdentity => {
                let (parent, created) = self.store.load_or_create_parent()?;
                if created {
                    tracing::info!(public_key = %cobox_keys::derive::identity(&parent).public, "created the device identity");
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
                self.spaces
                    .insert(space.clone(), Arc::new(tokio::sync::Mutex::new(opened)));
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
            Action::StartSeed { seed, .. } => {
                bail!("seed {seed}: seeding is not available in this version")
            }
            Action::Blocked { .. } => {}
        }
        Ok(())
    }

    /// Unmount everything and checkpoint every space.
    pub fn shutdown(&mut self) {
        for (path, (_, m)) in std::mem::take(&mut self.mounts) {
            if let Err(e) = m.unmount() {
                tracing::error!(path = %path.display(), error = %e, "unmount failed");
            }
        }
        for (name, s) in std::mem::take(&mut self.spaces) {
            if let Err(e) = self.rt.block_on(async { s.lock().await.checkpoint() }) {
                tracing::error!(space = %name, error = %e, "checkpoint failed");
            }
        }
    }
}
