//! The iroh transport between real endpoints: streams on loopback (integrity, the proven
//! remote identity, end of stream on close), refusal by the allow hook, replication over
//! it, and mDNS discovery between two network namespaces.

use cobox_tests::lan::Lan;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::feed::SharedFeed;
use cobox_protocol::replicate::{self, Options};
use cobox_protocol::transport::iroh::{IrohOptions, IrohTransport, Relays, TransportError};
use cobox_schema::hexkey::Address;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

#[path = "support/iroh.rs"]
mod support;
use support::{allow_all, identity, loopback, pair};

const LONG: Duration = Duration::from_secs(60);

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[salt as usize % 4] ^ salt)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_each_way_arrives_intact_and_closing_is_an_end_of_stream() {
    timeout(LONG, async {
        let (ta, tb, sa, sb, seen) = pair(1, 2).await;
        assert_eq!(
            seen,
            identity(2).1,
            "accept names the dialler's identity key"
        );
        assert_eq!(tb.id(), identity(2).1);
        assert_eq!(ta.id(), identity(1).1);
        assert_eq!(sb.peer(), identity(1).1);

        let (to_b, to_a) = (pattern(1 << 20, 1), pattern(1 << 20, 2));
        let exchange = |stream: cobox_protocol::transport::iroh::IrohStream, out: Vec<u8>| async move {
            let (mut r, mut w) = tokio::io::split(stream);
            let write = async move {
                w.write_all(&out).await.unwrap();
                w
            };
            let read = async move {
                let mut got = vec![0u8; 1 << 20];
                r.read_exact(&mut got).await.unwrap();
                (r, got)
            };
            let (w, (r, got)) = tokio::join!(write, read);
            (r.unsplit(w), got)
        };
        let ((sa, got_a), (mut sb, got_b)) =
            tokio::join!(exchange(sa, to_b.clone()), exchange(sb, to_a.clone()));
        assert!(got_a == to_a, "A received B's mebibyte intact");
        assert!(got_b == to_b, "B received A's mebibyte intact");

        // A drops its end: B reads the end of the stream.
        drop(sa);
        let mut buf = [0u8; 16];
        assert_eq!(sb.read(&mut buf).await.unwrap(), 0);
        assert_eq!(sb.read(&mut buf).await.unwrap(), 0, "and keeps reading it");
        drop(sb);

        // A closes its whole endpoint under a live stream: B's read is an end of stream
        // too, not an error.
        let a_addrs = ta.local_addrs();
        let (accepted, dialled) = tokio::join!(ta.accept(), tb.dial(ta.id(), &a_addrs));
        let (_, sa) = accepted.unwrap().unwrap();
        let mut sb = dialled.unwrap();
        ta.close().await;
        assert_eq!(sb.read(&mut buf).await.unwrap(), 0);
        drop(sa);
        // Writing into the closed connection may fail; reading never does.
        let _ = sb.write_all(b"after the close").await;
        assert_eq!(sb.read(&mut buf).await.unwrap(), 0);
        assert!(
            ta.accept().await.is_none(),
            "a closed endpoint accepts nothing"
        );
        tb.close().await;
    })
    .await
    .expect("the exchange finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_the_allow_hook_rejects_is_refused_and_never_reaches_accept() {
    timeout(LONG, async {
        let refused = identity(4).1;
        let ta = IrohTransport::bind(loopback(3), Arc::new(move |id| *id != refused))
            .await
            .unwrap();
        let tb = IrohTransport::bind(loopback(4), allow_all()).await.unwrap();
        let tc = IrohTransport::bind(loopback(5), allow_all()).await.unwrap();

        let err = tb.dial(ta.id(), &ta.local_addrs()).await.unwrap_err();
        match &err {
            TransportError::Refused { peer } => assert_eq!(peer.0, ta.id()),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "peer {} refused the connection",
                cobox_schema::hexkey::PublicKey(ta.id())
            )
        );
        // A second attempt is refused the same way.
        assert!(matches!(
            tb.dial(ta.id(), &ta.local_addrs()).await,
            Err(TransportError::Refused { .. })
        ));
        // Nothing of B's reached A's caller; an allowed peer still gets through.
        let a_addrs = ta.local_addrs();
        let (accepted, dialled) = tokio::join!(ta.accept(), tc.dial(ta.id(), &a_addrs));
        let (seen, _stream) = accepted.unwrap().unwrap();
        assert_eq!(seen, identity(5).1, "the first stream A accepts is C's");
        dialled.unwrap();
        assert!(
            timeout(Duration::from_millis(500), ta.accept())
                .await
                .is_err(),
            "nothing else is waiting at A"
        );
        for t in [ta, tb, tc] {
            t.close().await;
        }
    })
    .await
    .expect("the refusal finished in time");
}

