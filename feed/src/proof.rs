//! Merkle proofs, as hypercore 10 builds and checks them (so peers running hypercore itself
//! interoperate): a block with the sibling path up to a node the requester already trusts,
//! and an upgrade — the nodes that turn the requester's roots into the writer's newest
//! signed roots — with the writer's signature. No I/O: nodes come from a [`Nodes`] source.
//!
//! Everything a peer sends is bounded before it reaches tree arithmetic: indices and
//! lengths below 2^60, paths of at most 64 nodes, sizes summed with overflow checks.

use flat_tree::Iterator as Cursor;
use hypercore_schema::{DataBlock, DataHash, DataUpgrade, Proof, RequestBlock, RequestUpgrade};

use crate::crypto;
use crate::node::Node;

/// Lengths and indices a proof may name: beyond, tree arithmetic could overflow.
pub const MAX_LENGTH: u64 = 1 << 60;
/// No path in a tree of at most 2^60 blocks is longer.
const MAX_PATH: usize = 64;

/// Where a proof finds stored tree nodes.
pub trait Nodes {
    /// The node at `index`, if stored.
    fn node(&mut self, index: u64) -> std::io::Result<Option<Node>>;
}

/// Why a proof could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("tree node {0} is needed but not stored")]
    Missing(u64),
    #[error("request cannot be answered: {0}")]
    Request(&'static str),
    #[error("proof does not verify: {0}")]
    Invalid(String),
    #[error("reading the tree: {0}")]
    Io(#[from] std::io::Error),
}

fn invalid(what: impl Into<String>) -> ProofError {
    ProofError::Invalid(what.into())
}

fn required(nodes: &mut impl Nodes, index: u64) -> Result<Node, ProofError> {
    nodes.node(index)?.ok_or(ProofError::Missing(index))
}

/// The signed head a proof is made from or checked against.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub length: u64,
    pub fork: u64,
    pub roots: &'a [Node],
    pub signature: Option<&'a [u8; 64]>,
}

/// A proof without the block's value (the caller reads it).
#[derive(Debug, Clone, PartialEq)]
pub struct Valueless {
    pub fork: u64,
    pub block: Option<DataHash>,
    pub hash: Option<DataHash>,
    pub upgrade: Option<DataUpgrade>,
}

impl Valueless {
    /// The proof with the block's value filled in.
    pub fn with_value(self, value: Option<Vec<u8>>) -> Proof {
        Proof {
            fork: self.fork,
            block: self.block.map(|b| DataBlock {
                index: b.index,
                value: value.unwrap_or_default(),
                nodes: b.nodes,
            }),
            hash: self.hash,
            seek: None,
            upgrade: self.upgrade,
        }
    }
}

/// A block or hash request, in tree indices.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    /// A block (its value travels, so its own node does not).
    value: bool,
    index: u64,
    nodes: u64,
    last_block: u64,
}

fn wire(nodes: Vec<Node>) -> Vec<hypercore_schema::Node> {
    nodes.iter().map(Node::to_wire).collect()
}

/// The ancestor `nodes` levels above `index`; an error when that leaves the tree of `head`.
fn nodes_to_root(index: u64, nodes: u64, head: u64) -> Result<u64, ProofError> {
    if nodes > MAX_PATH as u64 {
        return Err(ProofError::Request("more missing nodes than any path has"));
    }
    let mut c = Cursor::new(index);
    for _ in 0..nodes {
        c.parent();
        if c.contains(head) {
            return Err(ProofError::Request("missing nodes reach past the tree"));
        }
    }
    Ok(c.index())
}

/// The path proving `indexed` up to (not including) its ancestor `root`.
fn block_proof(
    nodes: &mut impl Nodes,
    indexed: &Indexed,
    root: u64,
) -> Result<Vec<Node>, ProofError> {
    let mut c = Cursor::new(indexed.index);
    let mut out = vec![];
    if !indexed.value {
        out.push(required(nodes, c.index())?);
    }
    while c.index() != root {
        c.sibling();
        out.push(required(nodes, c.index())?);
        c.parent();
    }
    Ok(out)
}

