//! `coboxctl keys rotate --space NAME` (a new key epoch now) and `coboxctl keys epochs
//! --space NAME` (the space's key epochs), through the agent.

use anyhow::{Result, bail};
use cobox_client::api::Client;
use cobox_schema::api::{KeyEpoch, MembersRequest, MembersResponse, RotateRequest, RotateResponse};

use crate::cli::Output;

fn need(agent: Option<&Client>) -> Result<&Client> {
    match agent {
        Some(c) => Ok(c),
        None => bail!("the agent is not running: key epochs are kept and started by the agent"),
    }
}

fn short(k: &str) -> String {
    k.chars().take(16).collect()
}

fn line(e: &KeyEpoch) -> String {
    let by = e.author.as_deref().map_or("-".to_string(), short);
    let holders = if e.number == 0 {
        "every invited member".to_string()
    } else {
        format!("{} members", e.holders.len())
    };
    let mut flags = Vec::new();
    if e.current {
        flags.push("current");
    }
    if !e.held {
        flags.push("not held here");
    }
    format!(
        "{:<6} {:<16} {:<16} {:<22} {}",
        e.number,
        short(&e.digest),
        by,
        holders,
        flags.join(", ")
    )
}

/// `coboxctl keys rotate --space NAME`.
pub fn rotate(agent: Option<&Client>, space: &str, output: Output) -> Result<()> {
    let r: RotateResponse = need(agent)?.post(
        "/v1/spaces/rotate",
        &RotateRequest {
            space: space.to_string(),
        },
    )?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&r)?),
        Output::Text => outln!(
            "space `{}`: key epoch {} started, sealed to {} members ({} bytes in the log); new blocks are sealed under it",
            r.space,
            r.epoch.number,
            r.epoch.holders.len(),
            r.bytes
        ),
    }
    Ok(())
}

/// `coboxctl keys epochs --space NAME`.
pub fn list(agent: Option<&Client>, space: &str, output: Output) -> Result<()> {
    let m: MembersResponse = need(agent)?.post(
        "/v1/spaces/members",
        &MembersRequest {
            space: space.to_string(),
        },
    )?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&m.epochs)?),
        Output::Text => {
            outln!(
                "{:<6} {:<16} {:<16} {:<22} STATE",
                "EPOCH",
                "DIGEST",
                "STARTED BY",
                "HOLDERS"
            );
            for e in &m.epochs {
                outln!("{}", line(e));
            }
        }
    }
    Ok(())
}
