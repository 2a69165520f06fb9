//! The rules of one feed's replication on one channel, without sockets, clocks or tasks:
//! what to answer and when (deferred while the window is closed), what to ask for (readers'
//! blocks first, within the quota's room), which answers to accept, when to commit (by
//! count, bytes, age or an idle channel) and what to announce after. It is driven by events
//! with the time given; the channel task ([`super::channel`]) feeds it messages and watched
//! changes, sends its outbox under the caps and carries out its [`Effect`]s.

use std::sync::Arc;
use std::time::Duration;

use hypercore_protocol::Message;
use hypercore_protocol::schema::{Data, NoData, Range, Request, Synchronize};
use hypercore_schema::{Proof, RequestBlock, RequestUpgrade};
use tokio::time::Instant;

use super::error::{ReplicateError, hex};
use super::peer::{Limits, Local, Peer, Pending};
use super::traffic::Traffic;
use crate::feed::{Feed, FeedError, Held};

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
        // What a local reader waits for goes first.
        let mut wanted = self.peer.wanted(&local, readers, |i| core.has(i), admit);
        if self.open {
            wanted.extend(self.peer.blocks(&local, |i| core.has(i), admit));
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

fn request(
    id: u64,
    fork: u64,
    block: Option<RequestBlock>,
    upgrade: Option<RequestUpgrade>,
) -> Message {
    Message::Request(Request {
        id,
        fork,
        block,
        hash: None,
        seek: None,
        upgrade,
        manifest: false,
        priority: 0,
    })
}

/// Bytes of one tree node in a feed's tree file.
const TREE_NODE: u64 = 40;

/// What a block of `bytes` takes on disk: the block and its two tree nodes.
pub fn on_disk(bytes: u64) -> u64 {
    bytes + 2 * TREE_NODE
}

/// About what a data message takes on the wire: the block, its proof nodes, the rest.
pub fn wire_size(d: &Data) -> u64 {
    let block = d
        .block
        .as_ref()
        .map_or(0, |b| b.value.len() + b.nodes.len() * TREE_NODE as usize);
    let upgrade = d.upgrade.as_ref().map_or(0, |u| {
        (u.nodes.len() + u.additional_nodes.len()) * TREE_NODE as usize + u.signature.len()
    });
    (block + upgrade + 16) as u64
}

pub fn short(key: &[u8; 32]) -> String {
    hex(&key[..4])
}

/// A message in one line, without block contents.
pub fn summary(m: &Message) -> String {
    match m {
        Message::Synchronize(s) => format!("sync length {}", s.length),
        Message::Range(r) => format!("range {}+{} drop {}", r.start, r.length, r.drop),
        Message::Request(r) => format!(
            "request {} block {:?} upgrade {:?}",
            r.id,
            r.block.as_ref().map(|b| b.index),
            r.upgrade.as_ref().map(|u| (u.start, u.length))
        ),
        Message::Data(d) => format!(
            "data {} block {:?} upgrade {:?}",
            d.request,
            d.block.as_ref().map(|b| b.index),
            d.upgrade.as_ref().map(|u| (u.start, u.length))
        ),
        Message::NoData(n) => format!("no data {}", n.request),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    //! The rules between two real feeds on disk, with the messages carried by hand and the
    //! time given: nothing sleeps, every step is deterministic.

    use super::*;
    use crate::replicate::traffic::{Bucket, Caps, Quota};
    use cobox_keys::Secret32;
    use cobox_schema::hexkey::Address;

    const BLOCK: usize = 1000;

    fn keys() -> cobox_keys::SigningKeyPair {
        cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 0)
    }

    fn traffic(quota: Option<Arc<Quota>>) -> Arc<Traffic> {
        let caps = || Caps {
            own: Bucket::new(None),
            device: Bucket::new(None),
        };
        Traffic::new(caps(), caps(), quota)
    }

    /// One end of a channel: its rules, its feed, what it published.
    struct Side {
        rules: Rules,
        feed: Feed,
        published: Held,
        readers: Vec<u64>,
        effects: Vec<Effect>,
    }

    impl Side {
        async fn writer(dir: &std::path::Path, blocks: usize, open: bool) -> Side {
            let k = keys();
            let seed: [u8; 32] = k.secret_bytes()[..32].try_into().unwrap();
            let mut feed = Feed::open(dir, k.public.0, Some(&seed)).await.unwrap();
            let data: Vec<Vec<u8>> = (0..blocks).map(|i| vec![i as u8; BLOCK]).collect();
            feed.append_batch(&data).await.unwrap();
            Side::on(feed, traffic(None), open)
        }

        async fn replica(dir: &std::path::Path, traffic: Arc<Traffic>, open: bool) -> Side {
            let feed = Feed::open(dir, keys().public.0, None).await.unwrap();
            Side::on(feed, traffic, open)
        }

        fn on(feed: Feed, traffic: Arc<Traffic>, open: bool) -> Side {
            let published = Held::of(&feed);
            let rules = Rules::new(
                keys().public.0,
                "peer".into(),
                Limits::default(),
                traffic,
                published,
                open,
            );
            Side {
                rules,
                feed,
                published,
                readers: Vec::new(),
                effects: Vec::new(),
            }
        }

        /// Carry out effects as the channel task does: publish what was committed, and
        /// hear of it back through the published state.
        fn carry_out(&mut self) {
            for e in self.rules.take_effects() {
                if let Effect::Committed { .. } = e {
                    self.published = Held::of(&self.feed);
                    self.rules.on_held(self.published);
                }
                self.effects.push(e);
            }
        }

        fn deliver(&mut self, batch: Vec<Message>, now: Instant) -> Result<(), ReplicateError> {
            let r = self.rules.on_messages(
                &mut self.feed,
                self.published,
                &self.readers.clone(),
                batch,
                now,
            );
            self.carry_out();
            r
        }

        fn commits(&self) -> usize {
            self.effects
                .iter()
                .filter(|e| matches!(e, Effect::Committed { .. }))
                .count()
        }
    }

    fn is_data(m: &Message) -> bool {
        matches!(m, Message::Data(d) if d.block.is_some())
    }

    fn is_block_request(m: &Message) -> bool {
        matches!(m, Message::Request(r) if r.block.is_some())
    }

    /// Carry messages both ways until neither side has anything to say (bounded).
    fn settle(a: &mut Side, b: &mut Side, now: Instant) {
        for _ in 0..10_000 {
            let (to_b, to_a) = (a.rules.take_outbox(), b.rules.take_outbox());
            if to_a.is_empty() && to_b.is_empty() {
                return;
            }
            b.deliver(to_b, now).unwrap();
            a.deliver(to_a, now).unwrap();
        }
        panic!("the channel never settled");
    }

    #[tokio::test]
    async fn a_replica_gets_every_block_and_announces_only_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 300, true).await;
        let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
        let now = Instant::now();
        // The replica learns the length, asks for the upgrade, then for blocks.
        let mut announced_before_commit = false;
        for _ in 0..10_000 {
            let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
            if to_r.is_empty() && to_w.is_empty() {
                break;
            }
            let committed = r.commits();
            r.deliver(to_r, now).unwrap();
            // A range from the replica before any commit would promise blocks not durable.
            let ranges = r
                .rules
                .outbox
                .iter()
                .any(|m| matches!(m, Message::Range(g) if !g.drop && g.length > 0));
            if ranges && r.commits() == committed && r.commits() == 0 {
                announced_before_commit = true;
            }
            w.deliver(to_w, now).unwrap();
        }
        assert!(!announced_before_commit);
        assert_eq!(r.feed.len(), 300);
        assert_eq!(r.feed.contiguous_len(), 300);
        assert_eq!(r.published.contiguous, 300, "everything was published");
        assert!(
            r.effects
                .iter()
                .any(|e| matches!(e, Effect::Committed { grew: true, .. })),
            "growth is reported"
        );
        let mut read = r.feed.get(299).await.unwrap().unwrap();
        read.truncate(3);
        assert_eq!(read, vec![43; 3]);
        assert_eq!(r.rules.in_flight(), 0);
        assert_eq!(w.commits(), 0, "the writer stored nothing");
    }

    #[tokio::test]
    async fn received_blocks_commit_by_age_when_more_are_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 200, true).await;
        let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
        let t0 = Instant::now();
        // Until the replica has asked for blocks.
        let mut answers = Vec::new();
        for _ in 0..100 {
            let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
            r.deliver(to_r, t0).unwrap();
            let requests = to_w.iter().filter(|m| is_block_request(m)).count();
            w.deliver(to_w, t0).unwrap();
            if requests > 0 {
                answers = w.rules.take_outbox();
                break;
            }
        }
        let data: Vec<Message> = answers.into_iter().filter(is_data).collect();
        assert!(data.len() > 10, "{} answers", data.len());
        let before = r.commits();
        let mut data = data.into_iter();
        // Ten blocks arrive with more in flight: they wait, with a deadline.
        r.deliver(data.by_ref().take(10).collect(), t0).unwrap();
        assert_eq!(r.commits(), before, "more are in flight: no commit yet");
        assert_eq!(r.rules.deadline(), Some(t0 + COMMIT_AFTER));
        assert_eq!(r.published.length, 200, "the upgrade alone was committed");
        assert_eq!(r.published.contiguous, 0);
        // One more block before the deadline: still waiting.
        r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER / 2)
            .unwrap();
        assert_eq!(r.commits(), before);
        // One at the deadline: committed, published, announced.
        r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER)
            .unwrap();
        assert_eq!(r.commits(), before + 1);
        assert_eq!(r.published.contiguous, 12);
        assert_eq!(r.rules.deadline(), None);
        assert!(
            r.rules
                .take_outbox()
                .iter()
                .any(|m| matches!(m, Message::Range(g) if g.start == 0 && g.length == 12)),
            "the twelve blocks are announced once durable"
        );
        // The next one waits again, until the deadline passes with nothing arriving.
        r.deliver(data.by_ref().take(1).collect(), t0 + COMMIT_AFTER * 2)
            .unwrap();
        assert_eq!(r.published.contiguous, 12);
        r.rules.on_deadline(&mut r.feed, &[]).unwrap();
        r.carry_out();
        assert_eq!(r.published.contiguous, 13);
    }

    #[tokio::test]
    async fn a_closed_window_keeps_requests_for_later_and_asks_only_for_what_readers_wait_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 100, false).await;
        let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
        let now = Instant::now();
        settle(&mut w, &mut r, now);
        // The replica asked; the closed writer kept every request and answered none.
        assert_eq!(r.feed.len(), 0, "not even the upgrade was proven");
        let kept = w.rules.deferred();
        assert!(kept > 0);
        assert_eq!(r.rules.in_flight(), kept);
        // The window opens: every kept request is answered, and the rest follows.
        w.rules
            .on_window(&mut w.feed, w.published, &[], true)
            .unwrap();
        assert_eq!(w.rules.deferred(), 0);
        settle(&mut w, &mut r, now);
        assert_eq!(r.published.contiguous, 100);

        // Now the replica's window is closed and the writer grows: nothing is asked for
        // but the block a local reader waits for.
        let mut w2 = Side::writer(&dir.path().join("w2"), 100, true).await;
        let mut r2 = Side::replica(&dir.path().join("r2"), traffic(None), false).await;
        settle(&mut w2, &mut r2, now);
        assert_eq!(r2.feed.len(), 0, "closed: no upgrade asked for");
        assert_eq!(r2.rules.in_flight(), 0);
        r2.rules
            .on_window(&mut r2.feed, r2.published, &[], true)
            .unwrap();
        r2.carry_out();
        // Open just long enough for the upgrade, then closed again.
        let upgrade = r2.rules.take_outbox();
        w2.deliver(upgrade, now).unwrap();
        r2.rules
            .on_window(&mut r2.feed, r2.published, &[], false)
            .unwrap();
        r2.carry_out();
        let answers = w2.rules.take_outbox();
        let blocks_asked = answers.iter().filter(|m| is_data(m)).count();
        r2.deliver(answers, now).unwrap();
        assert_eq!(r2.feed.len(), 100, "the upgrade in flight still landed");
        let held = r2.published.contiguous;
        assert_eq!(held as usize, blocks_asked, "what was in flight landed");
        r2.readers = vec![77];
        r2.rules.on_wake(&mut r2.feed, &[77]).unwrap();
        let asked = r2.rules.take_outbox();
        let indices: Vec<u64> = asked
            .iter()
            .filter_map(|m| match m {
                Message::Request(q) => q.block.as_ref().map(|b| b.index),
                _ => None,
            })
            .collect();
        assert_eq!(indices, vec![77], "only the reader's block is asked for");
    }

    #[tokio::test]
    async fn requests_past_what_a_closed_window_keeps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 10, false).await;
        let _ = w.rules.take_outbox();
        let requests: Vec<Message> = (0..DEFERRED as u64 + 5)
            .map(|id| {
                request(
                    id + 1,
                    0,
                    Some(RequestBlock {
                        index: id % 10,
                        nodes: 0,
                    }),
                    None,
                )
            })
            .collect();
        w.deliver(requests, Instant::now()).unwrap();
        assert_eq!(w.rules.deferred(), DEFERRED);
        let out = w.rules.take_outbox();
        let refused: Vec<u64> = out
            .iter()
            .filter_map(|m| match m {
                Message::NoData(n) => Some(n.request),
                _ => None,
            })
            .collect();
        assert_eq!(refused.len(), 5);
        assert!(
            out.iter().all(|m| !is_data(m)),
            "nothing served while closed"
        );
    }

    #[tokio::test]
    async fn a_quota_bounds_what_is_asked_for_and_gets_back_what_was_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 100, true).await;
        // Room for ten blocks.
        let quota = Quota::new(Some(10 * on_disk(BLOCK as u64)), None);
        let mut r = Side::replica(&dir.path().join("r"), traffic(Some(quota.clone())), true).await;
        let now = Instant::now();
        settle(&mut w, &mut r, now);
        assert_eq!(r.published.contiguous, 10, "exactly what fits");
        assert!(quota.is_full());
        assert_eq!(quota.used(), 10 * on_disk(BLOCK as u64));
        // Requests refused by the remote give their room back.
        let quota = Quota::new(Some(100 * on_disk(BLOCK as u64)), None);
        let mut w2 = Side::writer(&dir.path().join("w2"), 100, false).await;
        let mut r2 =
            Side::replica(&dir.path().join("r2"), traffic(Some(quota.clone())), true).await;
        // The upgrade only: open long enough to prove the length.
        w2.rules
            .on_window(&mut w2.feed, w2.published, &[], true)
            .unwrap();
        for _ in 0..3 {
            let (to_r, to_w) = (w2.rules.take_outbox(), r2.rules.take_outbox());
            r2.deliver(to_r, now).unwrap();
            let to_w: Vec<Message> = to_w.into_iter().filter(|m| !is_block_request(m)).collect();
            w2.deliver(to_w, now).unwrap();
        }
        assert_eq!(r2.feed.len(), 100);
        assert!(r2.rules.in_flight() > 0);
        let refused: Vec<Message> = (1..=200)
            .map(|id| Message::NoData(NoData { request: id }))
            .collect();
        r2.deliver(refused, now).unwrap();
        // The refused requests' room came back: only the requests asked since (for blocks
        // not refused) hold room now.
        let _ = r2.rules.take_outbox();
        let asked = r2.rules.in_flight() as u64;
        assert!(asked < 100);
        let room = (100 - asked) * on_disk(BLOCK as u64);
        assert!(quota.reserve(room), "the refused requests' room came back");
        assert!(!quota.reserve(on_disk(BLOCK as u64)), "the rest is held");
        quota.release(room);
        r2.rules.finish(Some(&mut r2.feed)).unwrap();
        // A channel ending with requests in flight gives their room back too.
        let mut r3 =
            Side::replica(&dir.path().join("r3"), traffic(Some(quota.clone())), true).await;
        let mut w3 = Side::writer(&dir.path().join("w3"), 100, true).await;
        for _ in 0..3 {
            let (to_r, to_w) = (w3.rules.take_outbox(), r3.rules.take_outbox());
            r3.deliver(to_r, now).unwrap();
            w3.deliver(to_w, now).unwrap();
        }
        assert!(r3.rules.in_flight() > 0);
        assert!(
            !quota.reserve(100 * on_disk(BLOCK as u64)),
            "held for requests"
        );
        r3.rules.finish(Some(&mut r3.feed)).unwrap();
        assert!(
            quota.reserve(100 * on_disk(BLOCK as u64)),
            "given back at the end"
        );
    }

    #[tokio::test]
    async fn answers_are_checked_before_anything_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 50, true).await;
        let mut r = Side::replica(&dir.path().join("r"), traffic(None), true).await;
        let now = Instant::now();
        // Up to the first block answers.
        let mut answers = Vec::new();
        for _ in 0..100 {
            let (to_r, to_w) = (w.rules.take_outbox(), r.rules.take_outbox());
            r.deliver(to_r, now).unwrap();
            w.deliver(to_w, now).unwrap();
            answers = w.rules.take_outbox();
            if answers.iter().any(is_data) {
                break;
            }
            r.deliver(std::mem::take(&mut answers), now).unwrap();
        }
        let mut data: Vec<Data> = answers
            .into_iter()
            .filter_map(|m| match m {
                Message::Data(d) if d.block.is_some() => Some(d),
                _ => None,
            })
            .collect();
        assert!(data.len() >= 3);
        // Not asked for: ignored.
        let mut stray = data[0].clone();
        stray.request = 999_999;
        r.deliver(vec![Message::Data(stray)], now).unwrap();
        assert_eq!(r.feed.contiguous_len(), 0);
        // The answer to one request carrying another block: the peer misbehaves.
        let mut swapped = data[1].clone();
        swapped.block.as_mut().unwrap().index += 1;
        let e = r.deliver(vec![Message::Data(swapped)], now).unwrap_err();
        assert!(matches!(e, ReplicateError::Unexpected { .. }), "{e}");
        // A damaged block: refused, nothing of it stored or committed.
        let mut damaged = data.remove(2);
        damaged.block.as_mut().unwrap().value[0] ^= 1;
        let commits = r.commits();
        let e = r.deliver(vec![Message::Data(damaged)], now).unwrap_err();
        assert!(matches!(e, ReplicateError::InvalidData { .. }), "{e}");
        assert_eq!(r.commits(), commits);
        assert_eq!(r.published.contiguous, 0);
    }

    #[tokio::test]
    async fn growth_and_eviction_are_announced_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Side::writer(&dir.path().join("w"), 10, true).await;
        let _ = w.rules.take_outbox();
        let held = |length, run, floor| Held {
            length,
            contiguous: run,
            bytes: 0,
            floor,
            run,
        };
        w.rules.on_held(held(12, 12, 0));
        let out = w.rules.take_outbox();
        assert!(
            matches!(&out[..], [Message::Synchronize(s), Message::Range(r)]
            if s.length == 12 && !r.drop && (r.start, r.length) == (10, 2))
        );
        w.rules.on_held(held(12, 12, 0));
        assert!(
            w.rules.take_outbox().is_empty(),
            "nothing new, nothing said"
        );
        w.rules.on_held(held(12, 12, 5));
        let out = w.rules.take_outbox();
        assert!(matches!(&out[..], [Message::Range(r)] if r.drop && (r.start, r.length) == (0, 5)));
    }
}
