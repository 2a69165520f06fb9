//! Log entries after the header slots of an `oplog`, as hypercore writes them between two
//! headers: tree nodes, a tree upgrade and a bitfield change, each under its own flag. This
//! crate never writes entries (each commit writes a whole header); it reads them once, when
//! it opens a feed last written by hypercore itself, and replays them.
//!
//! Replay stops at the first entry that must not be applied (what follows is cut): one that
//! is torn or does not decode; one carrying the other header bit (written before the
//! newest header, whose state already includes it); one whose tree length goes back (left
//! behind the entries hypercore rewrote after a reopen). Entries of an unfinished atomic
//! batch (partial bit set up to the end) are dropped, as hypercore drops them.

use crate::encoding::{DecodeError, Reader};
use crate::header::{ENTRIES_START, LEADER_BYTES, read_leader};
use crate::node::Node;

/// A tree upgrade recorded in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub fork: u64,
    pub ancestors: u64,
    pub length: u64,
    pub signature: Vec<u8>,
}

/// Blocks marked held (or, with `drop`, no longer held): `start..start + length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitfieldChange {
    pub drop: bool,
    pub start: u64,
    pub length: u64,
}

/// One entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub nodes: Vec<Node>,
    pub upgrade: Option<Upgrade>,
    pub bitfield: Option<BitfieldChange>,
}

const USER_DATA: u8 = 1;
const NODES: u8 = 2;
const UPGRADE: u8 = 4;
const BITFIELD: u8 = 8;

impl Entry {
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let mut r = Reader::new(bytes);
        let flags = r.byte("entry flags")?;
        let mut e = Entry::default();
        if flags & USER_DATA != 0 {
            // Key-value strings nothing here uses.
            r.strings("entry user data")?;
        }
        if flags & NODES != 0 {
            let count = r.uint("entry nodes")?;
            if count > r.rest().len() as u64 / 34 {
                return Err(DecodeError {
                    what: "entry nodes",
                });
            }
            for _ in 0..count {
                let index = r.uint("node index")?;
                let size = r.uint("node size")?;
                let hash = r.fixed::<32>("node hash")?;
                e.nodes.push(Node { index, size, hash });
            }
        }
        if flags & UPGRADE != 0 {
            e.upgrade = Some(Upgrade {
                fork: r.uint("upgrade fork")?,
                ancestors: r.uint("upgrade ancestors")?,
                length: r.uint("upgrade length")?,
                signature: r.buffer("upgrade signature")?.to_vec(),
            });
        }
        if flags & BITFIELD != 0 {
            let drop = r.byte("bitfield flags")? & 1 == 1;
            e.bitfield = Some(BitfieldChange {
                drop,
                start: r.uint("bitfield start")?,
                length: r.uint("bitfield length")?,
            });
        }
        Ok(e)
    }

    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        use crate::encoding::{put_buffer, put_uint};
        let mut flags = 0;
        let mut body = vec![];
        if !self.nodes.is_empty() {
            flags |= NODES;
            put_uint(&mut body, self.nodes.len() as u64);
            for n in &self.nodes {
                put_uint(&mut body, n.index);
                put_uint(&mut body, n.size);
                body.extend_from_slice(&n.hash);
            }
        }
        if let Some(u) = &self.upgrade {
            flags |= UPGRADE;
            put_uint(&mut body, u.fork);
            put_uint(&mut body, u.ancestors);
            put_uint(&mut body, u.length);
            put_buffer(&mut body, &u.signature);
        }
        if let Some(b) = &self.bitfield {
            flags |= BITFIELD;
            body.push(b.drop as u8);
            put_uint(&mut body, b.start);
            put_uint(&mut body, b.length);
        }
        let mut out = vec![flags];
        out.extend(body);
        out
    }
}

/// What the entries of an `oplog` say, to replay on the state of its newest header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub entries: Vec<Entry>,
    /// Bytes of entries not replayed (torn, stale or left over).
    pub cut: u64,
}

