//! Feeds past every size boundary of the bitfield and tree (32,768 blocks: a bitfield
//! page; 65,536; 2^20), for a writer's own feed, a member's replica and a seed's copy of
//! the replica: created, closed, reopened, proved block by block into a fresh replica,
//! appended to again; and a feed of more than a page written by the reference
//! implementation (which cannot reopen it) opened here.

use std::path::Path;

use cobox_feed::Core;
use cobox_feed::crypto::Signer;
use hypercore_schema::{RequestBlock, RequestUpgrade};

const SEED: [u8; 32] = [9; 32];

fn public() -> [u8; 32] {
    Signer::from_seed(&SEED).public()
}

/// Block `i`: 1 to 8 bytes, distinct for every `i`.
fn block(i: u64) -> Vec<u8> {
    let bytes = i.to_le_bytes();
    let len = (1 + i % 8) as usize;
    let mut b = bytes[..len].to_vec();
    b[0] ^= (i >> 56) as u8;
    b
}

fn append(core: &mut Core, from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let end = (i + 65_536).min(to);
        let blocks: Vec<Vec<u8>> = (i..end).map(block).collect();
        assert_eq!(core.append(&blocks).unwrap(), end);
        core.commit().unwrap();
        i = end;
    }
}

/// Bring `to` up to date with `from` through proofs only: an upgrade, then every block it
/// lacks with the nodes it lacks.
fn sync(from: &mut Core, to: &mut Core) {
    if from.len() > to.len() {
        let up = RequestUpgrade {
            start: to.len(),
            length: from.len() - to.len(),
        };
        let p = from
            .create_proof(None, None, None, Some(up))
            .unwrap()
            .unwrap();
        to.verify_and_apply_proof(&p).unwrap();
    }
    let mut i = to.first_missing(0);
    let mut since_commit = 0;
    while i < to.len() {
        let nodes = to.missing_nodes(i).unwrap();
        let p = from
            .create_proof(Some(RequestBlock { index: i, nodes }), None, None, None)
            .unwrap()
            .unwrap_or_else(|| panic!("block {i} is held by the other copy"));
        to.verify_and_apply_proof(&p).unwrap();
        since_commit += 1;
        if since_commit == 65_536 {
            to.commit().unwrap();
            since_commit = 0;
        }
        i = to.first_missing(i + 1);
    }
    to.commit().unwrap();
}

fn check_all(core: &mut Core, n: u64) {
    assert_eq!((core.len(), core.contiguous_len()), (n, n));
    for i in 0..n {
        assert!(core.get(i).unwrap() == Some(block(i)), "block {i} of {n}");
    }
}

/// A writer, a replica of it and a seed's copy of the replica, each reopened, then grown.
fn at_size(root: &Path, n: u64) {
    let (w, r, s) = (root.join("own"), root.join("replica"), root.join("seed"));
    let mut own = Core::open(&w, public(), Some(&SEED)).unwrap();
    append(&mut own, 0, n);
    drop(own);
    let mut own = Core::open(&w, public(), Some(&SEED)).unwrap();
    check_all(&mut own, n);
    let mut replica = Core::open(&r, public(), None).unwrap();
    sync(&mut own, &mut replica);
    drop(replica);
    let mut replica = Core::open(&r, public(), None).unwrap();
    check_all(&mut replica, n);
    let mut seed = Core::open(&s, public(), None).unwrap();
    sync(&mut replica, &mut seed);
    drop(seed);
    let mut seed = Core::open(&s, public(), None).unwrap();
    check_all(&mut seed, n);
    // Appended to again, and the new blocks travel on to both copies.
    append(&mut own, n, n + 1_000);
    sync(&mut own, &mut replica);
    sync(&mut replica, &mut seed);
    drop((own, replica, seed));
    for (dir, seed) in [(&w, Some(&SEED)), (&r, None), (&s, None)] {
        let mut core = Core::open(dir, public(), seed).unwrap();
        assert_eq!(core.contiguous_len(), n + 1_000, "{}", dir.display());
        for i in [0, n - 1, n, n + 999] {
            assert!(core.get(i).unwrap() == Some(block(i)), "block {i}");
        }
    }
}

#[test]
fn past_one_bitfield_page() {
    at_size(tempfile::tempdir().unwrap().path(), 40_000);
}

