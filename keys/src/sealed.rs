//! Sealing to a device: `crypto_box_seal` to the x25519 key converted from the device's
//! ed25519 identity, so a sender needs only the recipient's identity public key.

use libsodium_rs::{crypto_box, crypto_sign};

use crate::derive::SigningKeyPair;

/// Bytes a seal adds.
pub const OVERHEAD: usize = 48;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the recipient key is not a valid ed25519 point")]
    BadRecipient,
    #[error("sealed bytes do not open with this device's key")]
    NotForThisDevice,
}

/// Seal `plain` to the device whose identity is `recipient`.
pub fn seal(recipient: &[u8; 32], plain: &[u8]) -> Result<Vec<u8>, SealError> {
    crate::init();
    let ed = crypto_sign::PublicKey::from_bytes(recipient).map_err(|_| SealError::BadRecipient)?;
    let x = crypto_sign::ed25519_pk_to_curve25519(&ed).map_err(|_| SealError::BadRecipient)?;
    let pk = crypto_box::PublicKey::from_bytes(&x).expect("32-byte key");
    Ok(crypto_box::seal_box(plain, &pk).expect("sealing an in-memory buffer cannot fail"))
}

/// Open bytes sealed to `me`.
pub fn open(me: &SigningKeyPair, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    crate::init();
    let x_sk = crypto_sign::ed25519_sk_to_curve25519(me.secret())
        .map_err(|_| SealError::NotForThisDevice)?;
    let ed = crypto_sign::PublicKey::from_bytes(&me.public.0)
        .map_err(|_| SealError::NotForThisDevice)?;
    let x_pk =
        crypto_sign::ed25519_pk_to_curve25519(&ed).map_err(|_| SealError::NotForThisDevice)?;
    let sk = crypto_box::SecretKey::from_bytes(&x_sk).expect("32-byte key");
    let pk = crypto_box::PublicKey::from_bytes(&x_pk).expect("32-byte key");
    crypto_box::open_sealed_box(sealed, &pk, &sk).map_err(|_| SealError::NotForThisDevice)
}
