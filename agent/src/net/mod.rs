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
//!
//! By responsibility: [`shares`] (the shared addresses and what status reads of them),
//! [`sessions`] (one session per peer, offering feeds and topics), [`rosters`] (who is
//! admitted, statements taken in and passed on), [`members`] (members' feeds opened, logs
//! merged, health published), [`evict`] (room made in seeds), [`housekeeping`] (the one
//! background task). The state is a std mutex held only for in-memory changes: no file or
//! feed I/O and no `.await` while it is held.

mod evict;
mod health;
pub mod housekeeping;
pub mod iroh;
pub mod link;
mod members;
pub mod policy;
mod rosters;
mod rotation;
pub mod seed;
mod sessions;
mod shares;
pub mod tcp;

pub use rotation::Rotated;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cobox_keys::SigningKeyPair;
use tokio::runtime::Handle;
use tokio::sync::broadcast;

use crate::feed::SharedFeed;
use crate::replicate::{self, Grew, SessionHandle, Traffic};
use crate::space::Space;
use crate::space::roster::{MemberFeeds, Roster};
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
    /// A member space's writers' device names, by log key.
    names: Option<crate::space::DeviceNames>,
    /// Since when each peer has been behind.
    behind_since: BTreeMap<[u8; 32], std::time::SystemTime>,
    /// When this device last published a health report, and what it said.
    published: Option<(std::time::Instant, Vec<health::Sighting>)>,
    /// A member space's usage, as of its last reclaim pass.
    usage: Option<cobox_schema::api::UsageStatus>,
}

#[derive(Debug)]
struct Peer {
    handle: SessionHandle,
    initiator: bool,
    identity: Option<[u8; 32]>,
    /// Addresses whose topic is open with this peer.
    spaces: BTreeSet<[u8; 32]>,
    /// How the session reaches the peer.
    via: link::Via,
    /// When the peer proved its identity (when the session started until then).
    since: std::time::SystemTime,
    /// Bytes the session carried each way.
    carried: Arc<link::Carried>,
}

#[derive(Debug, Default)]
struct State {
    shares: BTreeMap<[u8; 32], Share>,
    peers: BTreeMap<u64, Peer>,
    next: u64,
    /// When the rosters were last read again for an unknown peer.
    reloaded: Option<std::time::Instant>,
    /// Since when key rotations and grants have been due.
    due: rotation::Due,
}

/// Told about a peer that misbehaved: (the peer, what happened).
pub type Incident = Arc<dyn Fn(String, String) + Send + Sync>;

struct Inner {
    identity: SigningKeyPair,
    rt: Handle,
    state: Mutex<State>,
    grew: broadcast::Sender<Grew>,
    incident: Mutex<Option<Incident>>,
    /// Bumped when a roster learns something: dialers waiting out a refusal try again.
    rosters_changed: tokio::sync::watch::Sender<u64>,
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
    /// The device name it gave in a space log both share, when known.
    pub name: Option<String>,
    pub spaces: Vec<[u8; 32]>,
    /// `tcp` or `iroh`.
    pub transport: &'static str,
    /// Whether this device dialled.
    pub outbound: bool,
    /// The address (tcp), or the path iroh uses now.
    pub route: String,
    /// When the peer proved its identity on this session.
    pub since: std::time::SystemTime,
    /// Bytes sent and received on this session.
    pub sent: u64,
    pub received: u64,
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
                rosters_changed: tokio::sync::watch::channel(0).0,
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

    /// Changes whenever a roster learns something (someone may be admitted now).
    pub fn watch_rosters(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.rosters_changed.subscribe()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
