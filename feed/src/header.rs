//! The feed's header, kept in the first 8 KiB of the `oplog` file: two 4 KiB slots, each a
//! checksummed header, written alternately so that a torn write leaves the other one whole.
//! Byte for byte the layout hypercore 10 uses (manifest with the default ed25519 signer,
//! key pair, user data, signed tree head, hints).

use crate::crypto::namespace;
use crate::encoding::{DecodeError, Reader, put_buffer, put_strings, put_uint};

/// Bytes of one header slot.
pub const SLOT_BYTES: usize = 4096;
/// Where the log entries after the two header slots begin.
pub const ENTRIES_START: usize = 2 * SLOT_BYTES;
/// Checksum and length word before a header or entry.
pub const LEADER_BYTES: usize = 8;

/// The signed head of the tree: its length, fork, root hash and the writer's signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeHead {
    pub fork: u64,
    pub length: u64,
    /// Empty while the length is 0.
    pub root_hash: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A feed's header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub key: [u8; 32],
    /// The signer's namespace from the manifest.
    pub namespace: [u8; 32],
    pub public: [u8; 32],
    /// The ed25519 seed, on the writer's device only.
    pub seed: Option<[u8; 32]>,
    pub user_data: Vec<String>,
    pub tree: TreeHead,
    pub reorgs: Vec<String>,
    /// How many blocks from the start are held without a gap (a hint).
    pub contiguous: u64,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("key", &crate::hex(&self.key))
            .field("writable", &self.seed.is_some())
            .field("tree", &self.tree)
            .field("contiguous", &self.contiguous)
            .finish()
    }
}

impl Header {
    /// The header of a new, empty feed.
    pub fn new(public: [u8; 32], seed: Option<[u8; 32]>) -> Header {
        Header {
            key: public,
            namespace: namespace(4),
            public,
            seed,
            user_data: vec![],
            tree: TreeHead::default(),
            reorgs: vec![],
            contiguous: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 2 | 4];
        out.extend_from_slice(&self.key);
        // Manifest: version 0, hash BLAKE2b (0), type single signer (1), ed25519 (0).
        out.extend_from_slice(&[0, 0, 1, 0]);
        out.extend_from_slice(&self.namespace);
        out.extend_from_slice(&self.public);
        put_buffer(&mut out, &self.public);
        match &self.seed {
            // libsodium's secret key: the seed followed by the public key.
            Some(seed) => {
                put_uint(&mut out, 64);
                out.extend_from_slice(seed);
                out.extend_from_slice(&self.public);
            }
            None => put_uint(&mut out, 0),
        }
        put_strings(&mut out, &self.user_data);
        put_uint(&mut out, self.tree.fork);
        put_uint(&mut out, self.tree.length);
        put_buffer(&mut out, &self.tree.root_hash);
        put_buffer(&mut out, &self.tree.signature);
        put_strings(&mut out, &self.reorgs);
        put_uint(&mut out, self.contiguous);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let bad = |what| DecodeError { what };
        let mut r = Reader::new(bytes);
        let [_version, _flags] = r.fixed::<2>("header version")?;
        let key = r.fixed::<32>("header key")?;
        let [version, hash, kind, signature] = r.fixed::<4>("manifest")?;
        if (version, hash, kind, signature) != (0, 0, 1, 0) {
            return Err(bad(
                "manifest (only a single ed25519 signer over BLAKE2b is known)",
            ));
        }
        let namespace = r.fixed::<32>("manifest namespace")?;
        let _signer = r.fixed::<32>("manifest signer")?;
        let public: [u8; 32] = r
            .buffer("public key")?
            .try_into()
            .map_err(|_| bad("public key"))?;
        let secret = r.buffer("secret key")?;
        let seed = match secret.len() {
            0 => None,
            64 => Some(secret[..32].try_into().expect("32 bytes")),
            _ => return Err(bad("secret key")),
        };
        let user_data = r.strings("user data")?;
        let tree = TreeHead {
            fork: r.uint("tree fork")?,
            length: r.uint("tree length")?,
            root_hash: r.buffer("tree root hash")?.to_vec(),
            signature: r.buffer("tree signature")?.to_vec(),
        };
        let reorgs = r.strings("reorg hints")?;
        let contiguous = r.uint("contiguous length hint")?;
        Ok(Header {
            key,
            namespace,
            public,
            seed,
            user_data,
            tree,
            reorgs,
            contiguous,
        })
    }
}

/// `data` with its leader: CRC32 of the rest, then `len << 2 | partial << 1 | bit` (LE).
pub fn with_leader(data: &[u8], bit: bool, partial: bool) -> Vec<u8> {
    let info = ((data.len() as u32) << 2 | (partial as u32) << 1 | bit as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&info);
    crc.update(data);
    let mut out = crc.finalize().to_le_bytes().to_vec();
    out.extend_from_slice(&info);
    out.extend_from_slice(data);
    out
}

/// A checksummed record at the start of `bytes`: (data, header bit, partial bit), or `None`
/// when there is none (empty, torn or overwritten).
pub fn read_leader(bytes: &[u8]) -> Option<(&[u8], bool, bool)> {
    let crc = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let info = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let len = (info >> 2) as usize;
    let end = LEADER_BYTES.checked_add(len)?;
    if len == 0 || crc32fast::hash(bytes.get(4..end)?) != crc {
        return None;
    }
    Some((&bytes[LEADER_BYTES..end], info & 1 == 1, info & 2 == 2))
}

