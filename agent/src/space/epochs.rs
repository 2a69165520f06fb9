//! The key epochs of a space a member knows, from the epoch messages and grants in its
//! members' logs: which keys this device holds, who else holds each, and whether a rotation
//! or a grant is due.
//!
//! The epoch new blocks are sealed under is the newest held (greatest number; of a fork of
//! concurrent rotations, the smaller digest). A rotation is due when the newest epoch
//! known may be read by someone no longer in the space: for epoch 0 (the key every invite
//! handed out), any member admitted once and in no longer; for later epochs, a holder (a
//! member it was sealed or granted to) or its author who is not in. The rule depends only
//! on the epochs and the roster, so a member who learns a removal after another member
//! answered it rotates nothing again. A grant is due for every member in who misses the key
//! of an epoch this device holds (admitted after it, or sealed on a branch of a fork that
//! did not name it): members must read every epoch to read the whole space.

use std::collections::{BTreeMap, BTreeSet};

use cobox_keys::block::{BlockKey, Keyring};
use cobox_keys::epoch::{Digest, Epoch, Grant};
use cobox_keys::roster::{Entry, Role, Standing};
use cobox_keys::{Secret32, SigningKeyPair};

/// Most epochs one space keeps track of, held or not. Far more than removals and
/// rotations on demand make in a space's life; a bound on what a member writing epoch
/// messages or grants without end can make every other member keep (in memory, in the
/// epoch file, and in the members × epochs look for grants due). Epochs past it are
/// ignored: entries sealed under them stay unread.
pub const MAX_EPOCHS: usize = 4096;

/// What is known of one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// Zeros for epoch 0.
    pub author: [u8; 32],
    /// Members its key was sealed or granted to (empty for epoch 0: whoever was invited).
    pub holders: BTreeSet<[u8; 32]>,
    /// Whether the epoch's own message was seen (a grant can name an epoch first).
    pub seen: bool,
}

/// The epochs of one space, for one member device.
#[derive(Debug, Clone)]
pub struct Epochs {
    space: [u8; 32],
    known: BTreeMap<(u32, Digest), Known>,
    ring: Keyring,
    /// The keys held, for grants: (number, digest) → key.
    keys: BTreeMap<(u32, Digest), Secret32>,
}

/// What learning a message changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learnt {
    /// Nothing new (already known, or not of this space).
    Nothing,
    /// New holders or epochs, no new key.
    Known,
    /// A key this device did not hold.
    Key,
}

impl Epochs {
    /// A space whose first key (epoch 0) is `first`.
    pub fn new(space: [u8; 32], first: &Secret32) -> Epochs {
        let id = (0, [0; 32]);
        Epochs {
            space,
            known: BTreeMap::from([(
                id,
                Known {
                    seen: true,
                    ..Known::default()
                },
            )]),
            ring: Keyring::first(first),
            keys: BTreeMap::from([(id, first.clone())]),
        }
    }

    /// Every key held, to open blocks of any epoch and seal under the newest.
    pub fn keyring(&self) -> &Keyring {
        &self.ring
    }

    /// The epochs known, by (number, digest).
    pub fn known(&self) -> &BTreeMap<(u32, Digest), Known> {
        &self.known
    }

    fn hold(&mut self, number: u32, digest: Digest, key: Secret32) -> Learnt {
        if self.keys.contains_key(&(number, digest)) {
            return Learnt::Nothing;
        }
        self.ring
            .insert_epoch(number, digest, BlockKey::for_space(&key));
        self.keys.insert((number, digest), key);
        Learnt::Key
    }

    /// Take in an epoch message (already decoded and its signature checked).
    pub fn learn_epoch(&mut self, e: &Epoch, me: &SigningKeyPair) -> Learnt {
        if e.space != self.space || e.number == 0 {
            return Learnt::Nothing;
        }
        let digest = e.digest();
        if !self.room_for(&(e.number, digest)) {
            return Learnt::Nothing;
        }
        let known = self.known.entry((e.number, digest)).or_default();
        let before = known.clone();
        known.author = e.author;
        known.seen = true;
        known.holders.extend(e.members().copied());
        let changed = *known != before;
        let key = e.open(me).ok();
        match key.map(|k| self.hold(e.number, digest, k)) {
            Some(Learnt::Key) => Learnt::Key,
            _ if changed => Learnt::Known,
            _ => Learnt::Nothing,
        }
    }

