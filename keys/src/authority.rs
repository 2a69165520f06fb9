//! A device's admin authority: which keys may steer it and how many of them must sign a
//! change. It is rooted in the `[admins]` of the first config the device accepted (trust on
//! first use) and changes only through *entries* — add, remove, revoke, threshold — each
//! naming its parent and signed by `threshold` keys of the set in force at that parent, so
//! the entries form a chain every device verifies on its own.
//!
//! The state is a function of the set of entries known, not of the order they arrived in:
//! from the genesis, the entries whose parent is the head and that are valid there are the
//! candidates; when several are (a fork: two admins changed the set concurrently), the one
//! chosen is a revocation before a removal before a threshold change before an addition (a
//! removal wins a tie), then the one with the smallest digest; the others are never applied.
//! Every device holding the same entries reaches the same head.
//!
//! A removed key's signatures count for nothing from its removal on, so its later entries
//! are ignored; a revoked key can moreover never be added again. No change may leave fewer
//! keys than the threshold.
//!
//! Encoding of an entry (integers little-endian): `0x01 ‖ parent [32] ‖ change ‖ n u8 ‖ n ×
//! (key [32] ‖ signature [64])`; change = `1 ‖ key` add, `2 ‖ key` remove, `3 ‖ key` revoke,
//! `4 ‖ threshold u8`. Signatures are over `"cobox-authority-v1" ‖ parent ‖ change`, and the
//! entry's digest (BLAKE2b-256 of the same bytes) leaves them out, so co-signatures gathered
//! separately make one entry.

use std::collections::{BTreeMap, BTreeSet};

use cobox_schema::hexkey::PublicKey;
use libsodium_rs::crypto_generichash;

use crate::SigningKeyPair;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"cobox-authority-v1";
const GENESIS_DOMAIN: &[u8] = b"cobox-authority-genesis-v1";
/// Keys in an admin set, and signatures on one entry, at most.
pub const MAX_KEYS: usize = 255;

/// A digest naming a genesis or an entry.
pub type Digest = [u8; 32];

/// Entries whose parent is not on the chain yet kept at most by [`Authority::keep`].
pub const MAX_PARKED: usize = 64;

/// What an entry changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    Add([u8; 32]),
    Remove([u8; 32]),
    /// Removed for good: a compromised key.
    Revoke([u8; 32]),
    Threshold(u8),
}

impl Change {
    /// Which of two concurrent entries wins: the lower rank.
    fn rank(&self) -> u8 {
        match self {
            Change::Revoke(_) => 0,
            Change::Remove(_) => 1,
            Change::Threshold(_) => 2,
            Change::Add(_) => 3,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Change::Add(k) => {
                out.push(1);
                out.extend_from_slice(k);
            }
            Change::Remove(k) => {
                out.push(2);
                out.extend_from_slice(k);
            }
            Change::Revoke(k) => {
                out.push(3);
                out.extend_from_slice(k);
            }
            Change::Threshold(n) => out.extend_from_slice(&[4, *n]),
        }
    }
}

/// One signed change of the admin set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub parent: Digest,
    pub change: Change,
    /// Signatures by key (at most one per key).
    pub signatures: BTreeMap<[u8; 32], [u8; 64]>,
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("authority entry ends early")]
    Truncated,
    #[error("authority entry of version {0} is not supported")]
    Version(u8),
    #[error("authority entry has an unknown change type {0}")]
    UnknownChange(u8),
    #[error("authority entry has {0} trailing bytes")]
    Trailing(usize),
    #[error("authority entry names a key twice among its signatures")]
    DuplicateSigner,
}

fn digest(parts: &[&[u8]]) -> Digest {
    crate::init();
    let bytes = parts.concat();
    crypto_generichash::generichash(&bytes, None, 32)
        .expect("a 32-byte BLAKE2b digest is always available")
        .try_into()
        .expect("32 bytes asked for")
}

