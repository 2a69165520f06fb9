//! The shared addresses: adding a space or a seed, removing one, and what status reads of
//! them (names, replicas, faults, blocks no peer supplied, in step or not).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::seed::SeedStore;
use super::{Holder, Network, Share, file_len, health};
use crate::replicate::Traffic;
use crate::space::Space;
use crate::space::roster::{Roster, Statement};

impl Network {
    /// Share a space this device is a member of (its declared seeders and removals follow
    /// with [`Network::declare_roster`]).
    pub async fn add_space(
        &self,
        name: &str,
        space: Arc<tokio::sync::Mutex<Space>>,
        traffic: Arc<Traffic>,
    ) -> std::io::Result<()> {
        let (address, log, content, roster_file, own, health, names) = {
            let s = space.lock().await;
            let own = s.feeds().open_feeds();
            (
                s.keys().address.0,
                s.log_key(),
                s.content_key(),
                s.layout().roster(),
                own,
                s.health(),
                s.names(),
            )
        };
        let me = &self.inner.identity;
        let mut roster = Roster::member(address, me.public.0);
        roster.load(&roster_file)?;
        roster.add_and_keep(
            &roster_file,
            [Statement::member(me, &address, log, content)],
        )?;
        let share = Share {
            name: name.to_string(),
            holder: Holder::Member(space),
            roster,
            roster_read: file_len(&roster_file),
            roster_file,
            feeds: own
                .into_iter()
                .map(|f| {
                    f.set_traffic(traffic.clone());
                    (f.key(), f)
                })
                .collect(),
            members: BTreeSet::new(),
            traffic,
            health: Some(health),
            names: Some(names),
            behind_since: BTreeMap::new(),
            published: None,
            usage: None,
        };
        self.insert(address, share).await;
        Ok(())
    }

    /// Seed an address: replicate and serve every feed of it without its keys.
    pub async fn add_seed(
        &self,
        name: &str,
        store: SeedStore,
        traffic: Arc<Traffic>,
    ) -> std::io::Result<()> {
        let address = store.address();
        let roster_file = store.roster_file();
        let mut roster = Roster::seed(address);
        roster.load(&roster_file)?;
        let share = Share {
            name: name.to_string(),
            holder: Holder::Seed(Arc::new(tokio::sync::Mutex::new(store))),
            roster,
            roster_read: file_len(&roster_file),
            roster_file,
            feeds: BTreeMap::new(),
            members: BTreeSet::new(),
            traffic,
            health: None,
            names: None,
            behind_since: BTreeMap::new(),
            published: None,
            usage: None,
        };
        self.insert(address, share).await;
        Ok(())
    }

    async fn insert(&self, address: [u8; 32], share: Share) {
        self.state().shares.insert(address, share);
        self.open_members(address).await;
        self.offer_to_peers(address);
    }

    /// Stop sharing an address. Sessions that carried it are ended (and dialled again by
    /// whoever dials), so none keeps its feeds open.
    pub fn remove(&self, address: &[u8; 32]) {
        let mut st = self.state();
        if st.shares.remove(address).is_none() {
            return;
        }
        for p in st.peers.values() {
            if p.spaces.contains(address) {
                p.handle.close();
            }
        }
    }

    /// The names of the shared addresses, by address.
    pub fn shared(&self) -> BTreeMap<[u8; 32], String> {
        self.state()
            .shares
            .iter()
            .map(|(a, s)| (*a, s.name.clone()))
            .collect()
    }

    /// Every other device that replicated a shared address with this one, by the share's
    /// name: what it lacks of what this device holds, whether it is connected, when it was
    /// last heard from.
    pub fn replicas(&self) -> BTreeMap<String, Vec<cobox_schema::api::Replica>> {
        let me = self.identity();
        let mut st = self.state();
        st.shares
            .values_mut()
            .map(|share| (share.name.clone(), health::replicas_of(share, &me)))
            .collect()
    }

