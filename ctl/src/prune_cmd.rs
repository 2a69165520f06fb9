//! `coboxctl prune`: delete the data of spaces no longer declared, after confirmation;
//! `coboxctl sync`: replicate a space or seed now, outside its windows.

use anyhow::{Result, bail};
use cobox_client::api::Client;
use cobox_schema::api::{PruneCandidates, PruneRequest, SyncRequest, SyncResponse};
use cobox_schema::units::Size;

use crate::ask::ask;

pub fn prune(client: &Client, only: &[String], yes: bool) -> Result<u8> {
    let all: PruneCandidates = client.get("/v1/prune")?;
    for name in only {
        if !all.candidates.iter().any(|c| c.name == *name) {
            bail!("space {name} is not an undeclared space with data here; nothing was deleted");
        }
    }
    let chosen: Vec<_> = all
        .candidates
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .collect();
    if chosen.is_empty() {
        outln!("Nothing to prune: every space with data here is declared.");
        return Ok(0);
    }
    outln!("These spaces are no longer declared; their data and keys would be deleted:");
    for c in &chosen {
        outln!("  - space {} ({}), {}", c.name, c.address, Size(c.bytes));
    }
    if !yes && ask("Delete them for good? Type `yes`:", "delete")? != "yes" {
        outln!("Nothing was deleted.");
        return Ok(1);
    }
    let req = PruneRequest {
        spaces: chosen.iter().map(|c| c.name.clone()).collect(),
    };
    let done: PruneCandidates = client.post("/v1/prune", &req)?;
    for c in &done.candidates {
        outln!("deleted space {} ({})", c.name, c.address);
    }
    Ok(0)
}

pub fn sync(
    client: &Client,
    space: &Option<String>,
    seed: &Option<String>,
    duration: &str,
) -> Result<u8> {
    let d = cobox_schema::units::parse_duration(duration)
        .map_err(|e| anyhow::anyhow!("--for: {}", e.0))?;
    let req = SyncRequest {
        space: space.clone(),
        seed: seed.clone(),
        for_secs: Some(d.as_secs().max(1)),
    };
    let done: SyncResponse = client.post("/v1/sync", &req)?;
    outln!(
        "{} replicates now, until it is in step with its peers or {} at the latest",
        done.resource,
        done.until
    );
    Ok(0)
}
