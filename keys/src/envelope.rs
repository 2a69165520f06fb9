//! Config envelopes: the whole desired config of one device, published by an admin,
//! sealed to that device and signed, chained per device by generation and parent digest.
//!
//! Encoding (integers little-endian):
//!
//! ```text
//! version u8 = 1 ‖ fleet [32] ‖ target [32] ‖ generation u64 ‖ parent [32]
//! ‖ authority [32] ‖ signer [32] ‖ sealed length u32 ‖ sealed ‖ signature [64]
//! ```
//!
//! `fleet` is the address of the space the envelope travels in, `target` the identity of
//! the device it is for, `parent` the digest of the envelope of `generation - 1` for that
//! device (zeros for generation 1), `authority` the head of the admin authority the signer
//! published under, `sealed` the config text sealed to `target` (`crypto_box_seal`), and
//! the signature is the signer's ed25519 over `"cobox-envelope-v1"` and everything before
//! it. The envelope's digest is BLAKE2b-256 of those same signed bytes.

use libsodium_rs::crypto_generichash;

use crate::SigningKeyPair;
use crate::authority::Digest;
use crate::derive::verify;
use cobox_schema::hexkey::PublicKey;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"cobox-envelope-v1";
/// The longest config text an envelope carries (the agent reads no longer config).
pub const MAX_TEXT: usize = 1024 * 1024;
/// The longest sealed payload.
pub const MAX_SEALED: usize = MAX_TEXT + crate::sealed::OVERHEAD;
const HEADER: usize = 1 + 32 * 5 + 8 + 4;

/// A signed, sealed desired config for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub fleet: [u8; 32],
    pub target: [u8; 32],
    pub generation: u64,
    pub parent: Digest,
    pub authority: Digest,
    pub signer: [u8; 32],
    pub sealed: Vec<u8>,
    pub signature: [u8; 64],
}

/// Why an envelope cannot be made, read or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope ends early")]
    Truncated,
    #[error("envelope of version {0} is not supported")]
    Version(u8),
    #[error("envelope payload of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("envelope has {0} trailing bytes")]
    Trailing(usize),
    #[error("envelope generation must be at least 1")]
    Generation,
    #[error("envelope target: {0}")]
    Target(crate::sealed::SealError),
    #[error("envelope payload does not open with this device's key")]
    NotForThisDevice,
    #[error("envelope payload is not UTF-8 text")]
    NotText,
}

/// What an envelope's header says, before it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fleet: [u8; 32],
    pub target: [u8; 32],
    pub generation: u64,
    pub parent: Digest,
    pub authority: Digest,
}

impl Envelope {
    /// Seal `text` to `header.target` and sign it as `signer`.
    pub fn seal(
        header: Header,
        text: &str,
        signer: &SigningKeyPair,
    ) -> Result<Envelope, EnvelopeError> {
        if header.generation == 0 {
            return Err(EnvelopeError::Generation);
        }
        if text.len() > MAX_TEXT {
            return Err(EnvelopeError::TooLarge(text.len()));
        }
        let sealed =
            crate::sealed::seal(&header.target, text.as_bytes()).map_err(EnvelopeError::Target)?;
        let mut e = Envelope {
            fleet: header.fleet,
            target: header.target,
            generation: header.generation,
            parent: header.parent,
            authority: header.authority,
            signer: signer.public.0,
            sealed,
            signature: [0; 64],
        };
        e.signature = signer.sign(&e.signed());
        Ok(e)
    }

