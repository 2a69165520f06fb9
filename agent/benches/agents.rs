//! Replication of a space between two devices, disk to disk, on loopback over TCP and over
//! iroh (QUIC): one member writes a large file (1 GiB by default) into its space; a second
//! member, admitted by invite, dials it and the time is taken until its drive shows the
//! file with every block stored durably. Compared, in the same run, with a plain TCP copy
//! of the same bytes (the writer's content feed file). Both devices run in this process
//! with the agent's own space, network, TCP and iroh code (no FUSE).
//!
//! Run: `cargo bench -p coboxd --bench agents` (size: `COBOX_BENCH_MIB`, default 1024)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::{Secret32, SpaceKeys};
use cobox_schema::config::Peer;
use coboxd::net::Network;
use coboxd::net::link::Via;
use coboxd::net::tcp::Tcp;
use coboxd::replicate::Traffic;
use coboxd::space::Space;
use coboxd::space::roster::{Role, Roster, Statement};
use coboxd::transport::iroh::{IrohOptions, IrohTransport, Relays};
use tokio::sync::Mutex;

#[path = "../../protocol/benches/support/mod.rs"]
mod support;
use support::copy::plain_copy;

const CHUNK: usize = 1024 * 1024;

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Open `keys` as the member with parent key `parent` under `dir`, admitting `other`.
async fn member(dir: &Path, parent: &Secret32, keys: &SpaceKeys, other: [u8; 32]) -> Space {
    let me = cobox_keys::derive::identity(parent);
    let space = Space::open(dir, parent, keys.clone(), "bench")
        .await
        .unwrap();
    let address = keys.address.0;
    Roster::member(address, me.public.0)
        .add_and_keep(
            &space.layout().roster(),
            [Statement::allow(&me, &address, Role::Member, other)],
        )
        .unwrap();
    space
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: u64 = std::env::var("COBOX_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let tmp = tempfile::tempdir().unwrap();
    let keys = SpaceKeys::generate("bench");
    let (pa, pb) = (Secret32::from_bytes([1; 32]), Secret32::from_bytes([2; 32]));
    let (ia, ib) = (
        cobox_keys::derive::identity(&pa),
        cobox_keys::derive::identity(&pb),
    );
    let mut a = member(&tmp.path().join("a"), &pa, &keys, ib.public.0).await;
    println!("writing {mib} MiB into the space of device A ...");
    let mut stream = a.begin_content();
    let mut chunk = vec![0u8; CHUNK];
    for i in 0..total / CHUNK as u64 {
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = ((i as usize * 131 + j * 7) ^ (j >> 9)) as u8;
        }
        a.content_write(&mut stream, &chunk).await.unwrap();
    }
    let extent = a.content_finish(stream).await.unwrap();
    a.put_file("big.bin", extent, 0o644, 0).await.unwrap();
    let content_file = a.layout().feed(&a.content_key()).join("data");
    let a = Arc::new(Mutex::new(a));
    println!("replicating it to device B on loopback, disk to disk, over TCP and over iroh:");

    let content = a.lock().await.content_key();
    for round in 0..2 {
        for transport in ["tcp", "iroh"] {
            let b_dir = tmp.path().join(format!("b-{transport}{round}"));
            let b = Arc::new(Mutex::new(member(&b_dir, &pb, &keys, ia.public.0).await));
            let net_a = Network::new(tokio::runtime::Handle::current(), ia.clone());
            let net_b = Network::new(tokio::runtime::Handle::current(), ib.clone());
            net_a
                .add_space("bench", a.clone(), Traffic::unlimited())
                .await
                .unwrap();
            net_b
                .add_space("bench", b.clone(), Traffic::unlimited())
                .await
                .unwrap();
            let start = Instant::now();
            let link = connect(transport, &net_a, &net_b, &pa, &pb).await;
            until_replicated(&b, content, total).await;
            let took = start.elapsed();
            link.close().await;
            let plain = plain_copy(
                &content_file,
                &tmp.path().join(format!("plain-{transport}{round}")),
            )
            .await;
            println!(
                "  round {round} {transport:>4}: devices {:>7.1} MiB/s ({:.2} s)   plain TCP copy {:>7.1} MiB/s ({:.2} s)   ratio {:.3}",
                mib_s(total, took),
                took.as_secs_f64(),
                mib_s(total, plain),
                plain.as_secs_f64(),
                plain.as_secs_f64() / took.as_secs_f64()
            );
            let _ = std::fs::remove_dir_all(&b_dir);
            let _ = std::fs::remove_file(tmp.path().join(format!("plain-{transport}{round}")));
        }
    }
}

/// What keeps a connection between the two devices up.
enum Link {
    Tcp(Tcp, Tcp),
    Iroh(Arc<IrohTransport>, Arc<IrohTransport>),
}

impl Link {
    async fn close(self) {
        match self {
            Link::Tcp(a, b) => drop((a, b)),
            Link::Iroh(a, b) => {
                a.close().await;
                b.close().await;
            }
        }
    }
}

/// Connect device B to device A over `transport`; B dials.
async fn connect(
    transport: &str,
    net_a: &Network,
    net_b: &Network,
    pa: &Secret32,
    pb: &Secret32,
) -> Link {
    if transport == "tcp" {
        let (mut ta, mut tb) = (Tcp::default(), Tcp::default());
        let bound = ta.listen(net_a, "127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = Peer {
            host: "127.0.0.1".into(),
            port: bound.port(),
            key: None,
        };
        tb.dial(net_b, &peer);
        return Link::Tcp(ta, tb);
    }
    let bind = |parent: &Secret32| IrohOptions {
        identity_seed: *cobox_keys::derive::identity_seed(parent).expose(),
        bind: Some("127.0.0.1:0".parse().unwrap()),
        relays: Relays::Disabled,
        portmapper: false,
        mdns: false,
        mainline: false,
    };
    let ta = Arc::new(
        IrohTransport::bind(bind(pa), Arc::new(|_| true))
            .await
            .unwrap(),
    );
    let tb = Arc::new(
        IrohTransport::bind(bind(pb), Arc::new(|_| true))
            .await
            .unwrap(),
    );
    let (accepting, serving) = (ta.clone(), net_a.clone());
    tokio::spawn(async move {
        while let Some(Ok((who, stream))) = accepting.accept().await {
            let net = serving.clone();
            tokio::spawn(async move {
                let via = Via::Iroh(stream.route_probe());
                net.connect(stream, via, false, Some(who)).await
            });
        }
    });
    let stream = tb.dial(ta.id(), &ta.local_addrs()).await.unwrap();
    let (net, who) = (net_b.clone(), ta.id());
    let via = Via::Iroh(stream.route_probe());
    tokio::spawn(async move { net.connect(stream, via, true, Some(who)).await });
    Link::Iroh(ta, tb)
}

/// Wait until B's drive shows the file and B holds every block of A's content feed.
async fn until_replicated(b: &Arc<Mutex<Space>>, content: [u8; 32], total: u64) {
    loop {
        let shown = b
            .lock()
            .await
            .node("big.bin")
            .is_some_and(|n| n.size == total);
        let held = match b.lock().await.feeds_mut().get(&content).await.unwrap() {
            Some(f) => f.held().contiguous,
            None => 0,
        };
        if shown && held >= total.div_ceil(64 * 1024) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
