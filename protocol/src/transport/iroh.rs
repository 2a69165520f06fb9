//! Byte streams between devices over iroh (QUIC): dialled by identity key, the remote's
//! identity proven by TLS, unwanted peers refused before any stream, addresses found on the
//! LAN (mDNS) or the internet (mainline DHT).
//!
//! One connection carries one bidirectional stream. The dialler opens it and writes a
//! one-byte hello (a QUIC stream reaches the acceptor only once written to); the acceptor
//! answers with a one-byte welcome, so `dial` knows the other side let it in. After that the
//! dialler writes first again: it is the Noise initiator of the replication session.
//!
//! Refusal: the acceptor's allow hook runs after the TLS handshake and closes the connection
//! with code 403. The dialler's QUIC connect may still succeed; the hello exchange then fails
//! and `dial` reports [`TransportError::Refused`].
//!
//! Reads on an [`IrohStream`] never fail: every read error (connection lost, reset, closed
//! by the application) is an end of stream, as the replication stack requires.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cobox_schema::hexkey::PublicKey;
use iroh::address_lookup::AddrFilter;
use iroh::endpoint::{
    AfterHandshakeOutcome, ConnectError, ConnectingError, Connection, ConnectionError,
    EndpointHooks, Incoming, PortmapperConfig, RecvStream, SendStream, Side, VarInt, presets,
};
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, TransportAddr};
use iroh_mainline_address_lookup::DhtAddressLookup;
use iroh_mdns_address_lookup::MdnsAddressLookup;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The ALPN of cobox replication streams.
pub const ALPN: &[u8] = b"cobox/1";
/// The mDNS service name devices announce themselves under.
pub const MDNS_SERVICE: &str = "coboxd";
/// The QUIC application close code of a connection the allow hook refused.
pub const REFUSED_CODE: u32 = 403;
/// How long an accepted connection may take to open its stream and say hello, and a dialled
/// one to answer it.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dropped stream keeps its connection open for the peer to acknowledge what was
/// written.
pub const LINGER: Duration = Duration::from_secs(5);

const HELLO: u8 = 0xc1;
const WELCOME: u8 = 0xc2;
const ACCEPT_QUEUE: usize = 16;

/// Which relay servers the endpoint uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relays {
    /// n0's public relays.
    Default,
    /// Our own relays, by URL.
    Custom(Vec<String>),
    /// No relay: direct connections only.
    Disabled,
}

/// How the endpoint binds and finds peers. Nothing is on unless asked for.
#[derive(Clone)]
pub struct IrohOptions {
    /// The device's ed25519 identity seed: the endpoint id is the identity public key.
    pub identity_seed: [u8; 32],
    /// UDP bind address; `None` binds any port on all interfaces (IPv4 and IPv6).
    pub bind: Option<SocketAddr>,
    pub relays: Relays,
    /// UPnP / PCP / NAT-PMP port mapping (UPnP discovery multicasts on the LAN).
    pub portmapper: bool,
    /// LAN lookup via mDNS, service name [`MDNS_SERVICE`].
    pub mdns: bool,
    /// Internet lookup via the mainline DHT. With relays it publishes only the relay URL;
    /// without relays it publishes the direct addresses (there is nothing else to find).
    pub mainline: bool,
}

impl fmt::Debug for IrohOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrohOptions")
            .field("bind", &self.bind)
            .field("relays", &self.relays)
            .field("portmapper", &self.portmapper)
            .field("mdns", &self.mdns)
            .field("mainline", &self.mainline)
            .finish_non_exhaustive()
    }
}

/// Decides which remote identities may connect (called in the handshake hook, before any stream).
pub type Allow = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// Why the transport failed. Peers are named by their identity public key.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind the iroh endpoint: {reason}")]
    Bind { reason: String },
    #[error("invalid relay url {url:?}: {reason}")]
    RelayUrl { url: String, reason: String },
    #[error("peer {peer} is not a valid ed25519 public key")]
    InvalidPeer { peer: PublicKey },
    #[error("cannot connect to peer {peer}: {reason}")]
    Connect { peer: PublicKey, reason: String },
    #[error("peer {peer} refused the connection")]
    Refused { peer: PublicKey },
    #[error("stream with peer {peer} failed: {reason}")]
    Stream { peer: PublicKey, reason: String },
    #[error("peer {peer} did not open its stream within {} s", HELLO_TIMEOUT.as_secs())]
    Timeout { peer: PublicKey },
}

type Accepted = Result<([u8; 32], IrohStream), TransportError>;

/// An iroh endpoint that dials and accepts cobox streams.
pub struct IrohTransport {
    endpoint: Endpoint,
    accepted: Mutex<mpsc::Receiver<Accepted>>,
    accept_loop: JoinHandle<()>,
}

impl fmt::Debug for IrohTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrohTransport")
            .field("id", &PublicKey(self.id()))
            .finish_non_exhaustive()
    }
}

/// Refuses incoming connections from identities `allow` rejects. Outgoing ones are ours.
struct AllowHook(Allow);

impl fmt::Debug for AllowHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AllowHook")
    }
}

