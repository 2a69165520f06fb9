//! A feed on disk: open (with the checks and repairs a crash or an older writer can call
//! for), append, read, prove, verify and store what peers prove, clear, and commit.
//!
//! Durability is at commit points. Between them, data and tree nodes go to the page cache
//! (nodes batched in memory first) and bitfield pages and the header are held in memory.
//! [`Core::commit`] syncs the data and tree, then writes and syncs the changed bitfield
//! pages, then writes and syncs the header into the older of its two slots: the bitfield
//! never marks a block whose data and nodes are not on disk, and the header never names a
//! tree whose nodes are not. Data of cleared blocks is freed only after the bitfield that
//! no longer marks them is on disk. So a crash, even a power loss, reopens the feed at its
//! last commit. (A writer holding all of its feed writes its bitfield pages without waiting
//! for them: its header's contiguous hint restores them on open, one sync fewer a commit.)

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use flat_tree::Iterator as Cursor;
use hypercore_schema::{Proof, RequestBlock, RequestSeek, RequestUpgrade};

use crate::bitfield::{Bitfield, PAGE_BITS};
use crate::crypto::{self, Signer};
use crate::entries;
use crate::files::{self, Files};
use crate::header::{self, ENTRIES_START, Header, Slots};
use crate::hex;
use crate::node::{NODE_BYTES, Node};
use crate::proof::{self, Growing, Head, Nodes, ProofError};

/// The file marking a feed this crate has opened and checked before.
mod open;

const FORMAT_FILE: &str = "format";
const FORMAT: &[u8] = b"cobox-feed 1\n";
/// Tree nodes held in memory before they are written out (uncommitted) to the tree file.
const PENDING_NODES: usize = 64 * 1024;

/// Why a feed could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("feed {dir}: {what}: {source}")]
    Io {
        dir: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("feed {dir} is damaged: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    #[error("feed {dir} holds key {found}, not the expected {expected}")]
    WrongKey {
        dir: PathBuf,
        expected: String,
        found: String,
    },
    #[error("feed {dir} is not writable here")]
    ReadOnly { dir: PathBuf },
    #[error("feed {dir}: {source}")]
    Proof { dir: PathBuf, source: ProofError },
}

/// What opening a feed found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The feed was last written by hypercore itself: its log entries were replayed.
    pub migrated: bool,
    /// Bytes of log entries not replayed (torn, or stale).
    pub cut: u64,
    /// Blocks the bitfield marked that the feed does not hold (past its length, or
    /// without a tree node), unmarked.
    pub unmarked: u64,
    /// Bytes of uncommitted data and tree nodes past the committed feed, cut off.
    pub truncated: u64,
}

/// The tree nodes of a feed: those not written yet, then the tree file.
struct TreeNodes<'a> {
    pending: &'a BTreeMap<u64, Node>,
    file: &'a File,
}

