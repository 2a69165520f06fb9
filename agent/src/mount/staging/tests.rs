//! A staging file against a model: whatever the writes, truncates and reads, the committed
//! blocks read back as the model, and only blocks whose bytes changed are stored.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const FEED: [u8; 32] = [4; 32];

/// A committed file of `size` bytes with its blocks' plaintexts by location.
fn base(size: u64) -> (FileBlocks, HashMap<BlockAt, Vec<u8>>, Vec<u8>) {
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    let mut blocks = FileBlocks {
        size,
        ..FileBlocks::default()
    };
    let mut plain = HashMap::new();
    for (i, chunk) in bytes.chunks(BLOCK_SIZE).enumerate() {
        // Spread over runs: every third block elsewhere.
        let at = (FEED, 100 + i as u64 * if i % 3 == 0 { 7 } else { 1 });
        blocks.push(at);
        plain.insert(at, chunk.to_vec());
    }
    (blocks, plain, bytes)
}

#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, len: usize, byte: u8 },
    SetLen(u64),
    Read { offset: u64, len: usize },
}

fn change() -> impl Strategy<Value = Change> {
    let span = 5 * BS;
    prop_oneof![
        (0..span, 1usize..(2 * BLOCK_SIZE), any::<u8>())
            .prop_map(|(offset, len, byte)| Change::Write { offset, len, byte }),
        (0..span).prop_map(Change::SetLen),
        (0..span, 1usize..(2 * BLOCK_SIZE)).prop_map(|(offset, len)| Change::Read { offset, len }),
    ]
}

fn fill(s: &mut Staging, plain: &HashMap<BlockAt, Vec<u8>>, needs: Vec<(u64, BlockAt)>) {
    for (i, at) in needs {
        s.fill(i, &plain[&at]).unwrap();
    }
}

/// Commit as the mount does: every block either referred to again or stored.
fn commit(s: &Staging, plain: &HashMap<BlockAt, Vec<u8>>) -> (Vec<u8>, u64) {
    let mut out = vec![];
    let mut stored = 0;
    for block in s.blocks() {
        match block.unwrap() {
            Block::Unchanged(at, len) => {
                assert_eq!(plain[&at].len(), len);
                out.extend_from_slice(&plain[&at]);
            }
            Block::Changed(bytes) => {
                stored += 1;
                out.extend(bytes);
            }
        }
    }
    (out, stored)
}

#[test]
fn an_append_to_a_large_file_stores_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * BS + 1000;
    let (blocks, plain, mut model) = base(size);
    let mut s = Staging::create(dir.path(), 1, blocks).unwrap();
    let tail = vec![0xeeu8; 3 * BLOCK_SIZE];
    let needs = s.needs_for_write(size, tail.len() as u64);
    // Only the short last block is copied in.
    assert_eq!(needs.iter().map(|n| n.0).collect::<Vec<_>>(), vec![40]);
    fill(&mut s, &plain, needs);
    s.write_at(&tail, size).unwrap();
    model.extend(&tail);
    let (back, stored) = commit(&s, &plain);
    assert_eq!(back, model);
    assert_eq!(stored, 4, "the old last block and three new ones");
    // The staging file holds only what was written: it is sparse.
    use std::os::unix::fs::MetadataExt;
    let used = std::fs::metadata(&s.path).unwrap().blocks() * 512;
    assert!(used < 8 * BS, "{used} bytes on disk");
}

#[test]
fn a_change_in_the_middle_stores_the_blocks_it_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, plain, mut model) = base(20 * BS);
    let mut s = Staging::create(dir.path(), 1, blocks).unwrap();
    let at = 10 * BS - 100;
    let data = vec![1u8; 200];
    let needs = s.needs_for_write(at, 200);
    assert_eq!(needs.iter().map(|n| n.0).collect::<Vec<_>>(), vec![9, 10]);
    fill(&mut s, &plain, needs);
    s.write_at(&data, at).unwrap();
    model[at as usize..at as usize + 200].copy_from_slice(&data);
    let (back, stored) = commit(&s, &plain);
    assert_eq!((back == model, stored), (true, 2));
}

#[test]
fn a_write_far_past_the_end_costs_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, plain, _) = base(3 * BS);
    let mut s = Staging::create(dir.path(), 1, blocks).unwrap();
    // A block a terabyte in: the sets of held and changed blocks stay one range each.
    let far = 1u64 << 40;
    let needs = s.needs_for_write(far, 10);
    fill(&mut s, &plain, needs);
    s.write_at(b"0123456789", far).unwrap();
    assert_eq!((s.held.0.len(), s.changed.0.len()), (1, 1));
    assert_eq!(s.read_at(far, 10).unwrap(), b"0123456789");
    assert_eq!(s.read_at(3 * BS, 4).unwrap(), [0; 4]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn committed_blocks_read_back_as_the_model(
        size in 0..(4 * BS),
        changes in proptest::collection::vec(change(), 1..8),
        twice in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, mut plain, mut model) = base(size);
        let mut s = Staging::create(dir.path(), 1, blocks).unwrap();
        let rounds = if twice { 2 } else { 1 };
        for round in 0..rounds {
            let mut touched = std::collections::BTreeSet::new();
            for c in &changes {
                match *c {
                    Change::Write { offset, len, byte } => {
                        let needs = s.needs_for_write(offset, len as u64);
                        fill(&mut s, &plain, needs);
                        let old = model.len() as u64;
                        s.write_at(&vec![byte; len], offset).unwrap();
                        let end = offset as usize + len;
                        if model.len() < end {
                            model.resize(end, 0);
                        }
                        model[offset as usize..end].fill(byte);
                        touched.extend(offset / BS..=(end as u64 - 1) / BS);
                        if end as u64 > old { touched.extend(old / BS..=(end as u64 - 1) / BS); }
                    }
                    Change::SetLen(n) => {
                        let needs = s.needs_for_set_len(n);
                        fill(&mut s, &plain, needs);
                        let old = model.len() as u64;
                        s.set_len(n).unwrap();
                        model.resize(n as usize, 0);
                        if n != old { touched.extend(old.min(n) / BS..=old.max(n) / BS); }
                    }
                    Change::Read { offset, len } => {
                        let needs = s.needs_for_read(offset, len as u64);
                        fill(&mut s, &plain, needs);
                        let got = s.read_at(offset, len).unwrap();
                        let from = (offset as usize).min(model.len());
                        let to = (offset as usize + len).min(model.len());
                        prop_assert_eq!(&got[..], &model[from..to]);
                    }
                }
                prop_assert_eq!(s.size(), model.len() as u64);
            }
            let (back, stored) = commit(&s, &plain);
            prop_assert_eq!(&back, &model);
            prop_assert!(stored <= touched.len() as u64, "round {round}: stored {stored}, touched {touched:?}");
            // Commit: the stored blocks get new places, and become the base.
            let mut next = FileBlocks {
                size: s.size(),
                ..FileBlocks::default()
            };
            for (i, block) in s.blocks().enumerate() {
                match block.unwrap() {
                    Block::Unchanged(at, _) => next.push(at),
                    Block::Changed(bytes) => {
                        let at = ([round as u8 + 9; 32], i as u64);
                        plain.insert(at, bytes);
                        next.push(at);
                    }
                }
            }
            s.committed(next);
        }
    }
}
