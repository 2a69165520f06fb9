//! `coboxctl versions` and `coboxctl restore`: the versions of a file in a space, and
//! putting one back.

use anyhow::Result;
use cobox_client::api::Client;
use cobox_schema::api::{RestoreRequest, RestoreResponse, VersionsRequest, VersionsResponse};
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