    /// The feeds of each share (by space or seed name) that could not be read or written
    /// here: `feed KEY: reason`, by key.
    pub fn faults(&self) -> BTreeMap<String, Vec<String>> {
        let st = self.state();
        st.shares
            .values()
            .filter_map(|share| {
                let faults: Vec<String> = share
                    .feeds
                    .iter()
                    .filter_map(|(k, f)| {
                        Some(format!(
                            "feed {}: {}",
                            cobox_keys::secret::hex(k),
                            f.fault()?
                        ))
                    })
                    .collect();
                (!faults.is_empty()).then(|| (share.name.clone(), faults))
            })
            .collect()
    }

    /// How many blocks local readers of each share (by name) needed that no connected peer
    /// supplied.
    pub fn unavailable(&self) -> BTreeMap<String, usize> {
        let st = self.state();
        st.shares
            .values()
            .filter_map(|share| {
                let n: usize = share.feeds.values().map(|f| f.unavailable().len()).sum();
                (n > 0).then(|| (share.name.clone(), n))
            })
            .collect()
    }

    /// A member space's roster and the device names its members gave, by identity.
    pub fn roster_of(&self, address: &[u8; 32]) -> Option<(Roster, BTreeMap<[u8; 32], String>)> {
        let st = self.state();
        let share = st.shares.get(address)?;
        let names = share
            .names
            .as_ref()
            .map(|n| n.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let by_identity = share
            .roster
            .members()
            .into_iter()
            .filter_map(|m| Some((m.identity, names.get(&m.log)?.clone())))
            .collect();
        Some((share.roster.clone(), by_identity))
    }

    /// The file that keeps the roster of `address`.
    pub fn roster_file(&self, address: &[u8; 32]) -> Option<std::path::PathBuf> {
        Some(self.state().shares.get(address)?.roster_file.clone())
    }

    /// The member spaces (by name) this device was removed from.
    pub fn removed_here(&self) -> std::collections::BTreeSet<String> {
        self.state()
            .shares
            .values()
            .filter(|s| s.roster.me_out())
            .map(|s| s.name.clone())
            .collect()
    }

    /// What each member space's content takes (by name), as of its last reclaim pass.
    pub fn usage(&self) -> BTreeMap<String, cobox_schema::api::UsageStatus> {
        self.state()
            .shares
            .values()
            .filter_map(|s| Some((s.name.clone(), s.usage.clone()?)))
            .collect()
    }

    /// Reclaim space in every member space that is due, under the retention `policy`
    /// gives it, and measure what its content takes.
    pub async fn reclaim(&self, policy: &super::policy::Policy) {
        let spaces: Vec<([u8; 32], String, Arc<tokio::sync::Mutex<Space>>)> = self
            .state()
            .shares
            .iter()
            .filter_map(|(a, s)| match &s.holder {
                Holder::Member(space) => Some((*a, s.name.clone(), space.clone())),
                Holder::Seed(_) => None,
            })
            .collect();
        for (address, name, space) in spaces {
            let retention = policy.retention(&name);
            let usage = {
                let mut s = space.lock().await;
                if !s.reclaim_due() {
                    continue;
                }
                let now = chrono::Utc::now().timestamp_millis();
                match s.reclaim(retention, now).await {
                    Ok(done) => done.usage.to_status(retention),
                    Err(e) => {
                        tracing::error!(space = %name, error = %e, "cannot reclaim space");
                        s.usage().await.to_status(retention)
                    }
                }
            };
            if let Some(share) = self.state().shares.get_mut(&address) {
                share.usage = Some(usage);
            }
        }
    }

    /// Whether the share named `name` is in step with every connected peer: each holds
    /// all this device holds of every feed, and this device all each announced. False
    /// when no peer is connected.
    pub fn in_sync(&self, name: &str) -> bool {
        let st = self.state();
        let Some(share) = st.shares.values().find(|s| s.name == name) else {
            return false;
        };
        let mut any = false;
        for f in share.feeds.values() {
            let held = f.held();
            for r in f.remotes().values().filter(|r| r.connected) {
                any = true;
                if r.contiguous < held.length || held.contiguous < r.length {
                    return false;
                }
            }
        }
        any
    }
}
