//! Sessions with peer devices: running one over a transport, one session per peer, offering
//! shared feeds and topics to the peers a roster admits, and routing session events.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::link::{Carried, Counted, Via};
use super::{Network, Peer, PeerInfo, State};

/// How long a session with a removed identity stays open to tell it of its removal.
const TELL_FOR: std::time::Duration = std::time::Duration::from_secs(2);
use crate::replicate::{self, Options, SessionEvent};
use crate::space::roster::{self};

/// A running session's owner: dropped, it ends the session and forgets the peer.
struct Owner {
    net: Network,
    id: u64,
    session: tokio::task::AbortHandle,
    handler: tokio::task::AbortHandle,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.session.abort();
        self.handler.abort();
        self.net.state().peers.remove(&self.id);
    }
}

impl Network {
    /// Run a replication session over `transport` (a connection we dialled when
    /// `initiator`; the peer must prove identity `expect` when given). Returns, when the
    /// session ends, who the peer was (if it got that far) and how it ended.
    pub async fn connect<T>(
        &self,
        transport: T,
        via: Via,
        initiator: bool,
        expect: Option<[u8; 32]>,
    ) -> (Option<[u8; 32]>, Result<(), replicate::ReplicateError>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let carried = Arc::new(Carried::default());
        let transport = Counted::new(transport, carried.clone());
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let me = self.clone();
        let options = Options {
            identity: Some(self.inner.identity.clone()),
            authorize: Some(Arc::new(move |who: &[u8; 32]| {
                expect.is_none_or(|k| k == *who) && (me.admits(who) || me.was_removed(who))
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
                    via,
                    since: std::time::SystemTime::now(),
                    carried,
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
        // Whoever runs this (a dialler stopped by a new config) may drop it before the
        // session ends: the session ends with it and the peer is forgotten.
        let _owner = Owner {
            net: self.clone(),
            id,
            session: session.abort_handle(),
            handler: handler.abort_handle(),
        };
        let ended = session.join().await;
        let who = self.state().peers.remove(&id).and_then(|p| p.identity);
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

    /// Whether an authorized session with `identity` is running.
    pub fn is_connected(&self, identity: &[u8; 32]) -> bool {
        self.state()
            .peers
            .values()
            .any(|p| p.identity.as_ref() == Some(identity))
    }

    /// Authorized peers and the addresses open with each, sorted by identity, with the
    /// device name a peer gave in a space log this device reads. A removed identity being
    /// told of its removal is not among them: nothing is served to it.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let st = self.state();
        let served = |who: &[u8; 32]| super::rosters::serves(&st, who);
        let name_of = |who: &[u8; 32]| {
            st.shares.values().find_map(|s| {
                let log = s.members.iter().find(|m| m.identity == *who)?.log;
                let names = s.names.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
                names.get(&log).cloned()
            })
        };
        let mut out: Vec<PeerInfo> = st
            .peers
            .values()
            .filter_map(|p| {
                let identity = p.identity.filter(served)?;
                let (sent, received) = p.carried.get();
                Some(PeerInfo {
                    identity,
                    name: name_of(&identity),
                    spaces: p.spaces.iter().copied().collect(),
                    transport: p.via.transport(),
                    outbound: p.initiator,
                    route: p.via.route(),
                    since: p.since,
                    sent,
                    received,
                })
            })
            .collect();
        out.sort_by_key(|p| p.identity);
        out
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

    async fn on_event(&self, id: u64, event: SessionEvent) {
        match event {
            SessionEvent::Authorized(who) => {
                if !self.admitted_anywhere(&who) {
                    // A removed identity, back: it is only told of its removal (the topics
                    // carry the statements; no feed is offered), then the session ends.
                    self.close_later(id, TELL_FOR);
                }
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

    /// End session `id` after `after`.
    fn close_later(&self, id: u64, after: std::time::Duration) {
        let Some(handle) = self.state().peers.get(&id).map(|p| p.handle.clone()) else {
            return;
        };
        self.inner.rt.spawn(async move {
            tokio::time::sleep(after).await;
            handle.close();
        });
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
            p.since = std::time::SystemTime::now();
        }
        true
    }

    /// Open the topic and offer the feeds of `address` to every authorized peer its
    /// roster admits.
    pub(super) fn offer_to_peers(&self, address: [u8; 32]) {
        let mut st = self.state();
        let State { shares, peers, .. } = &mut *st;
        let Some(share) = shares.get(&address) else {
            return;
        };
        if share.roster.me_out() {
            // Removed from the space: it is not replicated any more (its data stays).
            return;
        }
        let removed = share.roster.removed();
        for p in peers.values_mut() {
            let Some(who) = p.identity else { continue };
            let admitted = share.roster.admits(&who);
            if !admitted && !removed.contains(&who) {
                continue;
            }
            // A removed identity gets the topic only, so it learns of its removal.
            if p.spaces.insert(address) {
                let _ = p.handle.open_topic(address);
            }
            if admitted {
                for f in share.feeds.values() {
                    let _ = p.handle.open(f.clone());
                }
            }
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
