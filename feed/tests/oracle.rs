//! The feed core against the reference implementation of the format (the `hypercore` crate
//! 0.16, a test-only dependency): the same files for the same appends, each opening the
//! other's feeds, the same proofs for the same requests, and replication both ways through
//! proofs in random orders.

use std::path::Path;

use cobox_feed::Core;
use cobox_feed::crypto::Signer;
use hypercore::{Hypercore, HypercoreBuilder, PartialKeypair, SigningKey, Storage};
use hypercore_schema::{Proof, RequestBlock, RequestUpgrade};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SEED: [u8; 32] = [7; 32];

fn public() -> [u8; 32] {
    Signer::from_seed(&SEED).public()
}

/// Blocks of varied sizes (0 to 3,000 bytes), deterministic.
fn blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = (i * 7919) % 3001;
            (0..len).map(|j| (i * 31 + j) as u8).collect()
        })
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

async fn theirs(dir: &Path, writer: bool) -> Hypercore {
    let storage = Storage::new_disk(&dir.to_path_buf(), false).await.unwrap();
    let signing = SigningKey::from_bytes(&SEED);
    HypercoreBuilder::new(storage)
        .key_pair(PartialKeypair {
            public: signing.verifying_key(),
            secret: writer.then_some(signing),
        })
        .build()
        .await
        .unwrap()
}

async fn reopen_theirs(dir: &Path) -> Hypercore {
    let storage = Storage::new_disk(&dir.to_path_buf(), false).await.unwrap();
    HypercoreBuilder::new(storage)
        .open(true)
        .build()
        .await
        .unwrap()
}

fn ours(dir: &Path, writer: bool) -> Core {
    Core::open(dir, public(), writer.then_some(&SEED)).unwrap()
}

fn append_ours(core: &mut Core, blocks: &[Vec<u8>], batch: usize) {
    for chunk in blocks.chunks(batch) {
        core.append(chunk).unwrap();
        core.commit().unwrap();
    }
}

#[test]
fn the_same_appends_make_the_same_files_and_each_opens_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("theirs"), tmp.path().join("ours"));
    let data = blocks(3_000);
    rt().block_on(async {
        let mut h = theirs(&a, true).await;
        for chunk in data.chunks(97) {
            h.append_batch(chunk).await.unwrap();
        }
    });
    let mut o = ours(&b, true);
    append_ours(&mut o, &data, 97);
    drop(o);
    // Ours opens theirs (replaying its log) and reads every block.
    let (mut o, opened) = Core::open_reporting(&a, public(), Some(&SEED)).unwrap();
    assert!(opened.migrated, "{opened:?}");
    assert_eq!((opened.cut, opened.unmarked), (0, 0), "{opened:?}");
    assert_eq!(o.len(), 3_000);
    assert_eq!(o.contiguous_len(), 3_000);
    for (i, d) in data.iter().enumerate() {
        assert!(o.get(i as u64).unwrap().as_ref() == Some(d), "block {i}");
    }
    drop(o);
    // Byte for byte the same data, tree and bitfield, and the same signed head.
    for name in ["data", "tree", "bitfield"] {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x == y, "{name}: {} and {} bytes differ", x.len(), y.len());
    }
    let head = |dir: &Path| {
        let oplog = std::fs::read(dir.join("oplog")).unwrap();
        cobox_feed::header::read(&oplog).unwrap().unwrap().0
    };
    assert_eq!(head(&a), head(&b));
    // Theirs opens ours and reads every block.
    rt().block_on(async {
        let mut h = reopen_theirs(&b).await;
        assert_eq!(h.info().length, 3_000);
        assert_eq!(
            h.info().byte_length,
            data.iter().map(|d| d.len() as u64).sum()
        );
        for (i, d) in data.iter().enumerate() {
            assert!(
                h.get(i as u64).await.unwrap().as_ref() == Some(d),
                "block {i}"
            );
        }
        // And still appends to it.
        h.append(b"more").await.unwrap();
    });
    let mut o = ours(&b, true);
    assert_eq!(o.len(), 3_001);
    assert_eq!(o.get(3_000).unwrap().unwrap(), b"more");
}

/// Strip a proof down to what the wire carries.
fn shape(p: &Proof) -> String {
    let nodes = |ns: &[hypercore_schema::Node]| {
        ns.iter()
            .map(|n| format!("{}:{}:{}", n.index, n.length, cobox_feed::hex(&n.hash[..4])))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "fork {} block {:?} upgrade {:?}",
        p.fork,
        p.block
            .as_ref()
            .map(|b| (b.index, b.value.len(), nodes(&b.nodes))),
        p.upgrade.as_ref().map(|u| (
            u.start,
            u.length,
            nodes(&u.nodes),
            nodes(&u.additional_nodes),
            cobox_feed::hex(&u.signature[..4])
        ))
    )
}