/// The nodes that take a tree of `from / 2` blocks to the roots of `to / 2` blocks. A
/// block whose path is still to be proved (`path` is `None`) and lies in `sub_tree` gets its
/// path up to the root or connecting node instead of that node.
fn upgrade_proof(
    nodes: &mut impl Nodes,
    indexed: Option<&Indexed>,
    path: &mut Option<Vec<Node>>,
    from: u64,
    to: u64,
    sub_tree: u64,
) -> Result<Vec<Node>, ProofError> {
    let mut out = vec![];
    let mut connected = from == 0;
    let mut c = Cursor::new(0);
    let proves_block = |c: &Cursor, path: &Option<Vec<Node>>| {
        indexed.is_some() && path.is_none() && c.contains(sub_tree)
    };
    while c.full_root(to) {
        if c.index() + c.factor() / 2 < from {
            // A root the requester already has.
            c.next_tree();
            continue;
        }
        if !connected && c.contains(from - 2) {
            // The root that grew over the requester's last root: the siblings above it.
            connected = true;
            let (root, target) = (c.index(), from - 2);
            c.seek(target);
            while c.index() != root {
                c.sibling();
                if c.index() > target {
                    if proves_block(&c, path) {
                        let i = indexed.expect("checked");
                        *path = Some(block_proof(nodes, i, c.index())?);
                    } else {
                        out.push(required(nodes, c.index())?);
                    }
                }
                c.parent();
            }
            c.next_tree();
            continue;
        }
        connected = true;
        if proves_block(&c, path) {
            let i = indexed.expect("checked");
            *path = Some(block_proof(nodes, i, c.index())?);
        } else {
            out.push(required(nodes, c.index())?);
        }
        c.next_tree();
    }
    Ok(out)
}

/// Make the proof answering a request, from the tree of `head`.
pub fn create(
    head: Head<'_>,
    nodes: &mut impl Nodes,
    block: Option<&RequestBlock>,
    hash: Option<&RequestBlock>,
    upgrade: Option<&RequestUpgrade>,
) -> Result<Valueless, ProofError> {
    let tree = 2 * head.length;
    let (from, to) = match upgrade {
        Some(u) => {
            let end = u
                .start
                .checked_add(u.length)
                .filter(|&e| e <= head.length)
                .ok_or(ProofError::Request("upgrade past the tree"))?;
            (2 * u.start, 2 * end)
        }
        None => (0, tree),
    };
    if from >= to {
        return Err(ProofError::Request("empty upgrade or empty tree"));
    }
    let indexed = match (block, hash) {
        (Some(b), _) if b.index < head.length => Some(Indexed {
            value: true,
            index: 2 * b.index,
            nodes: b.nodes,
            last_block: b.index,
        }),
        (None, Some(h)) if h.index < tree && flat_tree::right_span(h.index) < tree => {
            Some(Indexed {
                value: false,
                index: h.index,
                nodes: h.nodes,
                last_block: flat_tree::right_span(h.index) / 2,
            })
        }
        (None, None) => None,
        _ => return Err(ProofError::Request("block past the tree")),
    };
    let mut path = None;
    let mut sub_tree = tree;
    if let Some(i) = &indexed {
        let untrusted = upgrade.is_none_or(|u| i.last_block < u.start);
        if untrusted {
            sub_tree = nodes_to_root(i.index, i.nodes, to)?;
            path = Some(block_proof(nodes, i, sub_tree)?);
        } else {
            sub_tree = i.index;
        }
    }
    let mut data_upgrade = None;
    if let Some(u) = upgrade {
        let signature = head
            .signature
            .ok_or(ProofError::Request("the tree is not signed"))?;
        let up = upgrade_proof(nodes, indexed.as_ref(), &mut path, from, to, sub_tree)?;
        let additional = if tree > to {
            upgrade_proof(nodes, None, &mut None, to, tree, tree)?
        } else {
            vec![]
        };
        data_upgrade = Some(DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: wire(up),
            additional_nodes: wire(additional),
            signature: signature.to_vec(),
        });
    }
    let proved = |i: &Indexed| DataHash {
        index: if i.value { i.last_block } else { i.index },
        nodes: wire(path.clone().unwrap_or_default()),
    };
    Ok(Valueless {
        fork: head.fork,
        block: indexed.filter(|i| i.value).as_ref().map(proved),
        hash: indexed.filter(|i| !i.value).as_ref().map(proved),
        upgrade: data_upgrade,
    })
}

