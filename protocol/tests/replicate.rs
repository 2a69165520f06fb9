//! Replication between two peers over real byte streams (in-memory pipes and TCP on
//! loopback), with real feeds on disk: completeness, both directions, live appends,
//! capabilities, hostile peers, closed transports and kill -9 of a replicating process.
//! The traffic policy at this level is in `traffic.rs`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::replicate::{self, Options, ReplicateError};
use futures::StreamExt;
use hypercore_protocol::schema::{Data, Open, Range, Synchronize};
use hypercore_protocol::{Event, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::timeout;

#[path = "support/tcp.rs"]
mod tcp;
use tcp::tcp_pair;

#[path = "support/feeds.rs"]
mod feeds;
use cobox_keys::secret::hex;
use feeds::{LONG, assert_same, keys, replica, seed, until_held, writer};

/// Blocks of mixed sizes (1 byte to 70 KiB), each distinct.
fn blocks(n: usize, salt: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = match i % 7 {
                0 => 1,
                1 => 100,
                2 => 4096,
                3 => 70_000,
                4 => 513,
                5 => 16_384,
                _ => 33_333,
            };
            (0..len)
                .map(|j| (i as u32 * 31 + j as u32 * 7 + salt as u32) as u8)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_replica_receives_every_block_over_a_pipe_and_over_tcp() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(700, 1);
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    for (round, tcp) in [(0, false), (1, true)] {
        let copy = replica(&tmp.path().join(format!("b{round}")), 0).await;
        let (grew_tx, mut grew) = broadcast::channel(4096);
        let (sa, sb) = if tcp {
            let (a, b) = tcp_pair().await;
            let sa = replicate::spawn(a, true, [source.clone()], Options::default());
            let options = Options {
                grew: Some(grew_tx),
                ..Options::default()
            };
            (sa, replicate::spawn(b, false, [copy.clone()], options))
        } else {
            let (a, b) = tokio::io::duplex(256 * 1024);
            let sa = replicate::spawn(a, true, [source.clone()], Options::default());
            let options = Options {
                grew: Some(grew_tx),
                ..Options::default()
            };
            (sa, replicate::spawn(b, false, [copy.clone()], options))
        };
        until_held(&copy, data.len() as u64).await;
        assert_same(&copy, &data).await;
        assert!(!copy.lock().await.writable());
        // Growth was reported, durably, up to the full length.
        let mut last = None;
        while let Ok(g) = grew.try_recv() {
            assert_eq!(g.key, copy.key());
            last = Some(g.length);
        }
        assert_eq!(last, Some(data.len() as u64));
        sa.handle().close();
        timeout(LONG, sa.join()).await.unwrap().unwrap();
        timeout(LONG, sb.join()).await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_cannot_be_read_here_stops_alone_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let (d0, d1) = (blocks(200, 5), blocks(200, 6));
    let good = writer(&tmp.path().join("a0"), 0, &d0).await;
    let bad = writer(&tmp.path().join("a1"), 1, &d1).await;
    // The disk under one feed loses that feed's data.
    std::fs::OpenOptions::new()
        .write(true)
        .open(tmp.path().join("a1/data"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (c0, c1) = (
        replica(&tmp.path().join("b0"), 0).await,
        replica(&tmp.path().join("b1"), 1).await,
    );
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [good.clone(), bad.clone()], Options::default());
    let sb = replicate::spawn(b, false, [c0.clone(), c1.clone()], Options::default());
    until_held(&c0, 200).await;
    assert_same(&c0, &d0).await;
    timeout(LONG, async {
        while bad.fault().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the unreadable feed is marked");
    let fault = bad.fault().unwrap();
    assert!(fault.contains("data of block"), "{fault}");
    assert_eq!(good.fault(), None);
    assert_eq!(c1.held().contiguous, 0, "nothing unverifiable was stored");
    // The session goes on for the other feed.
    good.append(&[b"after the fault".to_vec()]).await.unwrap();
    until_held(&c0, 201).await;
    sb.handle().close();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_write_and_each_replicates_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (blocks(500, 2), blocks(300, 3));
    let a_own = writer(&tmp.path().join("a0"), 0, &da).await;
    let a_copy = replica(&tmp.path().join("a1"), 1).await;
    let b_own = writer(&tmp.path().join("b1"), 1, &db).await;
    let b_copy = replica(&tmp.path().join("b0"), 0).await;
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [a_own, a_copy.clone()], Options::default());
    let sb = replicate::spawn(b, false, [b_copy.clone(), b_own], Options::default());
    until_held(&a_copy, 300).await;
    until_held(&b_copy, 500).await;
    assert_same(&a_copy, &db).await;
    assert_same(&b_copy, &da).await;
    sb.handle().close();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_appends_reach_the_other_side_and_later_feeds_can_be_added() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = writer(&tmp.path().join("a"), 0, &blocks(3, 4)).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    until_held(&copy, 3).await;
    let mut all = blocks(3, 4);
    for round in 0..20u8 {
        let more = blocks(1 + round as usize % 3, 10 + round);
        source.append(&more).await.unwrap();
        all.extend(more);
        eprintln!("round {round}: {}", all.len());
        until_held(&copy, all.len() as u64).await;
    }
    assert_same(&copy, &all).await;

    // A feed offered by both sides after the session started replicates too.
    let data = blocks(50, 9);
    let late_source = writer(&tmp.path().join("a-late"), 7, &data).await;
    let late_copy = replica(&tmp.path().join("b-late"), 7).await;
    sa.handle().open(late_source).unwrap();
    sb.handle().open(late_copy.clone()).unwrap();
    until_held(&late_copy, 50).await;
    assert_same(&late_copy, &data).await;
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_remote_noise_key_is_known_and_a_refused_peer_gets_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = writer(&tmp.path().join("a"), 0, &blocks(20, 5)).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let noise = hypercore_handshake::state_machine::hc_specific::generate_keypair().unwrap();
    let b_public: [u8; 32] = noise.public.clone().try_into().unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let options = Options {
        authorize: Some(Arc::new(move |k: &[u8; 32]| {
            *seen2.lock().unwrap() = Some(*k);
            false
        })),
        ..Options::default()
    };
    let sa = replicate::spawn(a, true, [source], options);
    let sb = replicate::spawn(
        b,
        false,
        [copy.clone()],
        Options {
            noise: Some(noise),
            ..Options::default()
        },
    );
    let e = timeout(LONG, sa.join()).await.unwrap().unwrap_err();
    assert!(matches!(e, ReplicateError::Refused { .. }), "{e}");
    assert!(e.to_string().contains(&hex(&b_public)), "{e}");
    assert_eq!(*seen.lock().unwrap(), Some(b_public));
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    assert_eq!(copy.lock().await.len(), 0);
}

fn identity(n: u8) -> cobox_keys::SigningKeyPair {
    cobox_keys::derive::identity(&Secret32::from_bytes([n; 32]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_proven_in_the_session_and_topics_carry_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(50, 9);
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let (alice, bob) = (identity(1), identity(2));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let session = |me: &cobox_keys::SigningKeyPair| {
        let seen = seen.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let options = Options {
            identity: Some(me.clone()),
            authorize: Some(Arc::new(move |k: &[u8; 32]| {
                seen.lock().unwrap().push(*k);
                true
            })),
            events: Some(tx),
            ..Options::default()
        };
        (options, rx)
    };
    let (oa, mut ea) = session(&alice);
    let (ob, mut eb) = session(&bob);
    let (a, b) = tcp_pair().await;
    let sa = replicate::spawn(a, true, [source], oa);
    let sb = replicate::spawn(b, false, [copy.clone()], ob);
    until_held(&copy, data.len() as u64).await;
    assert_same(&copy, &data).await;
    // Each side saw the other's identity, not a Noise key.
    let mut seen_keys = seen.lock().unwrap().clone();
    seen_keys.sort();
    let mut want = vec![alice.public.0, bob.public.0];
    want.sort();
    assert_eq!(seen_keys, want);
    assert_eq!(sa.handle().remote_key(), Some(bob.public.0));
    assert_eq!(sb.handle().remote_key(), Some(alice.public.0));
    // A topic both offer opens and carries messages both ways; one only A offers does not.
    let topic = [42u8; 32];
    sa.handle().open_topic(topic).unwrap();
    sa.handle().open_topic([43u8; 32]).unwrap();
    sb.handle().open_topic(topic).unwrap();
    async fn until(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<replicate::SessionEvent>,
        want: replicate::SessionEvent,
    ) {
        timeout(LONG, async {
            while let Some(e) = rx.recv().await {
                if e == want {
                    return;
                }
            }
            panic!("session ended before {want:?}");
        })
        .await
        .unwrap();
    }
    until(&mut ea, replicate::SessionEvent::TopicOpened(topic)).await;
    until(&mut eb, replicate::SessionEvent::TopicOpened(topic)).await;
    sa.handle().send(topic, b"hello".to_vec()).unwrap();
    sb.handle().send(topic, b"there".to_vec()).unwrap();
    until(
        &mut eb,
        replicate::SessionEvent::Topic {
            topic,
            message: b"hello".to_vec(),
        },
    )
    .await;
    until(
        &mut ea,
        replicate::SessionEvent::Topic {
            topic,
            message: b"there".to_vec(),
        },
    )
    .await;
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_identity_refused_by_the_hook_receives_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = writer(&tmp.path().join("a"), 0, &blocks(20, 5)).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let (alice, mallory) = (identity(1), identity(3));
    let refused = mallory.public.0;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let sa = replicate::spawn(
        a,
        true,
        [source],
        Options {
            identity: Some(alice),
            authorize: Some(Arc::new(move |k: &[u8; 32]| *k != refused)),
            ..Options::default()
        },
    );
    let sb = replicate::spawn(
        b,
        false,
        [copy.clone()],
        Options {
            identity: Some(mallory.clone()),
            ..Options::default()
        },
    );
    let e = timeout(LONG, sa.join()).await.unwrap().unwrap_err();
    assert!(matches!(e, ReplicateError::Refused { .. }), "{e}");
    assert!(e.to_string().contains(&hex(&mallory.public.0)), "{e}");
    let _ = timeout(LONG, sb.join()).await.unwrap();
    assert_eq!(
        copy.lock().await.len(),
        0,
        "a refused peer receives zero blocks"
    );
}

/// A hand-driven peer on the raw protocol: what it received, by kind.
#[derive(Debug, Default)]
struct Seen {
    channels: Vec<[u8; 32]>,
    data: usize,
}

#[tokio::test]
async fn a_peer_that_knows_only_the_discovery_key_receives_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = writer(&tmp.path().join("secret"), 0, &blocks(30, 6)).await;
    let common = writer(&tmp.path().join("common"), 1, &blocks(2, 6)).await;
    let dk = secret.discovery_key();
    for capability in [None, Some(vec![7u8; 32])] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let victim = replicate::spawn(
            a,
            true,
            [secret.clone(), common.clone()],
            Options::default(),
        );
        let (mut p, mut closed) = replicate::protocol(b, false, None).unwrap();
        let mut seen = Seen::default();
        let mut rxs: Vec<hypercore_protocol::ChannelReceiver<Message>> = Vec::new();
        let run = async {
            loop {
                tokio::select! {
                    _ = closed.wait() => break,
                    ev = p.next() => match ev {
                        None | Some(Err(_)) => break,
                        Some(Ok(Event::Handshake(_))) => p.open(common.key()).await.unwrap(),
                        Some(Ok(Event::Channel(mut ch))) => {
                            seen.channels.push(*ch.discovery_key());
                            let rx = ch.take_receiver().unwrap();
                            // Claim the secret feed with a guessed capability.
                            ch.send(Message::Open(Open {
                                channel: 9,
                                protocol: "hypercore/alpha".into(),
                                discovery_key: dk.to_vec(),
                                capability: capability.clone(),
                            }))
                            .await
                            .unwrap();
                            rxs.push(rx);
                        }
                        Some(Ok(_)) => {}
                    },
                    m = async { match rxs.first() { Some(rx) => rx.recv().await.ok(), None => std::future::pending().await } } => {
                        if let Some(Message::Data(_)) = m {
                            seen.data += 1;
                        }
                    }
                }
            }
        };
        timeout(LONG, run).await.unwrap();
        assert!(!seen.channels.contains(&dk), "{seen:?}");
        assert_eq!(seen.data, 0);
        let e = timeout(LONG, victim.join()).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("capability"), "{e}");
    }
}

#[tokio::test]
async fn a_peer_sending_corrupted_data_is_disconnected_and_nothing_invalid_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(40, 7);
    let k = keys(0);
    let mut evil = Feed::open(&tmp.path().join("evil"), k.public.0, Some(&seed(&k)))
        .await
        .unwrap();
    evil.append_batch(&data).await.unwrap();
    let copy = replica(&tmp.path().join("b"), 0).await;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let victim = replicate::spawn(a, false, [copy.clone()], Options::default());
    let (mut p, mut closed) = replicate::protocol(b, true, None).unwrap();
    let mut rx: Option<hypercore_protocol::ChannelReceiver<Message>> = None;
    let mut channel = None;
    let run = async {
        loop {
            tokio::select! {
                _ = closed.wait() => break,
                ev = p.next() => match ev {
                    None | Some(Err(_)) => break,
                    Some(Ok(Event::Handshake(_))) => p.open(k.public.0).await.unwrap(),
                    Some(Ok(Event::Channel(mut ch))) => {
                        rx = ch.take_receiver();
                        ch.send_batch(&[
                            Message::Synchronize(Synchronize { fork: 0, length: 40, remote_length: 0, downloading: true, uploading: true, can_upgrade: true }),
                            Message::Range(Range { drop: false, start: 0, length: 40 }),
                        ]).await.unwrap();
                        channel = Some(ch);
                    }
                    Some(Ok(_)) => {}
                },
                m = async { match &rx { Some(rx) => rx.recv().await.ok(), None => std::future::pending().await } } => {
                    let Some(Message::Request(r)) = m else { continue };
                    let proof = evil.core_mut().create_proof(r.block, r.hash, None, r.upgrade).unwrap().unwrap();
                    let mut block = proof.block;
                    if let Some(b) = block.as_mut() {
                        // Honest upgrade, forged block contents.
                        b.value[0] ^= 0x55;
                    }
                    let d = Data { request: r.id, fork: 0, block, hash: proof.hash, seek: None, upgrade: proof.upgrade };
                    if channel.as_ref().unwrap().send(Message::Data(d)).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    timeout(LONG, run).await.expect("the victim hung up");
    let e = timeout(LONG, victim.join()).await.unwrap().unwrap_err();
    assert!(matches!(e, ReplicateError::InvalidData { .. }), "{e}");
    assert!(e.to_string().contains(&hex(&k.public.0)), "{e}");
    let mut f = copy.lock().await;
    for i in 0..40 {
        assert_eq!(f.get(i).await.unwrap(), None, "block {i}");
    }
}

/// A transport that can be cut: reads then see the end, writes fail.
struct Cut<T> {
    inner: T,
    cut: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Cut<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Cut<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.cut.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_closing_mid_transfer_ends_the_session_and_a_new_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(1500, 8);
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let copy = replica(&tmp.path().join("b"), 0).await;
    let (a, b) = tcp_pair().await;
    let cut = Arc::new(AtomicBool::new(false));
    let b = Cut {
        inner: b,
        cut: cut.clone(),
    };
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    until_held(&copy, 200).await;
    cut.store(true, Ordering::SeqCst);
    // Both ends notice, without hanging.
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    let had = copy.held().contiguous;
    assert!((200..1500).contains(&had), "cut mid-transfer at {had}");

    let (a, b) = tokio::io::duplex(128 * 1024);
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    until_held(&copy, 1500).await;
    assert_same(&copy, &data).await;
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
}

const CHILD_ENV: &str = "COBOX_REPLICATE_CRASH_CHILD";

/// Not a test on its own: the child process of the crash test (it replicates into a
/// replica until killed).
#[tokio::test]
async fn crash_child_replicates_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, addr) = spec.split_once('|').unwrap();
    let copy = replica(Path::new(dir), 0).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    // Report every growth the session acknowledges (it is durable by then).
    let (grew_tx, mut grew) = broadcast::channel::<replicate::Grew>(1024);
    tokio::spawn(async move {
        use std::io::Write;
        let mut out = std::io::stdout();
        loop {
            match grew.recv().await {
                Ok(g) => {
                    writeln!(out, "grew {}", g.contiguous).unwrap();
                    out.flush().unwrap();
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let options = Options {
        grew: Some(grew_tx),
        ..Options::default()
    };
    let s = replicate::spawn(stream, true, [copy], options);
    let _ = s.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_transfer_reopens_intact_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = blocks(1400, 11);
    let total: u64 = data.iter().map(|b| b.len() as u64).sum();
    let source = writer(&tmp.path().join("a"), 0, &data).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = source.clone();
    let server = tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let _ = replicate::spawn(s, false, [serving.clone()], Options::default());
        }
    });
    let dir = tmp.path().join("b");
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("crash points from seed {rng}");
    for round in 0..4 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A random point past what earlier rounds already received.
        let had = std::fs::metadata(dir.join("data")).map_or(0, |m| m.len());
        let target = had + rng % total.saturating_sub(had).max(1);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_replicates_until_killed",
                "--nocapture",
            ])
            .env(CHILD_ENV, format!("{}|{addr}", dir.display()))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The most the child reported as grown (contiguously, durably).
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut grew = 0u64;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("grew ") {
                    grew = grew.max(n.parse().unwrap());
                }
            }
            grew
        });
        // Kill once the replica's data passes a random size (or the child ends by itself).
        let mut waited = 0;
        while waited < 3000 {
            let size = std::fs::metadata(dir.join("data")).map_or(0, |m| m.len());
            if size >= target || child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            waited += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let grew = reader.join().unwrap();
        let mut f = Feed::open(&dir, keys(0).public.0, None).await.unwrap();
        assert!(
            f.contiguous_len() >= grew,
            "round {round}: reopened with {} contiguous blocks, {grew} were reported grown",
            f.contiguous_len()
        );
        let mut present = 0;
        for i in 0..f.len() {
            if let Some(b) = f.get(i).await.unwrap() {
                assert_eq!(b, data[i as usize], "round {round}: block {i}");
                present += 1;
            }
        }
        eprintln!(
            "round {round}: killed past {target} bytes, {grew} reported grown; reopened with {present} of {} blocks",
            f.len()
        );
    }
    let copy = replica(&dir, 0).await;
    let (a, b) = tokio::io::duplex(128 * 1024);
    let sa = replicate::spawn(a, true, [source.clone()], Options::default());
    let sb = replicate::spawn(b, false, [copy.clone()], Options::default());
    if timeout(
        Duration::from_secs(10),
        until_held(&copy, data.len() as u64),
    )
    .await
    .is_err()
    {
        sa.handle().close();
        eprintln!("sa {:?}", timeout(LONG, sa.join()).await);
        eprintln!("sb {:?}", timeout(LONG, sb.join()).await);
        let mut f = copy.lock().await;
        let missing: Vec<u64> = (0..f.len()).filter(|&i| !f.core_mut().has(i)).collect();
        panic!("missing {missing:?}");
    }
    assert_same(&copy, &data).await;
    sa.handle().close();
    timeout(LONG, sa.join()).await.unwrap().unwrap();
    timeout(LONG, sb.join()).await.unwrap().unwrap();
    server.abort();
}
