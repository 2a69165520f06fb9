//! Which blocks of a feed this device holds: one bit per block, in pages of 4,096 bytes
//! (32,768 blocks) as the `bitfield` file stores them (bit `i` is bit `i % 8` of byte
//! `i / 8`). Pages are allocated only once a bit in them is set, so a sparse replica of a
//! huge feed costs memory for what it holds; changed pages are remembered until written.

use std::collections::BTreeSet;

/// Bytes of one page of the `bitfield` file.
pub const PAGE_BYTES: u64 = 4096;
/// Blocks one page covers.
pub const PAGE_BITS: u64 = PAGE_BYTES * 8;
const WORDS: usize = (PAGE_BYTES / 8) as usize;

type Page = Box<[u64; WORDS]>;

/// A feed's bitfield in memory.
#[derive(Debug, Default)]
pub struct Bitfield {
    pages: Vec<Option<Page>>,
    dirty: BTreeSet<u64>,
}

fn split(i: u64) -> (usize, usize, u32) {
    let page = (i / PAGE_BITS) as usize;
    let bit = i % PAGE_BITS;
    (page, (bit / 64) as usize, (bit % 64) as u32)
}

impl Bitfield {
    /// A bitfield as stored: any length (a short last page reads as zeros past its end).
    pub fn from_bytes(bytes: &[u8]) -> Bitfield {
        let mut b = Bitfield::default();
        for (p, chunk) in bytes.chunks(PAGE_BYTES as usize).enumerate() {
            if chunk.iter().all(|&x| x == 0) {
                continue;
            }
            let mut page: Page = Box::new([0; WORDS]);
            for (w, bytes) in chunk.chunks(8).enumerate() {
                let mut le = [0u8; 8];
                le[..bytes.len()].copy_from_slice(bytes);
                page[w] = u64::from_le_bytes(le);
            }
            b.page_mut(p);
            b.pages[p] = Some(page);
        }
        b
    }

    fn page_mut(&mut self, p: usize) -> &mut Page {
        if self.pages.len() <= p {
            self.pages.resize_with(p + 1, || None);
        }
        self.pages[p].get_or_insert_with(|| Box::new([0; WORDS]))
    }

    pub fn get(&self, i: u64) -> bool {
        let (p, w, b) = split(i);
        matches!(self.pages.get(p), Some(Some(page)) if page[w] >> b & 1 == 1)
    }

