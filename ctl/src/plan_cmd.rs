//! `coboxctl diff`, `apply` and `rollback`: plans shown per resource, confirmation, and
//! waiting for the agent to converge.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cobox_client::api::Client;
use cobox_client::config_file;
use cobox_client::host::SystemHost;
use cobox_schema::api::{
    ApplyResponse, Change, ChangeOp, ConditionType, ConfigRequest, PlanResponse, RollbackRequest,
    Status,
};
use cobox_schema::render::{self, Colour};
use cobox_schema::units::parse_duration;

use crate::ask::ask;
use crate::cli::Output;
use crate::paint::{BOLD, GREEN, RED, YELLOW, padded, paint};

/// The config a command acts on: FILE, else `--config`, else the default config file.
pub fn config_path(file: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    file.or(config)
        .map(Path::to_path_buf)
        .or_else(|| config_file::default_path().filter(|p| p.exists()))
        .context("no config file given and none at the default path; name one")
}

/// Read and validate locally; invalid configs are reported with carets and refused.
fn read_valid(path: &Path, colour: Colour) -> Result<ConfigRequest> {
    valid_request(&config_file::read(path)?, colour)
}

/// Validate locally; an invalid config is reported with carets and refused.
pub fn valid_request(source: &cobox_schema::Source, colour: Colour) -> Result<ConfigRequest> {
    let v = config_file::check(source, &SystemHost::from_env());
    if !v.diagnostics.is_empty() {
        eprint!("{}", render::report(&v.diagnostics, source, colour));
    }
    if v.config.is_none() {
        bail!(
            "config {} is invalid; nothing was sent to the agent",
            source.name()
        );
    }
    Ok(ConfigRequest {
        config: source.text().to_string(),
        name: Some(source.name().to_string()),
    })
}

/// One line per change: sign, resource, changed fields.
pub fn change_line(c: &Change, colour: Colour) -> String {
    let code = match c.op {
        ChangeOp::Add => GREEN,
        ChangeOp::Change => YELLOW,
        ChangeOp::Remove => RED,
    };
    let fields: Vec<String> = c
        .fields
        .iter()
        .map(|f| match (&f.from, &f.to) {
            // A new resource's fields are all new; a changed one's say what they were.
            (None, Some(to)) if c.op == ChangeOp::Add => format!("{}: {to}", f.field),
            (None, Some(to)) => format!("{}: (none) → {to}", f.field),
            (Some(from), None) => format!("{}: {from} → (none)", f.field),
            (Some(from), Some(to)) => format!("{}: {from} → {to}", f.field),
            (None, None) => f.field.clone(),
        })
        .collect();
    let mut line = paint(
        colour,
        code,
        &format!("{} {} {}", c.op.sign(), c.kind, c.name),
    );
    if c.op == ChangeOp::Remove && c.kind == cobox_schema::api::ResourceKind::Space {
        line.push_str(" (data kept)");
    }
    if !fields.is_empty() {
        line.push_str("  ");
        line.push_str(&fields.join(", "));
    }
    line
}

fn print_plan(p: &PlanResponse, colour: Colour) {
    for c in &p.changes {
        outln!("{}", change_line(c, colour));
    }
    for b in &p.blocked {
        outln!("{}", paint(colour, RED, &format!("! {b}")));
    }
    if p.summary.is_empty() {
        outln!("No changes: the device already matches this config.");
    } else {
        outln!(
            "\n{}",
            paint(colour, BOLD, &format!("Plan: {}.", p.summary))
        );
    }
}

/// `diff`: exit 0 no changes, 1 changes, 2 error.
pub fn diff(client: &Client, path: &Path, output: Output, colour: Colour) -> Result<u8> {
    let req = read_valid(path, colour)?;
    let p: PlanResponse = client.post("/v1/plan", &req)?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&p)?),
        Output::Text => print_plan(&p, colour),
    }
    Ok(if p.summary.is_empty() { 0 } else { 1 })
}

/// Whether the user answers yes to `question` (refused off a terminal: `--yes` is needed).
fn confirmed(question: &str, what: &str) -> Result<bool> {
    Ok(matches!(
        ask(question, what)?.as_str(),
        "y" | "Y" | "yes" | "YES" | "Yes"
    ))
}

/// `apply`: exit 0 converged, 1 failed or timed out.
pub fn apply(client: &Client, path: &Path, yes: bool, timeout: &str, colour: Colour) -> Result<u8> {
    apply_request(client, &read_valid(path, colour)?, yes, timeout, colour)
}

