//! One feed replicated over one protocol channel: the task that carries out the
//! [`Rules`] — it waits on the remote's messages, the feed's published state, the window,
//! readers and the commit deadline, hands each event to the rules with the time, sends what
//! they decide under the upload caps, pays what arrived to the download caps, and publishes
//! and reports what they committed.

use std::sync::Arc;
use std::time::Duration;

use hypercore_protocol::{Channel, ChannelReceiver, Message};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::error::ReplicateError;
use super::peer::Limits;
use super::rules::{Effect, Rules};
use super::traffic::Traffic;
use super::wire::{short, summary, wire_size};
use crate::feed::{Feed, SharedFeed};

/// A feed grew through replication (after the new blocks were made durable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grew {
    pub key: [u8; 32],
    pub length: u64,
    pub contiguous: u64,
}

/// Messages handled under one lock of the feed.
const BATCH: usize = 256;

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
    held: watch::Receiver<crate::feed::Held>,
    stop: watch::Receiver<bool>,
    open: watch::Receiver<bool>,
    nudge: watch::Receiver<u64>,
    /// Blocks local readers wait for changed.
    wanted: watch::Receiver<u64>,
}

impl ChannelTask {
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
        let held = *held_rx.borrow_and_update();
        let traffic = self.feed.traffic();
        let mut open_rx = traffic.watch_open();
        let nudge_rx = traffic.watch_nudge();
        let open = *open_rx.borrow_and_update();
        let mut rules = Rules::new(
            self.feed.key(),
            self.peer_name.clone(),
            self.limits,
            traffic.clone(),
            held,
            open,
        );
        rules.announce_cleared(
            held.cleared,
            self.feed.statement().as_deref().map(|v| &v[..]),
        );
        let mut watches = Watches {
            held: held_rx,
            stop: self.stop.clone(),
            open: open_rx,
            nudge: nudge_rx,
            wanted: self.feed.watch_wanted(),
        };
        let ended = self
            .replicate_with(&mut rules, &traffic, &mut watches)
            .await;
        let finished = if ended.is_ok() {
            let mut feed = self.feed.lock().await;
            let done = rules.finish(Some(&mut feed));
            self.carry_out(&mut rules, &mut feed);
            done
        } else {
            rules.finish(None)
        };
        ended.and(finished)
    }

    async fn replicate_with(
        &self,
        rules: &mut Rules,
        traffic: &Traffic,
        w: &mut Watches,
    ) -> Result<(), ReplicateError> {
        let Watches {
            held: held_rx,
            stop,
            open: open_rx,
            nudge: nudge_rx,
            wanted: wanted_rx,
        } = w;
        if !self.send(rules, traffic).await {
            return Ok(());
        }
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        while !rules.stopped() {
            let deadline = rules.deadline().unwrap_or(far);
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
                    let mut feed = self.feed.lock().await;
                    let (held, readers) = (self.feed.held(), self.feed.wanted());
                    let handled = rules.on_messages(&mut feed, held, &readers, batch, Instant::now());
                    self.carry_out(rules, &mut feed);
                    handled?;
                    let (length, prefix) = rules.remote();
                    self.feed.note_remote(&self.peer_name, length, prefix, rules.in_flight());
                    drop(feed);
                    if !self.send(rules, traffic).await {
                        break;
                    }
                    // Received data is paid to the download caps before more is read or
                    // asked for; with at most an eighth of a second of requests in flight,
                    // the cap holds at the socket.
                    let (bytes, blocks) = rules.take_owed();
                    if blocks > 0 {
                        traffic.pay_download(bytes).await;
                    }
                    continue;
                }
                r = held_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let held = *held_rx.borrow_and_update();
                    rules.announce_cleared(held.cleared, self.feed.statement().as_deref().map(|v| &v[..]));
                    rules.on_held(held);
                }
                r = open_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let open = *open_rx.borrow_and_update();
                    let mut feed = self.feed.lock().await;
                    let (held, readers) = (self.feed.held(), self.feed.wanted());
                    let handled = rules.on_window(&mut feed, held, &readers, open);
                    self.carry_out(rules, &mut feed);
                    handled?;
                }
                r = wanted_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let mut feed = self.feed.lock().await;
                    let handled = rules.on_wake(&mut feed, &self.feed.wanted());
                    handled?;
                }
                r = nudge_rx.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let mut feed = self.feed.lock().await;
                    let handled = rules.on_wake(&mut feed, &self.feed.wanted());
                    handled?;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let mut feed = self.feed.lock().await;
                    let handled = rules.on_deadline(&mut feed, &self.feed.wanted());
                    self.carry_out(rules, &mut feed);
                    handled?;
                }
            }
            self.feed.note_asking(&self.peer_name, rules.in_flight());
            if !self.send(rules, traffic).await {
                break;
            }
        }
        Ok(())
    }

    /// Carry out what the rules decided, with the feed still locked: publish what was
    /// committed (before anyone else commits) and report growth; record faults.
    fn carry_out(&self, rules: &mut Rules, feed: &mut Feed) {
        for effect in rules.take_effects() {
            match effect {
                Effect::Committed { held, grew } => {
                    self.feed.publish(feed);
                    if grew && let Some(tx) = &self.grew {
                        let _ = tx.send(Grew {
                            key: self.feed.key(),
                            length: held.length,
                            contiguous: held.contiguous,
                        });
                    }
                }
                Effect::Fault(reason) => {
                    self.feed.set_fault(reason);
                }
                Effect::Cleared => {
                    if self.feed.auto_clear()
                        && let Err(e) = feed.clear_stated()
                    {
                        self.feed.set_fault(e.to_string());
                    }
                    self.feed.publish(feed);
                }
            }
        }
    }

    /// Send the rules' outbox. Sent one by one, so block data is moved rather than copied;
    /// the protocol still writes whatever is queued as one frame. Control messages go
    /// first: only block data waits for the upload caps. False when the channel is closed
    /// (the session is ending: nothing to report).
    async fn send(&self, rules: &mut Rules, traffic: &Traffic) -> bool {
        let outbox = rules.take_outbox();
        if outbox.is_empty() {
            return true;
        }
        let (data, control): (Vec<Message>, Vec<Message>) = outbox
            .into_iter()
            .partition(|m| matches!(m, Message::Data(d) if d.block.is_some()));
        for m in control.into_iter().chain(data) {
            tracing::trace!(feed = %short(&self.feed.key()), out = %summary(&m), "send");
            if let Message::Data(d) = &m {
                traffic.send(wire_size(d)).await;
            }
            if self.channel.send(m).await.is_err() {
                return false;
            }
        }
        true
    }
}
