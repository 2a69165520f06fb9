//! What a feed's writer cleared on purpose: the blocks no file and no kept version refers
//! to any more. The writer states them in a statement signed with the feed's key, so every
//! replica — a seed too, which cannot read the feed — can check it, clear its own copy and
//! never fetch those blocks again.
//!
//! Statements are cumulative and numbered: a newer one (higher `seq`) names every range
//! the older ones did, and replaces them. Encoding: `seq u64 LE ‖ n u32 LE ‖ (start u64
//! LE ‖ end u64 LE)ⁿ ‖ signature [64]`, the ranges sorted, disjoint and non-empty; the
//! signature is over `"cobox-cleared-v1" ‖ feed key ‖` everything before it.

use crate::replicate::have::Ranges;

/// The name of the extension message that carries a statement on a feed's channel.
pub const EXTENSION: &str = "cobox/cleared";

/// The most ranges one statement names (a message of 1 MiB).
pub const MAX_RANGES: usize = 65_536;

const DOMAIN: &[u8] = b"cobox-cleared-v1";

/// A checked statement of the blocks a feed's writer cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub seq: u64,
    pub ranges: Ranges,
    signature: [u8; 64],
}

/// Why bytes are not a statement of a feed's writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("cleared-blocks statement ends early")]
    Truncated,
    #[error("cleared-blocks statement has {0} trailing bytes")]
    Trailing(usize),
    #[error("cleared-blocks statement names {0} ranges, more than {MAX_RANGES}")]
    TooMany(u64),
    #[error("cleared-blocks statement's ranges are not sorted, disjoint and non-empty")]
    Unordered,
    #[error("cleared-blocks statement is not signed by the feed's writer")]
    BadSignature,
}

fn body(seq: u64, ranges: &Ranges) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 16 * ranges.range_count() + 64);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(ranges.range_count() as u32).to_le_bytes());
    for (s, e) in ranges.iter() {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
    }
    out
}

fn signed(key: &[u8; 32], body: &[u8]) -> Vec<u8> {
    [DOMAIN, key.as_slice(), body].concat()
}

impl Statement {
    /// The statement number `seq` naming `ranges`, signed by the writer of feed `key`
    /// (`sign` signs with the feed's secret key). `None` past [`MAX_RANGES`].
    pub fn sign(
        key: &[u8; 32],
        seq: u64,
        ranges: Ranges,
        sign: impl FnOnce(&[u8]) -> Option<[u8; 64]>,
    ) -> Option<Statement> {
        if ranges.range_count() > MAX_RANGES {
            return None;
        }
        let signature = sign(&signed(key, &body(seq, &ranges)))?;
        Some(Statement {
            seq,
            ranges,
            signature,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = body(self.seq, &self.ranges);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decode a statement about feed `key` and check its signature.
    pub fn decode(key: &[u8; 32], bytes: &[u8]) -> Result<Statement, StatementError> {
        let take = |at: usize, n: usize| bytes.get(at..at + n).ok_or(StatementError::Truncated);
        let u64_at = |at| take(at, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8")));
        let seq = u64_at(0)?;
        let n = u32::from_le_bytes(take(8, 4)?.try_into().expect("4")) as u64;
        if n > MAX_RANGES as u64 {
            return Err(StatementError::TooMany(n));
        }
        let mut ranges = Ranges::default();
        let mut last_end = None;
        for i in 0..n as usize {
            let (s, e) = (u64_at(12 + 16 * i)?, u64_at(20 + 16 * i)?);
            if s >= e || last_end.is_some_and(|l| s < l) {
                return Err(StatementError::Unordered);
            }
            ranges.insert(s, e);
            last_end = Some(e);
        }
        let at = 12 + 16 * n as usize;
        let signature: [u8; 64] = take(at, 64)?.try_into().expect("64");
        if bytes.len() > at + 64 {
            return Err(StatementError::Trailing(bytes.len() - at - 64));
        }
        if !cobox_feed::crypto::verify(key, &signed(key, &bytes[..at]), &signature) {
            return Err(StatementError::BadSignature);
        }
        Ok(Statement {
            seq,
            ranges,
            signature,
        })
    }

    pub fn contains(&self, index: u64) -> bool {
        self.ranges.contains(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_feed::crypto::Signer;

    fn ranges(rs: &[(u64, u64)]) -> Ranges {
        let mut r = Ranges::default();
        for &(s, e) in rs {
            r.insert(s, e);
        }
        r
    }

    #[test]
    fn a_statement_reads_back_only_under_its_feeds_key_and_unaltered() {
        let writer = Signer::from_seed(&[3; 32]);
        let key = writer.public();
        let st = Statement::sign(&key, 7, ranges(&[(0, 4), (10, 12)]), |m| {
            Some(writer.sign(m))
        })
        .unwrap();
        let bytes = st.encode();
        let back = Statement::decode(&key, &bytes).unwrap();
        assert_eq!(back, st);
        assert!(back.contains(11) && !back.contains(4) && !back.contains(12));

        // Another feed's key, a changed range, an appended byte, a cut: all refused.
        let other = Signer::from_seed(&[4; 32]).public();
        assert_eq!(
            Statement::decode(&other, &bytes),
            Err(StatementError::BadSignature)
        );
        let mut changed = bytes.clone();
        changed[20] ^= 1;
        assert!(Statement::decode(&key, &changed).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Statement::decode(&key, &longer),
            Err(StatementError::Trailing(1))
        );
        for cut in [0, 5, 11, 30, bytes.len() - 1] {
            assert_eq!(
                Statement::decode(&key, &bytes[..cut]),
                Err(StatementError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn hostile_counts_and_orders_are_refused_before_any_work() {
        let key = Signer::from_seed(&[3; 32]).public();
        let mut huge = vec![0u8; 8];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Statement::decode(&key, &huge),
            Err(StatementError::TooMany(u32::MAX as u64))
        );
        let mut unordered = vec![0u8; 8];
        unordered.extend_from_slice(&2u32.to_le_bytes());
        for v in [10u64, 20, 5, 8] {
            unordered.extend_from_slice(&v.to_le_bytes());
        }
        unordered.extend_from_slice(&[0; 64]);
        assert_eq!(
            Statement::decode(&key, &unordered),
            Err(StatementError::Unordered)
        );
        let mut empty_range = vec![0u8; 8];
        empty_range.extend_from_slice(&1u32.to_le_bytes());
        for v in [9u64, 9] {
            empty_range.extend_from_slice(&v.to_le_bytes());
        }
        empty_range.extend_from_slice(&[0; 64]);
        assert_eq!(
            Statement::decode(&key, &empty_range),
            Err(StatementError::Unordered)
        );
    }
}