/// Where the newest header is and which bits the two slots carry (`bits`), as hypercore
/// works it out: with both slots valid, equal bits mean the first slot is newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub bits: [bool; 2],
}

impl Slots {
    /// The slots of a new oplog (hypercore's initial state, before the first header).
    pub const INITIAL: Slots = Slots {
        bits: [true, false],
    };

    /// The header bit the entries after the newest header carry.
    pub fn entries_bit(&self) -> bool {
        self.bits[0] != self.bits[1]
    }

    /// Where the next header goes (byte offset) and the bit it carries; and the slots after.
    pub fn next(&self) -> (usize, bool, Slots) {
        let mut bits = self.bits;
        if bits[0] != bits[1] {
            bits[0] = !bits[0];
            (0, bits[0], Slots { bits })
        } else {
            bits[1] = !bits[1];
            (SLOT_BYTES, bits[1], Slots { bits })
        }
    }
}

/// Why the header of an oplog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("neither header slot holds a valid header")]
    Missing,
    #[error("the header does not decode: {0}")]
    Decode(#[from] DecodeError),
}

/// The newest valid header of an `oplog` file and its slots; `Ok(None)` for an empty file.
pub fn read(oplog: &[u8]) -> Result<Option<(Header, Slots)>, HeaderError> {
    if oplog.iter().take(ENTRIES_START).all(|&b| b == 0) {
        return Ok(None);
    }
    // A slot whose contents do not decode is treated like a torn one: the other one is
    // then the newest whole header.
    let slot = |bytes: Option<&[u8]>| {
        let (data, bit, _) = read_leader(bytes?)?;
        Some((Header::decode(data).ok()?, bit))
    };
    let first = slot(oplog.get(..SLOT_BYTES.min(oplog.len())));
    let second = slot(oplog.get(SLOT_BYTES..ENTRIES_START.min(oplog.len())));
    Ok(Some(match (first, second) {
        (Some((h1, b1)), Some((h2, b2))) => {
            let slots = Slots { bits: [b1, b2] };
            (if b1 == b2 { h1 } else { h2 }, slots)
        }
        (Some((h1, b1)), None) => (h1, Slots { bits: [b1, b1] }),
        (None, Some((h2, b2))) => (h2, Slots { bits: [!b2, b2] }),
        (None, None) => {
            // Say why, when a slot's checksum holds but its contents do not decode.
            if let Some((d, _, _)) = oplog
                .get(..SLOT_BYTES.min(oplog.len()))
                .and_then(read_leader)
            {
                Header::decode(d)?;
            }
            return Err(HeaderError::Missing);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u64) -> Header {
        let mut h = Header::new([5; 32], Some([6; 32]));
        h.tree = TreeHead {
            fork: 0,
            length,
            root_hash: vec![1; 32],
            signature: vec![2; 64],
        };
        h.contiguous = length;
        h
    }

    /// An oplog after writing these headers in turn (from the initial slots).
    fn written(headers: &[Header]) -> (Vec<u8>, Slots) {
        let mut oplog = vec![0u8; ENTRIES_START];
        let mut slots = Slots::INITIAL;
        for h in headers {
            let (at, bit, next) = slots.next();
            let rec = with_leader(&h.encode(), bit, false);
            oplog[at..at + SLOT_BYTES].fill(0);
            oplog[at..at + rec.len()].copy_from_slice(&rec);
            slots = next;
        }
        (oplog, slots)
    }

    #[test]
    fn headers_round_trip_with_and_without_a_secret() {
        for h in [header(7), Header::new([9; 32], None)] {
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn the_newest_header_is_found_whichever_slot_it_is_in() {
        let hs: Vec<Header> = (1..=6).map(header).collect();
        for n in 1..=hs.len() {
            let (oplog, slots) = written(&hs[..n]);
            let (h, s) = read(&oplog).unwrap().unwrap();
            assert_eq!(h.tree.length, n as u64);
            assert_eq!(s, slots);
        }
    }

    #[test]
    fn a_torn_newest_header_falls_back_to_the_one_before() {
        let hs: Vec<Header> = (1..=5).map(header).collect();
        for n in 2..=hs.len() {
            let (mut oplog, slots_before) = written(&hs[..n - 1]);
            let (at, bit, _) = slots_before.next();
            let rec = with_leader(&hs[n - 1].encode(), bit, false);
            // Only half of the new header reached the disk.
            oplog[at..at + rec.len() / 2].copy_from_slice(&rec[..rec.len() / 2]);
            let (h, s) = read(&oplog).unwrap().unwrap();
            assert_eq!(h.tree.length, n as u64 - 1, "after {n} writes");
            // The next write goes to the torn slot again, not over the good one.
            assert_eq!(s.next().0, at);
        }
    }

    #[test]
    fn garbage_is_an_error_and_an_empty_file_is_no_header() {
        assert!(read(&[]).unwrap().is_none());
        assert!(read(&[0; ENTRIES_START]).unwrap().is_none());
        assert!(matches!(
            read(&[7; ENTRIES_START]),
            Err(HeaderError::Missing)
        ));
        let rec = with_leader(b"\x01\x06short", false, false);
        assert!(matches!(read(&rec), Err(HeaderError::Decode(_))));
    }
}
