//! Signed append-only feeds on disk, in the format of hypercore 10 (byte-compatible files
//! and proofs): a Merkle tree over the blocks (BLAKE2b), signed roots (ed25519), a bitfield
//! of the blocks held, and a header. A writer appends; a replica stores only what verifies
//! through proofs against the writer's key. Feeds of any length open: nothing here is
//! limited to a page of the bitfield.

pub mod bitfield;
mod core;
pub mod crypto;
pub mod encoding;
pub mod entries;
mod files;
pub mod header;
pub mod node;
pub mod proof;

pub use crate::core::{Core, CoreError, Opened};
pub use node::Node;
pub use proof::ProofError;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `dir` holds a feed (a non-empty `oplog`).
pub fn exists(dir: &std::path::Path) -> bool {
    std::fs::metadata(dir.join("oplog")).is_ok_and(|m| m.len() > 0)
}