/// The entries of `oplog` to replay after a header whose entries carry `bit`.
pub fn replay(oplog: &[u8], bit: bool) -> Replay {
    let mut out = Replay::default();
    let Some(mut rest) = oplog.get(ENTRIES_START..) else {
        return out;
    };
    let mut length = 0;
    let mut batch: Vec<Entry> = vec![];
    let (mut pos, mut replayed_end) = (0, 0);
    while let Some((data, entry_bit, partial)) = read_leader(&rest[pos..]) {
        if entry_bit != bit {
            break;
        }
        let Ok(entry) = Entry::decode(data) else {
            break;
        };
        if let Some(u) = &entry.upgrade {
            if u.length < length {
                break;
            }
            length = u.length;
        }
        batch.push(entry);
        pos += LEADER_BYTES + data.len();
        if !partial {
            out.entries.append(&mut batch);
            replayed_end = pos;
        }
    }
    rest = &rest[replayed_end..];
    if rest.iter().any(|&b| b != 0) {
        out.cut = rest.len() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::with_leader;

    fn node(i: u64) -> Node {
        Node {
            index: i,
            size: i + 1,
            hash: [i as u8 + 1; 32],
        }
    }

    fn append(length: u64) -> Entry {
        Entry {
            nodes: vec![node(2 * length - 2)],
            upgrade: Some(Upgrade {
                fork: 0,
                ancestors: length - 1,
                length,
                signature: vec![9; 64],
            }),
            bitfield: Some(BitfieldChange {
                drop: false,
                start: length - 1,
                length: 1,
            }),
        }
    }

    fn received(index: u64) -> Entry {
        Entry {
            nodes: vec![node(2 * index)],
            upgrade: None,
            bitfield: Some(BitfieldChange {
                drop: false,
                start: index,
                length: 1,
            }),
        }
    }

    fn oplog(entries: &[(Entry, bool, bool)]) -> Vec<u8> {
        let mut out = vec![0u8; ENTRIES_START];
        for (e, bit, partial) in entries {
            out.extend(with_leader(&e.encode(), *bit, *partial));
        }
        out
    }

    #[test]
    fn every_kind_of_entry_reads_back_in_order() {
        let clear = Entry {
            bitfield: Some(BitfieldChange {
                drop: true,
                start: 0,
                length: 1,
            }),
            ..Entry::default()
        };
        let lone_upgrade = Entry {
            bitfield: None,
            ..append(3)
        };
        let es = vec![append(1), append(2), received(0), clear, lone_upgrade];
        let log = oplog(
            &es.iter()
                .map(|e| (e.clone(), true, false))
                .collect::<Vec<_>>(),
        );
        let r = replay(&log, true);
        assert_eq!(r.entries, es);
        assert_eq!(r.cut, 0);
    }

    #[test]
    fn stale_torn_left_over_and_unfinished_entries_are_not_replayed() {
        // Written before the newest header (the other bit): nothing to replay.
        let log = oplog(&[(append(1), false, false)]);
        assert_eq!(replay(&log, true).entries, vec![]);
        assert!(replay(&log, true).cut > 0);
        // Torn: the first two stay.
        let mut log = oplog(&[
            (append(1), true, false),
            (append(2), true, false),
            (append(3), true, false),
        ]);
        let n = log.len();
        log[n - 3] ^= 0xff;
        let r = replay(&log, true);
        assert_eq!(r.entries, vec![append(1), append(2)]);
        assert!(r.cut > 0);
        // Left over from before a reopen: its length goes back.
        let log = oplog(&[
            (append(4), true, false),
            (append(5), true, false),
            (append(3), true, false),
        ]);
        assert_eq!(replay(&log, true).entries, vec![append(4), append(5)]);
        // An atomic batch that never finished.
        let log = oplog(&[
            (append(1), true, false),
            (append(2), true, true),
            (append(3), true, true),
        ]);
        assert_eq!(replay(&log, true).entries, vec![append(1)]);
        // A batch that did.
        let log = oplog(&[(append(1), true, true), (append(2), true, false)]);
        assert_eq!(replay(&log, true).entries, vec![append(1), append(2)]);
        assert_eq!(replay(&log, true).cut, 0);
    }

    #[test]
    fn a_count_beyond_the_input_is_refused_without_allocating() {
        let mut bytes = vec![NODES];
        crate::encoding::put_uint(&mut bytes, u64::MAX);
        assert!(Entry::decode(&bytes).is_err());
    }
}
