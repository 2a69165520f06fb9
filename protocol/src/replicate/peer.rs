//! What one side knows about the remote's copy of one feed, and what to ask it for next.
//! No I/O: the channel task feeds it messages and local facts and sends what it decides.

use std::collections::{HashMap, HashSet};

use hypercore_protocol::schema::{Bitfield, Range, Synchronize};

use super::have::Ranges;

/// Bounds on what one channel asks for at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Block requests in flight.
    pub blocks: usize,
    /// Estimated bytes of the blocks in flight.
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            blocks: 64,
            bytes: 8 * 1024 * 1024,
        }
    }
}

/// The local feed as the scheduler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// Length of the local (verified) tree.
    pub length: u64,
    pub contiguous: u64,
    pub fork: u64,
    pub writable: bool,
    /// Estimated size of one block.
    pub block_bytes: u64,
    /// Blocks below it are not wanted (evicted on purpose).
    pub floor: u64,
}

/// A request waiting for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Block { index: u64, bytes: u64 },
    Upgrade { start: u64, length: u64 },
}

/// The remote's copy of the feed, as it described it.
#[derive(Debug, Default)]
pub struct Remote {
    pub synced: bool,
    pub fork: u64,
    pub length: u64,
    pub has: Ranges,
}

#[derive(Debug, Default)]
pub struct Peer {
    pub remote: Remote,
    limits: Limits,
    pending: HashMap<u64, Pending>,
    blocks: HashSet<u64>,
    bytes: u64,
    upgrading: bool,
    /// The remote length at which the remote refused to prove an upgrade.
    upgrade_refused_at: Option<u64>,
    next_id: u64,
    /// Every block below it is local (or was when last looked at).
    cursor: u64,
}

/// How far past the first missing block one scheduling pass looks.
const SCAN: u64 = 16 * 1024;

impl Peer {
    pub fn new(limits: Limits) -> Self {
        Peer {
            limits,
            next_id: 1,
            ..Peer::default()
        }
    }

    /// Take in the remote's synchronize message; true when it is the first.
    pub fn on_sync(&mut self, m: &Synchronize) -> bool {
        let first = !self.remote.synced;
        self.remote.synced = true;
        if m.length != self.remote.length {
            self.upgrade_refused_at = None;
        }
        self.remote.fork = m.fork;
        self.remote.length = m.length;
        first
    }

    pub fn on_range(&mut self, m: &Range) {
        let end = m.start.saturating_add(m.length);
        if m.drop {
            self.remote.has.remove(m.start, end);
        } else {
            self.remote.has.insert(m.start, end);
        }
    }

    pub fn on_bitfield(&mut self, m: &Bitfield) {
        self.remote.has.insert_bits(m.start, &m.bitfield);
    }

    /// The request an answer is for, if we sent it (unsolicited answers get `None`).
    pub fn answered(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        match p {
            Pending::Block { index, bytes } => {
                self.blocks.remove(&index);
                self.bytes = self.bytes.saturating_sub(bytes);
            }
            Pending::Upgrade { .. } => self.upgrading = false,
        }
        Some(p)
    }

    /// The remote could not answer request `id`: do not ask it again for the same thing
    /// until it tells us something new. Returns the request.
    pub fn refused(&mut self, id: u64) -> Option<Pending> {
        let p = self.answered(id);
        match p {
            Some(Pending::Block { index, .. }) => self.remote.has.remove(index, index + 1),
            Some(Pending::Upgrade { .. }) => self.upgrade_refused_at = Some(self.remote.length),
            None => {}
        }
        p
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Estimated bytes of the blocks in flight.
    pub fn in_flight_bytes(&self) -> u64 {
        self.bytes
    }

    /// Change the bound on estimated bytes in flight (requests already sent stay).
    pub fn set_byte_limit(&mut self, bytes: u64) {
        self.limits.bytes = bytes;
    }

    fn register(&mut self, p: Pending) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        match p {
            Pending::Block { index, bytes } => {
                self.blocks.insert(index);
                self.bytes += bytes;
            }
            Pending::Upgrade { .. } => self.upgrading = true,
        }
        self.pending.insert(id, p);
        id
    }

