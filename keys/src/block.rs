//! Block encryption: every content block of a space sealed with XChaCha20-Poly1305.
//!
//! Layout (version 1): `0x01 ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag (16)`.
//! The associated data is `"cobox-block-v1" ‖ feed public key ‖ block index (u64 LE)`, so a
//! block replayed in another feed or at another index fails to open.
//! Version 2 carries the key epoch it was sealed under (see `epoch.rs`): `0x02 ‖ epoch (u32
//! LE) ‖ nonce ‖ ciphertext ‖ tag`, associated data `"cobox-block-v2" ‖ feed ‖ index ‖
//! epoch`; a version-1 block is of epoch 0 (the space's first key). Nonces are random
//! (192 bits), so rewriting a block index after a crash never reuses a keystream.
//! The AEAD key is derived from the space encryption key:
//! `crypto_kdf_derive_from_key(32, 1, "cbx-blok", space key)`.

use libsodium_rs::crypto_aead::xchacha20poly1305 as aead;
use libsodium_rs::crypto_kdf;

use crate::secret::Secret32;

pub const VERSION: u8 = 1;
/// The version of blocks that carry their key epoch.
pub const VERSION_EPOCH: u8 = 2;
const AD_DOMAIN_EPOCH: &[u8] = b"cobox-block-v2";
pub const NONCE_BYTES: usize = 24;
pub const TAG_BYTES: usize = 16;
/// Bytes a sealed block adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;
const AD_DOMAIN: &[u8] = b"cobox-block-v1";
pub const KEY_CONTEXT: &[u8; 8] = b"cbx-blok";
pub const KEY_SUBKEY: u64 = 1;
const HASH_CONTEXT: &[u8; 8] = b"cbx-hash";
const HASH_SUBKEY: u64 = 2;

/// The key of a space's block hashes (BLAKE3 keyed with it), from its encryption key:
/// `crypto_kdf_derive_from_key(32, 2, "cbx-hash", space key)`. Equal plaintext blocks have
/// equal hashes only for those who hold the space's key, never for seeds or outsiders.
pub fn hash_key(encryption_key: &Secret32) -> Secret32 {
    crate::init();
    let master = crypto_kdf::Key::from_slice(encryption_key.expose()).expect("32-byte key");
    let mut sub = crypto_kdf::derive_from_key(32, HASH_SUBKEY, HASH_CONTEXT, &master)
        .expect("valid subkey length");
    let key = Secret32::from_slice(&sub).expect("32 bytes");
    zeroize::Zeroize::zeroize(&mut sub);
    key
}

/// Why a block did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is {0} bytes, shorter than the {OVERHEAD}-byte minimum")]
    Truncated(usize),
    #[error("block has format version {0}, which this program does not know")]
    UnknownVersion(u8),
    #[error("block does not authenticate: wrong key, wrong feed or index, or tampered")]
    Forged,
    #[error("block was sealed under key epoch {0}, whose key this device does not hold")]
    NoKey(u32),
}

/// The key that seals a space's blocks.
pub struct BlockKey(aead::Key);

impl std::fmt::Debug for BlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockKey(..)")
    }
}

impl BlockKey {
    /// The block key of a space, from its encryption key.
    pub fn for_space(encryption_key: &Secret32) -> BlockKey {
        crate::init();
        let master = crypto_kdf::Key::from_slice(encryption_key.expose()).expect("32-byte key");
        let mut sub = crypto_kdf::derive_from_key(32, KEY_SUBKEY, KEY_CONTEXT, &master)
            .expect("valid subkey length");
        let key = aead::Key::from_bytes(&sub).expect("32-byte key");
        zeroize::Zeroize::zeroize(&mut sub);
        BlockKey(key)
    }

    /// Seal `plain` as block `index` of the feed `feed`.
    pub fn seal(&self, feed: &[u8; 32], index: u64, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        libsodium_rs::random::fill_bytes(&mut nonce);
        self.seal_with_nonce(feed, index, plain, nonce)
    }

