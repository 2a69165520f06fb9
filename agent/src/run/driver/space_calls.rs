//! The calls about spaces' data: their files (versions, restore, usage, conflict copies,
//! answered beside the loop under the space's lock), one-off syncs, and pruning the data of
//! spaces no longer declared.

use anyhow::Result;
use cobox_schema::api::{EventKind, PruneCandidates, PruneRequest, SyncRequest, SyncResponse};

use crate::control::{Call, CallError};
use crate::net::policy::Class;

use super::{Agent, internal, to_value};

impl Agent {
    /// Answer a call about a space's files on a task of its own, under the space's lock.
    pub(super) fn answer_files(
        &self,
        call: Call,
        reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, CallError>>,
    ) {
        let name = match &call {
            Call::Versions(r) => r.space.clone(),
            Call::Restore(r) => r.space.clone(),
            Call::Usage(r) => r.space.clone(),
            Call::Conflicts(space) | Call::ToFetch(space) => space.clone(),
            _ => return,
        };
        let retention = self.device.policy().retention(&name);
        let Some(space) = self.device.space(&name) else {
            let _ = reply.send(Err(CallError::NoSuchSpace(format!(
                "space {name} is not open on this device"
            ))));
            return;
        };
        self.device.runtime().spawn(async move {
            let mut space = space.lock().await;
            let answer = match call {
                Call::Versions(r) => {
                    crate::run::files_api::versions(&space, &r).map(|v| to_value(&v))
                }
                Call::Restore(r) => crate::run::files_api::restore(&mut space, &r)
                    .await
                    .map(|v| to_value(&v)),
                Call::Usage(r) => Ok(to_value(
                    &crate::run::files_api::usage(&mut space, &r, retention).await,
                )),
                Call::ToFetch(_) => space
                    .still_to_fetch(crate::control::FILES_TO_FETCH_LISTED)
                    .await
                    .map(|t| to_value(&t))
                    .map_err(|e| CallError::internal(anyhow::anyhow!("{e}"))),
                Call::Conflicts(_) => Ok(to_value(
                    &space.conflict_copies(crate::control::CONFLICTS_LISTED),
                )),
                _ => return,
            };
            let _ = reply.send(answer);
        });
    }

    /// Start a one-off sync of a space or seed the device runs.
    pub(super) fn sync(&mut self, req: &SyncRequest) -> Result<SyncResponse, CallError> {
        let class = match (&req.space, &req.seed) {
            (Some(space), None) => Class::Space(space.clone()),
            (None, Some(seed)) => Class::Seed(seed.clone()),
            _ => {
                return Err(CallError::BadRequest(
                    "name exactly one of space and seed".into(),
                ));
            }
        };
        let secs = req.for_secs.unwrap_or(3600).clamp(1, 7 * 86_400);
        let until = chrono::Utc::now() + chrono::Duration::seconds(secs as i64);
        if !self.device.sync(&class, until) {
            return Err(CallError::NoSuchSpace(format!(
                "{class} is not running on this device"
            )));
        }
        tracing::info!(%class, until = %until, "one-off sync");
        Ok(SyncResponse {
            resource: class.to_string(),
            until: until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    pub(super) fn prune(&mut self, req: &PruneRequest) -> Result<PruneCandidates, CallError> {
        let candidates = self
            .device
            .prune_candidates(&self.config)
            .map_err(internal)?;
        let mut chosen = Vec::new();
        for name in &req.spaces {
            match candidates.iter().find(|c| c.name == *name) {
                Some(c) => chosen.push(c.clone()),
                None if self.config.spaces.iter().any(|s| s.name == *name) => {
                    return Err(CallError::StillDeclared(format!(
                        "space {name} is declared in the running config; remove it there first"
                    )));
                }
                None => {
                    return Err(CallError::NoSuchSpace(format!(
                        "no undeclared space {name} has data on this device"
                    )));
                }
            }
        }
        let mut removed = Vec::new();
        for c in chosen {
            self.device.prune(&c).map_err(internal)?;
            self.board.emit(
                EventKind::Pruned,
                self.generation,
                Some(format!("space {}", c.name)),
                format!(
                    "deleted {} bytes of space {} ({})",
                    c.bytes, c.name, c.address
                ),
            );
            removed.push(c);
        }
        Ok(PruneCandidates {
            candidates: removed,
        })
    }
}
