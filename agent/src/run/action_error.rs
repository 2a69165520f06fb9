//! How an action failed, and whether trying it again can help (the error policy): a
//! transient failure (a port in use, a disk briefly full, a peer away) is retried with
//! backoff; a permanent one (an expired invite, an invite sealed for another device, a
//! mount point that is a file, an address this machine does not have) stalls the resource
//! until the config changes or the action would be different.

use std::fmt;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after a backoff.
    Backoff,
    /// Not until the config or the planned action changes.
    WhenChanged,
}

/// An action's failure.
#[derive(Debug)]
pub struct ActionError {
    pub retry: Retry,
    pub error: anyhow::Error,
}

impl ActionError {
    /// A failure retrying cannot mend.
    pub fn permanent(error: impl Into<anyhow::Error>) -> ActionError {
        ActionError {
            retry: Retry::WhenChanged,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for ActionError {
    fn from(error: E) -> ActionError {
        ActionError {
            retry: Retry::Backoff,
            error: error.into(),
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Whether an I/O error of binding or mounting is permanent for the same input: the
/// address is not this machine's or needs a privilege; the path is not a directory.
pub fn io_is_permanent(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        AddrNotAvailable | PermissionDenied | NotADirectory | InvalidInput
    )
}
