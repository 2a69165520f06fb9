//! One feed replicated over one protocol channel: answers the remote's requests with
//! proofs, asks for what the remote has and we lack, verifies every answer before it is
//! stored, commits, and only then announces and reports what arrived; within the caps,
//! window and quota of the feed's [`Traffic`].

use std::sync::Arc;
use std::time::Duration;

use hypercore_protocol::schema::{Data, NoData, Range, Request, Synchronize};
use hypercore_protocol::{Channel, ChannelReceiver, Message};
use hypercore_schema::{Proof, RequestBlock, RequestUpgrade};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::error::{ReplicateError, hex};
use super::peer::{Limits, Local, Peer, Pending};
use super::traffic::Traffic;
use crate::feed::{Feed, FeedError};
use crate::feed::{Held, SharedFeed};

/// A feed grew through replication (after the new blocks were made durable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grew {
    pub key: [u8; 32],
    pub length: u64,
    pub contiguous: u64,
}

/// Received blocks are made durable when this many wait, or this many bytes, or this long
/// after the first, or when nothing more is in flight.
const COMMIT_BLOCKS: u64 = 512;
const COMMIT_BYTES: u64 = 16 * 1024 * 1024;
const COMMIT_AFTER: Duration = Duration::from_millis(200);
/// Messages handled under one lock of the feed.
const BATCH: usize = 256;
/// Requests kept for later while the window is closed; beyond, they are refused.
const DEFERRED: usize = 256;

#[derive(Debug, Default)]
struct Uncommitted {
    blocks: u64,
    bytes: u64,
    any: bool,
    since: Option<Instant>,
}

/// The replication of one feed on one channel.
#[derive(Debug)]
pub struct ChannelTask {
    pub feed: Arc<SharedFeed>,
    pub channel: Channel,
    pub inbound: ChannelReceiver<Message>,
    pub stop: watch::Receiver<bool>,
    pub peer_name: String,
    pub grew: Option<broadcast::Sender<Grew>>,
    pub limits: Limits,
}

/// What a channel task waits on besides its messages.
struct Watches {
    held: watch::Receiver<Held>,
    stop: watch::Receiver<bool>,
    open: watch::Receiver<bool>,
    nudge: watch::Receiver<u64>,
    /// Blocks local readers wait for changed.
    wanted: watch::Receiver<u64>,
}

struct State {
    peer: Peer,
    announced: Held,
    reported: Held,
    uncommitted: Uncommitted,
    outbox: Vec<Message>,
    stop: bool,
    traffic: Arc<Traffic>,
    /// The window is open: requests are sent and answered.
    open: bool,
    /// The remote's requests that arrived while the window was closed.
    deferred: Vec<Request>,
    /// Block bytes and blocks received and not yet paid to the download caps.
    owed: (u64, u64),
}

impl ChannelTask {
    fn feed_err(&self, source: FeedError) -> ReplicateError {
        ReplicateError::Feed {
            feed: hex(&self.feed.key()),
            peer: self.peer_name.clone(),
            source,
        }
    }

    fn core_err(&self, source: cobox_feed::CoreError) -> ReplicateError {
        self.feed_err(FeedError::Core(source))
    }

    fn invalid(&self) -> ReplicateError {
        ReplicateError::InvalidData {
            feed: hex(&self.feed.key()),
            peer: self.peer_name.clone(),
        }
    }

    fn unexpected(&self, request: u64) -> ReplicateError {
        ReplicateError::Unexpected {
            feed: hex(&self.feed.key()),
            peer: self.peer_name.clone(),
            request,
        }
    }

