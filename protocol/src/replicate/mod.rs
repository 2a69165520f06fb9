//! Replication: keeps feeds in sync with one peer over one byte stream, both
//! directions, live, with hypercore-protocol (Noise XX, one channel per feed).
//!
//! - [`spawn`] runs a session in its own task ([`session`]); a panic there is a
//!   disconnect. It ends when the transport closes ([`frame`] reports that; the protocol
//!   layers never do).
//! - Each feed both sides offer gets a channel (opened only when the remote proves it
//!   knows the feed's public key) and a task ([`channel`]) that answers requests with
//!   proofs and asks for what it lacks, as the channel's [`rules`] decide (no I/O: events in,
//!   messages and effects out, the time given) with [`peer`]'s scheduling.
//! - Every received proof is verified before it is stored; received blocks are committed
//!   before they are announced, served on, or reported through [`Grew`].
//! - Feeds are shared with their local writers through [`crate::feed::SharedFeed`]; sessions serve and
//!   announce only what was published after a commit.

pub mod channel;
pub mod error;
pub mod frame;
pub mod have;
pub mod identity;
pub mod peer;
pub mod rules;
pub mod session;
pub mod traffic;
pub mod wire;

pub use channel::Grew;
pub use error::ReplicateError;
pub use peer::Limits;
pub use session::{
    Authorize, NoiseKeypair, Options, Session, SessionEvent, SessionHandle, protocol, spawn,
};
pub use traffic::{Bucket, Caps, Quota, Traffic};
