//! API calls about the files of a space: the versions of a file, and putting one back.

use cobox_schema::api::{
    EntryUsage, FileVersion, RestoreRequest, RestoreResponse, UsageRequest, UsageResponse,
    VersionsRequest, VersionsResponse,
};

use crate::control::CallError;
use crate::space::{Space, SpaceError};

/// A path as given (`/docs/a.md` or `docs/a.md`), checked.
fn path_of(given: &str) -> Result<String, CallError> {
    let path = given.trim_matches('/').to_string();
    cobox_drive::path::check_path(&path)
        .map_err(|e| CallError::BadRequest(format!("path {given:?}: {e}")))?;
    Ok(path)
}

use crate::space::history::rfc3339_ms;

fn wire(v: &cobox_drive::Version, current: bool) -> FileVersion {
    FileVersion {
        time: rfc3339_ms(v.time),
        device: v.device.clone(),
        size: v.meta.size,
        current,
    }
}

fn space_error(e: SpaceError) -> CallError {
    match e {
        SpaceError::NotFound(_)
        | SpaceError::IsADirectory(_)
        | SpaceError::InvalidName(_)
        | SpaceError::ReadOnly(_) => CallError::BadRequest(e.to_string()),
        other => CallError::Internal(other.to_string()),
    }
}

/// Every version of the file, oldest first; the one the path shows is `current`.
pub fn versions(space: &Space, req: &VersionsRequest) -> Result<VersionsResponse, CallError> {
    let path = path_of(&req.path)?;
    let all = crate::space::history::listed(space.versions(&path));
    if all.is_empty() {
        return Err(CallError::BadRequest(format!(
            "{path}: no file has been there in space {}",
            req.space
        )));
    }
    let shown = space.node(&path).and_then(|n| n.blocks);
    let current = shown.and_then(|b| {
        all.iter().rposition(|v| {
            v.meta.runs == b.runs && v.meta.size == b.size && v.meta.inline == b.inline
        })
    });
    Ok(VersionsResponse {
        space: req.space.clone(),
        path: path.clone(),
        versions: all
            .iter()
            .enumerate()
            .map(|(i, v)| wire(v, Some(i) == current))
            .collect(),
    })
}

/// Put back the version newest at `req.at`.
pub async fn restore(
    space: &mut Space,
    req: &RestoreRequest,
) -> Result<RestoreResponse, CallError> {
    let path = path_of(&req.path)?;
    let at = chrono::DateTime::parse_from_rfc3339(&req.at).map_err(|e| {
        CallError::BadRequest(format!(
            "at {:?}: {e} (RFC 3339, like 2026-12-04T10:00:00Z)",
            req.at
        ))
    })?;
    let v = space
        .restore(&path, at.timestamp_millis())
        .await
        .map_err(|e| match e {
            SpaceError::NotFound(_) => CallError::BadRequest(format!(
                "{path}: no version written at or before {} in space {}",
                req.at, req.space
            )),
            other => space_error(other),
        })?;
    tracing::info!(space = %req.space, %path, version = %rfc3339_ms(v.time), "restored a file");
    Ok(RestoreResponse {
        space: req.space.clone(),
        path,
        restored: wire(&v, true),
    })
}

/// What the space's content takes, measured now, in total and by top-level entry.
pub async fn usage(
    space: &mut Space,
    req: &UsageRequest,
    retention: cobox_drive::Retention,
) -> UsageResponse {
    let usage = space.usage().await;
    UsageResponse {
        space: req.space.clone(),
        total: usage.to_status(retention),
        entries: usage
            .by_entry
            .iter()
            .map(|(name, b)| EntryUsage {
                name: name.clone(),
                tree_bytes: b.tree,
                versions_bytes: b.versions,
            })
            .collect(),
    }
}