    /// What the signer signs (and the digest covers).
    fn signed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + HEADER + self.sealed.len());
        out.extend_from_slice(DOMAIN);
        self.encode_unsigned(&mut out);
        out
    }

    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.fleet);
        out.extend_from_slice(&self.target);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.parent);
        out.extend_from_slice(&self.authority);
        out.extend_from_slice(&self.signer);
        out.extend_from_slice(&(self.sealed.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.sealed);
    }

    /// The header fields, as given to [`Envelope::seal`].
    pub fn header(&self) -> Header {
        Header {
            fleet: self.fleet,
            target: self.target,
            generation: self.generation,
            parent: self.parent,
            authority: self.authority,
        }
    }

    /// Whether the signature is the signer's over this envelope.
    pub fn verifies(&self) -> bool {
        verify(&PublicKey(self.signer), &self.signed(), &self.signature)
    }

    /// The digest naming this envelope (the next generation's parent).
    pub fn digest(&self) -> Digest {
        crate::init();
        crypto_generichash::generichash(&self.signed(), None, 32)
            .expect("a 32-byte BLAKE2b digest is always available")
            .try_into()
            .expect("32 bytes asked for")
    }

    /// The config text, opened with the target's identity.
    pub fn open(&self, me: &SigningKeyPair) -> Result<String, EnvelopeError> {
        let plain =
            crate::sealed::open(me, &self.sealed).map_err(|_| EnvelopeError::NotForThisDevice)?;
        String::from_utf8(plain).map_err(|_| EnvelopeError::NotText)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.sealed.len() + 64);
        self.encode_unsigned(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decode, bounded: the payload's length is checked before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let mut r = bytes;
        let mut take = |n: usize| -> Result<&[u8], EnvelopeError> {
            if r.len() < n {
                return Err(EnvelopeError::Truncated);
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        let version = take(1)?[0];
        if version != VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let key = |b: &[u8]| -> [u8; 32] { b.try_into().expect("32 bytes taken") };
        let fleet = key(take(32)?);
        let target = key(take(32)?);
        let generation = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes taken"));
        let parent = key(take(32)?);
        let authority = key(take(32)?);
        let signer = key(take(32)?);
        let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes taken")) as usize;
        if len > MAX_SEALED {
            return Err(EnvelopeError::TooLarge(len));
        }
        let sealed = take(len)?.to_vec();
        let signature: [u8; 64] = take(64)?.try_into().expect("64 bytes taken");
        if generation == 0 {
            return Err(EnvelopeError::Generation);
        }
        if !r.is_empty() {
            return Err(EnvelopeError::Trailing(r.len()));
        }
        Ok(Envelope {
            fleet,
            target,
            generation,
            parent,
            authority,
            signer,
            sealed,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret32;
    use crate::derive::identity;

    fn device(b: u8) -> SigningKeyPair {
        identity(&Secret32::from_bytes([b; 32]))
    }

    fn header(target: &SigningKeyPair) -> Header {
        Header {
            fleet: [7; 32],
            target: target.public.0,
            generation: 3,
            parent: [2; 32],
            authority: [9; 32],
        }
    }

    #[test]
    fn an_envelope_opens_only_for_its_target_and_round_trips() {
        let (admin, hub, other) = (device(1), device(2), device(3));
        let e = Envelope::seal(header(&hub), "version = 1\n", &admin).unwrap();
        assert!(e.verifies());
        assert_eq!(e.open(&hub).unwrap(), "version = 1\n");
        assert_eq!(e.open(&other), Err(EnvelopeError::NotForThisDevice));
        let back = Envelope::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.digest(), e.digest());
    }

    #[test]
    fn any_changed_byte_breaks_the_signature_or_the_decoding() {
        let (admin, hub) = (device(1), device(2));
        let e = Envelope::seal(header(&hub), "x", &admin).unwrap();
        let bytes = e.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(d) = Envelope::decode(&b) {
                assert!(!d.verifies(), "byte {i} changed and still verifies");
            }
        }
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        let (admin, hub) = (device(1), device(2));
        let mut bytes = Envelope::seal(header(&hub), "x", &admin).unwrap().encode();
        bytes[HEADER - 4..HEADER].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Envelope::decode(&bytes),
            Err(EnvelopeError::TooLarge(u32::MAX as usize))
        );
        for n in 0..HEADER + 64 {
            assert!(Envelope::decode(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn a_generation_of_zero_is_not_an_envelope() {
        let (admin, hub) = (device(1), device(2));
        let mut h = header(&hub);
        h.generation = 0;
        assert_eq!(
            Envelope::seal(h, "x", &admin),
            Err(EnvelopeError::Generation)
        );
    }
}
