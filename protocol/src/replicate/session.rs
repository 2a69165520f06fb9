//! One replication session with one peer: a Noise XX handshake over a byte stream, the
//! remote's identity proof (when identities are in use), the authorization hook, then a
//! protocol channel for every feed both sides offer (opened only when the remote proves it
//! knows the feed's key), each replicated by its own task, and topic channels that carry
//! the caller's own messages.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use cobox_keys::SigningKeyPair;
use futures::StreamExt;
use hypercore_handshake::state_machine::hc_specific::{Keypair, generate_keypair};
use hypercore_handshake::{Cipher, CipherIo, HandshakePattern};
use hypercore_protocol::schema::Extension;
use hypercore_protocol::{Channel, Event, Message, Protocol, discovery_key};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::channel::{ChannelTask, Grew};
use super::error::{ReplicateError, hex};
use super::frame::{Closed, Framed};
use super::identity::{self, HandshakeHash, Hashed, PEER_CHANNEL, PROOF_MESSAGE};
use super::peer::Limits;
use crate::feed::shared::SharedFeed;

/// A Noise static key pair (ed25519, as hypercore's secret stream uses).
pub type NoiseKeypair = Keypair;

/// Decides whether to go on with a peer, from its proven identity (or, in a session
/// without identities, its Noise static public key). Called once, before any feed or
/// topic channel opens.
pub type Authorize = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// How long a finished session waits for its channel tasks to commit and stop.
const WIND_DOWN: Duration = Duration::from_secs(10);
/// How long a remote has to prove its identity after the handshake.
const PROOF_WITHIN: Duration = Duration::from_secs(10);
/// The extension message name of topic messages.
const TOPIC_MESSAGE: &str = "cobox/topic";

/// What a session tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The remote is authorized (its proven identity, or its Noise key without identities).
    Authorized([u8; 32]),
    /// A topic channel opened: both sides offered it.
    TopicOpened([u8; 32]),
    /// A message arrived on topic `topic` (the topic's key).
    Topic { topic: [u8; 32], message: Vec<u8> },
}

/// How a session runs.
#[derive(Default)]
pub struct Options {
    /// Our Noise static key pair when we are the responder; a fresh one when `None`. (The
    /// initiator's is always fresh: hypercore_handshake 0.6 takes none for XX. Binding a
    /// device identity to the session goes here, e.g. as a signed handshake payload.)
    pub noise: Option<NoiseKeypair>,
    /// Refuse peers before any channel opens.
    pub authorize: Option<Authorize>,
    /// Told every time a feed grew through this session (after the growth is durable).
    pub grew: Option<broadcast::Sender<Grew>>,
    /// Our device identity: when set, both sides must prove theirs (signing the handshake
    /// hash) before anything else opens, and `authorize` sees the proven identity.
    pub identity: Option<SigningKeyPair>,
    /// Told when the remote is authorized and when topic messages arrive.
    pub events: Option<mpsc::UnboundedSender<SessionEvent>>,
    pub limits: Limits,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("noise", &self.noise.as_ref().map(|k| hex(&k.public)))
            .field("authorize", &self.authorize.is_some())
            .field("grew", &self.grew.is_some())
            .field(
                "identity",
                &self.identity.as_ref().map(|k| hex(&k.public.0)),
            )
            .field("events", &self.events.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

/// The hypercore protocol over a transport: our framing, then Noise XX. Returns the
/// protocol and the signal that the transport closed (the protocol never ends by itself).
pub fn protocol<T>(
    transport: T,
    initiator: bool,
    noise: Option<&NoiseKeypair>,
) -> io::Result<(Protocol, Closed)>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (protocol, closed, _) = hashed_protocol(transport, initiator, noise)?;
    Ok((protocol, closed))
}

/// [`protocol`], with the handshake hash kept for identity proofs.
fn hashed_protocol<T>(
    transport: T,
    initiator: bool,
    noise: Option<&NoiseKeypair>,
) -> io::Result<(Protocol, Closed, HandshakeHash)>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (framed, closed) = Framed::new(transport);
    let io: Box<dyn CipherIo<Error = io::Error>> = Box::new(framed);
    let cipher = if initiator {
        Cipher::new_dht_init_with_pattern(Some(io), HandshakePattern::XX, None, &[])
    } else {
        let fresh;
        let keypair = match noise {
            Some(k) => k,
            None => {
                fresh = generate_keypair().map_err(io::Error::other)?;
                &fresh
            }
        };
        Cipher::resp_from_private_with_pattern(Some(io), keypair, HandshakePattern::XX, &[])
    }
    .map_err(io::Error::other)?;
    let (cipher, hash) = Hashed::new(cipher);
    Ok((Protocol::new(Box::new(cipher)), closed, hash))
}