#[test]
fn past_two_bitfield_pages() {
    at_size(tempfile::tempdir().unwrap().path(), 70_000);
}

#[test]
fn a_million_blocks() {
    at_size(tempfile::tempdir().unwrap().path(), 1 << 20);
}

#[test]
fn a_feed_the_reference_cannot_reopen_opens_here() {
    use hypercore::{HypercoreBuilder, PartialKeypair, SigningKey, Storage};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    let n = 40_000u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let storage = Storage::new_disk(&dir, false).await.unwrap();
        let signing = SigningKey::from_bytes(&SEED);
        let mut h = HypercoreBuilder::new(storage)
            .key_pair(PartialKeypair {
                public: signing.verifying_key(),
                secret: Some(signing),
            })
            .build()
            .await
            .unwrap();
        let blocks: Vec<Vec<u8>> = (0..n).map(block).collect();
        for chunk in blocks.chunks(5_000) {
            h.append_batch(chunk).await.unwrap();
        }
    });
    assert!(std::fs::metadata(dir.join("bitfield")).unwrap().len() > 4_096);
    // The reference panics reopening it (its bitfield pages are read 1,024 bytes apart).
    let reopened = std::panic::catch_unwind(|| {
        rt.block_on(async {
            let storage = Storage::new_disk(&dir, false).await.unwrap();
            HypercoreBuilder::new(storage).open(true).build().await
        })
    });
    assert!(reopened.is_err(), "the reference reopened {n} blocks");
    let mut core = Core::open(&dir, public(), Some(&SEED)).unwrap();
    check_all(&mut core, n);
    append(&mut core, n, n + 10);
    let mut replica = Core::open(&tmp.path().join("replica"), public(), None).unwrap();
    sync(&mut core, &mut replica);
    check_all(&mut replica, n + 10);
}

#[test]
fn blocks_past_four_gib_are_read_proved_and_stored_in_place() {
    use std::os::unix::fs::MetadataExt;
    // The writer's 4 GiB go to memory where there is a tmpfs; the replica fetches only the
    // blocks past 4 GiB, so its data file is sparse.
    let shm = std::path::Path::new("/dev/shm");
    let wtmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let rtmp = tempfile::tempdir().unwrap();
    let big = 64usize << 20;
    let stamped = |i: u64| {
        let mut b = vec![(i % 251) as u8; big];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b
    };
    let mut own = Core::open(wtmp.path(), public(), Some(&SEED)).unwrap();
    for first in (0..65u64).step_by(5) {
        let blocks: Vec<Vec<u8>> = (first..first + 5).map(stamped).collect();
        own.append(&blocks).unwrap();
        own.commit().unwrap();
    }
    own.append(&[b"past four GiB".to_vec()]).unwrap();
    own.commit().unwrap();
    assert!(own.byte_len() > 4 << 30);
    assert_eq!(own.get(65).unwrap().unwrap(), b"past four GiB");
    assert!(own.get(64).unwrap().unwrap() == stamped(64));
    drop(own);
    let mut own = Core::open(wtmp.path(), public(), Some(&SEED)).unwrap();
    let mut replica = Core::open(rtmp.path(), public(), None).unwrap();
    let up = RequestUpgrade {
        start: 0,
        length: own.len(),
    };
    let p = own
        .create_proof(None, None, None, Some(up))
        .unwrap()
        .unwrap();
    replica.verify_and_apply_proof(&p).unwrap();
    for i in [65, 64] {
        let nodes = replica.missing_nodes(i).unwrap();
        let p = own
            .create_proof(Some(RequestBlock { index: i, nodes }), None, None, None)
            .unwrap()
            .unwrap();
        replica.verify_and_apply_proof(&p).unwrap();
    }
    replica.commit().unwrap();
    drop(replica);
    let mut replica = Core::open(rtmp.path(), public(), None).unwrap();
    assert_eq!(replica.get(65).unwrap().unwrap(), b"past four GiB");
    assert!(replica.get(64).unwrap().unwrap() == stamped(64));
    assert_eq!(replica.get(63).unwrap(), None);
    let meta = std::fs::metadata(rtmp.path().join("data")).unwrap();
    assert!(meta.len() > 4 << 30, "stored at its offset");
    assert!(meta.blocks() * 512 < 256 << 20, "and nothing else");
}
