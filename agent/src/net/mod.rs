//! The device on the network: one replication session per peer device, carrying every
//! space and seed both may share.
//!
//! - A session proves both identities first ([`crate::replicate::identity`]); a peer that
//!   no roster of ours admits is refused before any channel opens.
//! - Per shared space, a topic channel on the space's address (its capability proves the
//!   peer knows the address; knowing the discovery key is not enough) carries roster
//!   statements both ways; new members' feeds are opened and offered to every session
//!   that shares the space, so they reach everyone, seeds included.
//! - Two sessions with one peer (both dialled at once): the one dialled by the lower
//!   identity stays, on both sides; when the same side dialled both, the newer stays.
//! - Transports hand connections in through [`Network::connect`]: plain TCP ([`tcp`]).

mod health;
pub mod housekeeping;
pub mod iroh;
pub mod policy;
pub mod seed;
pub mod tcp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cobox_keys::SigningKeyPair;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc};

use crate::feed::SharedFeed;
use crate::replicate::{self, Grew, Options, SessionEvent, SessionHandle, Traffic};
use crate::space::Space;
use crate::space::message::Message;
use crate::space::roster::{self, MemberFeeds, Roster, Statement};
use seed::SeedStore;

/// What this device does with a shared address.
#[derive(Clone)]
pub enum Holder {
    /// A space this device is a member of: feeds come from the space, new logs merge
    /// into its drive.
    Member(Arc<tokio::sync::Mutex<Space>>),
    /// A seed: feeds without keys, stored and served.
    Seed(Arc<tokio::sync::Mutex<SeedStore>>),
}

impl std::fmt::Debug for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Holder::Member(_) => "Member",
            Holder::Seed(_) => "Seed",
        })
    }
}

/// One shared address.
#[derive(Debug)]
struct Share {
    name: String,
    holder: Holder,
    roster: Roster,
    roster_file: PathBuf,
    /// The roster file's length when last read (it is only ever appended to).
    roster_read: u64,
    /// Feeds offered to peers, by key.
    feeds: BTreeMap<[u8; 32], Arc<SharedFeed>>,
    /// Members whose feeds are open here.
    members: BTreeSet<MemberFeeds>,
    /// The caps, window and quota every feed of it follows.
    traffic: Arc<Traffic>,
    /// A member space's health reports from the log.
    health: Option<crate::space::HealthReports>,
    /// Since when each peer has been behind.
    behind_since: BTreeMap<[u8; 32], std::time::SystemTime>,
    /// When this device last published a health report, and what it said.
    published: Option<(std::time::Instant, Vec<health::Sighting>)>,
}

#[derive(Debug)]
struct Peer {
    handle: SessionHandle,
    initiator: bool,
    identity: Option<[u8; 32]>,
    /// Addresses whose topic is open with this peer.
    spaces: BTreeSet<[u8; 32]>,
}

#[derive(Debug, Default)]
struct State {
    shares: BTreeMap<[u8; 32], Share>,
    peers: BTreeMap<u64, Peer>,
    next: u64,
    /// When the rosters were last read again for an unknown peer.
    reloaded: Option<std::time::Instant>,
}

/// Told about a peer that misbehaved: (the peer, what happened).
pub type Incident = Arc<dyn Fn(String, String) + Send + Sync>;

struct Inner {
    identity: SigningKeyPair,
    rt: Handle,
    state: Mutex<State>,
    grew: broadcast::Sender<Grew>,
    incident: Mutex<Option<Incident>>,
}

/// The device's replication with its peers.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("identity", &self.inner.identity.public)
            .finish_non_exhaustive()
    }
}

/// A peer's view, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub identity: [u8; 32],
    pub spaces: Vec<[u8; 32]>,
}

impl Network {
    /// Start the network side of a device with identity `identity` on runtime `rt`.
    pub fn new(rt: Handle, identity: SigningKeyPair) -> Network {
        let (grew, _) = broadcast::channel(4096);
        let net = Network {
            inner: Arc::new(Inner {
                identity,
                rt,
                state: Mutex::new(State::default()),
                grew,
                incident: Mutex::new(None),
            }),
        };
        let me = net.clone();
        let mut rx = net.inner.grew.subscribe();
        net.inner.rt.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(g) => me.merge_grown_log(g.key).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => me.merge_all().await,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        net
    }

    pub fn identity(&self) -> [u8; 32] {
        self.inner.identity.public.0
    }