    /// An upgrade to ask for, with its request id: the remote is longer, on our fork, and
    /// did not already refuse this length.
    pub fn upgrade(&mut self, local: &Local) -> Option<(u64, u64, u64)> {
        if local.writable
            || self.upgrading
            || !self.remote.synced
            || self.remote.fork != local.fork
            || self.remote.length <= local.length
            || self.upgrade_refused_at == Some(self.remote.length)
        {
            return None;
        }
        let (start, length) = (local.length, self.remote.length - local.length);
        let id = self.register(Pending::Upgrade { start, length });
        Some((id, start, length))
    }

    /// Blocks a local reader waits for (`wanted`), to ask for before any other: missing
    /// here, present there, not in flight, within the local tree and each admitted by
    /// `admit`. The block limit is not applied (a reader is waiting); the byte limit is.
    pub fn wanted(
        &mut self,
        local: &Local,
        wanted: &[u64],
        has: impl Fn(u64) -> bool,
        mut admit: impl FnMut(u64) -> bool,
    ) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if self.remote.fork != local.fork {
            return out;
        }
        let bytes = local.block_bytes.max(1);
        for &i in wanted {
            if i >= local.length
                || i < local.floor
                || has(i)
                || self.blocks.contains(&i)
                || !self.remote.has.contains(i)
            {
                continue;
            }
            if (self.bytes + bytes > self.limits.bytes && !self.blocks.is_empty()) || !admit(bytes)
            {
                break;
            }
            let id = self.register(Pending::Block { index: i, bytes });
            out.push((id, i));
        }
        out
    }

    /// Blocks to ask for now, with their request ids: missing here, present there, not in
    /// flight, within the local tree, within the limits, and each admitted by `admit`
    /// (given the block's estimated size; the first refusal ends the pass).
    pub fn blocks(
        &mut self,
        local: &Local,
        has: impl Fn(u64) -> bool,
        mut admit: impl FnMut(u64) -> bool,
    ) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if self.remote.fork != local.fork {
            return out;
        }
        let bytes = local.block_bytes.max(1);
        self.cursor = self
            .cursor
            .max(local.contiguous)
            .max(local.floor)
            .min(local.length);
        while self.cursor < local.length && has(self.cursor) {
            self.cursor += 1;
        }
        let mut i = self.cursor;
        let stop = local.length.min(self.cursor.saturating_add(SCAN));
        while i < stop
            && self.blocks.len() < self.limits.blocks
            && (self.bytes + bytes <= self.limits.bytes || self.blocks.is_empty())
        {
            let Some(next) = self.remote.has.next_from(i) else {
                break;
            };
            if next >= stop {
                break;
            }
            i = next;
            if !self.blocks.contains(&i) && !has(i) {
                if !admit(bytes) {
                    break;
                }
                let id = self.register(Pending::Block { index: i, bytes });
                out.push((id, i));
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(length: u64, contiguous: u64) -> Local {
        Local {
            length,
            contiguous,
            fork: 0,
            writable: false,
            block_bytes: 1000,
            floor: 0,
        }
    }

    fn sync(length: u64) -> Synchronize {
        Synchronize {
            fork: 0,
            length,
            remote_length: 0,
            downloading: true,
            uploading: true,
            can_upgrade: true,
        }
    }

    #[test]
    fn blocks_a_reader_waits_for_are_asked_for_first_and_once() {
        let mut p = Peer::new(Limits {
            blocks: 2,
            bytes: 1 << 20,
        });
        p.on_sync(&sync(100));
        p.on_range(&Range {
            drop: false,
            start: 0,
            length: 90,
        });
        let l = local(100, 0);
        // 95 is not there, 3 is held here already, 200 is past the tree.
        let got = p.wanted(&l, &[80, 95, 3, 200, 81], |i| i == 3, |_| true);
        assert_eq!(
            got.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![80, 81]
        );
        assert!(p.wanted(&l, &[80], |_| false, |_| true).is_empty(), "once");
        // The block limit is full now, yet a reader's block is still asked for.
        let _ = p.blocks(&l, |_| false, |_| true);
        assert_eq!(p.wanted(&l, &[85], |_| false, |_| true).len(), 1);
        // A refused admission (a quota) asks for nothing.
        assert!(p.wanted(&l, &[86], |_| false, |_| false).is_empty());
    }

    #[test]
    fn asks_for_an_upgrade_once_then_for_blocks_within_limits() {
        let mut p = Peer::new(Limits {
            blocks: 4,
            bytes: 1 << 20,
        });
        assert!(p.on_sync(&sync(10)));
        assert!(!p.on_sync(&sync(10)));
        let (id, start, length) = p.upgrade(&local(0, 0)).unwrap();
        assert_eq!((start, length), (0, 10));
        assert_eq!(p.upgrade(&local(0, 0)), None, "one upgrade at a time");
        assert!(matches!(p.answered(id), Some(Pending::Upgrade { .. })));
        // Knowing the length is not knowing the blocks: nothing until a range says so.
        assert!(p.blocks(&local(10, 0), |_| false, |_| true).is_empty());
        p.on_range(&Range {
            drop: false,
            start: 0,
            length: 10,
        });
        let first: Vec<u64> = p
            .blocks(&local(10, 0), |i| i == 1, |_| true)
            .iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(first, vec![0, 2, 3, 4]);
        assert!(
            p.blocks(&local(10, 0), |_| false, |_| true).is_empty(),
            "window full"
        );
        assert_eq!(p.in_flight(), 4);
    }

    #[test]
    fn a_refusal_is_not_repeated_until_the_remote_says_more() {
        let mut p = Peer::new(Limits::default());
        p.on_sync(&sync(5));
        let (id, ..) = p.upgrade(&local(0, 0)).unwrap();
        p.refused(id);
        assert_eq!(p.upgrade(&local(0, 0)), None);
        p.on_sync(&sync(6));
        assert!(p.upgrade(&local(0, 0)).is_some());

        let mut p = Peer::new(Limits::default());
        p.on_sync(&sync(3));
        p.on_range(&Range {
            drop: false,
            start: 0,
            length: 3,
        });
        let asked = p.blocks(&local(3, 0), |_| false, |_| true);
        assert_eq!(asked.len(), 3);
        p.refused(asked[1].0);
        assert_eq!(
            p.answered(asked[0].0),
            Some(Pending::Block {
                index: 0,
                bytes: 1000
            })
        );
        p.answered(asked[2].0);
        assert!(p.blocks(&local(3, 0), |i| i != 1, |_| true).is_empty());
    }

    #[test]
    fn writers_and_other_forks_ask_for_nothing() {
        let mut p = Peer::new(Limits::default());
        p.on_sync(&sync(5));
        let mut w = local(3, 3);
        w.writable = true;
        assert_eq!(p.upgrade(&w), None);
        let mut f = local(3, 0);
        f.fork = 1;
        assert_eq!(p.upgrade(&f), None);
        assert!(p.blocks(&f, |_| false, |_| true).is_empty());
    }

    #[test]
    fn the_byte_budget_bounds_large_blocks_but_never_stalls() {
        let mut p = Peer::new(Limits {
            blocks: 64,
            bytes: 2500,
        });
        p.on_sync(&sync(100));
        p.on_range(&Range {
            drop: false,
            start: 0,
            length: 100,
        });
        let mut l = local(100, 0);
        assert_eq!(p.blocks(&l, |_| false, |_| true).len(), 2);
        let mut q = Peer::new(Limits {
            blocks: 64,
            bytes: 10,
        });
        q.on_sync(&sync(100));
        q.remote.has.insert(0, 100);
        l.block_bytes = 1 << 30;
        assert_eq!(q.blocks(&l, |_| false, |_| true).len(), 1);
    }

    #[test]
    fn a_refused_admission_ends_the_pass_and_registers_nothing() {
        let mut p = Peer::new(Limits::default());
        p.on_sync(&sync(10));
        p.remote.has.insert(0, 10);
        let mut room = 3;
        let asked = p.blocks(
            &local(10, 0),
            |_| false,
            |bytes| {
                assert_eq!(bytes, 1000);
                room -= 1;
                room >= 0
            },
        );
        assert_eq!(asked.iter().map(|a| a.1).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!((p.in_flight(), p.in_flight_bytes()), (3, 3000));
        let later = p.blocks(&local(10, 0), |_| false, |_| true);
        assert_eq!(
            later.first().map(|a| a.1),
            Some(3),
            "the refused block is asked later"
        );
    }
}