fn feed_keys() -> cobox_keys::SigningKeyPair {
    cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 0)
}

/// Blocks of mixed sizes, each distinct.
fn blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| pattern([1, 100, 4096, 70_000, 513, 16_384][i % 6], i as u8))
        .collect()
}

async fn writer(dir: &Path, data: &[Vec<u8>]) -> Arc<SharedFeed> {
    let k = feed_keys();
    let seed: [u8; 32] = k.secret_bytes()[..32].try_into().unwrap();
    let mut f = Feed::open(dir, k.public.0, Some(&seed)).await.unwrap();
    for chunk in data.chunks(100) {
        f.append_batch(chunk).await.unwrap();
    }
    SharedFeed::new(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_receives_every_block_over_an_iroh_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(300);
    let source = writer(&tmp.path().join("a"), &data).await;
    let copy = SharedFeed::new(
        Feed::open(&tmp.path().join("b"), feed_keys().public.0, None)
            .await
            .unwrap(),
    );
    let (ta, tb, sa, sb, _) = pair(6, 7).await;
    // The dialler (B) is the Noise initiator.
    let session_a = replicate::spawn(sa, false, [source.clone()], Options::default());
    let session_b = replicate::spawn(sb, true, [copy.clone()], Options::default());
    let mut held = copy.subscribe();
    timeout(LONG, async {
        while held.borrow_and_update().contiguous < data.len() as u64 {
            held.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("replica incomplete: {:?}", copy.held()));
    {
        let mut f = copy.lock().await;
        assert_eq!(f.len(), data.len() as u64);
        for (i, b) in data.iter().enumerate() {
            assert_eq!(
                f.get(i as u64).await.unwrap().as_ref(),
                Some(b),
                "block {i}"
            );
        }
    }
    session_b.handle().close();
    timeout(LONG, session_b.join()).await.unwrap().unwrap();
    timeout(LONG, session_a.join()).await.unwrap().unwrap();
    ta.close().await;
    tb.close().await;
}

/// Runs `f` on a thread inside host `i` of `lan`, which enters only the network namespace.
fn run_on<T: Send + 'static>(
    lan: &Lan,
    i: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{}", lan.host(i));
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open the namespace");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("enter the namespace");
        f()
    })
}

fn on_the_lan(n: u8) -> IrohOptions {
    IrohOptions {
        identity_seed: identity(n).0,
        bind: None,
        relays: Relays::Disabled,
        portmapper: false,
        mdns: true,
        mainline: false,
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn two_devices_on_a_lan_find_each_other_by_mdns_and_connect() {
    let lan = Lan::new(2, 79);
    let (a_id, b_id) = (identity(8).1, identity(9).1);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let a = run_on(&lan, 0, move || {
        block_on(async move {
            let t = IrohTransport::bind(on_the_lan(8), allow_all())
                .await
                .unwrap();
            let (seen, mut stream) = timeout(LONG, t.accept())
                .await
                .expect("B connected in time")
                .unwrap()
                .unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            stream.flush().await.unwrap();
            // Keep the endpoint up until B has its answer.
            let _ = tokio::task::spawn_blocking(move || done_rx.recv_timeout(LONG)).await;
            t.close().await;
            seen
        })
    });
    let b = run_on(&lan, 1, move || {
        block_on(async move {
            let t = IrohTransport::bind(on_the_lan(9), allow_all())
                .await
                .unwrap();
            let started = tokio::time::Instant::now();
            // No address hint: the address comes from mDNS, which may need a few rounds.
            let mut stream = loop {
                match t.dial(a_id, &[]).await {
                    Ok(stream) => break stream,
                    Err(e) if started.elapsed() < LONG => {
                        eprintln!("dial by mDNS not yet: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => panic!("A was never found: {e}"),
                }
            };
            let took = started.elapsed();
            stream.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            let _ = done_tx.send(());
            t.close().await;
            (buf, took)
        })
    });
    let seen = a.join().expect("A's side");
    let (echo, took) = b.join().expect("B's side");
    println!("found and connected over mDNS in {took:?}");
    assert_eq!(seen, b_id, "A accepted B by its identity key");
    assert_eq!(&echo, b"hello");
    drop(lan);
}
