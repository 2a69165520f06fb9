//! A file's content streaming into the content feed in two stages on two cores: the
//! writing thread hashes and seals its bytes (no lock needed), and a background task
//! appends the sealed blocks under the space's lock, while the next write is sealed.

use std::sync::Arc;

use cobox_keys::block::Keyring;
use tokio::runtime::Handle as Runtime;
use tokio::sync::mpsc;

use crate::space::content::ContentStream;
use crate::space::{Space, SpaceError};

/// Batches of sealed blocks queued ahead of the appender.
const QUEUE: usize = 8;
/// Sealed blocks gathered before they are handed to the appender (1 MiB of content).
const HAND_OVER: usize = 16;

/// The background writer has stopped (on an error that `finish` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the content writer has stopped")]
pub struct Stopped;

/// A content stream sealed by its writer and appended in the background.
#[derive(Debug)]
pub struct BackgroundStream {
    stream: ContentStream,
    key: Arc<Keyring>,
    sealed: Vec<Vec<u8>>,
    tx: Option<mpsc::Sender<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<Result<(), SpaceError>>,
}

impl BackgroundStream {
    pub fn start(
        rt: &Runtime,
        space: Arc<tokio::sync::Mutex<Space>>,
        stream: ContentStream,
        key: Arc<Keyring>,
    ) -> BackgroundStream {
        let (tx, mut rx) = mpsc::channel::<Vec<Vec<u8>>>(QUEUE);
        let task = rt.spawn(async move {
            while let Some(blocks) = rx.recv().await {
                space.lock().await.content_append_sealed(&blocks).await?;
            }
            Ok(())
        });
        BackgroundStream {
            stream,
            key,
            sealed: Vec::with_capacity(HAND_OVER),
            tx: Some(tx),
            task,
        }
    }

    /// Bytes written so far: the file's size.
    pub fn size(&self) -> u64 {
        self.stream.size()
    }

    fn hand_over(&mut self) -> Result<(), Stopped> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        let tx = self.tx.as_ref().ok_or(Stopped)?;
        let batch = std::mem::replace(&mut self.sealed, Vec::with_capacity(HAND_OVER));
        tx.blocking_send(batch).map_err(|_| Stopped)
    }

    /// Seal bytes and queue the sealed blocks, waiting while the queue is full. Fails when
    /// the appender has stopped on an error (which [`BackgroundStream::finish`] returns).
    /// Call from outside the runtime.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Stopped> {
        if self.tx.is_none() {
            return Err(Stopped);
        }
        let blocks = self.stream.seal(&self.key, data);
        self.sealed.extend(blocks);
        if self.sealed.len() >= HAND_OVER {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Wait until every block is appended, and hand the stream back to be finished (its
    /// content committed) by the space.
    pub fn finish(mut self, rt: &Runtime) -> Result<ContentStream, SpaceError> {
        if let Some(last) = self.stream.seal_rest(&self.key) {
            self.sealed.push(last);
        }
        let handed = self.hand_over();
        self.tx = None;
        match rt.block_on(&mut self.task) {
            Ok(Ok(())) if handed.is_ok() => Ok(self.stream),
            Ok(Ok(())) => Err(SpaceError::WriterStopped(Stopped.to_string())),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(SpaceError::WriterStopped(e.to_string())),
        }
    }
}