    async fn send(&self, st: &mut State) -> Result<(), ReplicateError> {
        if st.outbox.is_empty() {
            return Ok(());
        }
        // Sent one by one, so block data is moved rather than copied; the protocol still
        // writes whatever is queued as one frame. Control messages go first: only block
        // data waits for the upload caps. A closed channel means the session is ending:
        // nothing to report.
        let (data, control): (Vec<Message>, Vec<Message>) = std::mem::take(&mut st.outbox)
            .into_iter()
            .partition(|m| matches!(m, Message::Data(d) if d.block.is_some()));
        for m in control.into_iter().chain(data) {
            tracing::trace!(feed = %short(&self.feed.key()), out = %summary(&m), "send");
            if let Message::Data(d) = &m {
                st.traffic.send(wire_size(d)).await;
            }
            if self.channel.send(m).await.is_err() {
                st.stop = true;
                break;
            }
        }
        Ok(())
    }

    fn sync_message(st: &State, held: Held) -> Message {
        Message::Synchronize(Synchronize {
            fork: 0,
            length: held.length,
            remote_length: st.peer.remote.length,
            downloading: true,
            uploading: true,
            can_upgrade: held.length > 0,
        })
    }

    /// Tell the remote what became durable here since it was last told.
    fn announce(st: &mut State, now: Held) {
        if now.length > st.announced.length {
            st.outbox.push(Self::sync_message(st, now));
        }
        if now.run > st.announced.run {
            let start = st.announced.run.max(now.floor);
            st.outbox.push(Message::Range(Range {
                drop: false,
                start,
                length: now.run - start,
            }));
        }
        if now.floor > st.announced.floor {
            // Evicted: the remote must not count on those blocks here any more.
            st.outbox.push(Message::Range(Range {
                drop: true,
                start: st.announced.floor,
                length: now.floor - st.announced.floor,
            }));
        }
        st.announced = Held {
            length: st.announced.length.max(now.length),
            contiguous: st.announced.contiguous.max(now.contiguous),
            bytes: st.announced.bytes.max(now.bytes),
            floor: st.announced.floor.max(now.floor),
            run: st.announced.run.max(now.run),
        };
    }

    /// Run until the channel or the session ends, or the remote misbehaves. A fault of the
    /// feed here (it cannot be read or written) ends this channel only: it is recorded on
    /// the feed and every other feed of the session goes on.
    pub async fn run(self) -> Result<(), ReplicateError> {
        let (feed, peer) = (self.feed.clone(), self.peer_name.clone());
        let ended = self.replicate().await;
        feed.remote_gone(&peer);
        match ended {
            Err(ReplicateError::Feed { source, .. }) => {
                feed.set_fault(source.to_string());
                Ok(())
            }
            ended => ended,
        }
    }

    async fn replicate(self) -> Result<(), ReplicateError> {
        let mut held_rx = self.feed.subscribe();
        let stop = self.stop.clone();
        let held = *held_rx.borrow_and_update();
        let traffic = self.feed.traffic();
        let mut open_rx = traffic.watch_open();
        let nudge_rx = traffic.watch_nudge();
        let open = *open_rx.borrow_and_update();
        let mut st = State {
            peer: Peer::new(self.limits),
            announced: Held::default(),
            reported: held,
            uncommitted: Uncommitted::default(),
            outbox: Vec::new(),
            stop: false,
            traffic,
            open,
            deferred: Vec::new(),
            owed: (0, 0),
        };
        let mut watches = Watches {
            held: held_rx,
            stop,
            open: open_rx,
            nudge: nudge_rx,
            wanted: self.feed.watch_wanted(),
        };
        let ended = self.replicate_with(&mut st, &mut watches).await;
        // Room reserved for requests that will never be answered goes back to the quota.
        if let Some(q) = &st.traffic.quota {
            let blocks = st.peer.in_flight() as u64;
            q.release(st.peer.in_flight_bytes() + blocks * on_disk(0));
        }
        ended
    }