/// How many nodes above block `block`'s leaf the requester lacks (what a request's `nodes`
/// says), given the nodes it stores.
pub fn missing_nodes(length: u64, nodes: &mut impl Nodes, block: u64) -> std::io::Result<u64> {
    let head = 2 * length;
    let index = 2 * block;
    if block >= length {
        return Ok(0);
    }
    let mut c = Cursor::new(index);
    let mut count = 0;
    while !c.contains(head) && nodes.node(c.index())?.is_none() {
        count += 1;
        c.parent();
    }
    Ok(count)
}

/// A verified proof: the nodes to store and, for an upgrade, the new head.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub nodes: Vec<Node>,
    pub upgrade: Option<NewHead>,
    /// The block's leaf, when the proof carries a block.
    pub leaf: Option<Node>,
}

/// A tree head proved by the writer's signature.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHead {
    pub length: u64,
    pub byte_length: u64,
    pub fork: u64,
    pub roots: Vec<Node>,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

/// Nodes of a proof, taken in the order the verifier expects them; the block's root
/// (`extra`) may stand in for one of them.
struct Queue {
    nodes: std::vec::IntoIter<Node>,
    extra: Option<Node>,
}

impl Queue {
    fn shift(&mut self, index: u64) -> Result<Node, ProofError> {
        if let Some(e) = self.extra.filter(|e| e.index == index) {
            self.extra = None;
            return Ok(e);
        }
        match self.nodes.next() {
            Some(n) if n.index == index => Ok(n),
            Some(n) => Err(invalid(format!("expected node {index}, got {}", n.index))),
            None => Err(invalid(format!("expected node {index}, got none"))),
        }
    }
}

fn from_wire(nodes: &[hypercore_schema::Node]) -> Result<Vec<Node>, ProofError> {
    if nodes.len() > 2 * MAX_PATH {
        return Err(invalid("more nodes than any proof needs"));
    }
    nodes
        .iter()
        .map(|n| {
            Node::from_wire(n)
                .filter(|n| n.index < 2 * MAX_LENGTH)
                .ok_or_else(|| invalid("a node with a bad index or hash"))
        })
        .collect()
}

/// Roots being built (by an append or from a proof), merging siblings as they complete.
#[derive(Debug)]
pub(crate) struct Growing {
    pub roots: Vec<Node>,
    pub length: u64,
    /// Every node added or made.
    pub nodes: Vec<Node>,
}

impl Growing {
    /// Add `node` (at the cursor) as the newest root and merge it with its left siblings.
    pub fn append_root(&mut self, node: Node, c: &mut Cursor) -> Result<(), ProofError> {
        self.length += c.factor() / 2;
        self.roots.push(node);
        self.nodes.push(node);
        while self.roots.len() > 1 {
            let (a, b) = (
                self.roots[self.roots.len() - 1],
                self.roots[self.roots.len() - 2],
            );
            if c.sibling() != b.index {
                c.sibling();
                break;
            }
            let p = crypto::parent(c.parent(), &a, &b).ok_or_else(|| invalid("sizes overflow"))?;
            self.nodes.push(p);
            self.roots.truncate(self.roots.len() - 2);
            self.roots.push(p);
        }
        Ok(())
    }
}