#[derive(Debug)]
enum Command {
    Open(Arc<SharedFeed>),
    OpenTopic([u8; 32]),
    Send([u8; 32], Vec<u8>),
    Close,
}

/// Controls a running session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    remote: watch::Receiver<Option<[u8; 32]>>,
}

impl SessionHandle {
    /// Offer one more feed; its channel opens if the remote offers it too.
    pub fn open(&self, feed: Arc<SharedFeed>) -> Result<(), ReplicateError> {
        self.commands
            .send(Command::Open(feed))
            .map_err(|_| ReplicateError::Ended {
                peer: self.remote_name(),
            })
    }

    /// Offer a topic: a channel on `topic` (a key both sides must know: its capability
    /// proves that) that carries the owner's messages. Opens once the remote offers it too
    /// and is authorized; reported as [`SessionEvent::TopicOpened`].
    pub fn open_topic(&self, topic: [u8; 32]) -> Result<(), ReplicateError> {
        self.command(Command::OpenTopic(topic))
    }

    /// Send a message on an open topic (dropped when the topic is not open).
    pub fn send(&self, topic: [u8; 32], message: Vec<u8>) -> Result<(), ReplicateError> {
        self.command(Command::Send(topic, message))
    }

    fn command(&self, command: Command) -> Result<(), ReplicateError> {
        self.commands
            .send(command)
            .map_err(|_| ReplicateError::Ended {
                peer: self.remote_name(),
            })
    }

    /// End the session (its channels commit what arrived first).
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// Who the remote is: its Noise static public key once the handshake is done, then,
    /// in a session with identities, its proven identity once it is authorized.
    pub fn remote_key(&self) -> Option<[u8; 32]> {
        *self.remote.borrow()
    }

    fn remote_name(&self) -> String {
        self.remote_key()
            .map_or_else(|| "unknown".to_string(), |k| hex(&k))
    }
}

/// A session running in its own task: a panic in it is a disconnect, reported by `join`.
#[derive(Debug)]
pub struct Session {
    handle: SessionHandle,
    task: JoinHandle<Result<(), ReplicateError>>,
}

