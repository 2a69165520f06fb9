//! Every key of a device, derived from its 32-byte parent key.
//!
//! | key | how | context | subkey id |
//! |---|---|---|---|
//! | identity (ed25519) | `crypto_kdf_derive_from_key(32, 1, "cbx-iden", parent)` is the ed25519 seed | `cbx-iden` | 1 |
//! | feed seed root | `crypto_kdf_derive_from_key(32, 2, "cbx-feed", parent)` | `cbx-feed` | 2 |
//! | feed key pair (ed25519) of feed `n` in space `address` | seed = BLAKE2b-256(key = feed seed root, message = `"cobox-feed-v1" ‖ address ‖ n as u32 LE`) | | |
//! | invite opening key (x25519) | the identity key converted (`crypto_sign_ed25519_sk_to_curve25519`), so an inviter needs only the invitee's identity public key | | |
//!
//! The same parent key always gives the same keys; a different address gives unrelated
//! feed keys, so a device's feeds cannot be linked across spaces.

use cobox_schema::hexkey::{Address, PublicKey};
use libsodium_rs::{crypto_generichash, crypto_kdf, crypto_sign};

use crate::secret::Secret32;

pub const IDENTITY_CONTEXT: &[u8; 8] = b"cbx-iden";
pub const IDENTITY_SUBKEY: u64 = 1;
pub const FEED_CONTEXT: &[u8; 8] = b"cbx-feed";
pub const FEED_SUBKEY: u64 = 2;
pub const FEED_DOMAIN: &[u8] = b"cobox-feed-v1";

/// An ed25519 key pair (a device identity or a feed writer).
#[derive(Clone)]
pub struct SigningKeyPair {
    pub public: PublicKey,
    secret: crypto_sign::SecretKey,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    /// The key pair whose ed25519 seed is `seed`.
    pub fn from_seed(seed: &Secret32) -> SigningKeyPair {
        crate::init();
        let kp = crypto_sign::keypair_from_seed(seed.expose())
            .expect("a 32-byte seed always gives a key pair");
        let (public, secret) = kp.into_tuple();
        SigningKeyPair {
            public: PublicKey(*public.as_bytes()),
            secret,
        }
    }

    /// A detached ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        crypto_sign::sign_detached(message, &self.secret)
            .expect("signing with a valid key cannot fail")
    }

    /// The 64-byte libsodium secret key (seed ‖ public key), for hypercore. Do not log it.
    pub fn secret_bytes(&self) -> &[u8; 64] {
        self.secret.as_bytes()
    }

    pub(crate) fn secret(&self) -> &crypto_sign::SecretKey {
        &self.secret
    }
}

/// Whether `signature` is `public`'s signature of `message`.
pub fn verify(public: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    crate::init();
    let Ok(pk) = crypto_sign::PublicKey::from_bytes(&public.0) else {
        return false;
    };
    crypto_sign::verify_detached(signature, message, &pk)
}

fn kdf(parent: &Secret32, id: u64, context: &[u8; 8]) -> Secret32 {
    crate::init();
    let key = crypto_kdf::Key::from_slice(parent.expose()).expect("a parent key is 32 bytes");
    let mut out = crypto_kdf::derive_from_key(32, id, context, &key)
        .expect("32 bytes is a valid subkey length");
    let secret = Secret32::from_slice(&out).expect("asked for 32 bytes");
    zeroize::Zeroize::zeroize(&mut out);
    secret
}

/// The ed25519 seed of the device's identity.
pub fn identity_seed(parent: &Secret32) -> Secret32 {
    kdf(parent, IDENTITY_SUBKEY, IDENTITY_CONTEXT)
}

/// The device's identity key pair.
pub fn identity(parent: &Secret32) -> SigningKeyPair {
    SigningKeyPair::from_seed(&identity_seed(parent))
}

/// The key pair of this device's feed number `feed` in the space at `address`.
pub fn feed(parent: &Secret32, address: &Address, feed: u32) -> SigningKeyPair {
    SigningKeyPair::from_seed(&feed_seed(parent, address, feed))
}

/// The ed25519 seed of this device's feed number `feed` in the space at `address`.
pub fn feed_seed(parent: &Secret32, address: &Address, feed: u32) -> Secret32 {
    let root = kdf(parent, FEED_SUBKEY, FEED_CONTEXT);
    let mut message = Vec::with_capacity(FEED_DOMAIN.len() + 36);
    message.extend_from_slice(FEED_DOMAIN);
    message.extend_from_slice(&address.0);
    message.extend_from_slice(&feed.to_le_bytes());
    let seed = zeroize::Zeroizing::new(
        crypto_generichash::generichash(&message, Some(root.expose()), 32)
            .expect("valid BLAKE2b parameters"),
    );
    Secret32::from_slice(&seed).expect("asked for 32 bytes")
}

/// Hypercore's discovery key of a public key (or space address): BLAKE2b-256 keyed with
/// it over the word `hypercore`. Public; reveals nothing about the key.
pub fn discovery_key(key: &[u8; 32]) -> [u8; 32] {
    crate::init();
    let out = crypto_generichash::generichash(b"hypercore", Some(key), 32)
        .expect("valid BLAKE2b parameters");
    out.try_into().expect("asked for 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separates_spaces_and_feeds() {
        let parent = Secret32::from_bytes([7; 32]);
        assert_eq!(identity(&parent).public, identity(&parent).public);
        let a = Address([1; 32]);
        let b = Address([2; 32]);
        let fa0 = feed(&parent, &a, 0).public;
        assert_eq!(fa0, feed(&parent, &a, 0).public);
        assert_ne!(fa0, feed(&parent, &a, 1).public);
        assert_ne!(fa0, feed(&parent, &b, 0).public);
        assert_ne!(fa0, identity(&parent).public);
        let other = Secret32::from_bytes([8; 32]);
        assert_ne!(identity(&other).public, identity(&parent).public);
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let id = identity(&Secret32::from_bytes([3; 32]));
        let sig = id.sign(b"hello");
        assert!(verify(&id.public, b"hello", &sig));
        assert!(!verify(&id.public, b"hellO", &sig));
        let other = identity(&Secret32::from_bytes([4; 32]));
        assert!(!verify(&other.public, b"hello", &sig));
    }

    #[test]
    fn debug_of_a_key_pair_shows_only_the_public_key() {
        let id = identity(&Secret32::from_bytes([5; 32]));
        let shown = format!("{id:?}");
        assert!(shown.contains(&id.public.to_string()));
        let secret_hex = crate::secret::hex(&id.secret_bytes()[..32]);
        assert!(!shown.contains(&secret_hex));
    }
}
