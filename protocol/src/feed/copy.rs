//! Bringing a replica of a feed up to date from another copy, block by block, through
//! hypercore's signed Merkle proofs (the same proofs replication carries): a replica
//! accepts only what verifies against the feed's public key.

use hypercore_schema::{RequestBlock, RequestUpgrade};

use super::{Feed, FeedError};
use cobox_keys::secret::hex;

/// Why a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("feed {0}: the other copy sent a proof that does not verify")]
    Rejected(String),
}

/// Copy into `to` everything of `from` that it lacks; returns the number of blocks copied.
/// Both must be the same feed; `to` need not be writable.
pub async fn copy_missing(from: &mut Feed, to: &mut Feed) -> Result<u64, CopyError> {
    let rejected = |to: &Feed| CopyError::Rejected(hex(&to.public_key()));
    let length = from.len();
    if to.len() < length {
        let upgrade = RequestUpgrade {
            start: to.len(),
            length: length - to.len(),
        };
        let proof = from
            .core_mut()
            .create_proof(None, None, None, Some(upgrade))
            .map_err(FeedError::from)?;
        match proof {
            Some(p) if to.core_mut().verify_and_apply_proof(&p).is_ok() => {}
            _ => return Err(rejected(to)),
        }
    }
    let mut copied = 0;
    for index in 0..length {
        if to.core().has(index) || !from.core().has(index) {
            continue;
        }
        let nodes = to
            .core_mut()
            .missing_nodes(index)
            .map_err(FeedError::from)?;
        let proof = from
            .core_mut()
            .create_proof(Some(RequestBlock { index, nodes }), None, None, None)
            .map_err(FeedError::from)?;
        let Some(proof) = proof else { continue };
        if to.core_mut().verify_and_apply_proof(&proof).is_err() {
            return Err(rejected(to));
        }
        copied += 1;
    }
    to.commit()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::Secret32;
    use cobox_schema::hexkey::Address;

    fn keys(n: u32) -> cobox_keys::SigningKeyPair {
        cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n)
    }

    #[tokio::test]
    async fn a_replica_catches_up_and_stays_read_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let k = keys(0);
        let seed: [u8; 32] = k.secret_bytes()[..32].try_into().unwrap();
        let mut writer = Feed::open(a.path(), k.public.0, Some(&seed)).await.unwrap();
        let blocks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000 + i as usize]).collect();
        writer.append_batch(&blocks[..5]).await.unwrap();
        let mut replica = Feed::open(b.path(), k.public.0, None).await.unwrap();
        assert_eq!(copy_missing(&mut writer, &mut replica).await.unwrap(), 5);
        writer.append_batch(&blocks[5..]).await.unwrap();
        assert_eq!(copy_missing(&mut writer, &mut replica).await.unwrap(), 15);
        assert_eq!(copy_missing(&mut writer, &mut replica).await.unwrap(), 0);
        drop(replica);
        // A reopened replica holds every block it committed.
        let mut replica = Feed::open(b.path(), k.public.0, None).await.unwrap();
        assert_eq!(replica.len(), 20);
        assert_eq!(replica.contiguous_len(), 20);
        assert_eq!(copy_missing(&mut writer, &mut replica).await.unwrap(), 0);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(replica.get(i as u64).await.unwrap().as_ref(), Some(b));
        }
        assert!(!replica.writable());
    }

    #[tokio::test]
    async fn a_different_feed_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (k0, k1) = (keys(0), keys(1));
        let seed: [u8; 32] = k0.secret_bytes()[..32].try_into().unwrap();
        let mut writer = Feed::open(a.path(), k0.public.0, Some(&seed))
            .await
            .unwrap();
        writer.append_batch(&[b"x"]).await.unwrap();
        let mut other = Feed::open(b.path(), k1.public.0, None).await.unwrap();
        assert!(copy_missing(&mut writer, &mut other).await.is_err());
        assert_eq!(other.len(), 0);
    }
}