    /// Mark blocks `start..end` held (`value`) or not.
    pub fn set_range(&mut self, start: u64, end: u64, value: bool) {
        let mut i = start;
        while i < end {
            let (p, w, b) = split(i);
            let n = (64 - b as u64).min(end - i);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << b
            };
            if !value && !matches!(self.pages.get(p), Some(Some(_))) {
                // Nothing held in this page: skip to the next one.
                i = (p as u64 + 1) * PAGE_BITS;
                continue;
            }
            let page = self.page_mut(p);
            let before = page[w];
            page[w] = if value { before | mask } else { before & !mask };
            if page[w] != before {
                self.dirty.insert(p as u64);
            }
            i += n;
        }
    }

    /// The first block at or after `from` that is not held.
    pub fn first_unset(&self, from: u64) -> u64 {
        let mut i = from;
        loop {
            let (p, w, b) = split(i);
            let Some(Some(page)) = self.pages.get(p) else {
                return i;
            };
            let word = !page[w] >> b;
            if word != 0 {
                return i + word.trailing_zeros() as u64;
            }
            i += 64 - b as u64;
        }
    }

    /// The first block at or after `from` that is held, if any.
    pub fn first_set(&self, from: u64) -> Option<u64> {
        let mut i = from;
        loop {
            let (p, w, b) = split(i);
            match self.pages.get(p) {
                None => return None,
                Some(None) => i = (p as u64 + 1) * PAGE_BITS,
                Some(Some(page)) => {
                    let word = page[w] >> b;
                    if word != 0 {
                        return Some(i + word.trailing_zeros() as u64);
                    }
                    i += 64 - b as u64;
                }
            }
        }
    }

    /// One past the last block held (0 when none is).
    pub fn end(&self) -> u64 {
        for (p, page) in self.pages.iter().enumerate().rev() {
            let Some(page) = page else { continue };
            for (w, &word) in page.iter().enumerate().rev() {
                if word != 0 {
                    return p as u64 * PAGE_BITS + w as u64 * 64 + 64 - word.leading_zeros() as u64;
                }
            }
        }
        0
    }

    /// The pages changed since the last call, as stored: (byte offset, 4,096 bytes).
    pub fn take_dirty(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|p| {
                let mut bytes = Vec::with_capacity(PAGE_BYTES as usize);
                match self.pages.get(p as usize) {
                    Some(Some(page)) => page
                        .iter()
                        .for_each(|w| bytes.extend_from_slice(&w.to_le_bytes())),
                    _ => bytes.resize(PAGE_BYTES as usize, 0),
                }
                (p * PAGE_BYTES, bytes)
            })
            .collect()
    }

    /// Whether any page changed since it was last written.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The stored form of a plain list of bits.
    fn stored(bits: &[bool]) -> Vec<u8> {
        let mut out = vec![0u8; bits.len().div_ceil(8)];
        for (i, &b) in bits.iter().enumerate() {
            if b {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        out
    }

    #[test]
    fn a_file_of_several_pages_loads_every_page_at_its_place() {
        // Blocks on both sides of every page boundary up to 2^20 (the boundaries the
        // reference implementation got wrong: 32,768, 65,536, 2^20).
        let marks = [0u64, 32_767, 32_768, 65_535, 65_536, 1 << 20, (1 << 20) + 1];
        let mut b = Bitfield::default();
        for &m in &marks {
            b.set_range(m, m + 1, true);
        }
        let mut file = vec![];
        for (offset, page) in b.take_dirty() {
            file.resize(offset as usize, 0);
            file.extend(page);
        }
        assert_eq!(file.len() as u64, (1 << 20) / 8 + PAGE_BYTES);
        let back = Bitfield::from_bytes(&file);
        for i in (0..(1 << 20) + 100).step_by(1) {
            assert_eq!(back.get(i), marks.contains(&i), "block {i}");
        }
        assert_eq!(back.end(), (1 << 20) + 2);
        assert_eq!(back.first_set(32_769), Some(65_535));
        assert_eq!(back.first_unset(32_767), 32_769);
    }

    #[test]
    fn clearing_where_nothing_is_held_allocates_nothing() {
        let mut b = Bitfield::default();
        b.set_range(0, 1 << 40, false);
        assert!(b.pages.is_empty() && !b.is_dirty());
        assert_eq!(b.first_set(0), None);
        assert_eq!(b.first_unset(5), 5);
    }

    proptest! {
        #[test]
        fn matches_a_plain_list_of_bits(ops in proptest::collection::vec((0u64..70_000, 0u64..3_000, any::<bool>()), 1..40), probe in 0u64..75_000) {
            let mut b = Bitfield::default();
            let mut plain = vec![false; 75_000];
            for (start, len, value) in ops {
                let end = (start + len).min(75_000);
                b.set_range(start, end, value);
                for x in &mut plain[start as usize..end as usize] {
                    *x = value;
                }
            }
            let get = |i: u64| plain.get(i as usize).copied().unwrap_or(false);
            prop_assert_eq!(b.get(probe), get(probe));
            let unset = (probe..).find(|&i| !get(i)).unwrap();
            prop_assert_eq!(b.first_unset(probe), unset);
            let set = (probe..75_000).find(|&i| get(i));
            prop_assert_eq!(b.first_set(probe), set);
            let end = (0..75_000u64).rev().find(|&i| get(i)).map_or(0, |i| i + 1);
            prop_assert_eq!(b.end(), end);
            // What is written back reads back the same.
            let mut file = stored(&plain);
            file.resize(file.len().div_ceil(PAGE_BYTES as usize) * PAGE_BYTES as usize, 0);
            let mut from_writes = vec![0u8; file.len()];
            for (offset, page) in b.take_dirty() {
                let o = offset as usize;
                if o < from_writes.len() {
                    let n = page.len().min(from_writes.len() - o);
                    from_writes[o..o + n].copy_from_slice(&page[..n]);
                }
            }
            prop_assert_eq!(from_writes, file);
        }
    }
}
