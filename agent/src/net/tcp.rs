//! Plain TCP: listeners on the configured addresses and a dialler per configured peer
//! (`host:port`), each connection carrying one session (Noise XX as hypercore's
//! `replicate()` over a socket; identities proven inside it).
//!
//! A dialler keeps its peer connected: after a failed dial or an ended session it waits
//! (1 s, doubling to 60 s; back to 1 s after a session that lasted a minute) and dials
//! again, unless a session with that peer's identity is running anyway (it dialled us).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cobox_schema::config::Peer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{Network, log_end};
use crate::backoff::Backoff;

/// A session that lasted this long resets the dialler's wait.
const STABLE: Duration = Duration::from_secs(60);
/// A silent connection is probed after this long, every `PROBE_EVERY`, and given up after
/// `PROBES` unanswered probes; unacknowledged data gives it up after `UNACKED_FOR`. The
/// protocol has no keep-alive of its own, and a peer whose link went down must not hold
/// its session (and so the peer's one session) for the kernel's default quarter of an hour.
const IDLE_BEFORE_PROBE: Duration = Duration::from_secs(5);
const PROBE_EVERY: Duration = Duration::from_secs(2);
const PROBES: u32 = 3;
const UNACKED_FOR: Duration = Duration::from_secs(15);

/// Nagle off (it halves replication throughput) and dead peers noticed within seconds.
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(IDLE_BEFORE_PROBE)
        .with_interval(PROBE_EVERY)
        .with_retries(PROBES);
    if let Err(e) = sock.set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot set tcp keep-alive");
    }
    if let Err(e) = sock.set_tcp_user_timeout(Some(UNACKED_FOR)) {
        tracing::debug!(error = %e, "cannot set the tcp user timeout");
    }
}

/// The TCP side of the network: what listens and what dials, one planned resource each.
#[derive(Debug, Default)]
pub struct Tcp {
    listeners: BTreeMap<SocketAddr, (SocketAddr, JoinHandle<()>)>,
    dialers: BTreeMap<String, JoinHandle<()>>,
}

impl Drop for Tcp {
    fn drop(&mut self) {
        for (_, task) in self.listeners.values() {
            task.abort();
        }
        for task in self.dialers.values() {
            task.abort();
        }
    }
}

impl Tcp {
    /// Listen on `addr` (kept as it is when already listening); the address bound. Must
    /// run inside the runtime.
    pub fn listen(&mut self, net: &Network, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        if let Some((bound, task)) = self.listeners.get(&addr)
            && !task.is_finished()
        {
            return Ok(*bound);
        }
        let l = bind(addr)?;
        let bound = l.local_addr().unwrap_or(addr);
        tracing::info!(address = %bound, "listening for peers over tcp");
        let task = tokio::spawn(accept_loop(net.clone(), l));
        self.listeners.insert(addr, (bound, task));
        Ok(bound)
    }

    pub fn stop_listening(&mut self, addr: &SocketAddr) {
        if let Some((_, task)) = self.listeners.remove(addr) {
            task.abort();
        }
    }

    /// Keep dialling `peer` (started once; its sessions kept). Must run inside the runtime.
    pub fn dial(&mut self, net: &Network, peer: &Peer) {
        self.dialers
            .entry(peer.to_string())
            .or_insert_with(|| tokio::spawn(dial_loop(net.clone(), peer.clone())));
    }

    pub fn stop_dialing(&mut self, peer: &str) {
        if let Some(task) = self.dialers.remove(peer) {
            task.abort();
        }
    }

    /// The listeners running: configured address → address bound. One whose task ended
    /// is dropped (and so planned again).
    pub fn listeners(&mut self) -> BTreeMap<SocketAddr, SocketAddr> {
        self.listeners.retain(|_, (_, task)| !task.is_finished());
        self.listeners
            .iter()
            .map(|(a, (bound, _))| (*a, *bound))
            .collect()
    }

    /// The `peers` entries being dialled, as written.
    pub fn dialers(&self) -> std::collections::BTreeSet<String> {
        self.dialers.keys().cloned().collect()
    }

    /// The addresses actually bound (port 0 resolved), sorted.
    pub fn bound(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = self.listeners.values().map(|(b, _)| *b).collect();
        out.sort();
        out
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

async fn accept_loop(net: Network, listener: TcpListener) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a tcp connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tune(&stream);
        let net = net.clone();
        tokio::spawn(async move {
            let via = super::link::Via::Tcp(from.to_string());
            let (who, ended) = net.connect(stream, via, false, None).await;
            log_end(&from.to_string(), who, ended);
        });
    }
}

async fn dial_loop(net: Network, peer: Peer) {
    let target = if peer.host.contains(':') {
        format!("[{}]:{}", peer.host, peer.port)
    } else {
        format!("{}:{}", peer.host, peer.port)
    };
    let mut known = peer.key.map(|k| k.0);
    let mut wait = None;
    let mut rosters = net.watch_rosters();
    loop {
        if known.is_some_and(|k| net.is_connected(&k)) {
            tokio::time::sleep(Backoff::DIAL.first).await;
            continue;
        }
        match TcpStream::connect(&target).await {
            // Dialling a local port nobody listens on can connect the socket to itself
            // (TCP simultaneous open with the same ephemeral port), which would hold the
            // port the peer is about to listen on: dropped at once.
            Ok(stream) if stream.local_addr().ok() == stream.peer_addr().ok() => {
                tracing::debug!(peer = %target, "dial connected to itself; dropped");
            }
            Ok(stream) => {
                tune(&stream);
                let started = tokio::time::Instant::now();
                let via = super::link::Via::Tcp(target.clone());
                let (who, ended) = net.connect(stream, via, true, peer.key.map(|k| k.0)).await;
                known = known.or(who);
                log_end(&target, who, ended);
                if started.elapsed() >= STABLE {
                    wait = None;
                }
            }
            Err(e) => tracing::debug!(peer = %target, error = %e, "dial failed"),
        }
        let next = Backoff::DIAL.after(wait);
        wait = Some(next);
        // A roster that learned something may admit the peer (or the peer us) now: try
        // again at once rather than after the backoff.
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            Ok(()) = rosters.changed() => wait = None,
        }
    }
}
