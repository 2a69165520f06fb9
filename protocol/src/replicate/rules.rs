//! The rules of one feed's replication on one channel, without sockets, clocks or tasks:
//! what to answer and when (deferred while the window is closed), what to ask for (readers'
//! blocks first, within the quota's room), which answers to accept, when to commit (by
//! count, bytes, age or an idle channel) and what to announce after. It is driven by events
//! with the time given; the channel task ([`super::channel`]) feeds it messages and watched
//! changes, sends its outbox under the caps and carries out its [`Effect`]s.

use std::sync::Arc;
use std::time::Duration;

use hypercore_protocol::Message;
use hypercore_protocol::schema::{Data, Extension, NoData, Range, Request, Synchronize};
use hypercore_schema::{Proof, RequestBlock, RequestUpgrade};
use tokio::time::Instant;

use super::error::{ReplicateError, hex};
use super::peer::{Limits, Local, Peer, Pending};
use super::traffic::Traffic;
use super::wire::{on_disk, request, short, summary, wire_size};
use crate::feed::{Feed, FeedError, Held, Statement, cleared};

/// Received blocks are made durable when this many wait, or this many bytes, or this long
/// after the first, or when nothing more is in flight.
pub const COMMIT_BLOCKS: u64 = 512;
pub const COMMIT_BYTES: u64 = 16 * 1024 * 1024;
pub const COMMIT_AFTER: Duration = Duration::from_millis(200);
/// Requests kept for later while the window is closed; beyond, they are refused.
pub const DEFERRED: usize = 256;

/// What the channel task must do besides sending the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Blocks were made durable: publish the feed (under the same lock); `grew` when what
    /// is held changed since last reported.
    Committed { held: Held, grew: bool },
    /// What this device holds cannot be read: record it on the feed.
    Fault(String),
    /// A newer statement of the blocks the writer cleared was kept: clear them here if
    /// the feed's holder leaves that to replication, and publish.
    Cleared,
}

#[derive(Debug, Default)]
struct Uncommitted {
    blocks: u64,
    bytes: u64,
    any: bool,
    since: Option<Instant>,
}

/// The state of one feed's replication on one channel.
#[derive(Debug)]
pub struct Rules {
    key: [u8; 32],
    peer_name: String,
    limits: Limits,
    peer: Peer,
    announced: Held,
    reported: Held,
    uncommitted: Uncommitted,
    outbox: Vec<Message>,
    effects: Vec<Effect>,
    stop: bool,
    traffic: Arc<Traffic>,
    /// The window is open: requests are sent and answered.
    open: bool,
    /// The remote's requests that arrived while the window was closed.
    deferred: Vec<Request>,
    /// Block bytes and blocks received and not yet paid to the download caps.
    owed: (u64, u64),
    /// The number of the cleared-blocks statement last sent (0: none).
    sent_cleared: u64,
}

impl Rules {
    /// The rules for feed `key` with the peer named `peer_name`, which holds `held` now,
    /// under `traffic` whose window is `open`. The first synchronize (and the range held)
    /// waits in the outbox.
    pub fn new(
        key: [u8; 32],
        peer_name: String,
        limits: Limits,
        traffic: Arc<Traffic>,
        held: Held,
        open: bool,
    ) -> Rules {
        let mut r = Rules {
            key,
            peer_name,
            limits,
            peer: Peer::new(limits),
            announced: held,
            reported: held,
            uncommitted: Uncommitted::default(),
            outbox: Vec::new(),
            effects: Vec::new(),
            stop: false,
            traffic,
            open,
            deferred: Vec::new(),
            owed: (0, 0),
            sent_cleared: 0,
        };
        r.outbox.push(r.sync_message(held));
        if held.run > held.floor {
            r.outbox.push(Message::Range(Range {
                drop: false,
                start: held.floor,
                length: held.run - held.floor,
            }));
        }
        r
    }

    /// Tell the remote the writer's cleared-blocks statement number `seq` (encoded in
    /// `statement`) unless it was told already. Sent before the ranges held, which count
    /// cleared blocks as had.
    pub fn announce_cleared(&mut self, seq: u64, statement: Option<&[u8]>) {
        let Some(bytes) = statement.filter(|_| seq > self.sent_cleared) else {
            return;
        };
        self.sent_cleared = seq;
        let m = Message::Extension(Extension {
            name: cleared::EXTENSION.to_string(),
            message: bytes.to_vec(),
        });
        // Ahead of any range announcement waiting in the outbox.
        let at = self
            .outbox
            .iter()
            .position(|m| matches!(m, Message::Range(_)))
            .unwrap_or(self.outbox.len());
        self.outbox.insert(at, m);
    }

