//! A file's content streaming into the content feed in the background: the mount answers a
//! write as soon as its bytes are queued, while another core seals and appends them.

use std::sync::Arc;

use tokio::runtime::Handle as Runtime;
use tokio::sync::mpsc;

use crate::space::content::ContentStream;
use crate::space::{Space, SpaceError};

/// Chunks queued ahead of the writer (each up to one FUSE write, at most 1 MiB).
const QUEUE: usize = 8;

/// The background writer has stopped (on an error that `finish` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the content writer has stopped")]
pub struct Stopped;

/// A content stream fed through a bounded queue.
#[derive(Debug)]
pub struct BackgroundStream {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    task: tokio::task::JoinHandle<Result<ContentStream, SpaceError>>,
    queued: u64,
}

impl BackgroundStream {
    pub fn start(
        rt: &Runtime,
        space: Arc<tokio::sync::Mutex<Space>>,
        mut stream: ContentStream,
    ) -> BackgroundStream {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let task = rt.spawn(async move {
            while let Some(chunk) = rx.recv().await {
                space
                    .lock()
                    .await
                    .content_write(&mut stream, &chunk)
                    .await?;
            }
            Ok(stream)
        });
        BackgroundStream {
            tx: Some(tx),
            task,
            queued: 0,
        }
    }

    /// Bytes queued so far: the file's size.
    pub fn size(&self) -> u64 {
        self.queued
    }

    /// Queue bytes, waiting while the queue is full. Fails when the writer has stopped on
    /// an error (which [`BackgroundStream::finish`] returns). Call from outside the runtime.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Stopped> {
        let tx = self.tx.as_ref().ok_or(Stopped)?;
        tx.blocking_send(data.to_vec()).map_err(|_| Stopped)?;
        self.queued += data.len() as u64;
        Ok(())
    }

    /// Wait until everything queued is in the stream, and hand the stream back.
    pub fn finish(mut self, rt: &Runtime) -> Result<ContentStream, SpaceError> {
        self.tx = None;
        match rt.block_on(&mut self.task) {
            Ok(result) => result,
            Err(e) => Err(SpaceError::WriterStopped(e.to_string())),
        }
    }
}
