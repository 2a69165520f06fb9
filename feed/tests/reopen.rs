//! What reopening a feed makes of what a crash can leave: writes past the last commit cut
//! off, a torn newest header replaced by the one before, a bitfield marking blocks past the
//! length unmarked; and what it refuses: a tree that does not match the signature, a feed
//! of another key.

use cobox_feed::crypto::Signer;
use cobox_feed::{Core, CoreError};

const SEED: [u8; 32] = [4; 32];

fn public() -> [u8; 32] {
    Signer::from_seed(&SEED).public()
}

fn block(i: u64) -> Vec<u8> {
    vec![i as u8; 100 + i as usize]
}

fn writer(dir: &std::path::Path, n: u64) -> Core {
    let mut c = Core::open(dir, public(), Some(&SEED)).unwrap();
    let blocks: Vec<Vec<u8>> = (0..n).map(block).collect();
    c.append(&blocks).unwrap();
    c.commit().unwrap();
    c
}

#[test]
fn writes_past_the_last_commit_are_cut_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = writer(tmp.path(), 10);
    let committed = c.byte_len();
    let more: Vec<Vec<u8>> = (10..20).map(block).collect();
    c.append(&more).unwrap();
    // The process dies: data and nodes reached the files, the header did not.
    drop(c);
    assert!(std::fs::metadata(tmp.path().join("data")).unwrap().len() > committed);
    let (mut c, opened) = Core::open_reporting(tmp.path(), public(), Some(&SEED)).unwrap();
    assert!(opened.truncated > 0, "{opened:?}");
    assert_eq!((c.len(), c.byte_len()), (10, committed));
    assert_eq!(
        std::fs::metadata(tmp.path().join("data")).unwrap().len(),
        committed
    );
    // The next append takes the place of what was lost, and everything reads back.
    let other: Vec<Vec<u8>> = (0..3).map(|i| vec![0xee; i + 1]).collect();
    c.append(&other).unwrap();
    c.commit().unwrap();
    drop(c);
    let mut c = Core::open(tmp.path(), public(), Some(&SEED)).unwrap();
    assert_eq!(c.len(), 13);
    for i in 0..10 {
        assert_eq!(c.get(i).unwrap().unwrap(), block(i));
    }
    assert_eq!(c.get(12).unwrap().unwrap(), vec![0xee; 3]);
}

#[test]
fn a_torn_newest_header_reopens_at_the_commit_before() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = writer(tmp.path(), 5);
    c.append(&[block(5)]).unwrap();
    c.commit().unwrap();
    drop(c);
    // Find the newest slot and tear it.
    let oplog_path = tmp.path().join("oplog");
    let mut oplog = std::fs::read(&oplog_path).unwrap();
    let (header, slots) = cobox_feed::header::read(&oplog).unwrap().unwrap();
    assert_eq!(header.tree.length, 6);
    let newest = if slots.bits[0] == slots.bits[1] {
        0
    } else {
        4096
    };
    oplog[newest + 20] ^= 0xff;
    std::fs::write(&oplog_path, &oplog).unwrap();
    let mut c = Core::open(tmp.path(), public(), Some(&SEED)).unwrap();
    assert_eq!(c.len(), 5);
    assert_eq!(c.get(4).unwrap().unwrap(), block(4));
    assert_eq!(c.get(5).unwrap(), None);
}

#[test]
fn a_bitfield_marking_blocks_past_the_length_is_corrected() {
    let tmp = tempfile::tempdir().unwrap();
    drop(writer(tmp.path(), 5));
    let path = tmp.path().join("bitfield");
    let mut bits = std::fs::read(&path).unwrap();
    bits[0] = 0xff;
    bits[100] = 0x01;
    std::fs::write(&path, &bits).unwrap();
    let (c, opened) = Core::open_reporting(tmp.path(), public(), None).unwrap();
    assert_eq!(opened.unmarked, 4, "{opened:?}");
    assert!(c.has(4) && !c.has(5) && !c.has(800));
    assert_eq!(c.contiguous_len(), 5);
}

#[test]
fn a_damaged_tree_or_another_key_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    drop(writer(tmp.path(), 5));
    let other = Signer::from_seed(&[5; 32]).public();
    let e = Core::open(tmp.path(), other, None).unwrap_err();
    assert!(matches!(e, CoreError::WrongKey { .. }), "{e}");
    let path = tmp.path().join("tree");
    let mut tree = std::fs::read(&path).unwrap();
    // The hash of node 3, the root of blocks 0-3.
    tree[3 * 40 + 8] ^= 1;
    std::fs::write(&path, &tree).unwrap();
    let e = Core::open(tmp.path(), public(), None).unwrap_err();
    assert!(matches!(e, CoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("signature"), "{e}");
    let e = Core::open(tmp.path(), public(), Some(&[5; 32])).unwrap_err();
    assert!(matches!(e, CoreError::WrongKey { .. }), "{e}");
}