    /// The messages to send, in order.
    pub fn take_outbox(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    /// What to carry out, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Block bytes and blocks received since last taken, to pay to the download caps.
    pub fn take_owed(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.owed)
    }

    /// The remote closed the channel.
    pub fn stopped(&self) -> bool {
        self.stop
    }

    /// The remote's length and the blocks it holds from the start.
    pub fn remote(&self) -> (u64, u64) {
        (self.peer.remote.length, self.peer.remote.has.prefix())
    }

    /// When uncommitted blocks must be committed, if any wait.
    pub fn deadline(&self) -> Option<Instant> {
        self.uncommitted.since.map(|t| t + COMMIT_AFTER)
    }

    /// The requests of the remote kept while the window is closed.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.peer.in_flight()
    }

    fn feed_err(&self, source: FeedError) -> ReplicateError {
        ReplicateError::Feed {
            feed: hex(&self.key),
            peer: self.peer_name.clone(),
            source,
        }
    }

    fn invalid(&self) -> ReplicateError {
        ReplicateError::InvalidData {
            feed: hex(&self.key),
            peer: self.peer_name.clone(),
        }
    }

    fn unexpected(&self, request: u64) -> ReplicateError {
        ReplicateError::Unexpected {
            feed: hex(&self.key),
            peer: self.peer_name.clone(),
            request,
        }
    }

    fn sync_message(&self, held: Held) -> Message {
        Message::Synchronize(Synchronize {
            fork: 0,
            length: held.length,
            remote_length: self.peer.remote.length,
            downloading: true,
            uploading: true,
            can_upgrade: held.length > 0,
        })
    }

    /// What is published changed (a commit here or elsewhere, a local append, an
    /// eviction): tell the remote what became durable since it was last told.
    pub fn on_held(&mut self, now: Held) {
        if now.length > self.announced.length {
            self.outbox.push(self.sync_message(now));
        }
        if now.run > self.announced.run {
            let start = self.announced.run.max(now.floor);
            self.outbox.push(Message::Range(Range {
                drop: false,
                start,
                length: now.run - start,
            }));
        }
        if now.floor > self.announced.floor {
            // Evicted: the remote must not count on those blocks here any more.
            self.outbox.push(Message::Range(Range {
                drop: true,
                start: self.announced.floor,
                length: now.floor - self.announced.floor,
            }));
        }
        self.announced = Held {
            length: self.announced.length.max(now.length),
            contiguous: self.announced.contiguous.max(now.contiguous),
            bytes: self.announced.bytes.max(now.bytes),
            floor: self.announced.floor.max(now.floor),
            run: self.announced.run.max(now.run),
            cleared: self.announced.cleared.max(now.cleared),
        };
    }

    /// Messages from the remote arrived at `now`; `held` is what is published, `readers`
    /// the blocks local readers wait for. Handled in order (up to a close), then what is
    /// due is committed and what can be asked for is asked.
    pub fn on_messages(
        &mut self,
        feed: &mut Feed,
        held: Held,
        readers: &[u64],
        batch: Vec<Message>,
        now: Instant,
    ) -> Result<(), ReplicateError> {
        for m in batch {
            self.on_message(feed, held, m, now)?;
            if self.stop {
                break;
            }
        }
        let u = &self.uncommitted;
        if u.any
            && (self.peer.in_flight() == 0
                || u.blocks >= COMMIT_BLOCKS
                || u.bytes >= COMMIT_BYTES
                || u.since.is_some_and(|t| now >= t + COMMIT_AFTER))
        {
            self.commit(feed)?;
        }
        if !self.stop {
            self.schedule(feed, readers)?;
        }
        Ok(())
    }

    /// The window opened or closed. Opening answers what the remote asked meanwhile.
    pub fn on_window(
        &mut self,
        feed: &mut Feed,
        held: Held,
        readers: &[u64],
        open: bool,
    ) -> Result<(), ReplicateError> {
        self.open = open;
        if open {
            for r in std::mem::take(&mut self.deferred) {
                let answer = self.answer(feed, held, r);
                self.outbox.push(answer);
            }
        }
        self.commit(feed)?;
        self.schedule(feed, readers)
    }

    /// Something may be asked for now: readers wait for other blocks, or room appeared.
    pub fn on_wake(&mut self, feed: &mut Feed, readers: &[u64]) -> Result<(), ReplicateError> {
        self.schedule(feed, readers)
    }

    /// The commit deadline passed.
    pub fn on_deadline(&mut self, feed: &mut Feed, readers: &[u64]) -> Result<(), ReplicateError> {
        self.commit(feed)?;
        self.schedule(feed, readers)
    }

    /// The channel ends: what arrived is committed, and the room reserved for requests
    /// that will never be answered goes back to the quota.
    pub fn finish(&mut self, feed: Option<&mut Feed>) -> Result<(), ReplicateError> {
        if let Some(q) = &self.traffic.quota {
            let blocks = self.peer.in_flight() as u64;
            q.release(self.peer.in_flight_bytes() + blocks * on_disk(0));
        }
        self.peer = Peer::new(self.limits);
        match feed {
            Some(feed) => self.commit(feed),
            None => Ok(()),
        }
    }

    fn on_message(
        &mut self,
        feed: &mut Feed,
        held: Held,
        m: Message,
        now: Instant,
    ) -> Result<(), ReplicateError> {
        tracing::trace!(feed = %short(&self.key), msg = %summary(&m), "received");
        match m {
            // The first synchronize is answered so the remote knows we heard it.
            Message::Synchronize(s) if self.peer.on_sync(&s) => {
                self.outbox.push(self.sync_message(held));
            }
            Message::Synchronize(_) => {}
            Message::Range(r) => self.peer.on_range(&r),
            Message::Bitfield(b) => self.peer.on_bitfield(&b),
            Message::Request(r) if !self.open && self.deferred.len() < DEFERRED => {
                self.deferred.push(r);
            }
            Message::Request(r) if !self.open => {
                self.outbox.push(Message::NoData(NoData { request: r.id }));
            }
            Message::Request(r) => {
                let answer = self.answer(feed, held, r);
                self.outbox.push(answer);
            }
            Message::NoData(n) => {
                if let (Some(Pending::Block { bytes, .. }), Some(q)) =
                    (self.peer.refused(n.request), &self.traffic.quota)
                {
                    q.release(on_disk(bytes));
                }
            }
            Message::Data(d) => self.on_data(feed, d, now)?,
            Message::Extension(e) if e.name == cleared::EXTENSION => {
                // Only the writer can sign one: anything else is a peer misbehaving.
                let statement =
                    Statement::decode(&self.key, &e.message).map_err(|_| self.invalid())?;
                // What the remote stated is known there: not sent back.
                self.sent_cleared = self.sent_cleared.max(statement.seq);
                if feed.take_cleared(statement).map_err(|e| self.feed_err(e))? {
                    self.effects.push(Effect::Cleared);
                }
            }
            Message::Close(_) => self.stop = true,
            _ => {}
        }
        Ok(())
    }

    /// A proof for the remote's request, from what is durable (`held`) only.
    fn answer(&mut self, feed: &mut Feed, held: Held, r: Request) -> Message {
        let no = Message::NoData(NoData { request: r.id });
        let core = feed.core_mut();
        if r.seek.is_some() || r.fork != core.fork() {
            return no;
        }
        if r.upgrade.is_some() && core.len() != held.length {
            // Proving an upgrade proves the head: not before the head is durable.
            return no;
        }
        if let Some(b) = r.block.as_ref().or(r.hash.as_ref())
            && b.index >= held.length
        {
            return no;
        }
        match core.create_proof(r.block, r.hash, None, r.upgrade) {
            Ok(Some(p)) => Message::Data(Data {
                request: r.id,
                fork: p.fork,
                block: p.block,
                hash: p.hash,
                seek: None,
                upgrade: p.upgrade,
            }),
            Ok(None) | Err(cobox_feed::CoreError::Proof { .. }) => no,
            Err(e) => {
                // What this device holds cannot be read: not the peer's doing.
                self.effects.push(Effect::Fault(e.to_string()));
                no
            }
        }
    }

    fn on_data(&mut self, feed: &mut Feed, d: Data, now: Instant) -> Result<(), ReplicateError> {
        let Some(pending) = self.peer.answered(d.request) else {
            // Not asked for (or asked and already cancelled): ignored, never stored.
            return Ok(());
        };
        let length = feed.len();
        match pending {
            Pending::Upgrade { start, .. } => {
                let Some(up) = &d.upgrade else {
                    return Err(self.unexpected(d.request));
                };
                if d.block.is_some() || d.hash.is_some() || up.start != start {
                    return Err(self.unexpected(d.request));
                }
                if length != start || up.start + up.length <= length {
                    // The feed moved on meanwhile (another peer upgraded it): stale.
                    return Ok(());
                }
            }
            Pending::Block { index, bytes } => {
                let quota = self.traffic.quota.clone();
                let Some(b) = &d.block else {
                    return Err(self.unexpected(d.request));
                };
                if b.index != index || d.upgrade.is_some() || d.hash.is_some() {
                    return Err(self.unexpected(d.request));
                }
                if feed.core_mut().has(index) {
                    if let Some(q) = quota {
                        q.release(on_disk(bytes));
                    }
                    return Ok(());
                }
                let size = b.value.len() as u64;
                self.uncommitted.blocks += 1;
                self.uncommitted.bytes += size;
                self.owed.0 += wire_size(&d);
                self.owed.1 += 1;
                self.traffic.received(wire_size(&d));
                if let Some(q) = quota {
                    q.stored(on_disk(bytes), on_disk(size));
                }
            }
        }
        let proof = Proof {
            fork: d.fork,
            block: d.block,
            hash: None,
            seek: None,
            upgrade: d.upgrade,
        };
        match feed.core_mut().verify_and_apply_proof(&proof) {
            Ok(()) => {}
            Err(cobox_feed::CoreError::Proof { .. }) => return Err(self.invalid()),
            Err(e) => return Err(self.feed_err(FeedError::Core(e))),
        }
        self.uncommitted.any = true;
        self.uncommitted.since.get_or_insert(now);
        Ok(())
    }

    /// Make what arrived durable and say what to publish and report.
    fn commit(&mut self, feed: &mut Feed) -> Result<(), ReplicateError> {
        if !self.uncommitted.any {
            return Ok(());
        }
        feed.commit().map_err(|e| self.feed_err(e))?;
        self.uncommitted = Uncommitted::default();
        let held = Held::of(feed);
        let grew = held != self.reported;
        self.reported = held;
        self.effects.push(Effect::Committed { held, grew });
        Ok(())
    }

    /// Ask for an upgrade and for blocks, as far as the limits allow.
    fn schedule(&mut self, feed: &mut Feed, readers: &[u64]) -> Result<(), ReplicateError> {
        // Outside the window nothing is asked for but what a local reader waits for; what
        // is in flight still lands.
        if !self.open && readers.is_empty() {
            return Ok(());
        }
        let local = Local {
            length: feed.len(),
            contiguous: feed.contiguous_len(),
            fork: feed.core().fork(),
            writable: feed.writable(),
            floor: feed.floor(),
            block_bytes: feed.byte_len().checked_div(feed.len()).unwrap_or(64 * 1024),
        };
        if self.open
            && let Some((id, start, length)) = self.peer.upgrade(&local)
        {
            self.outbox.push(request(
                id,
                local.fork,
                None,
                Some(RequestUpgrade { start, length }),
            ));
        }
        self.peer.set_byte_limit(
            self.traffic
                .in_flight_bytes(local.block_bytes, self.limits.bytes),
        );
        let core = feed.core();
        let quota = self.traffic.quota.clone();
        let admit = |bytes| quota.as_ref().is_none_or(|q| q.reserve(on_disk(bytes)));
        // What a local reader waits for goes first (even a block the writer cleared: the
        // tree here still refers to it); blocks the writer cleared are not fetched else.
        let mut wanted = self.peer.wanted(&local, readers, |i| core.has(i), admit);
        if self.open {
            let had = |i| core.has(i) || feed.is_cleared(i);
            wanted.extend(self.peer.blocks(&local, had, admit));
        }
        for (id, index) in wanted {
            let nodes = feed
                .core_mut()
                .missing_nodes(index)
                .map_err(|e| self.feed_err(FeedError::Core(e)))?;
            self.outbox.push(request(
                id,
                local.fork,
                Some(RequestBlock { index, nodes }),
                None,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
