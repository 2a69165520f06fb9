//! `coboxctl prune`: delete the data of spaces no longer declared, after confirmation.

use anyhow::{Result, bail};
use cobox_schema::api::{PruneCandidates, PruneRequest};
use cobox_schema::units::Size;
use coboxd::control::client::Client;

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
        println!("Nothing to prune: every space with data here is declared.");
        return Ok(0);
    }
    println!("These spaces are no longer declared; their data and keys would be deleted:");
    for c in &chosen {
        println!("  - space {} ({}), {}", c.name, c.address, Size(c.bytes));
    }
    if !yes && ask("Delete them for good? Type `yes`:", "delete")? != "yes" {
        println!("Nothing was deleted.");
        return Ok(1);
    }
    let req = PruneRequest {
        spaces: chosen.iter().map(|c| c.name.clone()).collect(),
    };
    let done: PruneCandidates = client.post("/v1/prune", &req)?;
    for c in &done.candidates {
        println!("deleted space {} ({})", c.name, c.address);
    }
    Ok(0)
}
