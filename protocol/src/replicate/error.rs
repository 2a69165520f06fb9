//! Why a replication session ended other than by its transport closing.

use crate::feed::FeedError;

pub(crate) use cobox_keys::secret::hex;

/// How a session failed. Peers are named by their proven identity or, before that or
/// without identities, their Noise static public key (hex); feeds by their public key (hex).
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("peer {peer} sent data for feed {feed} that does not verify; disconnected")]
    InvalidData { feed: String, peer: String },
    #[error("peer {peer} answered request {request} for feed {feed} with something else")]
    Unexpected {
        feed: String,
        peer: String,
        request: u64,
    },
    #[error("peer {peer} did not prove its identity")]
    BadIdentity { peer: String },
    #[error("peer {peer} refused by the authorization hook")]
    Refused { peer: String },
    #[error("session with peer {peer}: {source}")]
    Protocol {
        peer: String,
        source: std::io::Error,
    },
    #[error("session with peer {peer}, feed {feed}: {source}")]
    Feed {
        feed: String,
        peer: String,
        source: FeedError,
    },
    #[error("session with peer {peer} stopped unexpectedly: {reason}")]
    Crashed { peer: String, reason: String },
    #[error("session with peer {peer} has ended")]
    Ended { peer: String },
}
