//! Repairs to a feed's oplog before hypercore opens it.
//!
//! hypercore 0.16.0 reopens an oplog by replaying the entries written since its last
//! flush, and refuses to open at all when one of them does not decode:
//! - its entry decoder reads the tree-upgrade and bitfield parts under the wrong flag bits,
//!   so an entry that has tree nodes but no upgrade (a block received from a peer) or only
//!   a bitfield change (a cleared range) cannot be read back;
//! - an entry torn by a crash fails its checksum.
//!
//! Entries are deltas on top of the state saved at the last flush, so dropping the first
//! unreadable entry and everything after it reopens the feed at an earlier, consistent
//! state. For this device's own feeds (appends only) every entry reads back, so nothing of
//! what was written here is dropped; a replica may lose its last few received blocks, which
//! it fetches again.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;

const HEADER_SLOTS: usize = 2 * 4096;
const LEADER: usize = 8;
/// Entry flag bits hypercore's decoder handles only all together: nodes, upgrade, bitfield.
const COUPLED: u8 = 0b1110;

/// Where the readable entries of an oplog end: the offset to truncate to, if not the end.
pub fn readable_end(oplog: &[u8]) -> Option<usize> {
    if oplog.len() <= HEADER_SLOTS {
        return None;
    }
    let mut pos = HEADER_SLOTS;
    while pos + LEADER <= oplog.len() {
        let crc = u32::from_le_bytes(oplog[pos..pos + 4].try_into().expect("4 bytes"));
        let info = u32::from_le_bytes(oplog[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let len = (info >> 2) as usize;
        if len == 0 || pos + LEADER + len > oplog.len() {
            // hypercore stops reading here too; an incomplete tail is harmless to it.
            break;
        }
        if crc32fast::hash(&oplog[pos + 4..pos + LEADER + len]) != crc {
            return Some(pos);
        }
        let flags = oplog[pos + LEADER] & COUPLED;
        if flags != 0 && flags != COUPLED {
            return Some(pos);
        }
        pos += LEADER + len;
    }
    None
}

/// Truncate the oplog at `path` after its last entry hypercore can read. Returns the number
/// of bytes dropped (0 when the oplog was fine).
pub fn repair(path: &Path) -> std::io::Result<u64> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let Some(end) = readable_end(&bytes) else {
        return Ok(0);
    };
    file.set_len(end as u64)?;
    file.sync_all()?;
    Ok((bytes.len() - end) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut data = vec![flags];
        data.extend_from_slice(body);
        let info = ((data.len() as u32) << 2).to_le_bytes();
        let mut crc_input = info.to_vec();
        crc_input.extend_from_slice(&data);
        let mut out = crc32fast::hash(&crc_input).to_le_bytes().to_vec();
        out.extend_from_slice(&info);
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn readable_entries_are_kept_and_the_first_unreadable_one_cuts() {
        let mut log = vec![0u8; HEADER_SLOTS];
        assert_eq!(readable_end(&log), None);
        log.extend(entry(0b1110, b"append"));
        log.extend(entry(0b1110, b"append"));
        assert_eq!(readable_end(&log), None);
        let cut = log.len();
        log.extend(entry(0b1010, b"received block"));
        log.extend(entry(0b1110, b"append"));
        assert_eq!(readable_end(&log), Some(cut));
    }

    #[test]
    fn a_torn_entry_cuts_and_an_incomplete_tail_is_left_alone() {
        let mut log = vec![0u8; HEADER_SLOTS];
        log.extend(entry(0b1110, b"append"));
        let cut = log.len();
        let mut torn = entry(0b1110, b"append");
        torn[10] ^= 0xff;
        log.extend(torn);
        assert_eq!(readable_end(&log), Some(cut));
        let mut short = vec![0u8; HEADER_SLOTS];
        short.extend(&entry(0b1110, b"append")[..9]);
        assert_eq!(readable_end(&short), None);
    }
}
