//! The hashes and signatures of hypercore 10 (libsodium): BLAKE2b-256 of leaves, parents and
//! root sets with type prefixes, and ed25519 signatures over a namespaced tree digest.

use libsodium_rs::{crypto_generichash, crypto_sign};

use crate::node::Node;

const LEAF_TYPE: u8 = 0;
const PARENT_TYPE: u8 = 1;
const ROOT_TYPE: u8 = 2;

/// Initialise libsodium once per process.
pub(crate) fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| libsodium_rs::ensure_init().expect("libsodium initialises"));
}

fn blake2b(parts: &[&[u8]]) -> [u8; 32] {
    let mut state = crypto_generichash::State::new(None, 32).expect("32-byte BLAKE2b");
    for p in parts {
        state.update(p);
    }
    state
        .finalize()
        .try_into()
        .expect("BLAKE2b-256 gives 32 bytes")
}

/// The hash of a leaf: `BLAKE2b(0 ‖ size u64 LE ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    blake2b(&[&[LEAF_TYPE], &(data.len() as u64).to_le_bytes(), data])
}

/// The leaf node of block `block` holding `data`.
pub fn leaf(block: u64, data: &[u8]) -> Node {
    Node {
        index: 2 * block,
        size: data.len() as u64,
        hash: leaf_hash(data),
    }
}

/// The parent at `index` of two sibling nodes (in either order); `None` when their sizes
/// overflow (only a hostile peer sends such nodes).
pub fn parent(index: u64, a: &Node, b: &Node) -> Option<Node> {
    let (left, right) = if a.index <= b.index { (a, b) } else { (b, a) };
    let size = left.size.checked_add(right.size)?;
    Some(Node {
        index,
        size,
        hash: blake2b(&[&[PARENT_TYPE], &size.to_le_bytes(), &left.hash, &right.hash]),
    })
}

/// The hash of a tree given its roots: `BLAKE2b(2 ‖ (hash ‖ index u64 LE ‖ size u64 LE)*)`.
pub fn tree_hash(roots: &[Node]) -> [u8; 32] {
    let mut state = crypto_generichash::State::new(None, 32).expect("32-byte BLAKE2b");
    state.update(&[ROOT_TYPE]);
    for r in roots {
        state.update(&r.hash);
        state.update(&r.index.to_le_bytes());
        state.update(&r.size.to_le_bytes());
    }
    state
        .finalize()
        .try_into()
        .expect("BLAKE2b-256 gives 32 bytes")
}

/// hypercore's namespace `n`: `BLAKE2b(BLAKE2b("hypercore") ‖ n)`. 0 is the tree's, 4 the
/// default signer's (`caps.js`).
pub fn namespace(n: u8) -> [u8; 32] {
    blake2b(&[&blake2b(&[b"hypercore"]), &[n]])
}

/// What a tree's signature covers: the tree namespace, the root hash, length and fork.
pub fn signable(hash: &[u8; 32], length: u64, fork: u64) -> [u8; 80] {
    let mut out = [0u8; 80];
    out[..32].copy_from_slice(&namespace(0));
    out[32..64].copy_from_slice(hash);
    out[64..72].copy_from_slice(&length.to_le_bytes());
    out[72..].copy_from_slice(&fork.to_le_bytes());
    out
}

/// A feed's signing key (never printed).
pub struct Signer {
    secret: crypto_sign::SecretKey,
    seed: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}…)", crate::hex(&self.public[..4]))
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.seed = [0; 32];
    }
}

impl Signer {
    /// The key pair of an ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Signer {
        init();
        let kp = crypto_sign::keypair_from_seed(seed).expect("an ed25519 key pair from a seed");
        Signer {
            public: *kp.public_key.as_bytes(),
            secret: kp.secret_key,
            seed: *seed,
        }
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        crypto_sign::sign_detached(message, &self.secret).expect("ed25519 signing")
    }
}

/// Whether `signature` is `public`'s over `message`.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    init();
    let (Ok(sig), Ok(pk)) = (
        <[u8; 64]>::try_from(signature),
        crypto_sign::PublicKey::from_bytes(public),
    ) else {
        return false;
    };
    crypto_sign::verify_detached(&sig, message, &pk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespaces_are_hypercores() {
        init();
        // caps.js of hypercore 10, as the reference implementations pin them.
        assert_eq!(
            crate::hex(&namespace(0)),
            "9fac70b50ca14efc4e91c833b204e75b8b5aad8b5881bfc0adb5ef38a3275b9c"
        );
        assert_eq!(
            crate::hex(&namespace(4)),
            "4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb"
        );
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let s = Signer::from_seed(&[3; 32]);
        let sig = s.sign(b"tree");
        assert!(verify(&s.public(), b"tree", &sig));
        assert!(!verify(&s.public(), b"other", &sig));
        assert!(!verify(
            &Signer::from_seed(&[4; 32]).public(),
            b"tree",
            &sig
        ));
        assert!(!verify(&s.public(), b"tree", &sig[..63]));
        assert!(!format!("{s:?}").contains(&crate::hex(s.seed())));
    }

    #[test]
    fn parents_are_ordered_by_index_and_overflow_is_refused() {
        init();
        let (a, b) = (leaf(0, b"a"), leaf(1, b"b"));
        assert_eq!(parent(1, &a, &b), parent(1, &b, &a));
        let big = Node {
            size: u64::MAX,
            ..b
        };
        assert_eq!(parent(1, &a, &big), None);
    }
}