    /// Seal with a given nonce: for test vectors only; real sealing uses a random nonce.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        feed: &[u8; 32],
        index: u64,
        plain: &[u8],
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        self.seal_under(&[VERSION], &associated_data(feed, index), plain, nonce)
    }

    /// `header ‖ nonce ‖ ciphertext ‖ tag`, authenticated with `ad`.
    fn seal_under(
        &self,
        header: &[u8],
        ad: &[u8],
        plain: &[u8],
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let n = aead::Nonce::from_bytes(nonce);
        let sealed = aead::encrypt(plain, Some(ad), &n, &self.0)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(header.len() + OVERHEAD - 1 + plain.len());
        out.extend_from_slice(header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Seal `plain` as block `index` of feed `feed` under key epoch `epoch` (version 2).
    pub fn seal_in(&self, epoch: u32, feed: &[u8; 32], index: u64, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        libsodium_rs::random::fill_bytes(&mut nonce);
        self.seal_in_with_nonce(epoch, feed, index, plain, nonce)
    }

    /// [`BlockKey::seal_in`] with a given nonce: for test vectors only.
    #[doc(hidden)]
    pub fn seal_in_with_nonce(
        &self,
        epoch: u32,
        feed: &[u8; 32],
        index: u64,
        plain: &[u8],
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let mut header = vec![VERSION_EPOCH];
        header.extend_from_slice(&epoch.to_le_bytes());
        self.seal_under(
            &header,
            &associated_data_in(epoch, feed, index),
            plain,
            nonce,
        )
    }

    /// Open block `index` of feed `feed` (either version; for version 2 this must be the
    /// key of the block's [`epoch_of`]).
    pub fn open(&self, feed: &[u8; 32], index: u64, block: &[u8]) -> Result<Vec<u8>, BlockError> {
        let (epoch, at) = match block.first() {
            Some(&VERSION_EPOCH) => (Some(epoch_of(block)?), 5),
            _ => (None, 1),
        };
        if block.len() < OVERHEAD + at - 1 {
            return Err(BlockError::Truncated(block.len()));
        }
        if epoch.is_none() && block[0] != VERSION {
            return Err(BlockError::UnknownVersion(block[0]));
        }
        let nonce: [u8; NONCE_BYTES] = block[at..at + NONCE_BYTES]
            .try_into()
            .expect("length checked");
        let n = aead::Nonce::from_bytes(nonce);
        let ad = match epoch {
            Some(e) => associated_data_in(e, feed, index),
            None => associated_data(feed, index),
        };
        aead::decrypt(&block[at + NONCE_BYTES..], Some(&ad), &n, &self.0)
            .map_err(|_| BlockError::Forged)
    }
}

/// The key epoch a sealed block was written under (0 for version 1).
pub fn epoch_of(block: &[u8]) -> Result<u32, BlockError> {
    match block.first() {
        None => Err(BlockError::Truncated(0)),
        Some(&VERSION) => Ok(0),
        Some(&VERSION_EPOCH) if block.len() >= 5 => Ok(u32::from_le_bytes(
            block[1..5].try_into().expect("length checked"),
        )),
        Some(&VERSION_EPOCH) => Err(BlockError::Truncated(block.len())),
        Some(&v) => Err(BlockError::UnknownVersion(v)),
    }
}

/// Every key epoch's block key of a space a device holds: blocks of any epoch open, and new
/// blocks are sealed under the newest. Epochs are named by (number, digest of their epoch
/// message; zeros for epoch 0); two concurrent rotations make two epochs of one number,
/// whose blocks open by trying both keys of that number.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: std::collections::BTreeMap<(u32, [u8; 32]), std::sync::Arc<BlockKey>>,
}

impl Keyring {
    /// A keyring holding only a space's first key (epoch 0).
    pub fn first(encryption_key: &Secret32) -> Keyring {
        let mut ring = Keyring::default();
        ring.insert_epoch(0, [0; 32], BlockKey::for_space(encryption_key));
        ring
    }

    /// Hold epoch `epoch` (of digest zeros).
    pub fn insert(&mut self, epoch: u32, key: BlockKey) {
        self.insert_epoch(epoch, [0; 32], key);
    }

    /// Hold the epoch numbered `number` whose message has digest `digest`.
    pub fn insert_epoch(&mut self, number: u32, digest: [u8; 32], key: BlockKey) {
        self.keys.insert((number, digest), std::sync::Arc::new(key));
    }

    /// Whether the epoch (number, digest) is held.
    pub fn holds(&self, number: u32, digest: &[u8; 32]) -> bool {
        self.keys.contains_key(&(number, *digest))
    }

