//! Block encryption throughput: seal + open of 64 KiB blocks, ours against raw libsodium
//! XChaCha20-Poly1305 on the same data in the same run.
//!
//! Run: `cargo bench -p cobox-keys --bench block`

use std::hint::black_box;
use std::time::{Duration, Instant};

use cobox_keys::Secret32;
use cobox_keys::block::BlockKey;
use libsodium_rs::crypto_aead::xchacha20poly1305 as aead;

const BLOCK: usize = 64 * 1024;
const ROUNDS: usize = 5;
const PER_ROUND: Duration = Duration::from_secs(2);

/// Bytes per second of `f` (one block per call), over about `PER_ROUND`.
fn rate(mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < PER_ROUND {
        f(n);
        n += 1;
    }
    (n as f64 * BLOCK as f64) / start.elapsed().as_secs_f64()
}

fn main() {
    cobox_keys::init();
    let plain = vec![0x5au8; BLOCK];
    let feed = [7u8; 32];
    let ours = BlockKey::for_space(&Secret32::from_bytes([1; 32]));
    let raw_key = aead::Key::from_bytes(&[1; 32]).unwrap();
    let ad = [0u8; 54];

    let mut ours_rates = Vec::new();
    let mut raw_rates = Vec::new();
    // Interleave the two so machine noise hits both alike.
    for _ in 0..ROUNDS {
        ours_rates.push(rate(|i| {
            let sealed = ours.seal(&feed, i, &plain);
            black_box(ours.open(&feed, i, &sealed).unwrap());
        }));
        raw_rates.push(rate(|_| {
            let nonce = aead::Nonce::generate();
            let sealed = aead::encrypt(&plain, Some(&ad), &nonce, &raw_key).unwrap();
            black_box(aead::decrypt(&sealed, Some(&ad), &nonce, &raw_key).unwrap());
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (o, r) = (median(&mut ours_rates), median(&mut raw_rates));
    println!(
        "block seal+open, 64 KiB blocks, median of {ROUNDS} rounds of {}s each:",
        PER_ROUND.as_secs()
    );
    println!("  cobox BlockKey        {:8.1} MiB/s", o / (1 << 20) as f64);
    println!("  raw libsodium xchacha {:8.1} MiB/s", r / (1 << 20) as f64);
    println!("  ratio (cobox / raw)   {:8.3}", o / r);
}