    /// Take in a grant (already decoded and its signature checked).
    pub fn learn_grant(&mut self, g: &Grant, me: &SigningKeyPair) -> Learnt {
        if g.space != self.space {
            return Learnt::Nothing;
        }
        let mut learnt = Learnt::Nothing;
        for (n, d, _) in &g.keys {
            if *n == 0 || !self.room_for(&(*n, *d)) {
                continue;
            }
            if self
                .known
                .entry((*n, *d))
                .or_default()
                .holders
                .insert(g.member)
            {
                learnt = Learnt::Known;
            }
        }
        if g.member == me.public.0
            && let Ok(keys) = g.open(me)
        {
            for (n, d, key) in keys {
                if n != 0 && self.known.contains_key(&(n, d)) && self.hold(n, d, key) == Learnt::Key
                {
                    learnt = Learnt::Key;
                }
            }
        }
        learnt
    }

    /// Whether epoch `id` is known already or may still be taken in ([`MAX_EPOCHS`]).
    fn room_for(&self, id: &(u32, Digest)) -> bool {
        self.known.contains_key(id) || self.known.len() < MAX_EPOCHS
    }

    /// The newest epoch known, held or not: (number, digest).
    pub fn newest_known(&self) -> (u32, Digest) {
        let (&(number, _), _) = self.known.iter().next_back().expect("epoch 0 is known");
        *self
            .known
            .range((number, [0; 32])..)
            .next()
            .expect("an epoch of that number")
            .0
    }

    /// The epoch a rotation starts next: (number, parent digest).
    pub fn next(&self) -> (u32, Digest) {
        let (number, digest) = self.newest_known();
        (number.saturating_add(1), digest)
    }

    /// The keys of every epoch after 0 held here, for a grant.
    pub fn held_after_first(&self) -> Vec<(u32, Digest, &Secret32)> {
        self.keys
            .iter()
            .filter(|((n, _), _)| *n > 0)
            .map(|((n, d), k)| (*n, *d, k))
            .collect()
    }

    /// Who may read the newest epoch known but is not in the space (by the roster's
    /// `entries`), sorted: a rotation is due when this is not empty.
    pub fn exposed(&self, entries: &[Entry]) -> Vec<[u8; 32]> {
        let is_in = |k: &[u8; 32]| {
            entries
                .iter()
                .any(|e| e.identity == *k && e.standing == Standing::In)
        };
        let id = self.newest_known();
        let mut out: BTreeSet<[u8; 32]> = if id.0 == 0 {
            entries
                .iter()
                .filter(|e| e.role == Some(Role::Member) && e.standing != Standing::In)
                .map(|e| e.identity)
                .collect()
        } else {
            let known = &self.known[&id];
            known
                .holders
                .iter()
                .chain(Some(&known.author).filter(|a| **a != [0; 32]))
                .filter(|k| !is_in(k))
                .copied()
                .collect()
        };
        out.remove(&[0; 32]);
        out.into_iter().collect()
    }

    /// The members in (by the roster's `entries`) the next epoch is sealed to, sorted.
    pub fn recipients(entries: &[Entry]) -> Vec<[u8; 32]> {
        entries
            .iter()
            .filter(|e| e.role == Some(Role::Member) && e.standing == Standing::In)
            .map(|e| e.identity)
            .collect()
    }

