//! Block encryption: every content block of a space sealed with XChaCha20-Poly1305.
//!
//! Layout (version 1): `0x01 ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag (16)`.
//! The associated data is `"cobox-block-v1" ‖ feed public key ‖ block index (u64 LE)`, so a
//! block replayed in another feed or at another index fails to open. Nonces are random
//! (192 bits), so rewriting a block index after a crash never reuses a keystream.
//! The AEAD key is derived from the space encryption key:
//! `crypto_kdf_derive_from_key(32, 1, "cbx-blok", space key)`.

use libsodium_rs::crypto_aead::xchacha20poly1305 as aead;
use libsodium_rs::crypto_kdf;

use crate::secret::Secret32;

pub const VERSION: u8 = 1;
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
        let n = aead::Nonce::from_bytes(nonce);
        let sealed = aead::encrypt(plain, Some(&associated_data(feed, index)), &n, &self.0)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Open block `index` of feed `feed`.
    pub fn open(&self, feed: &[u8; 32], index: u64, block: &[u8]) -> Result<Vec<u8>, BlockError> {
        if block.len() < OVERHEAD {
            return Err(BlockError::Truncated(block.len()));
        }
        if block[0] != VERSION {
            return Err(BlockError::UnknownVersion(block[0]));
        }
        let nonce: [u8; NONCE_BYTES] = block[1..1 + NONCE_BYTES]
            .try_into()
            .expect("length checked");
        let n = aead::Nonce::from_bytes(nonce);
        aead::decrypt(
            &block[1 + NONCE_BYTES..],
            Some(&associated_data(feed, index)),
            &n,
            &self.0,
        )
        .map_err(|_| BlockError::Forged)
    }
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
    fn sealing_the_same_block_twice_never_reuses_a_nonce() {
        let k = key(1);
        let a = k.seal(&[0; 32], 0, b"same");
        let b = k.seal(&[0; 32], 0, b"same");
        assert_ne!(a[1..1 + NONCE_BYTES], b[1..1 + NONCE_BYTES]);
        assert_ne!(a, b);
    }
}
