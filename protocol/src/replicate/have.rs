//! The blocks a remote says it has: disjoint ranges, so a claim of a huge range costs
//! nothing (a bitmap would let a peer make us allocate without bound).

use std::collections::BTreeMap;

/// A set of block indexes kept as sorted, disjoint, non-adjacent `[start, end)` ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ranges {
    by_start: BTreeMap<u64, u64>,
}

impl Ranges {
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        // Merge with a range that begins before and reaches `start`.
        if let Some((&s, &e)) = self.by_start.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.by_start.remove(&s);
        }
        // Merge every range beginning inside (or right after) the new one.
        while let Some((&s, &e)) = self.by_start.range(start..=end).next() {
            end = end.max(e);
            self.by_start.remove(&s);
        }
        self.by_start.insert(start, end);
    }

    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.by_start.range(..start).next_back()
            && e > start
        {
            self.by_start.insert(s, start);
            if e > end {
                self.by_start.insert(end, e);
            }
        }
        while let Some((&s, &e)) = self.by_start.range(start..end).next() {
            self.by_start.remove(&s);
            if e > end {
                self.by_start.insert(end, e);
            }
        }
    }

    pub fn contains(&self, index: u64) -> bool {
        self.by_start
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &e)| index < e)
    }

    /// The ranges, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_start.iter().map(|(&s, &e)| (s, e))
    }

    /// How many ranges the set is made of.
    pub fn range_count(&self) -> usize {
        self.by_start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// How many indexes the set holds.
    pub fn count(&self) -> u64 {
        self.by_start.iter().map(|(s, e)| e - s).sum()
    }

    /// The end of the range holding `index`, if one does.
    pub fn end_of(&self, index: u64) -> Option<u64> {
        self.by_start
            .range(..=index)
            .next_back()
            .and_then(|(_, &e)| (index < e).then_some(e))
    }

    /// How many blocks from index 0 on are in the set without a gap.
    pub fn prefix(&self) -> u64 {
        self.by_start.get(&0).copied().unwrap_or(0)
    }

    /// The smallest index at or after `index` in the set.
    pub fn next_from(&self, index: u64) -> Option<u64> {
        if self.contains(index) {
            return Some(index);
        }
        self.by_start.range(index..).next().map(|(&s, _)| s)
    }

    /// Add the set bits of a hypercore bitfield message (bit `j` of word `w` is block
    /// `start + 32 w + j`).
    pub fn insert_bits(&mut self, start: u64, words: &[u32]) {
        let mut run: Option<u64> = None;
        for (w, &word) in words.iter().enumerate() {
            for j in 0..32 {
                let index = start.saturating_add(w as u64 * 32 + j);
                match (word >> j & 1 == 1, run) {
                    (true, None) => run = Some(index),
                    (false, Some(s)) => {
                        self.insert(s, index);
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = run {
            self.insert(s, start.saturating_add(words.len() as u64 * 32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(r: &Ranges, upto: u64) -> Vec<u64> {
        (0..upto).filter(|&i| r.contains(i)).collect()
    }

    #[test]
    fn ranges_merge_split_and_answer_like_a_plain_set() {
        let mut r = Ranges::default();
        let mut model = std::collections::BTreeSet::new();
        // A deterministic walk of inserts and removes checked against a plain set.
        let mut x: u64 = 12345;
        for step in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x % 200;
            let b = a + (x >> 20) % 30;
            if step % 3 == 2 {
                r.remove(a, b);
                for i in a..b {
                    model.remove(&i);
                }
            } else {
                r.insert(a, b);
                model.extend(a..b);
            }
            assert_eq!(members(&r, 260), model.iter().copied().collect::<Vec<_>>());
            let mut prev_end = None;
            for (&s, &e) in &r.by_start {
                assert!(s < e);
                assert!(prev_end.is_none_or(|p| p < s), "ranges are merged");
                prev_end = Some(e);
            }
            let q = x % 230;
            assert_eq!(r.next_from(q), model.range(q..).next().copied());
        }
    }

    #[test]
    fn huge_claims_are_cheap_and_bits_become_ranges() {
        let mut r = Ranges::default();
        r.insert(0, u64::MAX);
        assert!(r.contains(u64::MAX - 1));
        r.remove(10, 20);
        assert_eq!(r.next_from(10), Some(20));
        let mut b = Ranges::default();
        b.insert_bits(64, &[0b1011, 0, 0x8000_0000]);
        assert_eq!(members(&b, 200), vec![64, 65, 67, 64 + 95]);
    }
}