    /// Members in (by the roster's `entries`) missing the key of an epoch after the first
    /// that this device holds (admitted after it, or it came from a branch of a fork they
    /// were not sealed to), sorted: each is due a grant.
    pub fn grants_due(&self, entries: &[Entry], me: &[u8; 32]) -> Vec<[u8; 32]> {
        Epochs::recipients(entries)
            .into_iter()
            .filter(|k| {
                k != me
                    && self
                        .keys
                        .keys()
                        .filter(|(n, _)| *n > 0)
                        .any(|id| !self.known.get(id).is_some_and(|e| e.holders.contains(k)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::roster::{Roster, Statement};

    fn id(n: u8) -> SigningKeyPair {
        cobox_keys::derive::identity(&Secret32::from_bytes([n; 32]))
    }

    const SPACE: [u8; 32] = [9; 32];

    /// A's roster: A admitted B and C; `removed` are removed by A.
    fn entries(
        a: &SigningKeyPair,
        members: &[&SigningKeyPair],
        removed: &[&SigningKeyPair],
    ) -> Vec<Entry> {
        let mut r = Roster::member(SPACE, a.public.0);
        for m in members {
            r.add(Statement::allow(a, &SPACE, Role::Member, m.public.0))
                .unwrap();
        }
        for m in removed {
            r.add(Statement::remove(a, &SPACE, m.public.0)).unwrap();
        }
        let mut e = r.entries();
        if !e.iter().any(|e| e.identity == a.public.0) {
            e.push(Entry {
                identity: a.public.0,
                role: Some(Role::Member),
                standing: Standing::In,
                admitted_by: vec![],
                removed_by: vec![],
            });
            e.sort_by_key(|e| e.identity);
        }
        e
    }

    fn rotate(epochs: &Epochs, author: &SigningKeyPair, key: u8, to: &[[u8; 32]]) -> Epoch {
        let (number, parent) = epochs.next();
        Epoch::new(
            author,
            SPACE,
            number,
            parent,
            vec![],
            &Secret32::from_bytes([key; 32]),
            to,
        )
        .unwrap()
    }

    #[test]
    fn a_removal_makes_a_rotation_due_once_and_the_removed_member_gets_no_key() {
        let (a, b, c) = (id(1), id(2), id(3));
        let first = Secret32::from_bytes([1; 32]);
        let all = entries(&a, &[&b, &c], &[]);
        let mut on_a = Epochs::new(SPACE, &first);
        assert!(on_a.exposed(&all).is_empty(), "nobody removed: no rotation");
        let after = entries(&a, &[&b, &c], &[&b]);
        assert_eq!(on_a.exposed(&after), vec![b.public.0]);
        let to = Epochs::recipients(&after);
        assert_eq!(to.len(), 2);
        let e = rotate(&on_a, &a, 5, &to);
        assert_eq!(on_a.learn_epoch(&e, &a), Learnt::Key);
        assert!(on_a.exposed(&after).is_empty(), "answered");
        assert_eq!(on_a.keyring().newest_id(), Some((1, e.digest())));

        // C learns the removal and the epoch in either order: it rotates nothing again.
        let mut on_c = Epochs::new(SPACE, &first);
        assert_eq!(on_c.learn_epoch(&e, &c), Learnt::Key);
        assert_eq!(on_c.learn_epoch(&e, &c), Learnt::Nothing);
        assert!(on_c.exposed(&after).is_empty());
        // B sees the epoch and holds nothing of it.
        let mut on_b = Epochs::new(SPACE, &first);
        assert_eq!(on_b.learn_epoch(&e, &b), Learnt::Known);
        assert_eq!(on_b.keyring().newest_id(), Some((0, [0; 32])));
    }

    #[test]
    fn concurrent_rotations_keep_both_keys_and_seal_under_the_smaller_digest() {
        let (a, b, c) = (id(1), id(2), id(3));
        let first = Secret32::from_bytes([1; 32]);
        let after = entries(&a, &[&b, &c], &[&b]);
        let base = Epochs::new(SPACE, &first);
        let to = Epochs::recipients(&after);
        let (x, y) = (rotate(&base, &a, 5, &to), rotate(&base, &c, 6, &to));
        let mut on_a = base.clone();
        on_a.learn_epoch(&x, &a);
        on_a.learn_epoch(&y, &a);
        let mut on_c = base.clone();
        on_c.learn_epoch(&y, &c);
        on_c.learn_epoch(&x, &c);
        let smaller = x.digest().min(y.digest());
        assert_eq!(on_a.keyring().newest_id(), Some((1, smaller)));
        assert_eq!(on_c.keyring().newest_id(), on_a.keyring().newest_id());
        assert!(on_a.exposed(&after).is_empty(), "both answer the removal");
        assert_eq!(on_a.next(), (2, smaller));
    }

    #[test]
    fn a_member_admitted_after_a_rotation_is_due_a_grant_and_reads_every_epoch_with_it() {
        let (a, b, c, d) = (id(1), id(2), id(3), id(4));
        let first = Secret32::from_bytes([1; 32]);
        let after = entries(&a, &[&b, &c], &[&b]);
        let mut on_a = Epochs::new(SPACE, &first);
        assert!(
            on_a.grants_due(&after, &a.public.0).is_empty(),
            "epoch 0: the invite"
        );
        let e = rotate(&on_a, &a, 5, &Epochs::recipients(&after));
        on_a.learn_epoch(&e, &a);
        assert!(on_a.grants_due(&after, &a.public.0).is_empty());
        let with_d = entries(&a, &[&b, &c, &d], &[&b]);
        assert_eq!(on_a.grants_due(&with_d, &a.public.0), vec![d.public.0]);
        let g = Grant::new(&a, SPACE, d.public.0, &on_a.held_after_first()).unwrap();
        assert_eq!(on_a.learn_grant(&g, &a), Learnt::Known);
        assert!(
            on_a.grants_due(&with_d, &a.public.0).is_empty(),
            "granted once"
        );
        let mut on_d = Epochs::new(SPACE, &first);
        on_d.learn_epoch(&e, &d);
        assert_eq!(on_d.keyring().newest_id(), Some((0, [0; 32])));
        assert_eq!(on_d.learn_grant(&g, &d), Learnt::Key);
        assert_eq!(on_d.keyring().newest_id(), Some((1, e.digest())));
        // An epoch D was not granted (a branch of a fork A learns later) makes another due.
        let other = Epoch::new(
            &c,
            SPACE,
            1,
            [0; 32],
            vec![],
            &Secret32::from_bytes([6; 32]),
            &[a.public.0, c.public.0],
        )
        .unwrap();
        on_a.learn_epoch(&other, &a);
        assert_eq!(on_a.grants_due(&with_d, &a.public.0), vec![d.public.0]);
        let g2 = Grant::new(&a, SPACE, d.public.0, &on_a.held_after_first()).unwrap();
        on_a.learn_grant(&g2, &a);
        assert!(on_a.grants_due(&with_d, &a.public.0).is_empty());
        // Removing D later makes the epoch D was granted exposed.
        let d_out = entries(&a, &[&b, &c, &d], &[&b, &d]);
        assert_eq!(on_a.exposed(&d_out), vec![d.public.0]);
    }

    #[test]
    fn an_epoch_of_another_space_or_by_an_author_who_is_out_counts_as_it_should() {
        let (a, b, c) = (id(1), id(2), id(3));
        let first = Secret32::from_bytes([1; 32]);
        let mut on_a = Epochs::new(SPACE, &first);
        let other = Epoch::new(&a, [8; 32], 1, [0; 32], vec![], &first, &[a.public.0]).unwrap();
        assert_eq!(on_a.learn_epoch(&other, &a), Learnt::Nothing);
        // B, before its removal, rotated to itself and A: once B is out, that epoch is
        // exposed (its author and a holder) and another rotation is due.
        let e = rotate(&on_a, &b, 5, &[a.public.0, b.public.0]);
        on_a.learn_epoch(&e, &a);
        let after = entries(&a, &[&b, &c], &[&b]);
        assert_eq!(on_a.exposed(&after), vec![b.public.0]);
    }

    #[test]
    fn a_member_writing_epochs_without_end_is_held_to_the_bound() {
        let (a, b, c) = (id(1), id(2), id(3));
        let mut on_b = Epochs::new(SPACE, &Secret32::from_bytes([1; 32]));
        while on_b.known().len() < MAX_EPOCHS {
            let key = (on_b.known().len() % 200) as u8 + 2;
            let e = rotate(&on_b, &a, key, &[b.public.0]);
            assert_eq!(on_b.learn_epoch(&e, &b), Learnt::Key);
        }
        let newest = on_b.newest_known();
        // One more is ignored: neither known nor held.
        let extra = rotate(&on_b, &a, 250, &[b.public.0]);
        assert_eq!(on_b.learn_epoch(&extra, &b), Learnt::Nothing);
        assert_eq!(on_b.known().len(), MAX_EPOCHS);
        assert_eq!(on_b.newest_known(), newest);
        assert_ne!(
            on_b.keyring().newest_id(),
            Some((extra.number, extra.digest())),
            "no block is sealed under an epoch past the bound"
        );
        // A grant naming an epoch past the bound adds nothing; one naming a known epoch
        // still records its new holder.
        let extra_key = Secret32::from_bytes([250; 32]);
        let past = Grant::new(
            &a,
            SPACE,
            b.public.0,
            &[(extra.number, extra.digest(), &extra_key)],
        )
        .unwrap();
        assert_eq!(on_b.learn_grant(&past, &b), Learnt::Nothing);
        assert_eq!(on_b.known().len(), MAX_EPOCHS);
        let held = on_b.held_after_first();
        let to_c = Grant::new(&a, SPACE, c.public.0, &held[..1]).unwrap();
        assert_eq!(on_b.learn_grant(&to_c, &b), Learnt::Known);
    }
}
