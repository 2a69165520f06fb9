//! Feed append throughput: cobox's feed storage (durable at commit points) against
//! hypercore's own disk storage (a sync after every write), same machine, same run.
//!
//! Run: `cargo bench -p coboxd --bench feed_append`

use std::time::Instant;

use cobox_keys::Secret32;
use cobox_schema::hexkey::Address;
use coboxd::feed::Feed;
use coboxd::space::content::{self, ContentStream};
use coboxd::space::dedup::BlockHashes;
use hypercore::{HypercoreBuilder, PartialKeypair, SigningKey, Storage};

const BLOCK: usize = 4096;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let kp = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 0);
    let seed: [u8; 32] = kp.secret_bytes()[..32].try_into().unwrap();
    let block = vec![0x42u8; BLOCK];
    println!("feed appends of {BLOCK}-byte blocks, each append durable before the next:");
    let content_only = std::env::var_os("COBOX_BENCH_CONTENT_ONLY").is_some();
    for (count, batch) in [(2_000usize, 1usize), (20_000, 64)]
        .into_iter()
        .filter(|_| !content_only)
    {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = Feed::open(dir.path(), kp.public.0, Some(&seed))
            .await
            .unwrap();
        let batch_blocks: Vec<&[u8]> = vec![&block; batch];
        let start = Instant::now();
        for _ in 0..count / batch {
            ours.append_batch(&batch_blocks).await.unwrap();
        }
        let ours_rate = count as f64 / start.elapsed().as_secs_f64();

        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new_disk(&dir.path().to_path_buf(), false)
            .await
            .unwrap();
        let signing = SigningKey::from_bytes(&seed);
        let mut theirs = HypercoreBuilder::new(storage)
            .key_pair(PartialKeypair {
                public: signing.verifying_key(),
                secret: Some(signing),
            })
            .build()
            .await
            .unwrap();
        let start = Instant::now();
        for _ in 0..count / batch {
            theirs.append_batch(&batch_blocks).await.unwrap();
        }
        let theirs_rate = count as f64 / start.elapsed().as_secs_f64();
        println!(
            "  batches of {batch:>2}: cobox {:>9.0} blocks/s ({:>6.1} MiB/s)   random-access-disk {:>9.0} blocks/s ({:>6.1} MiB/s)   ratio {:.1}",
            ours_rate,
            ours_rate * BLOCK as f64 / (1 << 20) as f64,
            theirs_rate,
            theirs_rate * BLOCK as f64 / (1 << 20) as f64,
            ours_rate / theirs_rate
        );
    }

    // A large file streamed into a content feed (sealed 64 KiB blocks, one commit at the end).
    let mib = 256;
    let dir = tempfile::tempdir().unwrap();
    let kp1 = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), 1);
    let seed1: [u8; 32] = kp1.secret_bytes()[..32].try_into().unwrap();
    let mut feed = Feed::open(dir.path(), kp1.public.0, Some(&seed1))
        .await
        .unwrap();
    let key = cobox_keys::block::Keyring::first(&Secret32::from_bytes([3; 32]));
    let hashes = std::sync::Arc::new(
        BlockHashes::open(
            &dir.path().join("blocks"),
            &Secret32::from_bytes([4; 32]),
            0,
            None,
        )
        .unwrap(),
    );
    // Every block different, so that none is found stored already.
    let mut chunks: Vec<Vec<u8>> = (0..mib as u64)
        .map(|m| {
            let mut c = vec![0x5au8; 1 << 20];
            for (b, block) in c.chunks_mut(content::BLOCK_SIZE).enumerate() {
                block[..8].copy_from_slice(&(m * 16 + b as u64).to_le_bytes());
            }
            c
        })
        .collect();
    let start = Instant::now();
    let pin = std::sync::Arc::new(coboxd::space::pins::Pins::default()).pin([]);
    let mut stream = ContentStream::new(feed.public_key(), feed.len(), hashes, pin);
    for chunk in chunks.drain(..) {
        stream.write(&mut feed, &key, &chunk).await.unwrap();
    }
    let file = stream.finish(&mut feed, &key, true).await.unwrap();
    let w = mib as f64 / start.elapsed().as_secs_f64();
    assert_eq!(feed.len(), file.count());
    let start = Instant::now();
    for at in file.from(0) {
        std::hint::black_box(content::read_block(&mut feed, &key, at).await.unwrap());
    }
    let r = mib as f64 / start.elapsed().as_secs_f64();
    println!("content stream of {mib} MiB: store {w:.1} MiB/s (durable), read back {r:.1} MiB/s");
}
