//! Key epochs of a space: after a removal (or on demand) a member starts a new epoch with a
//! fresh random key, sealed to each remaining member's identity, so blocks written under it
//! stay closed to whoever was removed; readers keep every epoch's key. An epoch message is
//! signed by its author and chained to the epoch before it. A [`Grant`] gives a member
//! admitted later the keys of the epochs before it.
//!
//! Encoding (integers little-endian): `0x01 ‖ space [32] ‖ number u32 ‖ parent [32] ‖ a u16 ‖
//! a × answered [32] ‖ n u16 ‖ n × (member [32] ‖ sealed key [80]) ‖ author [32] ‖ signature
//! [64]`. `parent` is the digest of the epoch it follows (zeros after the space's first
//! key, epoch 0); `answered` are the digests of the removals it answers (so a member who
//! learns of them later rotates nothing again); members are sorted and distinct. The
//! signature covers `"cobox-epoch-v1"` and everything before it; the digest (BLAKE2b-256)
//! covers the same bytes.

use libsodium_rs::crypto_generichash;

use crate::secret::Secret32;
use crate::{SigningKeyPair, sealed};
use cobox_schema::hexkey::PublicKey;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"cobox-epoch-v1";
/// A sealed 32-byte key.
pub const SEALED_KEY: usize = 32 + sealed::OVERHEAD;
/// Bytes each member adds to an epoch message: its identity and its sealed key.
pub const PER_MEMBER: usize = 32 + SEALED_KEY;
/// Members, and answered removals, in one message at most.
pub const MAX_ENTRIES: usize = u16::MAX as usize;

/// A digest naming an epoch message.
pub type Digest = [u8; 32];

/// One key epoch of a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    pub space: [u8; 32],
    pub number: u32,
    pub parent: Digest,
    pub answered: Vec<Digest>,
    /// Each member and the key sealed to it, sorted by member.
    pub sealed: Vec<([u8; 32], Vec<u8>)>,
    pub author: [u8; 32],
    pub signature: [u8; 64],
}

