//! The control plane: the generations store, the status board and event log, what a plan
//! changes per resource, and the HTTP/JSON API on a unix socket (server and client).

pub mod board;
pub mod changes;
pub use cobox_client::api as client;
pub mod conditions;
pub mod generations;
pub mod metrics;
pub mod openapi;
pub mod server;

use cobox_schema::api::{ApiError, ConfigRequest, PruneRequest, RollbackRequest, SyncRequest};

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
}

/// A call and where its answer goes.
#[derive(Debug)]
pub struct CallMsg {
    pub call: Call,
    pub reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, Failure>>,
}

/// An error answer: the HTTP status and the JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub error: ApiError,
}