    /// The newest epoch held (the greatest number; of a fork, the smallest digest), and its
    /// key: what new blocks are sealed with.
    pub fn newest(&self) -> Option<(u32, &BlockKey)> {
        let (number, _) = self.newest_id()?;
        self.keys
            .range((number, [0; 32])..)
            .next()
            .map(|((n, _), k)| (*n, k.as_ref()))
    }

    /// The (number, digest) of the newest epoch held.
    pub fn newest_id(&self) -> Option<(u32, [u8; 32])> {
        let (&(number, _), _) = self.keys.iter().next_back()?;
        self.keys
            .range((number, [0; 32])..)
            .next()
            .map(|(id, _)| *id)
    }

    /// Seal `plain` as block `index` of feed `feed` under the newest epoch held (version 1
    /// while that is epoch 0, so devices that know no epochs read it).
    pub fn seal(&self, feed: &[u8; 32], index: u64, plain: &[u8]) -> Vec<u8> {
        match self.newest() {
            Some((0, key)) => key.seal(feed, index, plain),
            Some((epoch, key)) => key.seal_in(epoch, feed, index, plain),
            None => panic!("a keyring is never empty when sealing"),
        }
    }

    /// Seal under epoch 0, whoever holds newer epochs (epoch messages and grants, which
    /// every member must read before it holds any later key).
    pub fn seal_first(&self, feed: &[u8; 32], index: u64, plain: &[u8]) -> Vec<u8> {
        match self.keys.range((0, [0; 32])..(1, [0; 32])).next() {
            Some((_, key)) => key.seal(feed, index, plain),
            None => self.seal(feed, index, plain),
        }
    }

    /// Open a block of any epoch held.
    pub fn open(&self, feed: &[u8; 32], index: u64, block: &[u8]) -> Result<Vec<u8>, BlockError> {
        let epoch = epoch_of(block)?;
        let mut result = Err(BlockError::NoKey(epoch));
        let keys = self
            .keys
            .range((epoch, [0; 32])..)
            .take_while(|((n, _), _)| *n == epoch);
        for (_, key) in keys {
            result = key.open(feed, index, block);
            if result.is_ok() {
                break;
            }
        }
        result
    }
}

fn associated_data_in(epoch: u32, feed: &[u8; 32], index: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_DOMAIN_EPOCH.len() + 44);
    ad.extend_from_slice(AD_DOMAIN_EPOCH);
    ad.extend_from_slice(feed);
    ad.extend_from_slice(&index.to_le_bytes());
    ad.extend_from_slice(&epoch.to_le_bytes());
    ad
}

