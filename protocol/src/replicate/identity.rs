//! Device identities proven inside a session: each side signs the Noise handshake hash
//! with its identity key, so a proof cannot be replayed on another connection, and the
//! Noise keys themselves (fresh per session on the initiating side) need not be
//! identities.
//!
//! The proof travels as an `Extension` message on a channel every cobox peer opens on
//! [`PEER_CHANNEL`]; a hypercore peer that is not cobox never opens it.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use cobox_keys::SigningKeyPair;
use cobox_schema::hexkey::PublicKey;
use futures::{Sink, Stream};
use hypercore_handshake::{Cipher, CipherEvent as Event, CipherTrait};

/// The key of the channel identity proofs travel on (not a feed: both sides know it, so
/// its capability only binds the channel to this session).
pub const PEER_CHANNEL: [u8; 32] = *b"cobox peer identity channel v1\0\0";

/// The name of the extension message that carries a proof.
pub const PROOF_MESSAGE: &str = "cobox/identity";

const DOMAIN: &[u8] = b"cobox-peer-v1";

fn statement(handshake_hash: &[u8], signer_initiated: bool) -> Vec<u8> {
    [DOMAIN, handshake_hash, &[u8::from(signer_initiated)]].concat()
}

/// `identity ‖ signature` over the handshake hash and the signer's side of it (so a proof
/// cannot be reflected back to its sender).
pub fn prove(identity: &SigningKeyPair, handshake_hash: &[u8], initiator: bool) -> Vec<u8> {
    let signature = identity.sign(&statement(handshake_hash, initiator));
    [identity.public.0.as_slice(), &signature].concat()
}

/// The identity a remote proved, if `proof` is its valid proof for this handshake.
pub fn verify(proof: &[u8], handshake_hash: &[u8], remote_initiated: bool) -> Option<[u8; 32]> {
    if proof.len() != 96 {
        return None;
    }
    let identity: [u8; 32] = proof[..32].try_into().ok()?;
    let signature: [u8; 64] = proof[32..].try_into().ok()?;
    let message = statement(handshake_hash, remote_initiated);
    cobox_keys::derive::verify(&PublicKey(identity), &message, &signature).then_some(identity)
}

/// The handshake hash of a session, once its handshake is done.
pub type HandshakeHash = Arc<OnceLock<Vec<u8>>>;

/// A Noise cipher that keeps its handshake hash where the session can read it (the
/// protocol that owns the cipher does not expose it).
pub struct Hashed {
    inner: Cipher,
    hash: HandshakeHash,
}

impl Hashed {
    pub fn new(inner: Cipher) -> (Hashed, HandshakeHash) {
        let hash = HandshakeHash::default();
        (
            Hashed {
                inner,
                hash: hash.clone(),
            },
            hash,
        )
    }

    fn keep_hash(&self) {
        if self.hash.get().is_none()
            && let Some(h) = self.inner.handshake_hash()
        {
            let _ = self.hash.set(h.to_vec());
        }
    }
}

impl std::fmt::Debug for Hashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashed")
            .field("done", &self.hash.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for Hashed {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        self.keep_hash();
        polled
    }
}

impl Sink<Vec<u8>> for Hashed {
    type Error = std::io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl CipherTrait for Hashed {
    fn remote_public_key(&self) -> Option<[u8; 32]> {
        self.inner.get_remote_static()
    }

    fn local_public_key(&self) -> [u8; 32] {
        self.inner.get_local_public_key()
    }

    fn handshake_hash(&self) -> Option<Vec<u8>> {
        self.keep_hash();
        self.hash.get().cloned()
    }

    fn is_initiator(&self) -> bool {
        self.inner.is_initiator()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::Secret32;

    #[test]
    fn a_proof_holds_only_for_its_handshake_and_its_side() {
        let me = cobox_keys::derive::identity(&Secret32::from_bytes([7; 32]));
        let hash = [3u8; 64];
        let proof = prove(&me, &hash, true);
        assert_eq!(verify(&proof, &hash, true), Some(me.public.0));
        // Another session's hash, or reflected to the signer's own side: refused.
        assert_eq!(verify(&proof, &[4u8; 64], true), None);
        assert_eq!(verify(&proof, &hash, false), None);
        // Tampered or truncated: refused.
        let mut bad = proof.clone();
        bad[40] ^= 1;
        assert_eq!(verify(&bad, &hash, true), None);
        assert_eq!(verify(&proof[..95], &hash, true), None);
        assert_eq!(verify(&[], &hash, true), None);
    }
}
