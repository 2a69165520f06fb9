//! Repairs to a feed's oplog (and the tree and bitfield it describes) before hypercore
//! opens it.
//!
//! hypercore 0.16.0 reopens an oplog by replaying the entries written since its last
//! flush, and refuses to open at all when one of them does not decode. Its entry decoder
//! reads the tree-upgrade and bitfield parts under the node flag, so only entries with
//! nodes, upgrade and bitfield together (appends, and blocks received with an upgrade) or
//! with none of them read back. The others are made readable here:
//! - a block received from a peer (tree nodes and a bitfield change, no upgrade): its nodes
//!   are written to the `tree` file and its blocks marked in the `bitfield` file (the block
//!   itself is already in `data`), and the entry is removed. Its commit was acknowledged
//!   (replication reports it as grown), so dropping it would lose an acknowledged block;
//! - an upgrade without a block (tree nodes and an upgrade): an empty bitfield change is
//!   added, which the replay ignores.
//!
//! Entries that must not be replayed are cut, with everything after them (entries are
//! deltas on top of the state saved at the last flush, so this reopens the feed at an
//! earlier, consistent state):
//! - an entry torn by a crash (its checksum fails), or one of another kind (a cleared
//!   range; not used here);
//! - an entry from before the newest header: a crash after hypercore wrote a new header
//!   but before it truncated the entries the header replaces. Entries carry the header
//!   bit of the header they follow; replaying older ones on the newer header would truncate
//!   the tree file under blocks the bitfield still marks;
//! - an entry left over from before a reopen: hypercore writes its next entries from the
//!   start of the entry area again, over the entries it replayed, and a crash before the
//!   header that follows them leaves older entries behind the new ones. They are recognised
//!   by their tree length going back (lengths only grow here: feeds are never truncated).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

const HEADER_SLOTS: usize = 2 * 4096;
const HEADER_SLOT: usize = 4096;
const LEADER: usize = 8;
/// Entry flags: user data, tree nodes, tree upgrade, bitfield change.
const USER_DATA: u8 = 0b0001;
const NODES: u8 = 0b0010;
const UPGRADE: u8 = 0b0100;
const BITFIELD: u8 = 0b1000;
/// The flags hypercore's decoder handles only all together.
const COUPLED: u8 = NODES | UPGRADE | BITFIELD;
/// Bytes of a node in the `tree` file: its size (u64 LE) and hash.
const NODE_BYTES: u64 = 40;
/// The `bitfield` file is made of pages of this many bytes.
const BITFIELD_PAGE: u64 = 4096;

/// A compact-encoding unsigned integer at the start of `b`, and the rest.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = b.split_first()?;
    let width = match first {
        0xfd => 2,
        0xfe => 4,
        0xff => 8,
        x => return Some((x.into(), rest)),
    };
    let (n, rest) = (rest.get(..width)?, &rest[width..]);
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(n);
    Some((u64::from_le_bytes(le), rest))
}

/// A tree node: its index in the flat tree, the byte size it covers, its hash.
pub type Node = (u64, u64, [u8; 32]);

/// The parts of an entry (after its flags) that repairs need.
#[derive(Debug, Default)]
struct Parts {
    nodes: Vec<Node>,
    /// The tree length of its upgrade.
    length: Option<u64>,
    /// Blocks it marks present: start and count; `None` also for a drop.
    blocks: Option<(u64, u64)>,
    drop: bool,
}

/// Decode an entry as written (each part under its own flag); `None` when it cannot be.
fn parts(entry: &[u8]) -> Option<Parts> {
    let (&flags, mut rest) = entry.split_first()?;
    if flags & USER_DATA != 0 {
        return None;
    }
    let mut p = Parts::default();
    if flags & NODES != 0 {
        let (count, r) = varint(rest)?;
        rest = r;
        for _ in 0..count {
            let (index, r) = varint(rest)?;
            let (size, r) = varint(r)?;
            let hash: [u8; 32] = r.get(..32)?.try_into().ok()?;
            p.nodes.push((index, size, hash));
            rest = &r[32..];
        }
    }
    if flags & UPGRADE != 0 {
        let (_fork, r) = varint(rest)?;
        let (_ancestors, r) = varint(r)?;
        let (length, r) = varint(r)?;
        let (signature, r) = varint(r)?;
        rest = r.get(usize::try_from(signature).ok()?..)?;
        p.length = Some(length);
    }
    if flags & BITFIELD != 0 {
        let (&drop, r) = rest.split_first()?;
        let (start, r) = varint(r)?;
        let (count, _) = varint(r)?;
        p.drop = drop & 1 != 0;
        p.blocks = Some((start, count));
    }
    Some(p)
}