#[test]
fn every_request_gets_the_proof_hypercore_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("theirs"), tmp.path().join("ours"));
    let n = 45u64;
    let data = blocks(n as usize);
    let rt = rt();
    let mut h = rt.block_on(async {
        let mut h = theirs(&a, true).await;
        h.append_batch(&data).await.unwrap();
        h
    });
    let mut o = ours(&b, true);
    append_ours(&mut o, &data, 45);
    let (mut compared, mut panics) = (0, 0);
    for index in 0..n {
        for nodes in 0..8 {
            let block = RequestBlock { index, nodes };
            let mut cases = vec![(Some(block.clone()), None)];
            for start in (0..n).step_by(4) {
                for length in [1, 3, 8, n - start] {
                    if start + length <= n {
                        let up = RequestUpgrade { start, length };
                        cases.push((Some(block.clone()), Some(up.clone())));
                        cases.push((None, Some(up)));
                    }
                }
            }
            for (block, upgrade) in cases {
                // The reference panics on some requests ("nodes need to be present").
                let t = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(h.create_proof(block.clone(), None, None, upgrade.clone()))
                }));
                let Ok(t) = t else {
                    panics += 1;
                    continue;
                };
                let u = o.create_proof(block.clone(), None, None, upgrade.clone());
                match (t, u) {
                    (Ok(Some(t)), Ok(Some(u))) => {
                        assert_eq!(shape(&t), shape(&u), "{block:?} {upgrade:?}");
                        assert_eq!(t, u, "{block:?} {upgrade:?}");
                        compared += 1;
                    }
                    (Err(_), Err(_)) => {}
                    (t, u) => panic!("{block:?} {upgrade:?}: hypercore {t:?}, ours {u:?}"),
                }
            }
        }
    }
    assert!(compared > 10_000, "{compared} compared, {panics} panics");
}

/// One side of a replication: what a replica needs from a writer.
trait Side {
    fn len(&mut self) -> u64;
    fn has(&mut self, i: u64) -> bool;
    fn missing_nodes(&mut self, i: u64) -> u64;
    fn prove(&mut self, block: Option<RequestBlock>, up: Option<RequestUpgrade>) -> Proof;
    fn apply(&mut self, p: &Proof) -> bool;
    fn get(&mut self, i: u64) -> Option<Vec<u8>>;
    fn append(&mut self, blocks: &[Vec<u8>]);
}

impl Side for Core {
    fn len(&mut self) -> u64 {
        Core::len(self)
    }
    fn has(&mut self, i: u64) -> bool {
        Core::has(self, i)
    }
    fn missing_nodes(&mut self, i: u64) -> u64 {
        Core::missing_nodes(self, i).unwrap()
    }
    fn prove(&mut self, block: Option<RequestBlock>, up: Option<RequestUpgrade>) -> Proof {
        self.create_proof(block, None, None, up).unwrap().unwrap()
    }
    fn apply(&mut self, p: &Proof) -> bool {
        let ok = self.verify_and_apply_proof(p).is_ok();
        self.commit().unwrap();
        ok
    }
    fn get(&mut self, i: u64) -> Option<Vec<u8>> {
        Core::get(self, i).unwrap()
    }
    fn append(&mut self, blocks: &[Vec<u8>]) {
        Core::append(self, blocks).unwrap();
        self.commit().unwrap();
    }
}

struct Theirs(Hypercore, tokio::runtime::Runtime);

impl Side for Theirs {
    fn len(&mut self) -> u64 {
        self.0.info().length
    }
    fn has(&mut self, i: u64) -> bool {
        self.0.has(i)
    }
    fn missing_nodes(&mut self, i: u64) -> u64 {
        self.1.block_on(self.0.missing_nodes(i)).unwrap()
    }
    fn prove(&mut self, block: Option<RequestBlock>, up: Option<RequestUpgrade>) -> Proof {
        self.1
            .block_on(self.0.create_proof(block, None, None, up))
            .unwrap()
            .unwrap()
    }
    fn apply(&mut self, p: &Proof) -> bool {
        self.1
            .block_on(self.0.verify_and_apply_proof(p))
            .unwrap_or(false)
    }
    fn get(&mut self, i: u64) -> Option<Vec<u8>> {
        self.1.block_on(self.0.get(i)).unwrap()
    }
    fn append(&mut self, blocks: &[Vec<u8>]) {
        self.1.block_on(self.0.append_batch(blocks)).unwrap();
    }
}

