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

const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(60);
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

/// The TCP side of the network: what listens and what dials.
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
    /// Listen on exactly `listen` and dial exactly `peers`: starts what is new, stops what
    /// is gone, keeps the rest (and their sessions) as they are. Must run inside the
    /// runtime. Returns the addresses that could not be bound, with why.
    pub fn configure(
        &mut self,
        net: &Network,
        listen: &[SocketAddr],
        peers: &[Peer],
    ) -> Vec<(SocketAddr, std::io::Error)> {
        let mut failed = Vec::new();
        self.listeners.retain(|addr, (_, task)| {
            let keep = listen.contains(addr) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for addr in listen {
            if self.listeners.contains_key(addr) {
                continue;
            }
            match bind(*addr) {
                Ok(l) => {
                    let bound = l.local_addr().unwrap_or(*addr);
                    tracing::info!(address = %bound, "listening for peers over tcp");
                    let task = tokio::spawn(accept_loop(net.clone(), l));
                    self.listeners.insert(*addr, (bound, task));
                }
                Err(e) => failed.push((*addr, e)),
            }
        }
        let wanted: BTreeMap<String, &Peer> = peers.iter().map(|p| (p.to_string(), p)).collect();
        self.dialers.retain(|name, task| {
            let keep = wanted.contains_key(name);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, peer) in wanted {
            self.dialers
                .entry(name)
                .or_insert_with(|| tokio::spawn(dial_loop(net.clone(), peer.clone())));
        }
        failed
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
            let (who, ended) = net.connect(stream, false, None).await;
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
    let mut wait = FIRST_WAIT;
    loop {
        if known.is_some_and(|k| net.is_connected(&k)) {
            tokio::time::sleep(FIRST_WAIT).await;
            continue;
        }
        match TcpStream::connect(&target).await {
            Ok(stream) => {
                tune(&stream);
                let started = tokio::time::Instant::now();
                let (who, ended) = net.connect(stream, true, peer.key.map(|k| k.0)).await;
                known = known.or(who);
                log_end(&target, who, ended);
                if started.elapsed() >= STABLE {
                    wait = FIRST_WAIT;
                }
            }
            Err(e) => tracing::debug!(peer = %target, error = %e, "dial failed"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}
