//! A node of a feed's Merkle tree: its index in the flat tree, the bytes it covers and its
//! hash; as stored in the `tree` file (40 bytes at `index * 40`) and as carried on the wire.

/// Bytes of one node in the `tree` file: its size (u64 LE), then its hash.
pub const NODE_BYTES: u64 = 40;

/// A tree node. A leaf (even index) covers one block; a parent covers its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub index: u64,
    pub size: u64,
    pub hash: [u8; 32],
}

impl Node {
    /// The node as stored in the `tree` file.
    pub fn to_bytes(&self) -> [u8; NODE_BYTES as usize] {
        let mut out = [0u8; NODE_BYTES as usize];
        out[..8].copy_from_slice(&self.size.to_le_bytes());
        out[8..].copy_from_slice(&self.hash);
        out
    }

    /// The node stored at `index` as `bytes`; `None` for a blank slot (an all-zero hash:
    /// never written, or cleared).
    pub fn from_bytes(index: u64, bytes: &[u8]) -> Option<Node> {
        let size = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let hash: [u8; 32] = bytes.get(8..40)?.try_into().ok()?;
        (hash != [0; 32]).then_some(Node { index, size, hash })
    }

    /// The node as the replication protocol carries it.
    pub fn to_wire(&self) -> hypercore_schema::Node {
        hypercore_schema::Node::new(self.index, self.hash.to_vec(), self.size)
    }

    /// A node received from a peer; `None` when its hash is not 32 bytes.
    pub fn from_wire(n: &hypercore_schema::Node) -> Option<Node> {
        Some(Node {
            index: n.index,
            size: n.length,
            hash: n.hash.as_slice().try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_nodes_round_trip_and_blank_slots_read_as_absent() {
        let n = Node {
            index: 9,
            size: 70_000,
            hash: [7; 32],
        };
        assert_eq!(Node::from_bytes(9, &n.to_bytes()), Some(n));
        assert_eq!(Node::from_bytes(9, &[0; 40]), None);
        assert_eq!(Node::from_bytes(9, &[1; 39]), None);
        assert_eq!(Node::from_wire(&n.to_wire()), Some(n));
    }
}