impl Session {
    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Ends the session's task when aborted (its owner went away).
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.task.abort_handle()
    }

    /// Wait for the end: `Ok` when the transport closed or the session was closed.
    pub async fn join(self) -> Result<(), ReplicateError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ReplicateError::Crashed {
                peer: self.handle.remote_name(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Start replicating `feeds` with the peer at the other end of `transport`.
pub fn spawn<T>(
    transport: T,
    initiator: bool,
    feeds: impl IntoIterator<Item = Arc<SharedFeed>>,
    options: Options,
) -> Session
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (remote_tx, remote_rx) = watch::channel(None);
    let feeds: Vec<_> = feeds.into_iter().collect();
    let task = tokio::spawn(run(transport, initiator, feeds, options, rx, remote_tx));
    Session {
        handle: SessionHandle {
            commands: tx,
            remote: remote_rx,
        },
        task,
    }
}

struct Run {
    protocol: Protocol,
    initiator: bool,
    offered: HashMap<[u8; 32], Arc<SharedFeed>>,
    /// Topics offered, by discovery key.
    topics: HashMap<[u8; 32], [u8; 32]>,
    /// Open topic channels, by topic key.
    topic_channels: HashMap<[u8; 32], Channel>,
    opened: HashSet<[u8; 32]>,
    stops: HashMap<[u8; 32], watch::Sender<bool>>,
    tasks: JoinSet<Result<(), ReplicateError>>,
    /// Extension messages of the peer and topic channels, by discovery key.
    inbox: mpsc::UnboundedSender<([u8; 32], Extension)>,
    peer: String,
    authorized: bool,
    hash: HandshakeHash,
    peer_channel: Option<Channel>,
}

impl Run {
    fn open_key(&mut self, key: [u8; 32]) {
        // Sent from a task: the command queue is bounded and only this loop drains it.
        let open = self.protocol.open(key);
        self.tasks.spawn(async move {
            let _ = open.await;
            Ok(())
        });
    }

    fn open(&mut self, discovery_key: [u8; 32]) {
        let key = match (
            self.offered.get(&discovery_key),
            self.topics.get(&discovery_key),
        ) {
            (Some(feed), _) => feed.key(),
            (None, Some(topic)) => *topic,
            (None, None) => return,
        };
        if !self.authorized || !self.opened.insert(discovery_key) {
            return;
        }
        self.open_key(key);
    }

    fn open_all(&mut self) {
        let keys: Vec<[u8; 32]> = self
            .offered
            .keys()
            .chain(self.topics.keys())
            .copied()
            .collect();
        for dk in keys {
            self.open(dk);
        }
    }

    fn send_on(&mut self, channel: &Channel, name: &str, message: Vec<u8>) {
        let send = channel.send_batch(&[Message::Extension(Extension {
            name: name.to_string(),
            message,
        })]);
        self.tasks.spawn(async move {
            let _ = send.await;
            Ok(())
        });
    }

    /// Forward the extension messages of a peer or topic channel to the loop.
    fn forward(&mut self, mut channel: Channel) -> Option<Channel> {
        let dk = *channel.discovery_key();
        let inbound = channel.take_receiver()?;
        let inbox = self.inbox.clone();
        self.tasks.spawn(async move {
            while let Ok(m) = inbound.recv().await {
                if let Message::Extension(e) = m
                    && inbox.send((dk, e)).is_err()
                {
                    break;
                }
            }
            Ok(())
        });
        Some(channel)
    }

    fn authorize(
        &mut self,
        who: [u8; 32],
        options: &Options,
        remote: &watch::Sender<Option<[u8; 32]>>,
    ) -> Result<(), ReplicateError> {
        self.peer = hex(&who);
        remote.send_replace(Some(who));
        if let Some(authorize) = &options.authorize
            && !authorize(&who)
        {
            return Err(ReplicateError::Refused {
                peer: self.peer.clone(),
            });
        }
        self.authorized = true;
        if let Some(events) = &options.events {
            let _ = events.send(SessionEvent::Authorized(who));
        }
        self.open_all();
        Ok(())
    }

    /// Handle an extension message of the peer or a topic channel.
    fn on_extension(
        &mut self,
        dk: [u8; 32],
        e: Extension,
        options: &Options,
        remote: &watch::Sender<Option<[u8; 32]>>,
    ) -> Result<(), ReplicateError> {
        if dk == discovery_key(&PEER_CHANNEL) {
            if e.name != PROOF_MESSAGE || self.authorized || options.identity.is_none() {
                return Ok(());
            }
            let proven = self
                .hash
                .get()
                .and_then(|h| identity::verify(&e.message, h, !self.initiator));
            return match proven {
                Some(who) => self.authorize(who, options, remote),
                None => Err(ReplicateError::BadIdentity {
                    peer: self.peer.clone(),
                }),
            };
        }
        if e.name != TOPIC_MESSAGE || !self.authorized {
            return Ok(());
        }
        if let (Some(topic), Some(events)) = (self.topics.get(&dk), &options.events) {
            let _ = events.send(SessionEvent::Topic {
                topic: *topic,
                message: e.message,
            });
        }
        Ok(())
    }
}

async fn run<T>(
    transport: T,
    initiator: bool,
    feeds: Vec<Arc<SharedFeed>>,
    options: Options,
    mut commands: mpsc::UnboundedReceiver<Command>,
    remote: watch::Sender<Option<[u8; 32]>>,
) -> Result<(), ReplicateError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (protocol, mut closed, hash) =
        hashed_protocol(transport, initiator, options.noise.as_ref()).map_err(|source| {
            ReplicateError::Protocol {
                peer: "unknown".into(),
                source,
            }
        })?;
    let (inbox, mut extensions) = mpsc::unbounded_channel();
    let mut s = Run {
        protocol,
        initiator,
        offered: feeds.into_iter().map(|f| (f.discovery_key(), f)).collect(),
        topics: HashMap::new(),
        topic_channels: HashMap::new(),
        opened: HashSet::new(),
        stops: HashMap::new(),
        tasks: JoinSet::new(),
        inbox,
        peer: "unknown".into(),
        authorized: false,
        hash,
        peer_channel: None,
    };
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let mut proof_deadline = far;
    let result = loop {
        tokio::select! {
            _ = closed.wait() => break Ok(()),
            _ = tokio::time::sleep_until(proof_deadline), if !s.authorized => {
                break Err(ReplicateError::BadIdentity { peer: s.peer.clone() });
            }
            Some(done) = s.tasks.join_next(), if !s.tasks.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(ReplicateError::Crashed { peer: s.peer.clone(), reason: e.to_string() }),
            },
            Some((dk, e)) = extensions.recv() => {
                if let Err(e) = s.on_extension(dk, e, &options, &remote) {
                    break Err(e);
                }
            }
            Some(cmd) = commands.recv() => match cmd {
                Command::Open(feed) => {
                    let dk = feed.discovery_key();
                    s.offered.entry(dk).or_insert(feed);
                    s.open(dk);
                }
                Command::OpenTopic(topic) => {
                    let dk = discovery_key(&topic);
                    s.topics.entry(dk).or_insert(topic);
                    s.open(dk);
                }
                Command::Send(topic, message) => {
                    if let Some(channel) = s.topic_channels.remove(&topic) {
                        s.send_on(&channel, TOPIC_MESSAGE, message);
                        s.topic_channels.insert(topic, channel);
                    }
                }
                Command::Close => break Ok(()),
            },
            ev = s.protocol.next() => match ev {
                None => break Ok(()),
                Some(Err(source)) => {
                    if closed.is_closed() {
                        break Ok(());
                    }
                    break Err(ReplicateError::Protocol { peer: s.peer.clone(), source });
                }
                Some(Ok(Event::Handshake(key))) => {
                    if options.identity.is_some() {
                        // Nothing opens before the remote proves who it is.
                        s.peer = hex(&key);
                        remote.send_replace(Some(key));
                        proof_deadline = tokio::time::Instant::now() + PROOF_WITHIN;
                        s.open_key(PEER_CHANNEL);
                    } else if let Err(e) = s.authorize(key, &options, &remote) {
                        break Err(e);
                    }
                }
                Some(Ok(Event::DiscoveryKey(dk))) => s.open(dk),
                Some(Ok(Event::Channel(mut channel))) => {
                    let dk = *channel.discovery_key();
                    if dk == discovery_key(&PEER_CHANNEL) {
                        let (Some(me), Some(h)) = (&options.identity, s.hash.get()) else {
                            continue;
                        };
                        let proof = identity::prove(me, h, initiator);
                        if let Some(channel) = s.forward(channel) {
                            s.send_on(&channel, PROOF_MESSAGE, proof);
                            s.peer_channel = Some(channel);
                        }
                        continue;
                    }
                    if let Some(topic) = s.topics.get(&dk).copied() {
                        if let Some(channel) = s.forward(channel) {
                            s.topic_channels.insert(topic, channel);
                            if let Some(events) = &options.events {
                                let _ = events.send(SessionEvent::TopicOpened(topic));
                            }
                        }
                        continue;
                    }
                    let (Some(feed), Some(inbound)) = (s.offered.get(&dk), channel.take_receiver()) else {
                        continue;
                    };
                    let (stop_tx, stop) = watch::channel(false);
                    s.stops.insert(dk, stop_tx);
                    let task = ChannelTask {
                        feed: feed.clone(),
                        channel,
                        inbound,
                        stop,
                        peer_name: s.peer.clone(),
                        grew: options.grew.clone(),
                        limits: options.limits,
                    };
                    s.tasks.spawn(task.run());
                }
                Some(Ok(Event::Close(dk))) => {
                    if let Some(stop) = s.stops.remove(&dk) {
                        stop.send_replace(true);
                    }
                    s.topic_channels.retain(|topic, _| discovery_key(topic) != dk);
                    s.opened.remove(&dk);
                }
                Some(Ok(_)) => {}
            },
        }
    };
    // Wind down: every channel commits what arrived, then stops.
    for stop in s.stops.values() {
        stop.send_replace(true);
    }
    drop(s.protocol);
    drop(s.topic_channels);
    drop(s.peer_channel);
    let mut tasks = s.tasks;
    let mut result = result;
    let wind_down = async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done
                && result.is_ok()
                && !matches!(e, ReplicateError::Ended { .. })
            {
                result = Err(e);
            }
        }
    };
    let _ = tokio::time::timeout(WIND_DOWN, wind_down).await;
    result
}
