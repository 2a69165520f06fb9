//! A plain TCP copy of a file over loopback (file to socket to file, synced at the end):
//! the baseline the replication benchmarks are compared with in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tcp;

/// Copy `from` to `to` through a TCP connection on loopback; the time it took.
pub async fn plain_copy(from: &Path, to: &Path) -> Duration {
    const CHUNK: usize = 64 * 1024;
    let (mut a, mut b) = tcp::tcp_pair().await;
    let from = from.to_path_buf();
    let start = Instant::now();
    let send = tokio::spawn(async move {
        let mut f = tokio::fs::File::open(&from).await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            a.write_all(&buf[..n]).await.unwrap();
        }
        a.shutdown().await.unwrap();
    });
    let mut out = tokio::fs::File::create(to).await.unwrap();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = b.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).await.unwrap();
    }
    out.sync_all().await.unwrap();
    send.await.unwrap();
    start.elapsed()
}
