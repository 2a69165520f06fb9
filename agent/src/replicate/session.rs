//! One replication session with one peer: a Noise XX handshake over a byte stream, the
//! authorization hook, then a protocol channel for every feed both sides offer (opened
//! only when the remote proves it knows the feed's key), each replicated by its own task.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hypercore_handshake::state_machine::hc_specific::{Keypair, generate_keypair};
use hypercore_handshake::{Cipher, CipherIo, HandshakePattern};
use hypercore_protocol::{Event, Protocol};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::channel::{ChannelTask, Grew};
use super::error::{ReplicateError, hex};
use super::frame::{Closed, Framed};
use super::peer::Limits;
use super::shared::SharedFeed;

/// A Noise static key pair (ed25519, as hypercore's secret stream uses).
pub type NoiseKeypair = Keypair;

/// Decides, from the remote's Noise static public key, whether to go on with a peer.
/// Called once, after the handshake and before any channel opens.
pub type Authorize = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// How long a finished session waits for its channel tasks to commit and stop.
const WIND_DOWN: Duration = Duration::from_secs(10);

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
    pub limits: Limits,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("noise", &self.noise.as_ref().map(|k| hex(&k.public)))
            .field("authorize", &self.authorize.is_some())
            .field("grew", &self.grew.is_some())
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
    Ok((Protocol::new(Box::new(cipher)), closed))
}

#[derive(Debug)]
enum Command {
    Open(Arc<SharedFeed>),
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

    /// End the session (its channels commit what arrived first).
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// The remote's Noise static public key, once the handshake is done.
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
    offered: HashMap<[u8; 32], Arc<SharedFeed>>,
    opened: HashSet<[u8; 32]>,
    stops: HashMap<[u8; 32], watch::Sender<bool>>,
    tasks: JoinSet<Result<(), ReplicateError>>,
    peer: String,
    authorized: bool,
}

impl Run {
    fn open(&mut self, discovery_key: [u8; 32]) {
        let Some(feed) = self.offered.get(&discovery_key) else {
            return;
        };
        if !self.authorized || !self.opened.insert(discovery_key) {
            return;
        }
        // Sent from a task: the command queue is bounded and only this loop drains it.
        let open = self.protocol.open(feed.key());
        self.tasks.spawn(async move {
            let _ = open.await;
            Ok(())
        });
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
    let (protocol, mut closed) =
        protocol(transport, initiator, options.noise.as_ref()).map_err(|source| {
            ReplicateError::Protocol {
                peer: "unknown".into(),
                source,
            }
        })?;
    let mut s = Run {
        protocol,
        offered: feeds.into_iter().map(|f| (f.discovery_key(), f)).collect(),
        opened: HashSet::new(),
        stops: HashMap::new(),
        tasks: JoinSet::new(),
        peer: "unknown".into(),
        authorized: false,
    };
    let result = loop {
        tokio::select! {
            _ = closed.wait() => break Ok(()),
            Some(done) = s.tasks.join_next(), if !s.tasks.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(ReplicateError::Crashed { peer: s.peer.clone(), reason: e.to_string() }),
            },
            Some(cmd) = commands.recv() => match cmd {
                Command::Open(feed) => {
                    let dk = feed.discovery_key();
                    s.offered.entry(dk).or_insert(feed);
                    s.open(dk);
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
                    s.peer = hex(&key);
                    remote.send_replace(Some(key));
                    if let Some(authorize) = &options.authorize
                        && !authorize(&key)
                    {
                        break Err(ReplicateError::Refused { peer: s.peer.clone() });
                    }
                    s.authorized = true;
                    let keys: Vec<[u8; 32]> = s.offered.keys().copied().collect();
                    for dk in keys {
                        s.open(dk);
                    }
                }
                Some(Ok(Event::DiscoveryKey(dk))) => s.open(dk),
                Some(Ok(Event::Channel(mut channel))) => {
                    let dk = *channel.discovery_key();
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