/// Why bytes are not an epoch message, or an epoch cannot be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("epoch message ends early")]
    Truncated,
    #[error("epoch message of version {0} is not supported")]
    Version(u8),
    #[error("epoch message has {0} bytes after its end")]
    Trailing(usize),
    #[error("epoch message lists members out of order or twice")]
    Order,
    #[error("epoch message's signature does not verify")]
    Signature,
    #[error("epoch {0} has no key sealed to this device")]
    NotAMember(u32),
    #[error("epoch member {0} is not a valid identity key")]
    BadMember(PublicKey),
    #[error("an epoch lists at most {MAX_ENTRIES} members and removals")]
    TooMany,
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], EpochError> {
    if bytes.len() < n {
        return Err(EpochError::Truncated);
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn array<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], EpochError> {
    Ok(take(bytes, N)?.try_into().expect("length taken"))
}

impl Epoch {
    /// Epoch `number` of `space` after `parent`, answering `answered`, with `key` sealed to
    /// each of `members` (sorted and deduplicated here), signed by `author`.
    pub fn new(
        author: &SigningKeyPair,
        space: [u8; 32],
        number: u32,
        parent: Digest,
        answered: Vec<Digest>,
        key: &Secret32,
        members: &[[u8; 32]],
    ) -> Result<Epoch, EpochError> {
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        if members.len() > MAX_ENTRIES || answered.len() > MAX_ENTRIES {
            return Err(EpochError::TooMany);
        }
        let sealed = members
            .into_iter()
            .map(|m| {
                sealed::seal(&m, key.expose())
                    .map(|s| (m, s))
                    .map_err(|_| EpochError::BadMember(PublicKey(m)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut e = Epoch {
            space,
            number,
            parent,
            answered,
            sealed,
            author: author.public.0,
            signature: [0; 64],
        };
        e.signature = author.sign(&e.signed());
        Ok(e)
    }

    /// The bytes the signature and the digest cover.
    fn signed(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        self.body(&mut out);
        out
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.space);
        out.extend_from_slice(&self.number.to_le_bytes());
        out.extend_from_slice(&self.parent);
        out.extend_from_slice(&(self.answered.len() as u16).to_le_bytes());
        for a in &self.answered {
            out.extend_from_slice(a);
        }
        out.extend_from_slice(&(self.sealed.len() as u16).to_le_bytes());
        for (m, s) in &self.sealed {
            out.extend_from_slice(m);
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&self.author);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.body(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decode and check the signature and the members' order.
    pub fn decode(mut bytes: &[u8]) -> Result<Epoch, EpochError> {
        let r = &mut bytes;
        let [version] = array::<1>(r)?;
        if version != VERSION {
            return Err(EpochError::Version(version));
        }
        let space = array(r)?;
        let number = u32::from_le_bytes(array(r)?);
        let parent = array(r)?;
        let a = u16::from_le_bytes(array(r)?) as usize;
        // Lengths are checked against what is left before anything is allocated.
        if r.len() < a * 32 {
            return Err(EpochError::Truncated);
        }
        let answered = (0..a).map(|_| array(r)).collect::<Result<Vec<_>, _>>()?;
        let n = u16::from_le_bytes(array(r)?) as usize;
        if r.len() < n * PER_MEMBER {
            return Err(EpochError::Truncated);
        }
        let sealed = (0..n)
            .map(|_| Ok((array(r)?, take(r, SEALED_KEY)?.to_vec())))
            .collect::<Result<Vec<([u8; 32], Vec<u8>)>, EpochError>>()?;
        let author = array(r)?;
        let signature = array(r)?;
        if !r.is_empty() {
            return Err(EpochError::Trailing(r.len()));
        }
        if sealed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(EpochError::Order);
        }
        let e = Epoch {
            space,
            number,
            parent,
            answered,
            sealed,
            author,
            signature,
        };
        if !crate::derive::verify(&PublicKey(author), &e.signed(), &signature) {
            return Err(EpochError::Signature);
        }
        Ok(e)
    }

    pub fn digest(&self) -> Digest {
        let h = crypto_generichash::generichash(&self.signed(), None, 32).expect("32-byte hash");
        h.try_into().expect("32 bytes")
    }

    /// The members the key is sealed to, sorted.
    pub fn members(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.sealed.iter().map(|(m, _)| m)
    }

    /// The epoch's key, for `me` (one of its members).
    pub fn open(&self, me: &SigningKeyPair) -> Result<Secret32, EpochError> {
        let not = || EpochError::NotAMember(self.number);
        let i = self
            .sealed
            .binary_search_by(|(m, _)| m.cmp(&me.public.0))
            .map_err(|_| not())?;
        let plain = sealed::open(me, &self.sealed[i].1).map_err(|_| not())?;
        Secret32::from_slice(&plain).ok_or_else(not)
    }
}

/// Epoch keys given to a member admitted after them (or who missed a rotation): each
/// epoch's key sealed to `member`, signed by a member who holds them.
///
/// Encoding: `0x01 ‖ space [32] ‖ member [32] ‖ n u16 ‖ n × (number u32 ‖ digest [32] ‖
/// sealed key [80]) ‖ author [32] ‖ signature [64]`, the signature over
/// `"cobox-grant-v1"` and everything before it; epochs sorted and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub space: [u8; 32],
    pub member: [u8; 32],
    /// (number, digest, key sealed to `member`), sorted by (number, digest).
    pub keys: Vec<(u32, Digest, Vec<u8>)>,
    pub author: [u8; 32],
    pub signature: [u8; 64],
}

const GRANT_DOMAIN: &[u8] = b"cobox-grant-v1";
/// Bytes each epoch adds to a grant.
pub const PER_GRANTED: usize = 4 + 32 + SEALED_KEY;

impl Grant {
    /// Give `member` the keys of `epochs` ((number, digest, key)), signed by `author`.
    pub fn new(
        author: &SigningKeyPair,
        space: [u8; 32],
        member: [u8; 32],
        epochs: &[(u32, Digest, &Secret32)],
    ) -> Result<Grant, EpochError> {
        if epochs.len() > MAX_ENTRIES {
            return Err(EpochError::TooMany);
        }
        let mut keys = epochs
            .iter()
            .map(|(n, d, k)| {
                sealed::seal(&member, k.expose())
                    .map(|s| (*n, *d, s))
                    .map_err(|_| EpochError::BadMember(PublicKey(member)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| (k.0, k.1));
        keys.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
        let mut g = Grant {
            space,
            member,
            keys,
            author: author.public.0,
            signature: [0; 64],
        };
        let mut signed = GRANT_DOMAIN.to_vec();
        g.body(&mut signed);
        g.signature = author.sign(&signed);
        Ok(g)
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.space);
        out.extend_from_slice(&self.member);
        out.extend_from_slice(&(self.keys.len() as u16).to_le_bytes());
        for (n, d, s) in &self.keys {
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(d);
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&self.author);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.body(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decode and check the signature and the epochs' order.
    pub fn decode(mut bytes: &[u8]) -> Result<Grant, EpochError> {
        let r = &mut bytes;
        let [version] = array::<1>(r)?;
        if version != VERSION {
            return Err(EpochError::Version(version));
        }
        let space = array(r)?;
        let member = array(r)?;
        let n = u16::from_le_bytes(array(r)?) as usize;
        if r.len() < n * PER_GRANTED {
            return Err(EpochError::Truncated);
        }
        let keys = (0..n)
            .map(|_| {
                let number = u32::from_le_bytes(array(r)?);
                Ok((number, array(r)?, take(r, SEALED_KEY)?.to_vec()))
            })
            .collect::<Result<Vec<(u32, Digest, Vec<u8>)>, EpochError>>()?;
        let author = array(r)?;
        let signature = array(r)?;
        if !r.is_empty() {
            return Err(EpochError::Trailing(r.len()));
        }
        if keys
            .windows(2)
            .any(|w| (w[0].0, w[0].1) >= (w[1].0, w[1].1))
        {
            return Err(EpochError::Order);
        }
        let g = Grant {
            space,
            member,
            keys,
            author,
            signature,
        };
        let mut signed = GRANT_DOMAIN.to_vec();
        g.body(&mut signed);
        if !crate::derive::verify(&PublicKey(author), &signed, &signature) {
            return Err(EpochError::Signature);
        }
        Ok(g)
    }

    /// The keys granted, for `me` (the member): (number, digest, key).
    pub fn open(&self, me: &SigningKeyPair) -> Result<Vec<(u32, Digest, Secret32)>, EpochError> {
        self.keys
            .iter()
            .map(|(n, d, s)| {
                let not = || EpochError::NotAMember(*n);
                if self.member != me.public.0 {
                    return Err(not());
                }
                let plain = sealed::open(me, s).map_err(|_| not())?;
                Ok((*n, *d, Secret32::from_slice(&plain).ok_or_else(not)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SigningKeyPair {
        crate::derive::identity(&Secret32::from_bytes([n; 32]))
    }

    fn sample() -> (Epoch, Secret32, [SigningKeyPair; 3]) {
        let (a, c, b) = (id(1), id(2), id(3));
        let key = Secret32::from_bytes([7; 32]);
        let e = Epoch::new(
            &a,
            [9; 32],
            1,
            [0; 32],
            vec![[5; 32]],
            &key,
            &[c.public.0, a.public.0, c.public.0],
        )
        .unwrap();
        (e, key, [a, b, c])
    }

    #[test]
    fn the_remaining_members_open_the_key_and_the_removed_one_does_not() {
        let (e, key, [a, b, c]) = sample();
        assert_eq!(e.open(&a).unwrap().expose(), key.expose());
        assert_eq!(e.open(&c).unwrap().expose(), key.expose());
        assert_eq!(e.open(&b), Err(EpochError::NotAMember(1)));
        assert_eq!(e.members().count(), 2, "sorted and distinct");
        // What each member costs on the wire.
        let one = Epoch::new(&a, [9; 32], 1, [0; 32], vec![], &key, &[a.public.0]).unwrap();
        let two = Epoch::new(
            &a,
            [9; 32],
            1,
            [0; 32],
            vec![],
            &key,
            &[a.public.0, c.public.0],
        )
        .unwrap();
        assert_eq!(two.encode().len() - one.encode().len(), PER_MEMBER);
        assert_eq!(PER_MEMBER, 112);
    }

    #[test]
    fn an_epoch_round_trips_and_every_changed_byte_or_cut_is_refused() {
        let (e, _, _) = sample();
        let bytes = e.encode();
        assert_eq!(Epoch::decode(&bytes).unwrap(), e);
        assert_eq!(Epoch::decode(&bytes).unwrap().digest(), e.digest());
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 1;
            assert!(Epoch::decode(&t).is_err(), "byte {i} changed");
        }
        for cut in 0..bytes.len() {
            assert!(Epoch::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Epoch::decode(&long), Err(EpochError::Trailing(1)));
        // Counts claiming more than the bytes hold are refused before allocating.
        let mut huge = bytes[..69].to_vec();
        huge.extend_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(Epoch::decode(&huge), Err(EpochError::Truncated));
    }

    #[test]
    fn a_grant_opens_for_its_member_only_and_every_changed_byte_or_cut_is_refused() {
        let (a, b, c) = (id(1), id(3), id(2));
        let (k1, k2) = (Secret32::from_bytes([7; 32]), Secret32::from_bytes([8; 32]));
        let g = Grant::new(
            &a,
            [9; 32],
            c.public.0,
            &[(2, [4; 32], &k2), (1, [6; 32], &k1)],
        )
        .unwrap();
        let bytes = g.encode();
        assert_eq!(bytes.len(), 1 + 32 + 32 + 2 + 2 * PER_GRANTED + 32 + 64);
        let back = Grant::decode(&bytes).unwrap();
        assert_eq!(back, g);
        let keys = back.open(&c).unwrap();
        assert_eq!(
            keys.iter()
                .map(|(n, d, k)| (*n, *d, *k.expose()))
                .collect::<Vec<_>>(),
            vec![(1, [6; 32], [7; 32]), (2, [4; 32], [8; 32])],
            "sorted by epoch"
        );
        assert_eq!(back.open(&b), Err(EpochError::NotAMember(1)));
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 1;
            assert!(Grant::decode(&t).is_err(), "byte {i} changed");
        }
        for cut in 0..bytes.len() {
            assert!(Grant::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