/// Replicate `writer` into `replica` in stages: the writer grows, the replica asks for an
/// upgrade (with a block or not) and then for blocks in the order `order` gives.
fn replicate(
    writer: &mut dyn Side,
    replica: &mut dyn Side,
    data: &[Vec<u8>],
    stages: &[usize],
    order: &[u64],
    with_block: bool,
) {
    let mut written = 0;
    for &stage in stages {
        let upto = (written + stage).min(data.len());
        writer.append(&data[written..upto]);
        written = upto;
        let (have, want) = (replica.len(), writer.len());
        if want > have {
            let block = with_block.then(|| RequestBlock {
                index: have + order[have as usize % order.len()] % (want - have),
                nodes: 0,
            });
            let p = writer.prove(
                block,
                Some(RequestUpgrade {
                    start: have,
                    length: want - have,
                }),
            );
            assert!(replica.apply(&p), "upgrade {have}..{want}");
            assert_eq!(replica.len(), want);
        }
        let mut wanted: Vec<u64> = (0..want).filter(|&i| !replica.has(i)).collect();
        wanted.sort_by_key(|&i| order[i as usize % order.len()].wrapping_mul(i + 1));
        for i in wanted {
            let nodes = replica.missing_nodes(i);
            let p = writer.prove(Some(RequestBlock { index: i, nodes }), None);
            assert!(replica.apply(&p), "block {i} with {nodes} missing nodes");
        }
    }
    for (i, d) in data[..written].iter().enumerate() {
        let got = replica.get(i as u64);
        assert!(
            got.as_ref() == Some(d),
            "block {i}: {:?} bytes, not {}",
            got.map(|g| g.len()),
            d.len()
        );
    }
}

#[test]
fn replication_through_proofs_works_both_ways_in_any_order() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(1usize..40, 1..6),
        proptest::collection::vec(0u64..1000, 1..50),
        any::<bool>(),
        0u8..4,
    );
    runner
        .run(&strategy, |(stages, order, mut with_block, pair)| {
            let tmp = tempfile::tempdir().unwrap();
            let data = blocks(stages.iter().sum());
            let (w, r) = (tmp.path().join("w"), tmp.path().join("r"));
            let (mut writer, mut replica): (Box<dyn Side>, Box<dyn Side>) = match pair {
                0 => (Box::new(ours(&w, true)), Box::new(ours(&r, false))),
                1 => {
                    let rt = rt();
                    let h = rt.block_on(theirs(&w, true));
                    (Box::new(Theirs(h, rt)), Box::new(ours(&r, false)))
                }
                _ => {
                    // hypercore 0.16 as the replica stores a block that arrives with an
                    // upgrade at a wrong offset (its own writer's proofs too): blocks are
                    // asked for on their own, as the agent asks for them.
                    with_block = false;
                    let rt = rt();
                    let h = rt.block_on(theirs(&r, false));
                    (Box::new(ours(&w, true)), Box::new(Theirs(h, rt)))
                }
            };
            replicate(
                &mut *writer,
                &mut *replica,
                &data,
                &stages,
                &order,
                with_block,
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_damaged_proof_is_refused_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = ours(&tmp.path().join("w"), true);
    let data = blocks(20);
    append_ours(&mut w, &data, 20);
    let mut r = ours(&tmp.path().join("r"), false);
    let up = RequestUpgrade {
        start: 0,
        length: 20,
    };
    let good = w
        .create_proof(
            Some(RequestBlock { index: 3, nodes: 0 }),
            None,
            None,
            Some(up),
        )
        .unwrap()
        .unwrap();
    let mut damaged = vec![];
    let mut p = good.clone();
    p.block.as_mut().unwrap().value[0] ^= 1;
    damaged.push(p);
    let mut p = good.clone();
    p.upgrade.as_mut().unwrap().signature[5] ^= 1;
    damaged.push(p);
    let mut p = good.clone();
    p.upgrade.as_mut().unwrap().nodes[0].length += 1;
    damaged.push(p);
    let mut p = good.clone();
    p.block.as_mut().unwrap().nodes.pop();
    damaged.push(p);
    let mut p = good.clone();
    p.block.as_mut().unwrap().index = 4;
    damaged.push(p);
    let mut p = good.clone();
    p.fork = 1;
    damaged.push(p);
    for p in &damaged {
        assert!(r.verify_and_apply_proof(p).is_err(), "{}", shape(p));
        r.commit().unwrap();
        assert_eq!((r.len(), r.has(3)), (0, false));
    }
    drop(r);
    let mut r = ours(&tmp.path().join("r"), false);
    assert_eq!(r.len(), 0);
    r.verify_and_apply_proof(&good).unwrap();
    r.commit().unwrap();
    assert_eq!(r.get(3).unwrap().as_ref(), Some(&data[3]));
}

/// The schedule on which the reference, as a replica, stores a block at a wrong offset.
#[test]
fn a_block_arriving_with_its_upgrade_lands_in_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, r) = (tmp.path().join("w"), tmp.path().join("r"));
    let data = blocks(29);
    let rt1 = rt();
    let h = rt1.block_on(theirs(&w, true));
    let mut writer = Theirs(h, rt1);
    let mut replica = ours(&r, false);
    replicate(
        &mut writer,
        &mut replica,
        &data,
        &[27, 2],
        &[0, 0, 0, 0, 0, 0, 373],
        true,
    );
}
