//! The network's background upkeep, in one task: roster files read again (an invite made by
//! another path admits someone), health reports published, key rotations and grants made
//! where due, space reclaimed in member spaces (versions past their retention, blocks
//! nothing refers to), what seeds store measured for their quotas, one-off syncs ended once
//! caught up, and room made for full seeds set to evict. It runs every few seconds, when
//! poked (each reconcile does), and at once when a quota fills.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Network;
use super::policy::{Class, Policy};

/// How often the upkeep runs without being asked.
const EVERY: Duration = Duration::from_secs(10);

/// The running upkeep: stopped when dropped.
#[derive(Debug)]
pub struct Housekeeping {
    poke: Arc<Notify>,
    roots: Arc<Mutex<BTreeMap<String, PathBuf>>>,
    task: JoinHandle<()>,
}

impl Drop for Housekeeping {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bytes of the files under `dir`.
pub fn disk_usage(dir: &std::path::Path) -> u64 {
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

/// Measure on disk what each seed stores and what the data directory has free.
fn measure(policy: &Policy, roots: &Mutex<BTreeMap<String, PathBuf>>, data_dir: &std::path::Path) {
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

impl Housekeeping {
    /// Start the upkeep of `net` under `policy`, for a device whose data is in `data_dir`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        net: Network,
        policy: Arc<Policy>,
        data_dir: PathBuf,
    ) -> Housekeeping {
        let poke = Arc::new(Notify::new());
        let roots: Arc<Mutex<BTreeMap<String, PathBuf>>> = Arc::default();
        let (p, r) = (poke.clone(), roots.clone());
        let policy = Arc::downgrade(&policy);
        let task = rt.spawn(async move {
            loop {
                let Some(policy) = policy.upgrade() else {
                    return;
                };
                tokio::select! {
                    _ = p.notified() => {}
                    _ = policy.until_full(EVERY) => {}
                }
                net.reload_rosters().await;
                net.publish_health().await;
                net.rotate_keys(None).await;
                net.reclaim(&policy).await;
                measure(&policy, &r, &data_dir);
                if policy.evicts() {
                    let wanted = policy.to_evict();
                    for (seed, bytes) in &wanted {
                        let freed = net.evict(seed, *bytes).await;
                        tracing::info!(seed, wanted = bytes, freed, "made room for newer blocks");
                    }
                    if !wanted.is_empty() {
                        measure(&policy, &r, &data_dir);
                    }
                }
                for class in policy.syncing() {
                    let name = match &class {
                        Class::Space(n) | Class::Seed(n) => n,
                    };
                    if net.in_sync(name) {
                        tracing::info!(%class, "one-off sync caught up");
                        policy.end_sync(&class);
                    }
                }
            }
        });
        Housekeeping { poke, roots, task }
    }

    /// Run the upkeep now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// The running seeds' data directories, by name, for measuring their quotas.
    pub fn set_seed_roots(&self, roots: BTreeMap<String, PathBuf>) {
        *self.roots.lock().unwrap_or_else(|e| e.into_inner()) = roots;
        self.poke();
    }
}