    /// Report peers that misbehave to `incident` (replacing any earlier one).
    pub fn on_incident(&self, incident: Incident) {
        *self
            .inner
            .incident
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(incident);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit `seeders` as seeders of the space shared at `address` (its declared list
    /// changed while it was open): the statements are kept, passed on to the peers sharing
    /// it, and in force for the next session at once.
    pub async fn admit_seeders(&self, address: [u8; 32], seeders: &[[u8; 32]]) {
        let me = &self.inner.identity;
        let statements = seeders
            .iter()
            .map(|s| Statement::allow(me, &address, roster::Role::Seeder, *s))
            .collect();
        self.learn(address, statements, None, true).await;
    }

    /// Share a space this device is a member of. `seeders` are the identities the config
    /// declares as its seeders (admitted by this device).
    pub async fn add_space(
        &self,
        name: &str,
        space: Arc<tokio::sync::Mutex<Space>>,
        seeders: &[[u8; 32]],
        traffic: Arc<Traffic>,
    ) -> std::io::Result<()> {
        let (address, log, content, roster_file, own, health) = {
            let s = space.lock().await;
            let own = s.feeds().open_feeds();
            (
                s.keys().address.0,
                s.log_key(),
                s.content_key(),
                s.layout().roster(),
                own,
                s.health(),
            )
        };
        let me = &self.inner.identity;
        let mut roster = Roster::member(address, me.public.0);
        roster.load(&roster_file)?;
        let mut mine = vec![Statement::member(me, &address, log, content)];
        for s in seeders {
            mine.push(Statement::allow(me, &address, roster::Role::Seeder, *s));
        }
        roster.add_and_keep(&roster_file, mine)?;
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
            behind_since: BTreeMap::new(),
            published: None,
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
            behind_since: BTreeMap::new(),
            published: None,
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

    /// Publish, in each member space's log, what this device sees of the other devices'
    /// copies when a report is due ([`health::report_due`]), so members not connected to a
    /// seed still see its state.
    pub async fn publish_health(&self) {
        let due: Vec<(Arc<tokio::sync::Mutex<Space>>, Message)> = {
            let mut st = self.state();
            st.shares
                .values_mut()
                .filter_map(|share| match share.holder.clone() {
                    Holder::Member(space) => Some((space, health::report_due(share)?)),
                    Holder::Seed(_) => None,
                })
                .collect()
        };
        for (space, report) in due {
            let mut s = space.lock().await;
            if let Err(e) = s.append(&[report]).await {
                tracing::error!(space = %s.name(), error = %e, "cannot publish a health report");
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

    /// Make room in seed `name`: evict the oldest blocks (the lowest) of the content
    /// feed holding the most, feed after feed, until about `bytes` are freed. Logs are
    /// kept: they are small and without them nothing else can be read. Returns the bytes
    /// freed (estimated from the blocks' average size).
    pub async fn evict(&self, name: &str, bytes: u64) -> u64 {
        let feeds: Vec<Arc<SharedFeed>> = {
            let st = self.state();
            let Some(share) = st
                .shares
                .values()
                .find(|s| s.name == name && matches!(s.holder, Holder::Seed(_)))
            else {
                return 0;
            };
            let logs: BTreeSet<[u8; 32]> = share.members.iter().map(|m| m.log).collect();
            share
                .feeds
                .values()
                .filter(|f| !logs.contains(&f.key()))
                .cloned()
                .collect()
        };
        let mut freed = 0;
        for _ in 0..feeds.len() {
            if freed >= bytes {
                break;
            }
            // The feed with the most bytes held above its floor.
            let held_bytes = |f: &Arc<SharedFeed>| {
                let h = f.held();
                (h.bytes as u128 * h.run.saturating_sub(h.floor) as u128)
                    .checked_div(h.length as u128)
                    .unwrap_or(0) as u64
            };
            let Some(f) = feeds.iter().max_by_key(|f| held_bytes(f)).cloned() else {
                break;
            };
            if held_bytes(&f) == 0 {
                break;
            }
            let mut feed = f.lock().await;
            let (floor, length) = (feed.floor(), feed.len());
            let average = feed.byte_len().checked_div(length).unwrap_or(1).max(1);
            let end = floor
                .saturating_add((bytes - freed).div_ceil(average))
                .min(length);
            match feed.evict_below(end).await {
                Ok(()) => {
                    freed += (end - floor) * average;
                    f.publish(&feed);
                    tracing::info!(seed = name, feed = %cobox_keys::secret::hex(&f.key()), below = end, "evicted the oldest blocks");
                }
                Err(e) => {
                    tracing::error!(seed = name, error = %e, "cannot evict blocks");
                    break;
                }
            }
        }
        freed
    }

    /// Authorized peers and the addresses open with each, sorted by identity.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .state()
            .peers
            .values()
            .filter_map(|p| {
                Some(PeerInfo {
                    identity: p.identity?,
                    spaces: p.spaces.iter().copied().collect(),
                })
            })
            .collect();
        out.sort_by_key(|p| p.identity);
        out
    }

    /// Read the roster files again (an invite written by another path admits someone),
    /// pass what is new on to peers and act on it.
    pub async fn reload_rosters(&self) {
        // Only files that grew since they were read (a stat, not a read, per address).
        let files: Vec<([u8; 32], PathBuf)> = self
            .state()
            .shares
            .iter_mut()
            .filter_map(|(a, s)| {
                let len = file_len(&s.roster_file);
                (len != s.roster_read).then(|| {
                    s.roster_read = len;
                    (*a, s.roster_file.clone())
                })
            })
            .collect();
        for (address, file) in files {
            let mut on_disk = Roster::seed(address);
            if let Err(e) = on_disk.load(&file) {
                tracing::warn!(file = %file.display(), error = %e, "cannot read a roster");
                continue;
            }
            self.learn(
                address,
                on_disk.statements().cloned().collect(),
                None,
                false,
            )
            .await;
        }
    }

    /// Whether an authorized session with `identity` is running.
    pub fn is_connected(&self, identity: &[u8; 32]) -> bool {
        self.state()
            .peers
            .values()
            .any(|p| p.identity.as_ref() == Some(identity))
    }

    /// Run a replication session over `transport` (a connection we dialled when
    /// `initiator`; the peer must prove identity `expect` when given). Returns, when the
    /// session ends, who the peer was (if it got that far) and how it ended.
    pub async fn connect<T>(
        &self,
        transport: T,
        initiator: bool,
        expect: Option<[u8; 32]>,
    ) -> (Option<[u8; 32]>, Result<(), replicate::ReplicateError>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let me = self.clone();
        let options = Options {
            identity: Some(self.inner.identity.clone()),
            authorize: Some(Arc::new(move |who: &[u8; 32]| {
                expect.is_none_or(|k| k == *who) && me.admits(who)
            })),
            events: Some(events_tx),
            grew: Some(self.inner.grew.clone()),
            ..Options::default()
        };
        let session = replicate::spawn(transport, initiator, [], options);
        let id = {
            let mut st = self.state();
            st.next += 1;
            let id = st.next;
            st.peers.insert(
                id,
                Peer {
                    handle: session.handle(),
                    initiator,
                    identity: None,
                    spaces: BTreeSet::new(),
                },
            );
            id
        };
        let me = self.clone();
        let handler = self.inner.rt.spawn(async move {
            while let Some(e) = events.recv().await {
                me.on_event(id, e).await;
            }
        });
        let ended = session.join().await;
        let who = self.state().peers.remove(&id).and_then(|p| p.identity);
        handler.abort();
        if let Err(e) = &ended
            && misbehaved(e)
        {
            let report = self
                .inner
                .incident
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(report) = report {
                let peer =
                    who.map_or_else(|| "unauthenticated".into(), |k| cobox_keys::secret::hex(&k));
                report(format!("peer {peer}"), e.to_string());
            }
        }
        (who, ended)
    }

    /// The identities admitted to some shared address that have no session: whom to dial
    /// when a transport can find peers by identity. Sorted.
    pub fn wanted_peers(&self) -> Vec<[u8; 32]> {
        let me = self.identity();
        let st = self.state();
        let mut wanted: BTreeSet<[u8; 32]> = st
            .shares
            .values()
            .flat_map(|s| s.roster.allowed().into_keys())
            .collect();
        wanted.remove(&me);
        for p in st.peers.values() {
            if let Some(who) = p.identity {
                wanted.remove(&who);
            }
        }
        wanted.into_iter().collect()
    }

    /// Whether any shared address admits `who`. An unknown identity makes the rosters be
    /// read again first (at most once a second), in case an invite just admitted it.
    pub fn admits(&self, who: &[u8; 32]) -> bool {
        if *who == self.identity() {
            return false;
        }
        let mut st = self.state();
        if st.shares.values().any(|s| s.roster.admits(who)) {
            return true;
        }
        let now = std::time::Instant::now();
        if st
            .reloaded
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        st.reloaded = Some(now);
        // The roster files that grew since they were read (an invite just created here
        // admits its invitee) decide now, so the invitee's first session is not refused;
        // the full reload (passing statements on, opening new members' feeds) follows.
        // They are read with the state unlocked.
        let rosters: Vec<(Roster, PathBuf, u64)> = st
            .shares
            .values()
            .map(|s| (s.roster.clone(), s.roster_file.clone(), s.roster_read))
            .collect();
        drop(st);
        let admitted = rosters.into_iter().any(|(mut on_disk, file, read)| {
            file_len(&file) != read && on_disk.load(&file).is_ok() && on_disk.admits(who)
        });
        let me = self.clone();
        self.inner
            .rt
            .spawn(async move { me.reload_rosters().await });
        admitted
    }

    async fn on_event(&self, id: u64, event: SessionEvent) {
        match event {
            SessionEvent::Authorized(who) => {
                if self.keep_one_session(id, who) {
                    let addresses: Vec<[u8; 32]> = self.state().shares.keys().copied().collect();
                    for a in addresses {
                        self.offer_to_peers(a);
                    }
                }
            }
            SessionEvent::TopicOpened(address) => {
                let st = self.state();
                let (Some(share), Some(peer)) = (st.shares.get(&address), st.peers.get(&id)) else {
                    return;
                };
                let all = roster::encode_all(share.roster.statements());
                let _ = peer.handle.send(address, all);
            }
            SessionEvent::Topic { topic, message } => {
                let statements = match roster::decode_all(&message) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(peer = %self.peer_name(id), error = %e, "ignoring a malformed roster message");
                        return;
                    }
                };
                self.learn(topic, statements, Some(id), true).await;
            }
        }
    }

    fn peer_name(&self, id: u64) -> String {
        self.state()
            .peers
            .get(&id)
            .and_then(|p| p.identity)
            .map_or_else(|| "unknown".into(), |k| cobox_keys::secret::hex(&k))
    }

    /// Record `who` on session `id`, ending the surplus session if there are two with the
    /// same peer. Returns whether `id` stays.
    fn keep_one_session(&self, id: u64, who: [u8; 32]) -> bool {
        let me = self.identity();
        let mut st = self.state();
        let dialer = |p: &Peer| if p.initiator { me } else { who };
        let Some(this) = st.peers.get(&id) else {
            return false;
        };
        let this_dialer = dialer(this);
        let other = st
            .peers
            .iter()
            .find(|(k, p)| **k != id && p.identity == Some(who))
            .map(|(k, p)| (*k, dialer(p)));
        if let Some((other, other_dialer)) = other {
            // Keep the session dialled by the lower identity (both sides agree); on a tie
            // (the same side dialled again) keep the new one: the old one is likely dead.
            let keep_this = this_dialer <= other_dialer;
            let loser = if keep_this { other } else { id };
            if let Some(p) = st.peers.get(&loser) {
                p.handle.close();
            }
            if !keep_this {
                return false;
            }
        }
        if let Some(p) = st.peers.get_mut(&id) {
            p.identity = Some(who);
        }
        true
    }

    /// Open the topic and offer the feeds of `address` to every authorized peer its
    /// roster admits.
    fn offer_to_peers(&self, address: [u8; 32]) {
        let mut st = self.state();
        let State { shares, peers, .. } = &mut *st;
        let Some(share) = shares.get(&address) else {
            return;
        };
        for p in peers.values_mut() {
            let Some(who) = p.identity else { continue };
            if !share.roster.admits(&who) {
                continue;
            }
            if p.spaces.insert(address) {
                let _ = p.handle.open_topic(address);
            }
            for f in share.feeds.values() {
                let _ = p.handle.open(f.clone());
            }
        }
    }

    /// Take in statements about `address` (from session `from`, or local), keep the new
    /// ones (in the roster file too, unless they come from it), pass them on to the other
    /// peers sharing it, and open new members' feeds.
    async fn learn(
        &self,
        address: [u8; 32],
        statements: Vec<Statement>,
        from: Option<u64>,
        persist: bool,
    ) {
        // The roster changes in memory under the lock; the file is appended after it is
        // released (no file I/O while the network's state is locked).
        let (new, file, name) = {
            let mut st = self.state();
            let State { shares, peers, .. } = &mut *st;
            let Some(share) = shares.get_mut(&address) else {
                return;
            };
            let new = share.roster.add_new(statements);
            if !new.is_empty() {
                let bytes = roster::encode_all(&new);
                for (k, p) in peers.iter() {
                    if Some(*k) != from && p.spaces.contains(&address) {
                        let _ = p.handle.send(address, bytes.clone());
                    }
                }
            }
            (new, share.roster_file.clone(), share.name.clone())
        };
        if persist && let Err(e) = roster::keep(&file, &new) {
            tracing::error!(space = %name, error = %e, "cannot keep roster statements");
        }
        if !new.is_empty() {
            self.open_members(address).await;
            self.offer_to_peers(address);
        }
    }

    /// Open the feeds of members not open yet, and merge their logs (members only).
    async fn open_members(&self, address: [u8; 32]) {
        let (holder, fresh) = {
            let st = self.state();
            let Some(share) = st.shares.get(&address) else {
                return;
            };
            let fresh: Vec<MemberFeeds> = share
                .roster
                .members()
                .into_iter()
                .filter(|m| !share.members.contains(m))
                .collect();
            (share.holder.clone(), fresh)
        };
        for m in fresh {
            let opened = match &holder {
                Holder::Member(space) => {
                    let mut s = space.lock().await;
                    let mut feeds = Vec::new();
                    for key in [m.log, m.content] {
                        feeds.push(s.feeds_mut().replica(&key).await);
                    }
                    let merged = if m.log == s.log_key() {
                        Ok(())
                    } else {
                        s.add_log(m.log).await.map_err(|e| e.to_string())
                    };
                    if let Err(e) = merged {
                        tracing::error!(space = %s.name(), error = %e, "cannot merge a member's log");
                    }
                    feeds
                }
                Holder::Seed(store) => {
                    let mut s = store.lock().await;
                    let mut feeds = Vec::new();
                    for key in [m.log, m.content] {
                        feeds.push(s.replica(&key).await);
                    }
                    feeds
                }
            };
            let mut st = self.state();
            let Some(share) = st.shares.get_mut(&address) else {
                return;
            };
            let mut ok = true;
            for f in opened {
                match f {
                    Ok(f) => {
                        f.set_traffic(share.traffic.clone());
                        share.feeds.insert(f.key(), f);
                    }
                    Err(e) => {
                        ok = false;
                        tracing::error!(space = %share.name, error = %e, "cannot open a member's feed");
                    }
                }
            }
            if ok {
                share.members.insert(m);
            }
        }
    }

    /// A feed grew through replication: if it is a member space's log, merge it.
    async fn merge_grown_log(&self, key: [u8; 32]) {
        let space = {
            let st = self.state();
            st.shares.values().find_map(|s| match &s.holder {
                Holder::Member(space) if s.members.iter().any(|m| m.log == key) => {
                    Some(space.clone())
                }
                _ => None,
            })
        };
        if let Some(space) = space {
            let mut s = space.lock().await;
            if let Err(e) = s.refresh().await {
                tracing::error!(space = %s.name(), error = %e, "cannot merge replicated log entries");
            }
        }
    }

    async fn merge_all(&self) {
        let spaces: Vec<_> = self
            .state()
            .shares
            .values()
            .filter_map(|s| match &s.holder {
                Holder::Member(space) => Some(space.clone()),
                Holder::Seed(_) => None,
            })
            .collect();
        for space in spaces {
            let _ = space.lock().await.refresh().await;
        }
    }
}

/// Whether a session ended through the peer's fault (not a network failure or a refusal).
fn misbehaved(e: &replicate::ReplicateError) -> bool {
    use replicate::ReplicateError as E;
    matches!(
        e,
        E::InvalidData { .. } | E::Unexpected { .. } | E::BadIdentity { .. } | E::Crashed { .. }
    )
}

/// The length of `file`, 0 when it does not exist.
fn file_len(file: &std::path::Path) -> u64 {
    std::fs::metadata(file).map_or(0, |m| m.len())
}

/// Log how a session with the peer at `address` (or over a transport) ended.
pub(crate) fn log_end(
    address: &str,
    who: Option<[u8; 32]>,
    ended: Result<(), replicate::ReplicateError>,
) {
    let peer = who.map_or_else(|| "unauthenticated".into(), |k| cobox_keys::secret::hex(&k));
    match ended {
        Ok(()) => tracing::info!(%address, %peer, "session ended"),
        Err(e) => tracing::warn!(%address, %peer, error = %e, "session failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicate::ReplicateError as E;

    #[test]
    fn only_a_peers_own_faults_count_as_misbehaviour() {
        let peer = || "p".to_string();
        assert!(misbehaved(&E::InvalidData {
            feed: "f".into(),
            peer: peer()
        }));
        assert!(misbehaved(&E::BadIdentity { peer: peer() }));
        assert!(
            !misbehaved(&E::Refused { peer: peer() }),
            "refusing is ours"
        );
        assert!(!misbehaved(&E::Ended { peer: peer() }));
        assert!(!misbehaved(&E::Protocol {
            peer: peer(),
            source: std::io::Error::other("reset")
        }));
    }
}