fn associated_data(feed: &[u8; 32], index: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_DOMAIN.len() + 40);
    ad.extend_from_slice(AD_DOMAIN);
    ad.extend_from_slice(feed);
    ad.extend_from_slice(&index.to_le_bytes());
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> BlockKey {
        BlockKey::for_space(&Secret32::from_bytes([b; 32]))
    }

    #[test]
    fn a_block_opens_only_at_its_feed_and_index_with_its_key() {
        let k = key(1);
        let feed = [9; 32];
        let sealed = k.seal(&feed, 5, b"the minutes of the meeting");
        assert_eq!(sealed.len(), OVERHEAD + 26);
        assert_eq!(
            k.open(&feed, 5, &sealed).unwrap(),
            b"the minutes of the meeting"
        );
        assert_eq!(k.open(&feed, 6, &sealed), Err(BlockError::Forged));
        assert_eq!(k.open(&[8; 32], 5, &sealed), Err(BlockError::Forged));
        assert_eq!(key(2).open(&feed, 5, &sealed), Err(BlockError::Forged));
    }

    #[test]
    fn the_hash_key_differs_per_space_and_from_the_sealing_key() {
        let a = hash_key(&Secret32::from_bytes([1; 32]));
        assert_eq!(
            a.expose(),
            hash_key(&Secret32::from_bytes([1; 32])).expose()
        );
        assert_ne!(
            a.expose(),
            hash_key(&Secret32::from_bytes([2; 32])).expose()
        );
        assert_ne!(a.expose(), &[1; 32]);
    }

    #[test]
    fn tampering_truncation_and_unknown_versions_are_typed_errors() {
        let k = key(1);
        let feed = [9; 32];
        let sealed = k.seal(&feed, 0, &[0u8; 100]);
        for i in [0usize, 1, 30, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 0x40;
            let e = k.open(&feed, 0, &t).unwrap_err();
            if i == 0 {
                assert_eq!(e, BlockError::UnknownVersion(VERSION ^ 0x40));
            } else {
                assert_eq!(e, BlockError::Forged, "byte {i}");
            }
        }
        assert_eq!(
            k.open(&feed, 0, &sealed[..OVERHEAD - 1]),
            Err(BlockError::Truncated(OVERHEAD - 1))
        );
        assert_eq!(
            k.open(&feed, 0, &sealed[..OVERHEAD + 10]),
            Err(BlockError::Forged)
        );
        assert_eq!(k.open(&feed, 0, &[]), Err(BlockError::Truncated(0)));
    }

    #[test]
    fn blocks_of_every_epoch_open_with_their_key_and_not_with_another() {
        let (old, new) = (key(1), key(2));
        let feed = [9; 32];
        let v1 = old.seal(&feed, 3, b"before the removal");
        let v2 = new.seal_in(1, &feed, 4, b"after the removal");
        assert_eq!((epoch_of(&v1), epoch_of(&v2)), (Ok(0), Ok(1)));
        assert_eq!(v2.len(), OVERHEAD + 4 + 17);
        let mut ring = Keyring::default();
        ring.insert(0, key(1));
        assert_eq!(ring.open(&feed, 3, &v1).unwrap(), b"before the removal");
        assert_eq!(
            ring.open(&feed, 4, &v2),
            Err(BlockError::NoKey(1)),
            "a removed reader"
        );
        ring.insert(1, key(2));
        assert_eq!(ring.newest().unwrap().0, 1);
        assert_eq!(ring.open(&feed, 4, &v2).unwrap(), b"after the removal");
        // The old key does not open the new block even told its epoch is 0 or 1.
        assert_eq!(old.open(&feed, 4, &v2), Err(BlockError::Forged));
        let mut relabelled = v2.clone();
        relabelled[1] = 0;
        assert_eq!(
            new.open(&feed, 4, &relabelled),
            Err(BlockError::Forged),
            "epoch is bound"
        );
        assert_eq!(
            new.open(&feed, 5, &v2),
            Err(BlockError::Forged),
            "index is bound"
        );
        for cut in 0..v2.len() {
            assert!(ring.open(&feed, 4, &v2[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_fork_of_two_epochs_of_one_number_opens_both_and_seals_under_the_smaller_digest() {
        let feed = [9; 32];
        let mut ring = Keyring::first(&Secret32::from_bytes([1; 32]));
        assert_eq!(ring.newest_id(), Some((0, [0; 32])));
        let v1 = ring.seal(&feed, 0, b"first");
        assert_eq!(v1[0], VERSION, "epoch 0 keeps format 1");
        ring.insert_epoch(1, [7; 32], key(7));
        ring.insert_epoch(1, [3; 32], key(3));
        assert_eq!(ring.newest_id(), Some((1, [3; 32])));
        let sealed = ring.seal(&feed, 1, b"after the fork");
        assert_eq!(epoch_of(&sealed), Ok(1));
        assert_eq!(key(3).open(&feed, 1, &sealed).unwrap(), b"after the fork");
        let other = key(7).seal_in(1, &feed, 2, b"the other branch");
        assert_eq!(ring.open(&feed, 2, &other).unwrap(), b"the other branch");
        assert_eq!(ring.open(&feed, 0, &v1).unwrap(), b"first");
        let control = ring.seal_first(&feed, 3, b"an epoch message");
        assert_eq!(epoch_of(&control), Ok(0));
        let mut old = Keyring::first(&Secret32::from_bytes([1; 32]));
        assert_eq!(old.open(&feed, 3, &control).unwrap(), b"an epoch message");
        assert_eq!(old.open(&feed, 1, &sealed), Err(BlockError::NoKey(1)));
        old.insert_epoch(1, [7; 32], key(7));
        assert_eq!(old.open(&feed, 1, &sealed), Err(BlockError::Forged));
        assert!(ring.holds(1, &[7; 32]) && !ring.holds(2, &[7; 32]));
    }

    #[test]
    fn sealing_the_same_block_twice_never_reuses_a_nonce() {
        let k = key(1);
        let a = k.seal(&[0; 32], 0, b"same");
        let b = k.seal(&[0; 32], 0, b"same");
        assert_ne!(a[1..1 + NONCE_BYTES], b[1..1 + NONCE_BYTES]);
        assert_ne!(a, b);
    }
}
