//! `coboxctl prune`: delete the data of spaces no longer declared, after confirmation;
//! `coboxctl sync`: replicate a space or seed now, outside its windows.

use anyhow::{Result, bail};
use cobox_client::api::Client;
use cobox_schema::api::{PruneCandidates, PruneRequest, Status, SyncRequest, SyncResponse};
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
    wait: bool,
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
    if !wait {
        return Ok(0);
    }
    let name = space
        .as_ref()
        .or(seed.as_ref())
        .cloned()
        .unwrap_or_default();
    let deadline = std::time::Instant::now() + d + std::time::Duration::from_secs(5);
    let mut said = String::new();
    let started = std::time::Instant::now();
    let mut seen_sync = false;
    loop {
        let s: Status = client.get("/v1/status")?;
        let Some(r) = s.resources.iter().find(|r| {
            r.name == name
                && matches!(
                    r.kind,
                    cobox_schema::api::ResourceKind::Space | cobox_schema::api::ResourceKind::Seed
                )
        }) else {
            bail!("{} is no longer declared", done.resource);
        };
        let connected = r.replicas.iter().filter(|c| c.connected).count();
        let ahead: u64 = r.replicas.iter().map(|c| c.ahead_blocks).sum();
        let fetching: u64 = r.replicas.iter().map(|c| c.fetching).sum();
        let syncing = r.window.as_ref().is_some_and(|w| w.state == "sync");
        seen_sync |= syncing;
        // The window closing again ends the wait, once the sync was seen to run.
        let closed_again = (seen_sync || started.elapsed().as_secs() >= 5)
            && !syncing
            && r.window.as_ref().is_some_and(|w| !w.open);
        let in_step = connected > 0 && ahead == 0 && fetching == 0;
        if in_step && !syncing {
            outln!(
                "{} is in step with its {connected} connected peer(s)",
                done.resource
            );
            return Ok(0);
        }
        let now = if connected == 0 {
            "waiting for a peer to connect".to_string()
        } else {
            format!(
                "{ahead} block(s) to fetch from {connected} connected peer(s), {fetching} asked for"
            )
        };
        if now != said {
            outln!("{now}");
            said = now;
        }
        if std::time::Instant::now() >= deadline || closed_again {
            outln!("the sync of {} ended before it was in step", done.resource);
            return Ok(1);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
