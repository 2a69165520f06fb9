//! How a session reaches its peer (the transport, who dialled, the address or the path iroh
//! uses now) and the bytes it carried each way, counted on the transport under the
//! session's encryption: what the peers page and `coboxctl status` show of each peer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::transport::iroh::RouteProbe;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The transport of a session.
#[derive(Debug, Clone)]
pub enum Via {
    /// A TCP connection: the address dialled as written, or the one accepted from.
    Tcp(String),
    /// An iroh connection, whose path can change while it lives.
    Iroh(RouteProbe),
}

impl Via {
    /// `tcp` or `iroh`.
    pub fn transport(&self) -> &'static str {
        match self {
            Via::Tcp(_) => "tcp",
            Via::Iroh(_) => "iroh",
        }
    }

    /// The address (tcp), or the path iroh uses now (`direct ADDR`, `relay URL`).
    pub fn route(&self) -> String {
        match self {
            Via::Tcp(address) => address.clone(),
            Via::Iroh(probe) => probe.route().to_string(),
        }
    }
}

/// Bytes carried by one session, each way.
#[derive(Debug, Default)]
pub struct Carried {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Carried {
    /// (sent, received) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// A transport that counts what passes through it into a [`Carried`].
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    carried: Arc<Carried>,
}

impl<T> Counted<T> {
    pub fn new(inner: T, carried: Arc<Carried>) -> Counted<T> {
        Counted { inner, carried }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        this.carried
            .received
            .fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.carried.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            this.carried.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn every_byte_each_way_is_counted_once() {
        let (a, b) = tokio::io::duplex(64);
        let (ca, cb) = (Arc::new(Carried::default()), Arc::new(Carried::default()));
        let mut a = Counted::new(a, ca.clone());
        let mut b = Counted::new(b, cb.clone());
        let data = vec![7u8; 1000];
        let writer = tokio::spawn(async move {
            a.write_all(&data).await.unwrap();
            a.write_all(b"x").await.unwrap();
            let mut back = [0u8; 3];
            a.read_exact(&mut back).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = vec![0u8; 1001];
        b.read_exact(&mut got).await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        writer.await.unwrap();
        assert_eq!(ca.get(), (1001, 3));
        assert_eq!(cb.get(), (3, 1001));
    }
}