fn verify_upgrade(
    head: Head<'_>,
    public: &[u8; 32],
    fork: u64,
    up: &DataUpgrade,
    block_root: Option<Node>,
    out: &mut Vec<Node>,
) -> Result<(NewHead, bool), ProofError> {
    if up.start != head.length {
        return Err(invalid("the upgrade does not start at this tree's length"));
    }
    let end = up
        .start
        .checked_add(up.length)
        .filter(|&e| e > head.length && e < MAX_LENGTH)
        .ok_or_else(|| invalid("upgrade length"))?;
    let to = 2 * end;
    let mut q = Queue {
        nodes: from_wire(&up.nodes)?.into_iter(),
        extra: block_root,
    };
    let mut g = Growing {
        roots: head.roots.to_vec(),
        length: head.length,
        nodes: vec![],
    };
    let mut grow = !g.roots.is_empty();
    let mut i = 0;
    let mut c = Cursor::new(0);
    while c.full_root(to) {
        if i < g.roots.len() && g.roots[i].index == c.index() {
            i += 1;
            c.next_tree();
            continue;
        }
        if grow {
            grow = false;
            let root = c.index();
            if i < g.roots.len() {
                c.seek(g.roots[g.roots.len() - 1].index);
                let mut steps = 0;
                while c.index() != root {
                    steps += 1;
                    if steps > MAX_PATH {
                        return Err(invalid("the upgrade does not grow over this tree"));
                    }
                    let n = q.shift(c.sibling())?;
                    g.append_root(n, &mut c)?;
                }
                c.next_tree();
                continue;
            }
        }
        let n = q.shift(c.index())?;
        g.append_root(n, &mut c)?;
        c.next_tree();
    }
    let extra = from_wire(&up.additional_nodes)?;
    let last = g
        .roots
        .last()
        .ok_or_else(|| invalid("an upgrade to an empty tree"))?;
    c.seek(last.index);
    let mut k = 0;
    while k < extra.len() && extra[k].index == c.sibling() {
        g.append_root(extra[k], &mut c)?;
        k += 1;
    }
    while k < extra.len() {
        let node = extra[k];
        k += 1;
        while node.index != c.index() {
            if c.factor() == 2 {
                return Err(invalid(format!("unexpected node {}", node.index)));
            }
            c.left_child();
        }
        g.append_root(node, &mut c)?;
        c.sibling();
    }
    if g.length >= MAX_LENGTH {
        return Err(invalid("upgrade length"));
    }
    let byte_length = g
        .roots
        .iter()
        .try_fold(0u64, |acc, r| acc.checked_add(r.size))
        .ok_or_else(|| invalid("sizes overflow"))?;
    let hash = crypto::tree_hash(&g.roots);
    let signature: [u8; 64] = up
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| invalid("signature length"))?;
    if !crypto::verify(public, &crypto::signable(&hash, g.length, fork), &signature) {
        return Err(invalid("the tree's signature is not the writer's"));
    }
    out.extend(g.nodes);
    let consumed = q.extra.is_none();
    Ok((
        NewHead {
            length: g.length,
            byte_length,
            fork,
            roots: g.roots,
            hash,
            signature,
        },
        consumed,
    ))
}

