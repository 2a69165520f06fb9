//! `coboxctl members SPACE` (who takes part: role, in or removed, who admitted and removed
//! each and when that reached this device, connected and last seen) and `members remove SPACE KEY` (the key added to the
//! space's `removed` in the device's config file, then applied like `coboxctl apply`).

use std::path::Path;

use anyhow::{Context, Result, bail};
use cobox_client::api::Client;
use cobox_schema::api::{MembersRequest, MembersResponse, Status};
use cobox_schema::hexkey::PublicKey;
use cobox_schema::render::Colour;
use serde::Serialize;

use crate::cli::Output;
use crate::paint::{GREEN, RED, YELLOW, padded};

/// One line of `coboxctl members`.
#[derive(Debug, Serialize)]
struct Line {
    #[serde(flatten)]
    member: cobox_schema::api::MemberInfo,
    connected: bool,
    /// When it last told this device what it holds (RFC 3339), first hand or reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

/// `coboxctl members SPACE`: exit 0.
pub fn list(client: &Client, space: &str, output: Output, colour: Colour) -> Result<u8> {
    let m: MembersResponse = client.post(
        "/v1/spaces/members",
        &MembersRequest {
            space: space.to_string(),
        },
    )?;
    let status: Status = client.get("/v1/status")?;
    let replicas = status
        .resources
        .iter()
        .find(|r| r.kind == cobox_schema::api::ResourceKind::Space && r.name == space)
        .map(|r| r.replicas.clone())
        .unwrap_or_default();
    let lines: Vec<Line> = m
        .members
        .into_iter()
        .map(|member| {
            let seen = replicas.iter().filter(|r| r.peer == member.identity);
            let connected = seen.clone().any(|r| r.connected);
            let last_seen = seen.map(|r| r.last_seen.clone()).max();
            Line {
                member,
                connected,
                last_seen,
            }
        })
        .collect();
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&lines)?),
        Output::Text => {
            outln!(
                "{:<16} {:<14} {:<7} {:<8} {:<18} {:<11} {:<18} {:<11} SEEN",
                "IDENTITY",
                "NAME",
                "ROLE",
                "STANDING",
                "ADMITTED BY",
                "ADMITTED",
                "REMOVED BY",
                "REMOVED"
            );
            // The date of an RFC 3339 time; "-" when unknown.
            let day = |t: &Option<String>| {
                t.as_deref()
                    .map_or("-".to_string(), |t| t.chars().take(10).collect())
            };
            let short = |k: &str| k.chars().take(16).collect::<String>();
            let list = |ks: &[String]| {
                if ks.is_empty() {
                    "-".to_string()
                } else {
                    ks.iter().map(|k| short(k)).collect::<Vec<_>>().join(",")
                }
            };
            for l in &lines {
                let m = &l.member;
                let code = match m.standing.as_str() {
                    "in" => GREEN,
                    "removed" => RED,
                    _ => YELLOW,
                };
                let seen = if m.me {
                    "this device".to_string()
                } else if l.connected {
                    "connected".to_string()
                } else {
                    l.last_seen.clone().unwrap_or_else(|| "never".into())
                };
                outln!(
                    "{:<16} {:<14} {:<7} {} {:<18} {:<11} {:<18} {:<11} {seen}",
                    short(&m.identity),
                    m.name.as_deref().unwrap_or("-"),
                    m.role.as_deref().unwrap_or("-"),
                    padded(colour, code, &m.standing, 8),
                    list(&m.admitted_by),
                    day(&m.admitted_at),
                    list(&m.removed_by),
                    day(&m.removed_at),
                );
            }
        }
    }
    Ok(0)
}

/// `text` with `key` added to the `removed` list of the `[[space]]` named `space`; comments
/// and layout kept. `None` when it is listed already.
pub fn with_removed(text: &str, space: &str, key: &PublicKey) -> Result<Option<String>> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("the config is not TOML")?;
    let spaces = doc
        .get_mut("space")
        .and_then(|s| s.as_array_of_tables_mut())
        .context("the config declares no [[space]]")?;
    let table = spaces
        .iter_mut()
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(space))
        .with_context(|| format!("the config declares no space {space}"))?;
    let removed = table
        .entry("removed")
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .with_context(|| format!("space {space}: `removed` is not a list"))?;
    let key = key.to_string();
    if removed.iter().any(|v| v.as_str() == Some(key.as_str())) {
        return Ok(None);
    }
    removed.push(key.as_str());
    // A key leaving the space also leaves its seeders (both together are refused).
    if let Some(seeders) = table.get_mut("seeders").and_then(|s| s.as_array_mut()) {
        seeders.retain(|v| v.as_str() != Some(key.as_str()));
    }
    Ok(Some(doc.to_string()))
}

/// `coboxctl members remove SPACE KEY`: the device's config file with KEY removed from
/// SPACE, applied (validated, planned, confirmed, converged); the agent writes the file.
pub fn remove(
    client: &Client,
    config: &Path,
    space: &str,
    key: &str,
    yes: bool,
    timeout: &str,
    colour: Colour,
) -> Result<u8> {
    let key: PublicKey = key
        .parse()
        .map_err(|e| anyhow::anyhow!("key {key:?}: {e}"))?;
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read config {}", config.display()))?;
    let Some(changed) = with_removed(&text, space, &key)? else {
        outln!("{key} is already removed from space {space}; nothing to apply");
        return Ok(0);
    };
    let source = cobox_schema::Source::new(config.display().to_string(), changed);
    let req = crate::plan_cmd::valid_request(&source, colour)?;
    if req.config == text {
        bail!("nothing changed in {}", config.display());
    }
    crate::plan_cmd::apply_request(client, &req, yes, timeout, colour)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

    #[test]
    fn a_removal_is_added_to_the_named_space_only_keeping_comments() {
        let text = "version = 1\n\n# the minutes\n[[space]]\nname = \"minutes\" # ours\nseeders = [\"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\"]\n\n[[space]]\nname = \"photos\"\n";
        let key: PublicKey = KEY.parse().unwrap();
        let out = with_removed(text, "minutes", &key).unwrap().unwrap();
        assert!(
            out.contains("# the minutes") && out.contains("# ours"),
            "{out}"
        );
        let doc: toml::Table = toml::from_str(&out).unwrap();
        let spaces = doc["space"].as_array().unwrap();
        assert_eq!(
            spaces[0]["removed"].as_array().unwrap()[0].as_str(),
            Some(KEY)
        );
        assert!(spaces[0]["seeders"].as_array().unwrap().is_empty(), "{out}");
        assert!(spaces[1].get("removed").is_none());
        assert_eq!(
            with_removed(&out, "minutes", &key).unwrap(),
            None,
            "already there"
        );
        assert!(with_removed(text, "nope", &key).is_err());
    }
}