impl Nodes for TreeNodes<'_> {
    fn node(&mut self, index: u64) -> std::io::Result<Option<Node>> {
        if let Some(n) = self.pending.get(&index) {
            return Ok(Some(*n));
        }
        let Some(at) = index.checked_mul(NODE_BYTES) else {
            return Ok(None);
        };
        let mut buf = [0u8; NODE_BYTES as usize];
        match self.file.read_exact_at(&mut buf, at) {
            Ok(()) => Ok(Node::from_bytes(index, &buf)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An open feed.
pub struct Core {
    dir: PathBuf,
    files: Files,
    public: [u8; 32],
    signer: Option<Signer>,
    header: Header,
    slots: Slots,
    header_dirty: bool,
    /// The `oplog` is not yet exactly its two header slots: entries after them are still to
    /// be cut off once the header includes them, or the file is short (hypercore reads a
    /// slot only when the whole slot is in the file).
    oplog_unsized: bool,
    length: u64,
    byte_length: u64,
    fork: u64,
    roots: Vec<Node>,
    signature: Option<[u8; 64]>,
    /// Appended since the head was last signed: the writer signs at the next commit or
    /// proof (one signature for many appends), as nothing unsigned leaves the device.
    unsigned: bool,
    pending: BTreeMap<u64, Node>,
    bitfield: Bitfield,
    contiguous: u64,
    data_dirty: bool,
    tree_dirty: bool,
    /// Data ranges to free once the bitfield no longer marking them is durable.
    punch: Vec<(u64, u64)>,
    /// The last block read: (index, offset, size), for sequential reads.
    last_read: Option<(u64, u64, u64)>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("dir", &self.dir)
            .field("length", &self.length)
            .field("contiguous", &self.contiguous)
            .field("writable", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Core {
    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> CoreError + '_ {
        move |source| CoreError::Io {
            dir: self.dir.clone(),
            what,
            source,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> CoreError {
        CoreError::Corrupt {
            dir: self.dir.clone(),
            reason: reason.into(),
        }
    }

    fn nodes(&self) -> TreeNodes<'_> {
        TreeNodes {
            pending: &self.pending,
            file: &self.files.tree,
        }
    }

    fn head(&self) -> Head<'_> {
        Head {
            length: self.length,
            fork: self.fork,
            roots: &self.roots,
            signature: self.signature.as_ref(),
        }
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn byte_len(&self) -> u64 {
        self.byte_length
    }

    pub fn fork(&self) -> u64 {
        self.fork
    }

    /// How many blocks from the start this device holds without a gap.
    pub fn contiguous_len(&self) -> u64 {
        self.contiguous
    }

    pub fn writable(&self) -> bool {
        self.signer.is_some()
    }

    /// The writer's ed25519 signature over `message` (`None` on a replica). For statements
    /// about the feed that replicas check against its key.
    pub fn sign_detached(&self, message: &[u8]) -> Option<[u8; 64]> {
        self.signer.as_ref().map(|s| s.sign(message))
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this device holds block `index`.
    pub fn has(&self, index: u64) -> bool {
        index < self.length && self.bitfield.get(index)
    }

    /// The first block at or after `from` this device holds (its length when none).
    pub fn first_held(&self, from: u64) -> u64 {
        if from >= self.length {
            return self.length.max(from);
        }
        self.bitfield
            .first_set(from)
            .unwrap_or(self.length)
            .min(self.length)
    }

    /// The first block at or after `from` this device does not hold.
    pub fn first_missing(&self, from: u64) -> u64 {
        self.bitfield.first_unset(from).min(self.length.max(from))
    }

    /// Append blocks (not yet durable: see [`Core::commit`]); returns the new length.
    pub fn append<B: AsRef<[u8]> + Sync>(&mut self, blocks: &[B]) -> Result<u64, CoreError> {
        let hashes = crypto_leaves(blocks);
        self.append_hashed(blocks, &hashes)
    }

    /// [`Core::append`] with each block's leaf hash ([`crate::crypto::leaf_hash`]) already
    /// computed, e.g. by the thread that produced the block.
    pub fn append_hashed<B: AsRef<[u8]>>(
        &mut self,
        blocks: &[B],
        hashes: &[[u8; 32]],
    ) -> Result<u64, CoreError> {
        if self.signer.is_none() {
            return Err(CoreError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        assert_eq!(blocks.len(), hashes.len(), "one hash per block");
        if blocks.is_empty() {
            return Ok(self.length);
        }
        let start = self.length;
        let mut g = Growing {
            roots: std::mem::take(&mut self.roots),
            length: self.length,
            nodes: vec![],
        };
        let mut bytes = 0u64;
        for (block, hash) in blocks.iter().zip(hashes) {
            let leaf = Node {
                index: 2 * g.length,
                size: block.as_ref().len() as u64,
                hash: *hash,
            };
            bytes += leaf.size;
            let mut c = Cursor::new(leaf.index);
            g.append_root(leaf, &mut c)
                .expect("sizes of our own blocks do not overflow");
        }
        // Data first: small blocks gathered into one write.
        let mut offset = self.byte_length;
        if bytes / blocks.len() as u64 >= 16 * 1024 {
            for b in blocks {
                self.files
                    .write_data(offset, b.as_ref())
                    .map_err(self.io("cannot write data"))?;
                offset += b.as_ref().len() as u64;
            }
        } else {
            let all: Vec<u8> = blocks.iter().flat_map(|b| b.as_ref()).copied().collect();
            self.files
                .write_data(offset, &all)
                .map_err(self.io("cannot write data"))?;
        }
        self.data_dirty = true;
        for n in g.nodes {
            self.pending.insert(n.index, n);
        }
        self.roots = g.roots;
        self.length = g.length;
        self.byte_length += bytes;
        self.unsigned = true;
        self.header_dirty = true;
        self.bitfield.set_range(start, self.length, true);
        if self.contiguous == start {
            self.contiguous = self.bitfield.first_unset(start).min(self.length);
        }
        self.spill_nodes()?;
        Ok(self.length)
    }

    /// Sign the tree as it is now, if appends came since it was signed.
    fn sign_head(&mut self) {
        if !std::mem::take(&mut self.unsigned) {
            return;
        }
        let signer = self.signer.as_ref().expect("only a writer appends");
        let hash = crypto::tree_hash(&self.roots);
        let signature = signer.sign(&crypto::signable(&hash, self.length, self.fork));
        self.signature = Some(signature);
        self.header.tree = header::TreeHead {
            fork: self.fork,
            length: self.length,
            root_hash: hash.to_vec(),
            signature: signature.to_vec(),
        };
    }

    /// Write held tree nodes out (uncommitted) once there are many.
    fn spill_nodes(&mut self) -> Result<(), CoreError> {
        if self.pending.len() >= PENDING_NODES {
            self.write_nodes()?;
        }
        Ok(())
    }

    /// Write every held tree node to the tree file, runs of neighbours in one write.
    fn write_nodes(&mut self) -> Result<(), CoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut run: Vec<u8> = vec![];
        let mut run_start = 0;
        let mut next = None;
        for (i, n) in pending {
            if next != Some(i) && !run.is_empty() {
                self.files
                    .tree
                    .write_all_at(&run, run_start * NODE_BYTES)
                    .map_err(self.io("cannot write tree"))?;
                run.clear();
            }
            if run.is_empty() {
                run_start = i;
            }
            run.extend_from_slice(&n.to_bytes());
            next = Some(i + 1);
        }
        self.files
            .tree
            .write_all_at(&run, run_start * NODE_BYTES)
            .map_err(self.io("cannot write tree"))?;
        self.tree_dirty = true;
        Ok(())
    }

    /// The byte offset and size of block `index` (held or not; its nodes must be stored).
    fn block_range(&mut self, index: u64) -> Result<(u64, u64), CoreError> {
        let leaf = self
            .nodes()
            .node(2 * index)
            .map_err(self.io("cannot read tree"))?
            .ok_or_else(|| self.corrupt(format!("the tree node of block {index} is missing")))?;
        if let Some((i, o, s)) = self.last_read
            && i + 1 == index
        {
            return Ok((o + s, leaf.size));
        }
        let target = 2 * index;
        let mut offset = 0;
        for root in &self.roots {
            if flat_tree::right_span(root.index) < target {
                offset += root.size;
                continue;
            }
            let mut c = Cursor::new(root.index);
            let mut nodes = TreeNodes {
                pending: &self.pending,
                file: &self.files.tree,
            };
            while c.index() != target {
                if target < c.index() {
                    c.left_child();
                } else {
                    let left = c.left_child();
                    let n = nodes
                        .node(left)
                        .map_err(|source| CoreError::Io {
                            dir: self.dir.clone(),
                            what: "cannot read tree",
                            source,
                        })?
                        .ok_or_else(|| CoreError::Corrupt {
                            dir: self.dir.clone(),
                            reason: format!("tree node {left} is missing"),
                        })?;
                    offset += n.size;
                    c.sibling();
                }
            }
            return Ok((offset, leaf.size));
        }
        Err(self.corrupt(format!("block {index} is past the tree")))
    }

    /// Block `index`, or `None` when this device does not hold it.
    pub fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, CoreError> {
        if !self.has(index) {
            return Ok(None);
        }
        let (offset, size) = self.block_range(index)?;
        let data = files::read_at(&self.files.data, offset, size)
            .map_err(self.io("cannot read data"))?
            .ok_or_else(|| self.corrupt(format!("the data of block {index} is missing")))?;
        self.last_read = Some((index, offset, size));
        Ok(Some(data))
    }

    /// Stop holding blocks `start..end` (a seed making room); their data is freed at the
    /// next commit, after the bitfield that no longer marks them is durable.
    pub fn clear(&mut self, start: u64, end: u64) -> Result<(), CoreError> {
        let end = end.min(self.length);
        let mut i = start;
        while i < end {
            let Some(s) = self.bitfield.first_set(i).filter(|&s| s < end) else {
                break;
            };
            let e = self.bitfield.first_unset(s).min(end);
            self.last_read = None;
            if let (Ok((from, _)), Ok((last, size))) =
                (self.block_range(s), self.block_range(e - 1))
            {
                self.punch.push((from, last + size - from));
            }
            i = e;
        }
        self.bitfield.set_range(start, end, false);
        if start < self.contiguous {
            self.contiguous = start;
        }
        self.last_read = None;
        Ok(())
    }

    /// Make every change so far durable (see the module's documentation for the order).
    pub fn commit(&mut self) -> Result<(), CoreError> {
        self.sign_head();
        self.write_nodes()?;
        if std::mem::take(&mut self.data_dirty) {
            self.files
                .data
                .sync_data()
                .map_err(self.io("cannot sync data"))?;
        }
        if std::mem::take(&mut self.tree_dirty) {
            self.files
                .tree
                .sync_data()
                .map_err(self.io("cannot sync tree"))?;
        }
        // A writer holding every block of its feed needs no durable bitfield: the header
        // (which says so, in its contiguous hint) restores it on open. Its pages are written
        // but not waited for; they never mark a block past a durable header's length for
        // long, as opening unmarks those.
        let whole_writer =
            self.signer.is_some() && self.contiguous == self.length && self.punch.is_empty();
        if self.bitfield.is_dirty() {
            for (offset, page) in self.bitfield.take_dirty() {
                self.files
                    .bitfield
                    .write_all_at(&page, offset)
                    .map_err(self.io("cannot write bitfield"))?;
            }
            if !whole_writer {
                self.files
                    .bitfield
                    .sync_data()
                    .map_err(self.io("cannot sync bitfield"))?;
            }
        }
        if std::mem::take(&mut self.header_dirty) {
            self.header.contiguous = self.contiguous;
            let (at, bit, next) = self.slots.next();
            let record = header::with_leader(&self.header.encode(), bit, false);
            self.files
                .oplog
                .write_all_at(&record, at as u64)
                .map_err(self.io("cannot write header"))?;
            self.files
                .oplog
                .sync_data()
                .map_err(self.io("cannot sync header"))?;
            self.slots = next;
            if std::mem::take(&mut self.oplog_unsized) {
                // The entries replayed are in the header now.
                self.files
                    .oplog
                    .set_len(ENTRIES_START as u64)
                    .and_then(|_| self.files.oplog.sync_data())
                    .map_err(self.io("cannot size oplog"))?;
            }
        }
        let punch = std::mem::take(&mut self.punch);
        if !punch.is_empty() {
            for (offset, length) in punch {
                files::punch(&self.files.data, offset, length)
                    .map_err(self.io("cannot free data"))?;
            }
            self.files
                .data
                .sync_data()
                .map_err(self.io("cannot sync data"))?;
        }
        Ok(())
    }

    /// How many nodes above block `index`'s leaf this device lacks (for a request).
    pub fn missing_nodes(&mut self, index: u64) -> Result<u64, CoreError> {
        let length = self.length;
        proof::missing_nodes(length, &mut self.nodes(), index).map_err(self.io("cannot read tree"))
    }

    /// The proof answering a request; `None` when the block asked for is not held here.
    /// Seeks are not answered.
    pub fn create_proof(
        &mut self,
        block: Option<RequestBlock>,
        hash: Option<RequestBlock>,
        seek: Option<RequestSeek>,
        upgrade: Option<RequestUpgrade>,
    ) -> Result<Option<Proof>, CoreError> {
        self.sign_head();
        let proof_err = |dir: &Path, source| CoreError::Proof {
            dir: dir.to_path_buf(),
            source,
        };
        if seek.is_some() {
            return Err(proof_err(
                &self.dir,
                ProofError::Request("seek requests are not answered"),
            ));
        }
        let v = proof::create(
            self.head(),
            &mut self.nodes(),
            block.as_ref(),
            hash.as_ref(),
            upgrade.as_ref(),
        )
        .map_err(|e| proof_err(&self.dir, e))?;
        let value = match &v.block {
            Some(b) => match self.get(b.index)? {
                Some(value) => Some(value),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(v.with_value(value)))
    }

    /// Verify a proof from a peer and store what it proves (not yet durable). Nothing is
    /// stored unless everything verifies.
    pub fn verify_and_apply_proof(&mut self, proof: &Proof) -> Result<(), CoreError> {
        let verified = proof::verify(self.head(), &self.public, proof, &mut self.nodes()).map_err(
            |source| CoreError::Proof {
                dir: self.dir.clone(),
                source,
            },
        )?;
        for n in verified.nodes {
            self.pending.insert(n.index, n);
        }
        if let Some(h) = verified.upgrade {
            self.length = h.length;
            self.byte_length = h.byte_length;
            self.fork = h.fork;
            self.roots = h.roots;
            self.signature = Some(h.signature);
            self.header.tree = header::TreeHead {
                fork: h.fork,
                length: h.length,
                root_hash: h.hash.to_vec(),
                signature: h.signature.to_vec(),
            };
            self.header_dirty = true;
            self.last_read = None;
        }
        if let Some(b) = &proof.block
            && !self.has(b.index)
        {
            let (offset, size) = self.block_range(b.index)?;
            self.files
                .write_data(offset, &b.value)
                .map_err(self.io("cannot write data"))?;
            self.last_read = Some((b.index, offset, size));
            self.data_dirty = true;
            self.bitfield.set_range(b.index, b.index + 1, true);
            if self.contiguous == b.index {
                self.contiguous = self.bitfield.first_unset(b.index).min(self.length);
            }
        }
        self.spill_nodes()
    }
}

/// The leaf hashes of `blocks`, on several threads when there is much to hash.
fn crypto_leaves<B: AsRef<[u8]> + Sync>(blocks: &[B]) -> Vec<[u8; 32]> {
    // Asked once: the answer reads cgroup files, too slow for every append.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let total: usize = blocks.iter().map(|b| b.as_ref().len()).sum();
    if total < 1 << 20 || blocks.len() < 2 {
        return blocks
            .iter()
            .map(|b| crypto::leaf_hash(b.as_ref()))
            .collect();
    }
    let threads =
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)));
    if threads < 2 {
        return blocks
            .iter()
            .map(|b| crypto::leaf_hash(b.as_ref()))
            .collect();
    }
    let chunk = blocks.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = blocks
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|b| crypto::leaf_hash(b.as_ref()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("hashing does not panic"))
            .collect()
    })
}