impl Entry {
    /// What the signers sign.
    fn signed(parent: &Digest, change: &Change) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(parent);
        change.encode(&mut out);
        out
    }

    /// A new entry on `parent`, signed by `by`.
    pub fn new(parent: Digest, change: Change, by: &SigningKeyPair) -> Entry {
        let mut e = Entry {
            parent,
            change,
            signatures: BTreeMap::new(),
        };
        e.sign(by);
        e
    }

    /// Add `by`'s signature (a co-signer).
    pub fn sign(&mut self, by: &SigningKeyPair) {
        let sig = by.sign(&Entry::signed(&self.parent, &self.change));
        self.signatures.insert(by.public.0, sig);
    }

    /// The entry's name, signatures left out.
    pub fn digest(&self) -> Digest {
        digest(&[&Entry::signed(&self.parent, &self.change)])
    }

    /// The keys among `keys` whose signature on this entry verifies.
    fn signers(&self, keys: &BTreeSet<[u8; 32]>) -> usize {
        let message = Entry::signed(&self.parent, &self.change);
        self.signatures
            .iter()
            .filter(|(k, sig)| {
                keys.contains(*k) && crate::derive::verify(&PublicKey(**k), &message, sig)
            })
            .count()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.parent);
        self.change.encode(&mut out);
        let sigs: Vec<_> = self.signatures.iter().take(MAX_KEYS).collect();
        out.push(sigs.len() as u8);
        for (k, s) in sigs {
            out.extend_from_slice(k);
            out.extend_from_slice(s);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, AuthorityError> {
        let mut r = bytes;
        let mut take = |n: usize| -> Result<&[u8], AuthorityError> {
            if r.len() < n {
                return Err(AuthorityError::Truncated);
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        let key = |b: &[u8]| -> [u8; 32] { b.try_into().expect("took 32 bytes") };
        let version = take(1)?[0];
        if version != VERSION {
            return Err(AuthorityError::Version(version));
        }
        let parent = key(take(32)?);
        let change = match take(1)?[0] {
            1 => Change::Add(key(take(32)?)),
            2 => Change::Remove(key(take(32)?)),
            3 => Change::Revoke(key(take(32)?)),
            4 => Change::Threshold(take(1)?[0]),
            other => return Err(AuthorityError::UnknownChange(other)),
        };
        let n = take(1)?[0] as usize;
        let mut signatures = BTreeMap::new();
        for _ in 0..n {
            let k = key(take(32)?);
            let s: [u8; 64] = take(64)?.try_into().expect("took 64 bytes");
            if signatures.insert(k, s).is_some() {
                return Err(AuthorityError::DuplicateSigner);
            }
        }
        if !r.is_empty() {
            return Err(AuthorityError::Trailing(r.len()));
        }
        Ok(Entry {
            parent,
            change,
            signatures,
        })
    }
}

/// The admin set in force: its keys, how many must sign a change, and the chain's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub keys: BTreeSet<[u8; 32]>,
    pub threshold: u8,
    /// Keys revoked so far (never added again).
    pub revoked: BTreeSet<[u8; 32]>,
    /// The genesis's digest.
    pub genesis: Digest,
    /// The genesis's digest, then each applied entry's.
    pub head: Digest,
    /// Entries applied since the genesis, in order.
    pub applied: Vec<Digest>,
}

/// Why an admin set cannot be a genesis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error(
        "admins: a threshold of {threshold} needs at least that many keys, and {keys} are given"
    )]
    Threshold { threshold: u8, keys: usize },
    #[error("admins: at most {MAX_KEYS} keys")]
    TooMany,
}

impl Authority {
    /// The authority rooted in `keys` with `threshold` (trust on first use).
    pub fn genesis(keys: BTreeSet<[u8; 32]>, threshold: u8) -> Result<Authority, GenesisError> {
        if keys.len() > MAX_KEYS {
            return Err(GenesisError::TooMany);
        }
        if threshold == 0 || threshold as usize > keys.len() {
            return Err(GenesisError::Threshold {
                threshold,
                keys: keys.len(),
            });
        }
        let mut bytes = vec![threshold];
        for k in &keys {
            bytes.extend_from_slice(k);
        }
        let genesis = digest(&[GENESIS_DOMAIN, &bytes]);
        Ok(Authority {
            genesis,
            head: genesis,
            keys,
            threshold,
            revoked: BTreeSet::new(),
            applied: Vec::new(),
        })
    }