/// Show the plan of a validated config, confirm, apply it and wait until converged.
pub fn apply_request(
    client: &Client,
    req: &ConfigRequest,
    yes: bool,
    timeout: &str,
    colour: Colour,
) -> Result<u8> {
    let timeout = parse_duration(timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let p: PlanResponse = client.post("/v1/plan", req)?;
    print_plan(&p, colour);
    if !p.summary.is_empty() && !yes && !confirmed("Apply these changes? [y/N]", "apply")? {
        outln!("Nothing was applied.");
        return Ok(1);
    }
    let a: ApplyResponse = client.post("/v1/apply", req)?;
    if a.unchanged {
        outln!("Generation {} already runs this config.", a.generation);
    } else {
        outln!("Generation {} accepted.", a.generation);
    }
    wait_converged(client, a.generation, timeout, colour)
}

/// `rollback`: shows what it would change and asks, as `apply` does.
pub fn rollback(
    client: &Client,
    generation: Option<u64>,
    yes: bool,
    timeout: &str,
    colour: Colour,
) -> Result<u8> {
    let timeout = parse_duration(timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let p: PlanResponse = client.post(
        "/v1/rollback",
        &RollbackRequest {
            generation,
            dry_run: true,
        },
    )?;
    print_plan(&p, colour);
    if !p.summary.is_empty() && !yes && !confirmed("Roll back? [y/N]", "roll back")? {
        outln!("Nothing was rolled back.");
        return Ok(1);
    }
    let a: ApplyResponse = client.post(
        "/v1/rollback",
        &RollbackRequest {
            generation,
            dry_run: false,
        },
    )?;
    outln!("Generation {} accepted (a rollback).", a.generation);
    wait_converged(client, a.generation, timeout, colour)
}

/// Poll the agent until generation `gen` is reconciled and converged, or stalled, or the
/// time is up; print the result per resource.
fn wait_converged(
    client: &Client,
    generation: u64,
    timeout: Duration,
    colour: Colour,
) -> Result<u8> {
    let start = Instant::now();
    let s = loop {
        let s: Status = client.get("/v1/status")?;
        let done = s.observed_generation >= generation
            && (s.converged || s.resources.iter().any(|r| r.is_stalled()));
        if done || start.elapsed() >= timeout {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for r in &s.resources {
        let (code, word) = if r.is_ready() {
            (GREEN, "ready")
        } else if r.is_stalled() {
            (RED, "failed")
        } else {
            (YELLOW, "pending")
        };
        let why = r
            .condition(ConditionType::Ready)
            .map(|c| {
                if c.message.is_empty() {
                    c.reason.clone()
                } else {
                    format!("{}: {}", c.reason, c.message)
                }
            })
            .unwrap_or_default();
        outln!(
            "{}{} {}  {why}",
            padded(colour, code, word, 8),
            r.kind,
            r.name
        );
    }
    if s.observed_generation >= generation && s.converged {
        outln!(
            "{}",
            paint(
                colour,
                GREEN,
                &format!("Converged on generation {generation}.")
            )
        );
        Ok(0)
    } else if s.resources.iter().any(|r| r.is_stalled()) {
        outln!(
            "{}",
            paint(
                colour,
                RED,
                "Some resources failed; the agent retries them with backoff."
            )
        );
        Ok(1)
    } else {
        outln!(
            "{}",
            paint(
                colour,
                YELLOW,
                &format!(
                    "Not converged after {}; the agent keeps working on it.",
                    cobox_schema::units::format_duration(timeout)
                )
            )
        );
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_schema::api::{FieldChange, ResourceKind};

    fn field(name: &str, from: Option<&str>, to: Option<&str>) -> FieldChange {
        FieldChange {
            field: name.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn a_changed_resource_says_what_each_field_was() {
        let change = Change {
            op: ChangeOp::Change,
            kind: ResourceKind::Space,
            name: "photos".into(),
            fields: vec![
                field("windows[0].when", None, Some("0 22 * * *")),
                field("upload", Some("2 MiB/s"), None),
                field("download", Some("1 MiB/s"), Some("4 MiB/s")),
            ],
            actions: vec![],
        };
        let line = change_line(&change, Colour::Never);
        assert!(
            line.contains("windows[0].when: (none) → 0 22 * * *")
                && line.contains("upload: 2 MiB/s → (none)")
                && line.contains("download: 1 MiB/s → 4 MiB/s"),
            "{line}"
        );
        let added = Change {
            op: ChangeOp::Add,
            fields: vec![field("address", None, Some("new"))],
            ..change
        };
        let line = change_line(&added, Colour::Never);
        assert!(
            line.contains("address: new") && !line.contains("(none)"),
            "{line}"
        );
    }
}
