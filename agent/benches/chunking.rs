//! Fixed 64 KiB blocks against content-defined chunking (FastCDC, 16/64/256 KiB) on the
//! edits files get: what each stores anew after an edit in place, an insert and an append
//! of a 64 MiB file, and how fast each cuts. The figures behind the choice of fixed
//! blocks for files in a space (ARCHITECTURE.md, "The drive").
//!
//! Run: `cargo bench -p coboxd --bench chunking`

use std::collections::HashSet;
use std::time::Instant;

use cobox_tests::files::noise;

const BLOCK: usize = 64 * 1024;
const MIB: usize = 1 << 20;

/// The chunks of `data`: fixed blocks, or FastCDC's.
fn chunks(data: &[u8], cdc: bool) -> Vec<&[u8]> {
    if cdc {
        fastcdc::v2020::FastCDC::new(data, 16 * 1024, BLOCK as u32, 256 * 1024)
            .map(|c| &data[c.offset..c.offset + c.length])
            .collect()
    } else {
        data.chunks(BLOCK).collect()
    }
}

/// Bytes of `new`'s chunks that `old` does not have.
fn stored_anew(old: &[u8], new: &[u8], cdc: bool) -> usize {
    let had: HashSet<blake3::Hash> = chunks(old, cdc).into_iter().map(blake3::hash).collect();
    chunks(new, cdc)
        .into_iter()
        .filter(|c| !had.contains(&blake3::hash(c)))
        .map(<[u8]>::len)
        .sum()
}

fn main() {
    let size = 64 * MIB;
    let base = noise(size, 1);
    let mid = size / 2 + 12_345;
    let edits: Vec<(&str, usize, Vec<u8>)> = vec![
        ("overwrite 4 KiB in the middle", 4096, {
            let mut v = base.clone();
            v[mid..mid + 4096].copy_from_slice(&noise(4096, 2));
            v
        }),
        ("overwrite 1 MiB in the middle", MIB, {
            let mut v = base.clone();
            v[mid..mid + MIB].copy_from_slice(&noise(MIB, 3));
            v
        }),
        ("append 1 MiB", MIB, {
            let mut v = base.clone();
            v.extend(noise(MIB, 4));
            v
        }),
        ("insert 4 KiB in the middle", 4096, {
            let mut v = base[..mid].to_vec();
            v.extend(noise(4096, 5));
            v.extend_from_slice(&base[mid..]);
            v
        }),
        ("insert 1 byte at the start", 1, {
            let mut v = vec![7u8];
            v.extend_from_slice(&base);
            v
        }),
    ];
    println!("a 64 MiB file, edited: bytes stored anew (and times the bytes changed)");
    println!(
        "{:<32} {:>22} {:>22}",
        "edit", "fixed 64 KiB", "FastCDC 16/64/256 KiB"
    );
    for (name, changed, new) in &edits {
        let fixed = stored_anew(&base, new, false);
        let cdc = stored_anew(&base, new, true);
        println!(
            "{:<32} {:>12} ({:>7.1}x) {:>12} ({:>7.1}x)",
            name,
            fixed,
            fixed as f64 / *changed as f64,
            cdc,
            cdc as f64 / *changed as f64
        );
    }
    // Fixed blocks cost nothing to cut; content-defined chunks read every byte.
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..4 {
        n += std::hint::black_box(chunks(&base, true)).len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "FastCDC: {:.0} MiB/s cutting ({} chunks per pass)",
        (4 * size) as f64 / MIB as f64 / secs,
        n / 4
    );
}
