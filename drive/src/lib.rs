//! The multi-writer drive of a cobox space: operations, their encoding, and the merged
//! tree every device computes identically from them. Pure: no I/O, no clock.

pub mod clock;
pub mod drive;
pub mod op;
mod pairs;
pub mod path;
mod time;

pub use clock::{Clock, FeedId, OpId};
pub use drive::{Drive, Node, Retention, Version};
pub use op::{DecodeError, Effect, FileMeta, Op, Run, Value};
