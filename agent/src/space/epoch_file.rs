//! The epoch messages and grants a space's logs held, kept beside its drive index so an
//! open finds its keys without reading the logs again.
//!
//! Records: `kind u8 (1 epoch, 2 grant) ‖ length u32 LE ‖ the message's bytes`, appended
//! and synced before the log entries that carried them count as applied. Nothing in it is
//! secret (keys are sealed to members' identities); like the rest of the index it is
//! rebuilt from the logs when deleted. A torn tail left by a crash is cut off.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A record's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Epoch = 1,
    Grant = 2,
}

/// The file of one space.
#[derive(Debug, Clone)]
pub struct EpochFile {
    path: PathBuf,
}

/// The longest record kept (an epoch sealed to 65,535 members).
const MAX_RECORD: usize = 8 << 20;

impl EpochFile {
    pub fn new(index_dir: &Path) -> EpochFile {
        EpochFile {
            path: index_dir.join("epochs"),
        }
    }

    /// Every record, in the order written; a torn or damaged tail is cut off.
    pub fn load(&self) -> std::io::Result<Vec<(Kind, Vec<u8>)>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let (records, good) = parse(&bytes);
        if good < bytes.len() {
            let f = std::fs::OpenOptions::new().write(true).open(&self.path)?;
            f.set_len(good as u64)?;
            f.sync_all()?;
        }
        Ok(records)
    }

    /// Append a record, durable on return.
    pub fn append(&self, kind: Kind, bytes: &[u8]) -> std::io::Result<()> {
        let new = !self.path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut record = Vec::with_capacity(5 + bytes.len());
        record.push(kind as u8);
        record.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        record.extend_from_slice(bytes);
        f.write_all(&record)?;
        f.sync_all()?;
        if new && let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The whole records in `bytes`, and how many bytes they span.
fn parse(bytes: &[u8]) -> (Vec<(Kind, Vec<u8>)>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 5 {
        let kind = match bytes[at] {
            1 => Kind::Epoch,
            2 => Kind::Grant,
            _ => break,
        };
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        if len > MAX_RECORD || bytes.len() - at - 5 < len {
            break;
        }
        out.push((kind, bytes[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let f = EpochFile::new(dir.path());
        assert!(f.load().unwrap().is_empty());
        f.append(Kind::Epoch, b"first").unwrap();
        f.append(Kind::Grant, b"second").unwrap();
        let whole = std::fs::read(dir.path().join("epochs")).unwrap();
        for cut in 0..whole.len() {
            std::fs::write(dir.path().join("epochs"), &whole[..cut]).unwrap();
            let got = f.load().unwrap();
            let expect = if cut >= 10 { 1 } else { 0 };
            assert_eq!(got.len(), expect, "cut at {cut}");
            f.append(Kind::Grant, b"again").unwrap();
            let after = f.load().unwrap();
            assert_eq!(after.last().unwrap(), &(Kind::Grant, b"again".to_vec()));
            assert_eq!(after.len(), expect + 1, "appends after a cut stay readable");
        }
        std::fs::write(dir.path().join("epochs"), &whole).unwrap();
        assert_eq!(
            f.load().unwrap(),
            vec![
                (Kind::Epoch, b"first".to_vec()),
                (Kind::Grant, b"second".to_vec())
            ]
        );
    }
}
