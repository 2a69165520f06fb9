//! The control plane: the generations store, the status board and event log, what a plan
//! changes per resource, and the HTTP/JSON API on a unix socket (server and client).

pub mod board;
pub mod changes;
pub use cobox_client::api as client;
pub mod conditions;
pub mod generations;
pub mod lag;
pub mod metrics;
pub mod openapi;
pub mod server;

use cobox_schema::api::{
    AdminChangeRequest, AdminSignRequest, ConfigRequest, MembersRequest, PruneRequest,
    RemoteApplyRequest, RemoteStatusRequest, RestoreRequest, RollbackRequest, RotateRequest,
    SyncRequest, UsageRequest, VersionsRequest, WireDiagnostic,
};

/// How many files a [`Call::ToFetch`] lists at most.
pub const FILES_TO_FETCH_LISTED: usize = 200;

/// How many conflict copies a [`Call::Conflicts`] lists at most.
pub const CONFLICTS_LISTED: usize = 200;

/// A request only the agent's loop can answer (it plans against the live device or changes
/// the desired state).
#[derive(Debug)]
pub enum Call {
    Plan(ConfigRequest),
    Apply(ConfigRequest),
    Rollback(RollbackRequest),
    PruneCandidates,
    Prune(PruneRequest),
    Sync(SyncRequest),
    Versions(VersionsRequest),
    Restore(RestoreRequest),
    Usage(UsageRequest),
    /// The conflict copies a space shows (the dashboard's space page), at most
    /// [`CONFLICTS_LISTED`]: a list of `(copy, origin)` paths.
    Conflicts(String),
    /// The files of a space whose content is not all here (the dashboard's space page), at
    /// most [`FILES_TO_FETCH_LISTED`].
    ToFetch(String),
    /// Who takes part in a space.
    Members(MembersRequest),
    /// Start a new key epoch of a space.
    Rotate(RotateRequest),
    /// Publish a device's desired config to the fleet (on an admin's device).
    RemoteApply(RemoteApplyRequest),
    /// A device's newest report, as read from the fleet here.
    RemoteStatus(RemoteStatusRequest),
    /// Propose a change of the admin set.
    AdminsChange(AdminChangeRequest),
    /// Co-sign a proposed change of the admin set.
    AdminsSign(AdminSignRequest),
    /// The owner takes the device back: the authority re-rooted on the config's admins.
    AdminsReset,
}

/// Why the loop could not answer a call, in its own terms; the server maps each to an HTTP
/// status and a stable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The config given does not validate.
    Invalid {
        message: String,
        diagnostics: Vec<WireDiagnostic>,
    },
    NoSuchGeneration(String),
    NoSuchSpace(String),
    /// The space is still declared by the running config.
    StillDeclared(String),
    BadRequest(String),
    Internal(String),
}

impl CallError {
    pub fn internal(e: anyhow::Error) -> CallError {
        CallError::Internal(format!("{e:#}"))
    }

    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        match self {
            CallError::Invalid { message, .. } => message,
            CallError::NoSuchGeneration(m)
            | CallError::NoSuchSpace(m)
            | CallError::StillDeclared(m)
            | CallError::BadRequest(m)
            | CallError::Internal(m) => m,
        }
    }
}

/// A call and where its answer goes.
#[derive(Debug)]
pub struct CallMsg {
    pub call: Call,
    pub reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, CallError>>,
}

/// Hands a call to the loop; false when the loop is gone (the agent is stopping). The
/// server holds one of these, not the loop's channel.
pub type Calls = std::sync::Arc<dyn Fn(CallMsg) -> bool + Send + Sync>;
