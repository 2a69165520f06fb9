//! Replication of a space between two devices, disk to disk, over TCP on loopback: one
//! member writes a large file (1 GiB by default) into its space; a second member, admitted
//! by invite, dials it and the time is taken until its drive shows the file with every
//! block stored durably. Compared, in the same run, with a plain TCP copy of the same
//! bytes (the writer's content feed file). Both devices run in this process with the
//! agent's own space, network and TCP code (no FUSE).
//!
//! Run: `cargo bench -p coboxd --bench agents` (size: `COBOX_BENCH_MIB`, default 1024)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::{Secret32, SpaceKeys};
use cobox_schema::config::Peer;
use coboxd::net::Network;
use coboxd::net::tcp::Tcp;
use coboxd::space::Space;
use coboxd::space::roster::{Role, Roster, Statement};
use tokio::sync::Mutex;

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

    println!("replicating it to device B over TCP loopback, disk to disk:");
    for round in 0..2 {
        let b_dir = tmp.path().join(format!("b{round}"));
        let b = Arc::new(Mutex::new(member(&b_dir, &pb, &keys, ia.public.0).await));
        let net_a = Network::new(tokio::runtime::Handle::current(), ia.clone());
        let net_b = Network::new(tokio::runtime::Handle::current(), ib.clone());
        net_a.add_space("bench", a.clone(), &[]).await.unwrap();
        net_b.add_space("bench", b.clone(), &[]).await.unwrap();
        let (mut ta, mut tb) = (Tcp::default(), Tcp::default());
        assert!(
            ta.configure(&net_a, &["127.0.0.1:0".parse().unwrap()], &[])
                .is_empty()
        );
        let port = ta.bound()[0].port();
        let start = Instant::now();
        let peer = Peer {
            host: "127.0.0.1".into(),
            port,
            key: None,
        };
        assert!(tb.configure(&net_b, &[], &[peer]).is_empty());
        loop {
            let done = {
                let b = b.lock().await;
                b.node("big.bin").is_some_and(|n| n.size == total)
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The drive shows the file once its log entry arrived; wait for every block.
        let content = a.lock().await.content_key();
        loop {
            let feed = b.lock().await.feeds_mut().get(&content).await.unwrap();
            if let Some(f) = feed
                && f.held().contiguous >= total / (64 * 1024)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let repl = start.elapsed();
        drop((ta, tb));
        let plain = plain_copy(&content_file, &tmp.path().join(format!("plain{round}"))).await;
        println!(
            "  round {round}: devices {:>7.1} MiB/s ({:.2} s)   plain TCP copy {:>7.1} MiB/s ({:.2} s)   ratio {:.3}",
            mib_s(total, repl),
            repl.as_secs_f64(),
            mib_s(total, plain),
            plain.as_secs_f64(),
            plain.as_secs_f64() / repl.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&b_dir);
        let _ = std::fs::remove_file(tmp.path().join(format!("plain{round}")));
    }
}