/// The tree length an entry with nodes, upgrade and bitfield upgrades to.
#[cfg(test)]
fn upgrade_length(entry: &[u8]) -> Option<u64> {
    match entry.first() {
        Some(&f) if f & COUPLED == COUPLED => parts(entry)?.length,
        _ => None,
    }
}

/// One entry with its leader: checksum, then length, partial and header bits.
fn with_leader(info_bits: u32, data: &[u8]) -> Vec<u8> {
    let info = ((data.len() as u32) << 2 | (info_bits & 3)).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&info);
    hasher.update(data);
    let mut out = hasher.finalize().to_le_bytes().to_vec();
    out.extend_from_slice(&info);
    out.extend_from_slice(data);
    out
}

/// The header bit of a valid header slot.
fn slot_bit(slot: &[u8]) -> Option<bool> {
    let crc = u32::from_le_bytes(slot.get(..4)?.try_into().ok()?);
    let info = u32::from_le_bytes(slot.get(4..8)?.try_into().ok()?);
    let len = (info >> 2) as usize;
    if len == 0 || crc32fast::hash(slot.get(4..LEADER + len)?) != crc {
        return None;
    }
    Some(info & 1 == 1)
}

/// The header bit entries written after the newest header carry (as hypercore works it out
/// from the two header slots); `None` when neither slot holds a header.
fn entries_bit(oplog: &[u8]) -> Option<bool> {
    let first = oplog.get(..HEADER_SLOT).and_then(slot_bit);
    let second = oplog.get(HEADER_SLOT..HEADER_SLOTS).and_then(slot_bit);
    let bits = match (first, second) {
        (Some(a), Some(b)) => [a, b],
        (Some(a), None) => [a, a],
        (None, Some(b)) => [!b, b],
        (None, None) => return None,
    };
    Some(bits[0] != bits[1])
}

/// What a repair changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// The oplog from the end of its header slots on, when it changes.
    pub entries: Option<Vec<u8>>,
    /// Bytes of the old entries that are cut (neither kept nor applied).
    pub cut: u64,
    /// Tree nodes to write to the `tree` file.
    pub nodes: Vec<Node>,
    /// Blocks to mark present in the `bitfield` file: start and count.
    pub blocks: Vec<(u64, u64)>,
}

/// Work out the repair of an oplog.
pub fn plan(oplog: &[u8]) -> Repair {
    let mut repair = Repair::default();
    if oplog.len() <= HEADER_SLOTS {
        return repair;
    }
    let bit = entries_bit(oplog);
    let mut out = Vec::new();
    let mut changed = false;
    let mut length = 0;
    let mut pos = HEADER_SLOTS;
    while pos + LEADER <= oplog.len() {
        let crc = u32::from_le_bytes(oplog[pos..pos + 4].try_into().expect("4 bytes"));
        let info = u32::from_le_bytes(oplog[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let len = (info >> 2) as usize;
        if len == 0 || pos + LEADER + len > oplog.len() {
            // hypercore stops reading here too; an incomplete tail is harmless to it.
            break;
        }
        let data = &oplog[pos + LEADER..pos + LEADER + len];
        if crc32fast::hash(&oplog[pos + 4..pos + LEADER + len]) != crc
            || bit.is_some_and(|b| b != (info & 1 == 1))
        {
            break;
        }
        let flags = data[0];
        let Some(p) = parts(data) else { break };
        if p.length.is_some_and(|l| l < length) {
            // Left over from before the entries in front of it were written.
            break;
        }
        length = p.length.unwrap_or(length);
        match flags {
            0 | COUPLED => out.extend_from_slice(&oplog[pos..pos + LEADER + len]),
            f if f == NODES | BITFIELD && !p.drop => {
                repair.nodes.extend(p.nodes);
                repair.blocks.extend(p.blocks);
                changed = true;
            }
            f if f == NODES | UPGRADE => {
                // An empty bitfield change: not drop, start 0, no blocks.
                let mut fixed = vec![COUPLED];
                fixed.extend_from_slice(&data[1..]);
                fixed.extend_from_slice(&[0, 0, 0]);
                out.extend(with_leader(info, &fixed));
                changed = true;
            }
            _ => break,
        }
        pos += LEADER + len;
    }
    let rest = &oplog[pos..];
    let torn_tail = {
        // What is left is either nothing, an incomplete tail (kept, as hypercore ignores
        // it), or the first entry that is cut.
        let info = rest
            .get(4..8)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) >> 2);
        !matches!(info, Some(l) if l != 0 && LEADER + l as usize <= rest.len())
    };
    if torn_tail {
        out.extend_from_slice(rest);
    } else {
        repair.cut = rest.len() as u64;
        changed = true;
    }
    if changed {
        repair.entries = Some(out);
    }
    repair
}