/// Check a proof against the tree of `head` and the nodes stored. Only a block (with its
/// value) and an upgrade are accepted: nothing here asks for hashes or seeks.
pub fn verify(
    head: Head<'_>,
    public: &[u8; 32],
    proof: &Proof,
    nodes: &mut impl Nodes,
) -> Result<Verified, ProofError> {
    if proof.seek.is_some() || proof.hash.is_some() {
        return Err(invalid("seek and hash proofs are not accepted"));
    }
    if proof.fork != head.fork {
        return Err(invalid("another fork of the feed"));
    }
    let mut out = vec![];
    let mut block_root = None;
    let mut leaf = None;
    if let Some(b) = &proof.block {
        if b.index >= MAX_LENGTH {
            return Err(invalid("block index"));
        }
        let path = from_wire(&b.nodes)?;
        if path.len() > MAX_PATH {
            return Err(invalid("path longer than any tree"));
        }
        let l = crypto::leaf(b.index, &b.value);
        let mut c = Cursor::new(l.index);
        let mut current = l;
        out.push(l);
        for n in path {
            if n.index != c.sibling() {
                return Err(invalid(format!(
                    "expected node {}, got {}",
                    c.index(),
                    n.index
                )));
            }
            let p = crypto::parent(c.parent(), &current, &n)
                .ok_or_else(|| invalid("sizes overflow"))?;
            out.push(n);
            out.push(p);
            current = p;
        }
        leaf = Some(l);
        block_root = Some(current);
    }
    let mut upgrade = None;
    if let Some(up) = &proof.upgrade {
        let (new_head, consumed) =
            verify_upgrade(head, public, proof.fork, up, block_root, &mut out)?;
        if consumed {
            block_root = None;
        }
        upgrade = Some(new_head);
    }
    if let Some(root) = block_root {
        match nodes.node(root.index)? {
            Some(known) if known.hash == root.hash => {}
            Some(_) => return Err(invalid(format!("node {} does not match", root.index))),
            None => {
                return Err(invalid(format!(
                    "node {} is not known here to check the block against",
                    root.index
                )));
            }
        }
    }
    if let (Some(l), Some(h)) = (&leaf, &upgrade)
        && l.index >= 2 * h.length
    {
        return Err(invalid("block past the tree"));
    }
    Ok(Verified {
        nodes: out,
        upgrade,
        leaf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A writer's whole tree in memory.
    #[derive(Default)]
    struct Mem {
        nodes: BTreeMap<u64, Node>,
        roots: Vec<Node>,
        length: u64,
    }

    /// A read-only view of a tree's nodes.
    struct Ro<'a>(&'a BTreeMap<u64, Node>);

    impl Nodes for Ro<'_> {
        fn node(&mut self, index: u64) -> std::io::Result<Option<Node>> {
            Ok(self.0.get(&index).copied())
        }
    }

    impl Mem {
        fn append(&mut self, data: &[u8]) {
            let leaf = crypto::leaf(self.length, data);
            let mut c = Cursor::new(leaf.index);
            let mut g = Growing {
                roots: std::mem::take(&mut self.roots),
                length: self.length,
                nodes: vec![],
            };
            g.append_root(leaf, &mut c).unwrap();
            for n in g.nodes {
                self.nodes.insert(n.index, n);
            }
            self.roots = g.roots;
            self.length = g.length;
        }

        fn head<'a>(&'a self, sig: &'a [u8; 64]) -> Head<'a> {
            Head {
                length: self.length,
                fork: 0,
                roots: &self.roots,
                signature: Some(sig),
            }
        }
    }

    #[test]
    fn proofs_have_the_shape_hypercore_gives_them() {
        crypto::init();
        let mut w = Mem::default();
        for i in 0..10u8 {
            w.append(&[i]);
        }
        let sig = [0u8; 64];
        // Block `b` (its requester lacking `nodes`) with an upgrade of `up`: the indices of
        // the block's path, the upgrade's nodes and its additional nodes.
        let prove = |b: u64, nodes: u64, up: Option<(u64, u64)>| {
            let up = up.map(|(start, length)| RequestUpgrade { start, length });
            let block = RequestBlock { index: b, nodes };
            let p = create(
                w.head(&sig),
                &mut Ro(&w.nodes),
                Some(&block),
                None,
                up.as_ref(),
            )
            .unwrap();
            let idx = |ns: &[hypercore_schema::Node]| ns.iter().map(|n| n.index).collect();
            let (u, a): (Vec<u64>, Vec<u64>) = p.upgrade.map_or((vec![], vec![]), |u| {
                (idx(&u.nodes), idx(&u.additional_nodes))
            });
            (idx(&p.block.unwrap().nodes), u, a)
        };
        // The cases of hypercore's own tests of create_proof.
        assert_eq!(prove(4, 2, None), (vec![10, 13], vec![], vec![]));
        assert_eq!(
            prove(4, 0, Some((0, 10))),
            (vec![10, 13, 3], vec![17], vec![])
        );
        assert_eq!(
            prove(4, 0, Some((0, 8))),
            (vec![10, 13, 3], vec![], vec![17])
        );
        assert_eq!(prove(1, 0, Some((1, 9))), (vec![], vec![5, 11, 17], vec![]));
    }

    #[test]
    fn hostile_requests_are_refused_not_panicked_on() {
        crypto::init();
        let mut w = Mem::default();
        for i in 0..5u8 {
            w.append(&[i]);
        }
        let sig = [0u8; 64];
        for (block, upgrade) in [
            (
                Some(RequestBlock {
                    index: u64::MAX,
                    nodes: 0,
                }),
                None,
            ),
            (
                Some(RequestBlock {
                    index: 1,
                    nodes: u64::MAX,
                }),
                None,
            ),
            (Some(RequestBlock { index: 1, nodes: 5 }), None),
            (
                None,
                Some(RequestUpgrade {
                    start: u64::MAX,
                    length: 2,
                }),
            ),
            (
                None,
                Some(RequestUpgrade {
                    start: 2,
                    length: 9,
                }),
            ),
            (
                None,
                Some(RequestUpgrade {
                    start: 5,
                    length: 0,
                }),
            ),
        ] {
            assert!(
                create(
                    w.head(&sig),
                    &mut Ro(&w.nodes),
                    block.as_ref(),
                    None,
                    upgrade.as_ref()
                )
                .is_err(),
                "{block:?} {upgrade:?}"
            );
        }
        let h = RequestBlock {
            index: u64::MAX,
            nodes: 0,
        };
        assert!(create(w.head(&sig), &mut Ro(&w.nodes), None, Some(&h), None).is_err());
    }
}
