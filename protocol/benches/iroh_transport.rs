//! The iroh transport on loopback: how long a dial takes (QUIC handshake, allow hook and
//! the hello exchange, until both sides hold the stream), next to a bare iroh QUIC connect
//! (handshake only, no stream); and the bulk rate of 256 MiB over one stream, next to plain
//! TCP loopback in the same run. Both endpoints run in this
//! process, on the same cores; relays, lookup and port mapping are off.
//!
//! Run: `cargo bench -p cobox-protocol --bench iroh_transport`

use std::time::{Duration, Instant};

use cobox_protocol::transport::iroh::{ALPN, IrohTransport};
use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey, TransportAddr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[path = "../tests/support/iroh.rs"]
mod support;
#[path = "../tests/support/tcp.rs"]
mod tcp;

const DIALS: usize = 200;
const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 256 * 1024 * 1024;

async fn dial_once(a: &IrohTransport, b: &IrohTransport) -> Duration {
    let addrs = a.local_addrs();
    let start = Instant::now();
    let (accepted, dialled) = tokio::join!(a.accept(), b.dial(a.id(), &addrs));
    let took = start.elapsed();
    let _ = (accepted.unwrap().unwrap(), dialled.unwrap());
    took
}

/// A bare endpoint on 127.0.0.1 with nothing but direct addresses.
async fn bare_endpoint(seed: u8) -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&[seed; 32]))
        .alpns(vec![ALPN.to_vec()])
        .relay_mode(RelayMode::Disabled)
        .portmapper_config(iroh::endpoint::PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .bind()
        .await
        .unwrap()
}

/// `DIALS` bare QUIC connects (until the dialler's handshake is done), sorted.
async fn bare_connects() -> Vec<Duration> {
    let (a, b) = (bare_endpoint(11).await, bare_endpoint(12).await);
    let acceptor = a.clone();
    let accept = tokio::spawn(async move {
        while let Some(incoming) = acceptor.accept().await {
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    conn.closed().await;
                }
            });
        }
    });
    let addr =
        EndpointAddr::new(a.id()).with_addrs(a.bound_sockets().into_iter().map(TransportAddr::Ip));
    let mut took = Vec::with_capacity(DIALS);
    for _ in 0..DIALS + 1 {
        let start = Instant::now();
        let conn = b.connect(addr.clone(), ALPN).await.unwrap();
        took.push(start.elapsed());
        conn.close(0u32.into(), b"done");
    }
    took.remove(0);
    took.sort();
    b.close().await;
    a.close().await;
    accept.abort();
    took
}

fn quantiles(label: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{label}: {} runs: min {:.2} ms, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        sorted.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0),
    );
}

/// Sends `TOTAL` bytes from `w` to `r`; the time until the reader saw the end of stream.
async fn bulk<W, R>(mut w: W, mut r: R) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let start = Instant::now();
    let send = tokio::spawn(async move {
        let chunk = vec![0x5a_u8; CHUNK];
        for _ in 0..TOTAL / CHUNK {
            w.write_all(&chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
        w
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    let took = start.elapsed();
    assert_eq!(got, TOTAL, "every byte arrived");
    drop(send.await.unwrap());
    took
}

fn mib_per_s(took: Duration) -> f64 {
    TOTAL as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = IrohTransport::bind(support::loopback(1), support::allow_all())
        .await
        .unwrap();
    let b = IrohTransport::bind(support::loopback(2), support::allow_all())
        .await
        .unwrap();

    let first = dial_once(&a, &b).await;
    let mut dials = Vec::with_capacity(DIALS);
    for _ in 0..DIALS {
        dials.push(dial_once(&a, &b).await);
    }
    dials.sort();
    println!(
        "dial to stream, loopback: first {:.2} ms",
        first.as_secs_f64() * 1e3
    );
    quantiles("dial to stream, loopback", &dials);
    quantiles(
        "bare iroh QUIC connect (no stream), loopback",
        &bare_connects().await,
    );

    // Wait for the connections of the dial run to wind down before measuring the rate.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (accepted, dialled) = {
        let addrs = a.local_addrs();
        tokio::join!(a.accept(), b.dial(a.id(), &addrs))
    };
    let (_, sa) = accepted.unwrap().unwrap();
    let sb = dialled.unwrap();
    let took = bulk(sb, sa).await;
    println!(
        "256 MiB over one iroh stream, loopback: {:.2} s, {:.0} MiB/s",
        took.as_secs_f64(),
        mib_per_s(took)
    );

    let (ta, tb) = tcp::tcp_pair().await;
    let took = bulk(ta, tb).await;
    println!(
        "256 MiB over plain TCP, loopback (same run): {:.2} s, {:.0} MiB/s",
        took.as_secs_f64(),
        mib_per_s(took)
    );

    a.close().await;
    b.close().await;
}