impl EndpointHooks for AllowHook {
    fn after_handshake<'a>(
        &'a self,
        conn: &'a Connection,
    ) -> impl Future<Output = AfterHandshakeOutcome> + Send + 'a {
        let allowed = conn.side() == Side::Client || (self.0)(conn.remote_id().as_bytes());
        if !allowed {
            tracing::debug!(peer = %PublicKey(*conn.remote_id().as_bytes()), "refused by the allow list");
        }
        async move {
            if allowed {
                AfterHandshakeOutcome::Accept
            } else {
                AfterHandshakeOutcome::Reject {
                    error_code: VarInt::from_u32(REFUSED_CODE),
                    reason: b"not allowed".to_vec(),
                }
            }
        }
    }
}

impl IrohTransport {
    /// Binds the endpoint and starts accepting connections.
    pub async fn bind(options: IrohOptions, allow: Allow) -> Result<Self, TransportError> {
        let secret = SecretKey::from_bytes(&options.identity_seed);
        let relay_mode = match &options.relays {
            Relays::Default => RelayMode::Default,
            Relays::Disabled => RelayMode::Disabled,
            Relays::Custom(urls) => {
                let parsed = urls
                    .iter()
                    .map(|url| {
                        url.parse::<RelayUrl>()
                            .map_err(|e| TransportError::RelayUrl {
                                url: url.clone(),
                                reason: e.to_string(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RelayMode::custom(parsed)
            }
        };
        // `Minimal` only installs the TLS crypto provider: no DNS, no pkarr, no relays.
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .alpns(vec![ALPN.to_vec()])
            .relay_mode(relay_mode)
            .portmapper_config(if options.portmapper {
                PortmapperConfig::default()
            } else {
                PortmapperConfig::Disabled
            })
            .hooks(AllowHook(allow));
        if let Some(addr) = options.bind {
            builder = builder.clear_ip_transports().bind_addr(addr).map_err(|e| {
                TransportError::Bind {
                    reason: format!("{addr}: {e}"),
                }
            })?;
        }
        if options.mdns {
            builder =
                builder.address_lookup(MdnsAddressLookup::builder().service_name(MDNS_SERVICE));
        }
        if options.mainline {
            let filter = if options.relays == Relays::Disabled {
                AddrFilter::unfiltered()
            } else {
                AddrFilter::relay_only()
            };
            builder = builder.address_lookup(DhtAddressLookup::builder().addr_filter(filter));
        }
        let endpoint = builder.bind().await.map_err(|e| TransportError::Bind {
            reason: e.to_string(),
        })?;
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let accept_loop = tokio::spawn(accept_loop(endpoint.clone(), tx));
        Ok(IrohTransport {
            endpoint,
            accepted: Mutex::new(rx),
            accept_loop,
        })
    }

    /// Our endpoint id: the identity public key.
    pub fn id(&self) -> [u8; 32] {
        *self.endpoint.id().as_bytes()
    }

    /// The UDP addresses the endpoint is bound to (unspecified addresses stay unspecified).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.bound_sockets()
    }

    /// Dials `id`; `addrs` are optional direct hints (empty: rely on the lookup services).
    /// We are the Noise initiator on the returned stream.
    pub async fn dial(
        &self,
        id: [u8; 32],
        addrs: &[SocketAddr],
    ) -> Result<IrohStream, TransportError> {
        let peer = PublicKey(id);
        let key =
            iroh::PublicKey::from_bytes(&id).map_err(|_| TransportError::InvalidPeer { peer })?;
        let addr = EndpointAddr::new(key).with_addrs(addrs.iter().map(|a| TransportAddr::Ip(*a)));
        let conn =
            self.endpoint
                .connect(addr, ALPN)
                .await
                .map_err(|e| match connect_close(&e) {
                    Some(close) if is_refusal(close) => TransportError::Refused { peer },
                    _ => TransportError::Connect {
                        peer,
                        reason: e.to_string(),
                    },
                })?;
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(&[HELLO]).await.map_err(|e| e.to_string())?;
            let mut welcome = [0u8; 1];
            recv.read_exact(&mut welcome)
                .await
                .map_err(|e| e.to_string())?;
            if welcome[0] != WELCOME {
                return Err(format!("answered {:#04x} to hello", welcome[0]));
            }
            Ok((send, recv))
        };
        match timeout(HELLO_TIMEOUT, exchange).await {
            Ok(Ok((send, recv))) => Ok(IrohStream::new(id, conn, send, recv)),
            Ok(Err(reason)) => match conn.close_reason() {
                Some(close) if is_refusal(&close) => Err(TransportError::Refused { peer }),
                _ => Err(TransportError::Stream { peer, reason }),
            },
            Err(_) => Err(TransportError::Timeout { peer }),
        }
    }

    /// The next accepted connection's stream with the TLS-proven remote id; `None` once the
    /// endpoint is closed. Refused peers and connections that fail before their identity is
    /// proven never show up here.
    pub async fn accept(&self) -> Option<Accepted> {
        self.accepted.lock().await.recv().await
    }

    /// Closes every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
        self.accept_loop.abort();
    }
}

impl Drop for IrohTransport {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Accepts connections, each admitted in its own task so a slow peer holds up nobody.
async fn accept_loop(endpoint: Endpoint, tx: mpsc::Sender<Accepted>) {
    while let Some(incoming) = endpoint.accept().await {
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Some(accepted) = admit(incoming).await {
                let _ = tx.send(accepted).await;
            }
        });
    }
}

async fn admit(incoming: Incoming) -> Option<Accepted> {
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(error = %e, "incoming connection ended before it was accepted");
            return None;
        }
    };
    let id = *conn.remote_id().as_bytes();
    let peer = PublicKey(id);
    let hello = async {
        let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let mut hello = [0u8; 1];
        recv.read_exact(&mut hello)
            .await
            .map_err(|e| e.to_string())?;
        if hello[0] != HELLO {
            return Err(format!(
                "opened with {:#04x}, not the cobox hello",
                hello[0]
            ));
        }
        send.write_all(&[WELCOME])
            .await
            .map_err(|e| e.to_string())?;
        Ok((send, recv))
    };
    Some(match timeout(HELLO_TIMEOUT, hello).await {
        Ok(Ok((send, recv))) => Ok((id, IrohStream::new(id, conn, send, recv))),
        Ok(Err(reason)) => Err(TransportError::Stream { peer, reason }),
        Err(_) => Err(TransportError::Timeout { peer }),
    })
}

