//! `coboxctl versions`, `coboxctl restore` and `coboxctl space du`: the versions of a file
//! in a space, putting one back, and what a space's content takes.

use anyhow::Result;
use cobox_client::api::Client;
use cobox_schema::api::{
    RestoreRequest, RestoreResponse, UsageRequest, UsageResponse, VersionsRequest, VersionsResponse,
};
use cobox_schema::units::Size;

use crate::cli::Output;

pub fn versions(client: &Client, space: &str, path: &str, output: Output) -> Result<u8> {
    let req = VersionsRequest {
        space: space.to_string(),
        path: path.to_string(),
    };
    let v: VersionsResponse = client.post("/v1/files/versions", &req)?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&v)?),
        Output::Text => {
            outln!(" TIME                      SIZE        DEVICE");
            for x in &v.versions {
                let mark = if x.current { "*" } else { " " };
                outln!(
                    "{mark}{:<25} {:<11} {}",
                    x.time,
                    Size(x.size).to_string(),
                    x.device
                );
            }
            if !v.versions.iter().any(|x| x.current) {
                outln!(
                    "({} is deleted: `coboxctl restore` brings a version back)",
                    v.path
                );
            }
        }
    }
    Ok(0)
}

pub fn restore(client: &Client, space: &str, path: &str, at: &str) -> Result<u8> {
    let req = RestoreRequest {
        space: space.to_string(),
        path: path.to_string(),
        at: at.to_string(),
    };
    let r: RestoreResponse = client.post("/v1/files/restore", &req)?;
    outln!(
        "restored {} in space {}: the version of {} by {} ({})",
        r.path,
        r.space,
        r.restored.time,
        r.restored.device,
        Size(r.restored.size)
    );
    Ok(0)
}

pub fn du(client: &Client, space: &str, output: Output) -> Result<u8> {
    let req = UsageRequest {
        space: space.to_string(),
    };
    let u: UsageResponse = client.post("/v1/spaces/usage", &req)?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&u)?),
        Output::Text => {
            let size = |b: u64| Size(b).to_string();
            outln!("{:<12} {:<12} NAME", "FILES", "VERSIONS");
            for e in &u.entries {
                outln!(
                    "{:<12} {:<12} {}",
                    size(e.tree_bytes),
                    size(e.versions_bytes),
                    e.name
                );
            }
            let t = &u.total;
            outln!(
                "{:<12} {:<12} total: {} file(s), {} earlier version(s) kept ({})",
                size(t.tree_bytes),
                size(t.versions_bytes),
                t.files,
                t.versions,
                t.retention
            );
            outln!(
                "reclaimable {}, on disk {} (the space's feeds on this device)",
                size(t.reclaimable_bytes),
                size(t.on_disk_bytes)
            );
        }
    }
    Ok(0)
}