    async fn replicate_with(&self, st: &mut State, w: &mut Watches) -> Result<(), ReplicateError> {
        let Watches {
            held: held_rx,
            stop,
            open: open_rx,
            nudge: nudge_rx,
            wanted: wanted_rx,
        } = w;
        let held = st.reported;
        st.outbox.push(Self::sync_message(st, held));
        if held.run > held.floor {
            st.outbox.push(Message::Range(Range {
                drop: false,
                start: held.floor,
                length: held.run - held.floor,
            }));
        }
        st.announced = held;
        self.send(st).await?;
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        while !st.stop {
            let deadline = st.uncommitted.since.map_or(far, |t| t + COMMIT_AFTER);
            tokio::select! {
                _ = stop.changed() => break,
                m = self.inbound.recv() => {
                    let Ok(m) = m else { break };
                    let mut batch = vec![m];
                    while batch.len() < BATCH {
                        match self.inbound.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    self.on_batch(st, batch).await?;
                }
                r = held_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let now = *held_rx.borrow_and_update();
                    Self::announce(st, now);
                    self.send(st).await?;
                }
                r = open_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    st.open = *open_rx.borrow_and_update();
                    let mut feed = self.feed.lock().await;
                    if st.open {
                        // The window opened: what the remote asked meanwhile is answered.
                        for r in std::mem::take(&mut st.deferred) {
                            let answer = self.answer(&mut feed, r).await;
                            st.outbox.push(answer);
                        }
                    }
                    self.commit(st, &mut feed)?;
                    self.schedule(st, &mut feed).await?;
                    drop(feed);
                    self.send(st).await?;
                }
                r = wanted_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let mut feed = self.feed.lock().await;
                    self.schedule(st, &mut feed).await?;
                    drop(feed);
                    self.send(st).await?;
                }
                r = nudge_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let mut feed = self.feed.lock().await;
                    self.schedule(st, &mut feed).await?;
                    drop(feed);
                    self.send(st).await?;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let mut feed = self.feed.lock().await;
                    self.commit(st, &mut feed)?;
                    self.schedule(st, &mut feed).await?;
                    drop(feed);
                    self.send(st).await?;
                }
            }
        }
        let mut feed = self.feed.lock().await;
        self.commit(st, &mut feed)
    }

    async fn on_batch(&self, st: &mut State, batch: Vec<Message>) -> Result<(), ReplicateError> {
        let mut feed = self.feed.lock().await;
        for m in batch {
            self.on_message(st, &mut feed, m).await?;
            if st.stop {
                break;
            }
        }
        self.feed.note_remote(
            &self.peer_name,
            st.peer.remote.length,
            st.peer.remote.has.prefix(),
        );
        let u = &st.uncommitted;
        if u.any
            && (st.peer.in_flight() == 0
                || u.blocks >= COMMIT_BLOCKS
                || u.bytes >= COMMIT_BYTES
                || u.since.is_some_and(|t| t.elapsed() >= COMMIT_AFTER))
        {
            self.commit(st, &mut feed)?;
        }
        if !st.stop {
            self.schedule(st, &mut feed).await?;
        }
        drop(feed);
        self.send(st).await?;
        // Received data is paid to the download caps before more is read or asked for;
        // with at most an eighth of a second of requests in flight, the cap holds at the socket.
        let (bytes, blocks) = std::mem::take(&mut st.owed);
        if blocks > 0 {
            st.traffic.pay_download(bytes).await;
        }
        Ok(())
    }

    async fn on_message(
        &self,
        st: &mut State,
        feed: &mut Feed,
        m: Message,
    ) -> Result<(), ReplicateError> {
        tracing::trace!(feed = %short(&self.feed.key()), msg = %summary(&m), "received");
        match m {
            // The first synchronize is answered so the remote knows we heard it.
            Message::Synchronize(s) if st.peer.on_sync(&s) => {
                let held = self.feed.held();
                st.outbox.push(Self::sync_message(st, held));
            }
            Message::Synchronize(_) => {}
            Message::Range(r) => st.peer.on_range(&r),
            Message::Bitfield(b) => st.peer.on_bitfield(&b),
            Message::Request(r) if !st.open && st.deferred.len() < DEFERRED => {
                st.deferred.push(r);
            }
            Message::Request(r) if !st.open => {
                st.outbox.push(Message::NoData(NoData { request: r.id }));
            }
            Message::Request(r) => {
                let answer = self.answer(feed, r).await;
                st.outbox.push(answer);
            }
            Message::NoData(n) => {
                if let (Some(Pending::Block { bytes, .. }), Some(q)) =
                    (st.peer.refused(n.request), &st.traffic.quota)
                {
                    q.release(on_disk(bytes));
                }
            }
            Message::Data(d) => self.on_data(st, feed, d).await?,
            Message::Close(_) => st.stop = true,
            _ => {}
        }
        Ok(())
    }

    /// A proof for the remote's request, from what is durable here only.
    async fn answer(&self, feed: &mut Feed, r: Request) -> Message {
        let no = Message::NoData(NoData { request: r.id });
        let held = self.feed.held();
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
                self.feed.set_fault(e.to_string());
                no
            }
        }
    }

    async fn on_data(
        &self,
        st: &mut State,
        feed: &mut Feed,
        d: Data,
    ) -> Result<(), ReplicateError> {
        let Some(pending) = st.peer.answered(d.request) else {
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
                let quota = st.traffic.quota.clone();
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
                st.uncommitted.blocks += 1;
                st.uncommitted.bytes += size;
                st.owed.0 += wire_size(&d);
                st.owed.1 += 1;
                st.traffic.received(wire_size(&d));
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
            Err(e) => return Err(self.core_err(e)),
        }
        st.uncommitted.any = true;
        st.uncommitted.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Make what arrived durable, publish it, and report growth.
    fn commit(&self, st: &mut State, feed: &mut Feed) -> Result<(), ReplicateError> {
        if !st.uncommitted.any {
            return Ok(());
        }
        feed.commit().map_err(|e| self.feed_err(e))?;
        st.uncommitted = Uncommitted::default();
        self.feed.publish(feed);
        let now = Held::of(feed);
        if now != st.reported {
            st.reported = now;
            if let Some(tx) = &self.grew {
                let _ = tx.send(Grew {
                    key: self.feed.key(),
                    length: now.length,
                    contiguous: now.contiguous,
                });
            }
        }
        Ok(())
    }

    /// Ask for an upgrade and for blocks, as far as the limits allow.
    async fn schedule(&self, st: &mut State, feed: &mut Feed) -> Result<(), ReplicateError> {
        // Outside the window nothing is asked for but what a local reader waits for; what
        // is in flight still lands.
        let readers = self.feed.wanted();
        if !st.open && readers.is_empty() {
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
        if st.open
            && let Some((id, start, length)) = st.peer.upgrade(&local)
        {
            st.outbox.push(request(
                id,
                local.fork,
                None,
                Some(RequestUpgrade { start, length }),
            ));
        }
        st.peer.set_byte_limit(
            st.traffic
                .in_flight_bytes(local.block_bytes, self.limits.bytes),
        );
        let core = feed.core();
        let quota = st.traffic.quota.clone();
        let admit = |bytes| quota.as_ref().is_none_or(|q| q.reserve(on_disk(bytes)));
        // What a local reader waits for goes first.
        let mut wanted = st.peer.wanted(&local, &readers, |i| core.has(i), admit);
        if st.open {
            wanted.extend(st.peer.blocks(&local, |i| core.has(i), admit));
        }
        for (id, index) in wanted {
            let nodes = match feed.core_mut().missing_nodes(index) {
                Ok(n) => n,
                Err(e) => return Err(self.core_err(e)),
            };
            st.outbox.push(request(
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
fn on_disk(bytes: u64) -> u64 {
    bytes + 2 * TREE_NODE
}

/// About what a data message takes on the wire: the block, its proof nodes, the rest.
fn wire_size(d: &Data) -> u64 {
    let block = d
        .block
        .as_ref()
        .map_or(0, |b| b.value.len() + b.nodes.len() * TREE_NODE as usize);
    let upgrade = d.upgrade.as_ref().map_or(0, |u| {
        (u.nodes.len() + u.additional_nodes.len()) * TREE_NODE as usize + u.signature.len()
    });
    (block + upgrade + 16) as u64
}

fn short(key: &[u8; 32]) -> String {
    hex(&key[..4])
}

/// A message in one line, without block contents.
fn summary(m: &Message) -> String {
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