fn connect_close(e: &ConnectError) -> Option<&ConnectionError> {
    match e {
        ConnectError::Connecting {
            source: ConnectingError::ConnectionError { source, .. },
            ..
        } => Some(source),
        ConnectError::Connection { source, .. } => Some(source),
        _ => None,
    }
}

fn is_refusal(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::ApplicationClosed(close)
        if close.error_code == VarInt::from_u32(REFUSED_CODE))
}

/// One bidirectional stream with a peer. It keeps its connection alive while it lives; when
/// dropped it finishes its sending side and lets the connection linger (up to [`LINGER`]) for
/// the peer to acknowledge what was written.
pub struct IrohStream {
    peer: [u8; 32],
    conn: Connection,
    send: Option<SendStream>,
    recv: RecvStream,
    read_ended: bool,
}

impl fmt::Debug for IrohStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrohStream")
            .field("peer", &PublicKey(self.peer))
            .finish_non_exhaustive()
    }
}

impl IrohStream {
    fn new(peer: [u8; 32], conn: Connection, send: SendStream, recv: RecvStream) -> Self {
        IrohStream {
            peer,
            conn,
            send: Some(send),
            recv,
            read_ended: false,
        }
    }

    /// The remote's identity public key (proven by the TLS handshake).
    pub fn peer(&self) -> [u8; 32] {
        self.peer
    }

    /// A handle that tells, whenever asked, which way the connection's data goes.
    pub fn route_probe(&self) -> RouteProbe {
        RouteProbe(self.conn.clone())
    }
}

/// Which way a connection's data goes: the path iroh selected. It may change while the
/// connection lives (through a relay until a direct path is found, and back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the peer's address.
    Direct(SocketAddr),
    /// Through the relay server at this URL.
    Relay(String),
    /// No path selected now (or one of a custom transport).
    Unknown,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct(a) => write!(f, "direct {a}"),
            Route::Relay(url) => write!(f, "relay {url}"),
            Route::Unknown => f.write_str("no path selected"),
        }
    }
}

/// Tells the [`Route`] of one connection; keeps it open while held.
#[derive(Clone)]
pub struct RouteProbe(Connection);

impl fmt::Debug for RouteProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RouteProbe").field(&self.route()).finish()
    }
}

impl RouteProbe {
    /// The path selected now.
    pub fn route(&self) -> Route {
        let paths = self.0.paths();
        let selected = paths.iter().find(|p| p.is_selected());
        match selected.as_ref().map(|p| p.remote_addr()) {
            Some(TransportAddr::Ip(a)) => Route::Direct(*a),
            Some(TransportAddr::Relay(url)) => Route::Relay(url.to_string()),
            _ => Route::Unknown,
        }
    }
}

impl AsyncRead for IrohStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_ended {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.recv).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => {
                tracing::debug!(peer = %PublicKey(this.peer), error = %e, "stream read ended");
                this.read_ended = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

fn no_send() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the stream is closed")
}

impl AsyncWrite for IrohStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().send.as_mut() {
            Some(send) => AsyncWrite::poll_write(Pin::new(send), cx, buf),
            None => Poll::Ready(Err(no_send())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().send.as_mut() {
            Some(send) => Pin::new(send).poll_flush(cx),
            None => Poll::Ready(Err(no_send())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().send.as_mut() {
            Some(send) => Pin::new(send).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for IrohStream {
    fn drop(&mut self) {
        let Some(mut send) = self.send.take() else {
            return;
        };
        // Already finished or reset is fine: there is nothing more to deliver either way.
        let _ = send.finish();
        let conn = self.conn.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = timeout(LINGER, send.stopped()).await;
                drop(conn);
            });
        }
    }
}