    /// The set after `change` (the head not moved yet), if it may be made here.
    fn after(&self, change: &Change) -> Option<Authority> {
        let mut next = self.clone();
        match *change {
            Change::Add(k) => {
                if next.revoked.contains(&k) || !next.keys.insert(k) || next.keys.len() > MAX_KEYS {
                    return None;
                }
            }
            Change::Remove(k) => {
                if !next.keys.remove(&k) {
                    return None;
                }
            }
            Change::Revoke(k) => {
                if !next.keys.remove(&k) {
                    return None;
                }
                next.revoked.insert(k);
            }
            Change::Threshold(n) => next.threshold = n,
        }
        // Never cut the branch the device sits on.
        (next.threshold >= 1 && next.threshold as usize <= next.keys.len()).then_some(next)
    }

    /// A genesis as published in a fleet: `threshold u8 ‖ n u8 ‖ n × key [32]` (what its
    /// digest covers, with the count).
    pub fn encode_genesis(keys: &BTreeSet<[u8; 32]>, threshold: u8) -> Vec<u8> {
        let mut out = vec![threshold, keys.len().min(MAX_KEYS) as u8];
        for k in keys.iter().take(MAX_KEYS) {
            out.extend_from_slice(k);
        }
        out
    }

    /// Read a published genesis; `None` when the bytes are not one.
    pub fn decode_genesis(bytes: &[u8]) -> Option<(BTreeSet<[u8; 32]>, u8)> {
        let (&threshold, rest) = bytes.split_first()?;
        let (&n, keys) = rest.split_first()?;
        if keys.len() != n as usize * 32 {
            return None;
        }
        let set: BTreeSet<[u8; 32]> = keys
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        (set.len() == n as usize).then_some((set, threshold))
    }

    /// Whether `change` may be made to the set in force (it changes something, keeps at
    /// least `threshold` keys, never brings a revoked key back).
    pub fn allows(&self, change: &Change) -> bool {
        self.after(change).is_some()
    }

    /// Whether `head` is this chain's genesis or one of its applied entries.
    pub fn has_head(&self, head: &Digest) -> bool {
        *head == self.genesis || self.applied.contains(head)
    }

    /// Whether `entry` may be applied now: on the head, a change that may be made, and
    /// signed by `threshold` keys of the set in force.
    pub fn accepts(&self, entry: &Entry) -> bool {
        entry.parent == self.head
            && self.after(&entry.change).is_some()
            && entry.signers(&self.keys) >= self.threshold as usize
    }

    /// Follow the chain of `entries` (any order, duplicates and co-signatures gathered
    /// separately merged) as far as it goes from this state.
    pub fn follow(mut self, entries: impl IntoIterator<Item = Entry>) -> Authority {
        let mut by_digest: BTreeMap<Digest, Entry> = BTreeMap::new();
        for e in entries {
            by_digest
                .entry(e.digest())
                .and_modify(|known| known.signatures.extend(e.signatures.clone()))
                .or_insert(e);
        }
        let mut by_parent: BTreeMap<Digest, Vec<(Digest, Entry)>> = BTreeMap::new();
        for (d, e) in by_digest {
            by_parent.entry(e.parent).or_default().push((d, e));
        }
        while let Some(children) = by_parent.remove(&self.head) {
            let Some((d, chosen)) = children
                .into_iter()
                .filter(|(_, e)| self.accepts(e))
                .min_by_key(|(d, e)| (e.change.rank(), *d))
            else {
                break;
            };
            self = self.after(&chosen.change).expect("accepted");
            self.head = d;
            self.applied.push(d);
        }
        self
    }

    /// Of `entries` (distinct, oldest first; this authority followed through them), the
    /// ones that can still matter: the applied ones; proposals on the head that a key in
    /// force signed (they may gather co-signatures); and the first [`MAX_PARKED`] whose
    /// parent is not on the chain (an entry can arrive before the one it continues).
    /// Dropped: entries at a past head that were not applied (they lost, or lacked
    /// signatures when the chain went on; a co-signed copy arriving later is taken again)
    /// and entries on the head no key in force signed, so a member who is not an admin
    /// cannot make a device keep what it writes.
    pub fn keep(&self, entries: Vec<Entry>) -> Vec<Entry> {
        let applied: BTreeSet<Digest> = self.applied.iter().copied().collect();
        let mut parked = 0;
        entries
            .into_iter()
            .filter(|e| {
                if applied.contains(&e.digest()) {
                    true
                } else if e.parent == self.head {
                    e.signers(&self.keys) >= 1
                } else if self.has_head(&e.parent) {
                    false
                } else {
                    parked += 1;
                    parked <= MAX_PARKED
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