/// Make the oplog of the feed in `dir` one hypercore can replay, applying to the tree and
/// bitfield what it cannot. Returns the number of oplog bytes cut (0 when nothing was lost).
pub fn repair(dir: &Path) -> std::io::Result<u64> {
    let path = dir.join("oplog");
    let mut file = match OpenOptions::new().read(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let repair = plan(&bytes);
    let Some(entries) = repair.entries else {
        return Ok(0);
    };
    if !repair.nodes.is_empty() {
        let tree = OpenOptions::new().write(true).open(dir.join("tree"))?;
        for (index, size, hash) in &repair.nodes {
            let mut node = [0u8; NODE_BYTES as usize];
            node[..8].copy_from_slice(&size.to_le_bytes());
            node[8..].copy_from_slice(hash);
            tree.write_all_at(&node, index * NODE_BYTES)?;
        }
        tree.sync_data()?;
    }
    if !repair.blocks.is_empty() {
        let mut bitfield = Vec::new();
        let path = dir.join("bitfield");
        OpenOptions::new()
            .read(true)
            .open(&path)?
            .read_to_end(&mut bitfield)?;
        for &(start, count) in &repair.blocks {
            for i in start..start + count {
                let byte = (i / 8) as usize;
                if byte >= bitfield.len() {
                    let pages = (i / 8 / BITFIELD_PAGE + 1) * BITFIELD_PAGE;
                    bitfield.resize(pages as usize, 0);
                }
                bitfield[byte] |= 1 << (i % 8);
            }
        }
        let file = OpenOptions::new().write(true).open(&path)?;
        file.write_all_at(&bitfield, 0)?;
        file.sync_data()?;
    }
    let mut oplog = bytes[..HEADER_SLOTS].to_vec();
    oplog.extend(entries);
    crate::atomic_file::replace(&path, &oplog)?;
    Ok(repair.cut)
}

/// Unmark blocks `start..end` in the `bitfield` file of the feed in `dir`, durably (for
/// an eviction: hypercore keeps a clear in its oplog, which [`repair`] cuts on open).
pub fn unmark(dir: &Path, start: u64, end: u64) -> std::io::Result<()> {
    let path = dir.join("bitfield");
    let mut bitfield = Vec::new();
    OpenOptions::new()
        .read(true)
        .open(&path)?
        .read_to_end(&mut bitfield)?;
    for i in start..end {
        if let Some(byte) = bitfield.get_mut((i / 8) as usize) {
            *byte &= !(1 << (i % 8));
        }
    }
    let file = OpenOptions::new().write(true).open(&path)?;
    file.write_all_at(&bitfield, 0)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry with its leader, written after a header whose entries carry bit `bit`.
    fn entry_bit(flags: u8, body: &[u8], bit: bool) -> Vec<u8> {
        let mut data = vec![flags];
        data.extend_from_slice(body);
        with_leader(bit as u32, &data)
    }

    fn entry(flags: u8, body: &[u8]) -> Vec<u8> {
        entry_bit(flags, body, false)
    }

    /// Header slots as hypercore leaves them after creating a feed: one header, bit false,
    /// so its entries carry bit false.
    fn headers() -> Vec<u8> {
        let mut log = with_leader(0, b"header");
        log.resize(HEADER_SLOTS, 0);
        log
    }

    fn node(index: u8) -> Vec<u8> {
        let mut b = vec![index, 100 + index];
        b.extend([index; 32]);
        b
    }

    /// The body (after the flags) of an append of block `length - 1`, upgrading to `length`.
    fn append_body(length: u8) -> Vec<u8> {
        let mut b = vec![1];
        b.extend(node(2 * (length - 1)));
        b.extend([0, 0, length, 64]); // fork, ancestors, length, signature size
        b.extend([9; 64]); // signature
        b.extend([0, length - 1, 1]); // bitfield: set one block
        b
    }

    /// The body of block `index` received without an upgrade.
    fn received_body(index: u8) -> Vec<u8> {
        let mut b = vec![1];
        b.extend(node(2 * index));
        b.extend([0, index, 1]);
        b
    }

    /// The body of an upgrade to `length` received without a block.
    fn upgrade_body(length: u8) -> Vec<u8> {
        let mut b = vec![1];
        b.extend(node(0));
        b.extend([0, 0, length, 64]);
        b.extend([9; 64]);
        b
    }

    #[test]
    fn readable_entries_are_kept_and_nothing_changes() {
        let mut log = headers();
        assert_eq!(plan(&log), Repair::default());
        log.extend(entry(COUPLED, &append_body(1)));
        log.extend(entry(COUPLED, &append_body(2)));
        assert_eq!(plan(&log), Repair::default());
        assert_eq!(
            upgrade_length(&entry(COUPLED, &append_body(5))[LEADER..]),
            Some(5)
        );
    }

    #[test]
    fn received_blocks_are_applied_and_lone_upgrades_made_readable() {
        let mut log = headers();
        log.extend(entry(NODES | UPGRADE, &upgrade_body(9)));
        log.extend(entry(NODES | BITFIELD, &received_body(4)));
        log.extend(entry(NODES | BITFIELD, &received_body(6)));
        let r = plan(&log);
        assert_eq!(r.cut, 0);
        assert_eq!(r.nodes, vec![(8, 108, [8; 32]), (12, 112, [12; 32])]);
        assert_eq!(r.blocks, vec![(4, 1), (6, 1)]);
        // The upgrade is kept, now with an empty bitfield change, and reads back.
        let mut fixed = vec![COUPLED];
        fixed.extend(upgrade_body(9));
        fixed.extend([0, 0, 0]);
        let entries = r.entries.unwrap();
        assert_eq!(entries, with_leader(0, &fixed));
        let p = parts(&entries[LEADER..]).unwrap();
        assert_eq!((p.length, p.blocks, p.drop), (Some(9), Some((0, 0)), false));
    }

    #[test]
    fn an_unknown_torn_stale_or_left_over_entry_cuts() {
        let mut good = headers();
        good.extend(entry(COUPLED, &append_body(1)));
        let keep = good[HEADER_SLOTS..].to_vec();
        let bad_entries = [
            entry(BITFIELD, &[1, 0, 1]), // a cleared range
            {
                let mut torn = entry(COUPLED, &append_body(2));
                torn[10] ^= 0xff;
                torn
            },
            entry_bit(COUPLED, &append_body(2), true), // from before the newest header
        ];
        for bad in bad_entries {
            let mut log = good.clone();
            log.extend(&bad);
            log.extend(entry(COUPLED, &append_body(3)));
            let r = plan(&log);
            assert_eq!(r.entries.as_ref(), Some(&keep));
            assert_eq!(r.cut as usize, log.len() - good.len());
        }
        // An older entry behind a newer one: its length goes back.
        let mut log = headers();
        log.extend(entry(COUPLED, &append_body(5)));
        log.extend(entry(COUPLED, &append_body(9)));
        let keep = log[HEADER_SLOTS..].to_vec();
        log.extend(entry(COUPLED, &append_body(7)));
        log.extend(entry(COUPLED, &append_body(8)));
        assert_eq!(plan(&log).entries, Some(keep));
    }

    #[test]
    fn an_incomplete_tail_is_left_alone() {
        let mut log = headers();
        log.extend(entry(COUPLED, &append_body(1)));
        log.extend(&entry(COUPLED, &append_body(2))[..9]);
        assert_eq!(plan(&log), Repair::default());
    }

    fn keys() -> (cobox_keys::SigningKeyPair, [u8; 32]) {
        let k = cobox_keys::derive::feed(
            &cobox_keys::Secret32::from_bytes([1; 32]),
            &cobox_schema::hexkey::Address([2; 32]),
            0,
        );
        let seed = k.secret_bytes()[..32].try_into().unwrap();
        (k, seed)
    }

    /// The entries of a real oplog.
    fn entries(log: &[u8]) -> Vec<(u8, Parts)> {
        let mut pos = HEADER_SLOTS;
        let mut found = Vec::new();
        while pos + LEADER <= log.len() {
            let len = (u32::from_le_bytes(log[pos + 4..pos + 8].try_into().unwrap()) >> 2) as usize;
            let data = &log[pos + LEADER..pos + LEADER + len];
            found.push((data[0], parts(data).unwrap()));
            pos += LEADER + len;
        }
        found
    }

    #[tokio::test]
    async fn real_append_entries_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (k, seed) = keys();
        let mut f = super::super::Feed::open(dir.path(), k.public.0, Some(&seed))
            .await
            .unwrap();
        let mut lengths = Vec::new();
        for n in [1usize, 300, 2] {
            let blocks = vec![vec![5u8; 1000]; n];
            lengths.push(f.append_batch(&blocks).await.unwrap());
        }
        let log = std::fs::read(dir.path().join("oplog")).unwrap();
        let found: Vec<u64> = entries(&log)
            .into_iter()
            .map(|(flags, p)| {
                assert_eq!(flags, COUPLED);
                p.length.unwrap()
            })
            .collect();
        // The first append was flushed into the header; the others are entries.
        assert_eq!(found, lengths[1..]);
        assert_eq!(plan(&log), Repair::default());
    }

    #[tokio::test]
    async fn a_replica_reopens_with_every_block_it_committed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (k, seed) = keys();
        let mut writer = super::super::Feed::open(a.path(), k.public.0, Some(&seed))
            .await
            .unwrap();
        let blocks: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 3000 + i as usize]).collect();
        writer.append_batch(&blocks).await.unwrap();
        let mut replica = super::super::Feed::open(b.path(), k.public.0, None)
            .await
            .unwrap();
        // An upgrade alone, then blocks one by one, as replication asks for them.
        let upgrade = hypercore_schema::RequestUpgrade {
            start: 0,
            length: 6,
        };
        let proof = writer
            .core_mut()
            .create_proof(None, None, None, Some(upgrade))
            .await
            .unwrap()
            .unwrap();
        assert!(
            replica
                .core_mut()
                .verify_and_apply_proof(&proof)
                .await
                .unwrap()
        );
        for index in [3u64, 0, 1] {
            let nodes = replica.core_mut().missing_nodes(index).await.unwrap();
            let request = hypercore_schema::RequestBlock { index, nodes };
            let proof = writer
                .core_mut()
                .create_proof(Some(request), None, None, None)
                .await
                .unwrap()
                .unwrap();
            assert!(
                replica
                    .core_mut()
                    .verify_and_apply_proof(&proof)
                    .await
                    .unwrap()
            );
        }
        replica.commit().unwrap();
        let log = std::fs::read(b.path().join("oplog")).unwrap();
        let flags: Vec<u8> = entries(&log).into_iter().map(|(f, _)| f).collect();
        // The first change was flushed into the header (hypercore flushes every fourth).
        assert_eq!(
            flags,
            [NODES | BITFIELD, NODES | BITFIELD, NODES | BITFIELD]
        );
        drop(replica);
        let mut replica = super::super::Feed::open(b.path(), k.public.0, None)
            .await
            .unwrap();
        assert_eq!(replica.len(), 6);
        assert_eq!(replica.contiguous_len(), 2);
        for i in 0..6u64 {
            let want = [0, 1, 3].contains(&i).then(|| blocks[i as usize].clone());
            assert_eq!(replica.get(i).await.unwrap(), want, "block {i}");
        }
        // And it goes on: the rest arrives, and a copy verifies against it.
        super::super::copy::copy_missing(&mut writer, &mut replica)
            .await
            .unwrap();
        drop(replica);
        let mut replica = super::super::Feed::open(b.path(), k.public.0, None)
            .await
            .unwrap();
        assert_eq!(replica.contiguous_len(), 6);
        let c = tempfile::tempdir().unwrap();
        let mut other = super::super::Feed::open(c.path(), k.public.0, None)
            .await
            .unwrap();
        assert_eq!(
            super::super::copy::copy_missing(&mut replica, &mut other)
                .await
                .unwrap(),
            6
        );
    }
}
