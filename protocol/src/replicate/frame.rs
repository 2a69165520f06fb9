//! Length-prefixed frames (3-byte little-endian length, as hypercore's secret stream) over
//! any tokio byte stream, with the end of the stream reported to the session.
//!
//! The layers above never learn that a stream ended (they treat it as "no data yet") and
//! some of them panic on read errors, so here every read error is an end of stream, and
//! both are announced through [`Closed`]: the session ends when it fires. Every frame
//! handed out also schedules another poll of the task (see `poll_next`).

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// The largest frame the 3-byte length can carry.
pub const MAX_FRAME: usize = (1 << 24) - 1;
const READ_CHUNK: usize = 256 * 1024;
/// Bytes queued for writing beyond which the sink stops taking frames.
const WRITE_HIGH: usize = 4 * 1024 * 1024;

/// Fires once the transport is closed (end of stream, or any read or write error).
#[derive(Debug, Clone)]
pub struct Closed(watch::Receiver<bool>);

impl Closed {
    /// Wait until the transport is closed.
    pub async fn wait(&mut self) {
        // An error means the framing was dropped: closed too.
        let _ = self.0.wait_for(|c| *c).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.0.borrow()
    }
}

/// A byte stream cut into frames. The transport sits in a mutex only to make the type
/// `Sync` (the cipher requires it); it is reached through `get_mut`, never locked.
#[derive(Debug)]
pub struct Framed<T> {
    io: Mutex<T>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    ended: bool,
    closed: watch::Sender<bool>,
}

impl<T> Framed<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(io: T) -> (Self, Closed) {
        let (tx, rx) = watch::channel(false);
        let framed = Framed {
            io: Mutex::new(io),
            rbuf: vec![0; READ_CHUNK],
            rstart: 0,
            rend: 0,
            wbuf: Vec::new(),
            wpos: 0,
            ended: false,
            closed: tx,
        };
        (framed, Closed(rx))
    }

    fn io(&mut self) -> Pin<&mut T> {
        let io = match self.io.get_mut() {
            Ok(io) => io,
            Err(poisoned) => poisoned.into_inner(),
        };
        Pin::new(io)
    }

    fn end(&mut self) {
        self.ended = true;
        self.closed.send_replace(true);
    }

    /// The next complete frame in the read buffer, if any.
    fn take_frame(&mut self) -> Option<Vec<u8>> {
        let avail = &self.rbuf[self.rstart..self.rend];
        if avail.len() < 3 {
            return None;
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], 0]) as usize;
        if avail.len() < 3 + len {
            return None;
        }
        let frame = avail[3..3 + len].to_vec();
        self.rstart += 3 + len;
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Some(frame)
    }

    /// Room to read into: at least a chunk, and the whole of a frame being received.
    fn make_room(&mut self) {
        let pending = self.rend - self.rstart;
        let wanted = if pending >= 3 {
            let b = &self.rbuf[self.rstart..];
            3 + u32::from_le_bytes([b[0], b[1], b[2], 0]) as usize
        } else {
            3
        };
        if self.rstart > 0 && (self.rbuf.len() - self.rend < READ_CHUNK / 4) {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend = pending;
            self.rstart = 0;
        }
        let need = (self.rstart + wanted.max(pending + READ_CHUNK / 4)).max(READ_CHUNK);
        if self.rbuf.len() < need {
            self.rbuf.resize(need, 0);
        }
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let mut buf = std::mem::take(&mut self.wbuf);
            let wpos = self.wpos;
            let res = self.io().poll_write(cx, &buf[wpos..]);
            match res {
                Poll::Ready(Ok(0)) => {
                    self.wbuf = buf;
                    self.end();
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.wpos += n;
                    if self.wpos == buf.len() {
                        buf.clear();
                        self.wpos = 0;
                    }
                    self.wbuf = buf;
                }
                Poll::Ready(Err(e)) => {
                    self.wbuf = buf;
                    self.end();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    self.wbuf = buf;
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T> Stream for Framed<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Item = io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.take_frame() {
                // The cipher also pulls frames while it writes, into a queue it only
                // decrypts when read from; nothing would wake the reader for them. Ask
                // for one more poll, so every frame taken is also read.
                cx.waker().wake_by_ref();
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            this.make_room();
            let (start, end) = (this.rend, this.rbuf.len());
            let mut rbuf = std::mem::take(&mut this.rbuf);
            let mut read = ReadBuf::new(&mut rbuf[start..end]);
            let res = this.io().poll_read(cx, &mut read);
            let n = read.filled().len();
            this.rbuf = rbuf;
            match res {
                Poll::Ready(Ok(())) if n == 0 => this.end(),
                Poll::Ready(Ok(())) => this.rend += n,
                // Read errors are an end of stream: the layers above must not see them.
                Poll::Ready(Err(_)) => this.end(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T> Sink<Vec<u8>> for Framed<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if this.wbuf.len() - this.wpos < WRITE_HIGH {
            return Poll::Ready(Ok(()));
        }
        this.poll_write_out(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> io::Result<()> {
        let this = self.get_mut();
        if item.len() > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {} bytes exceeds {MAX_FRAME}", item.len()),
            ));
        }
        let len = (item.len() as u32).to_le_bytes();
        this.wbuf.extend_from_slice(&len[..3]);
        this.wbuf.extend_from_slice(&item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.poll_write_out(cx))?;
        match this.io().poll_flush(cx) {
            Poll::Ready(Err(e)) => {
                this.end();
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.poll_write_out(cx))?;
        this.io().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};

    #[tokio::test]
    async fn frames_of_any_size_cross_and_the_end_is_reported() {
        let (a, b) = tokio::io::duplex(1000);
        let (mut fa, _) = Framed::new(a);
        let (mut fb, mut closed) = Framed::new(b);
        let sizes = [0usize, 1, 2, 3, 999, 65_536, 700_000, 5];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for f in sent {
                fa.send(f).await.unwrap();
            }
            drop(fa);
        });
        for f in &frames {
            assert_eq!(&fb.next().await.unwrap().unwrap(), f);
        }
        writer.await.unwrap();
        assert!(fb.next().await.is_none());
        closed.wait().await;
        assert!(closed.is_closed());
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused() {
        let (a, _b) = tokio::io::duplex(10);
        let (mut fa, _) = Framed::new(a);
        let e = fa.send(vec![0; MAX_FRAME + 1]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
