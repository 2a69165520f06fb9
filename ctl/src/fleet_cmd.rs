//! `coboxctl fleet`: `render DIR [DEVICE]` (offline: a fleet directory's configs as its
//! devices would get them, validated, findings located in the layer that set the value);
//! through the admin's agent, `diff` against what each device reported running, `apply`
//! in waves with a health gate, `status` of every device.

use std::path::Path;

use anyhow::Result;
use cobox_client::api::Client;
use cobox_client::fleet_dir::{self, DeviceConfig};
use cobox_client::host::{Portable, SystemHost};
use cobox_schema::api::{
    RemoteApplyRequest, RemoteApplyResponse, RemoteStatusRequest, RemoteStatusResponse,
};
use cobox_schema::render::Colour;
use cobox_schema::{LocatedDiagnostic, Severity};
use serde::Serialize;

use crate::cli::Output;
use crate::paint::{RED, YELLOW, paint};

fn finding(d: &LocatedDiagnostic, colour: Colour) -> String {
    let (word, code) = match d.severity {
        Severity::Error => ("error", RED),
        Severity::Warning => ("warning", YELLOW),
    };
    let mut out = format!(
        "{}: {}\n  --> {}:{}:{}\n",
        paint(colour, code, &format!("{word}[{}]", d.code)),
        d.message,
        d.file,
        d.line,
        d.column
    );
    if let Some(h) = &d.help {
        out.push_str(&format!("  = help: {h}\n"));
    }
    out
}

#[derive(Serialize)]
struct DeviceReport<'a> {
    device: &'a str,
    key: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a str>,
    diagnostics: &'a [LocatedDiagnostic],
}

fn json(c: &DeviceConfig, with_text: bool) -> DeviceReport<'_> {
    DeviceReport {
        device: &c.device.name,
        key: c.device.key.to_string(),
        valid: c.valid(),
        config: c.text.as_deref().filter(|_| with_text),
        diagnostics: &c.diagnostics,
    }
}

/// Exit 0 when every rendered config is valid, 1 when one is not, 2 when the fleet
/// directory itself is wrong.
pub fn render(dir: &Path, device: Option<&str>, output: Output, colour: Colour) -> Result<u8> {
    let fleet = match fleet_dir::load(dir) {
        Ok(f) => f,
        Err(ds) => {
            for d in &ds {
                eprint!("{}", finding(d, colour));
            }
            return Ok(2);
        }
    };
    let host = Portable(SystemHost::from_env());
    let devices: Vec<_> = match device {
        Some(name) => match fleet.device(name) {
            Some(d) => vec![d.clone()],
            None => anyhow::bail!("fleet {} has no device {name}", fleet.name),
        },
        None => fleet.devices.clone(),
    };
    let rendered: Vec<DeviceConfig> = devices.iter().map(|d| fleet.render(d, &host)).collect();
    match output {
        Output::Json => {
            let all: Vec<_> = rendered.iter().map(|c| json(c, device.is_some())).collect();
            outln!("{}", serde_json::to_string_pretty(&all)?);
        }
        Output::Text => {
            for c in &rendered {
                for d in &c.diagnostics {
                    eprint!("{}", finding(d, colour));
                }
                match (device, &c.text) {
                    (Some(_), Some(text)) if c.valid() => outln!("{}", text.trim_end()),
                    _ => outln!(
                        "{:<20} {}  {}",
                        c.device.name,
                        c.device.key,
                        if c.valid() { "valid" } else { "invalid" }
                    ),
                }
            }
        }
    }
    Ok(u8::from(rendered.iter().any(|c| !c.valid())))
}

/// The fleet directory, or every problem of its fleet.toml as the error.
fn load(dir: &Path) -> Result<fleet_dir::Fleet> {
    fleet_dir::load(dir).map_err(|ds| {
        anyhow::anyhow!(
            "{}",
            ds.iter()
                .map(|d| finding(d, Colour::Never))
                .collect::<String>()
        )
    })
}

/// What the admin's agent has read of a device.
fn remote(client: &Client, key: &str) -> Result<RemoteStatusResponse> {
    Ok(client.post(
        "/v1/remote/status",
        &RemoteStatusRequest {
            device: key.to_string(),
        },
    )?)
}

/// One device's line in `fleet status`.
#[derive(Debug, Serialize)]
struct StatusLine {
    device: String,
    key: String,
    /// The rendered config equals the one the device last reported running.
    in_step: Option<bool>,
    /// Envelope generation applied, and the newest published.
    applied: u64,
    published: u64,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_s: Option<u64>,
    stale: bool,
}

fn state_of(r: &RemoteStatusResponse) -> String {
    let Some(rep) = &r.report else {
        return "no report".into();
    };
    let a = &rep.admins;
    match a.last_envelope.as_ref().map(|e| e.outcome.as_str()) {
        Some("refused") => return "refused".into(),
        Some("rolled-back") => return "rolled back".into(),
        Some("probation") => return "probation".into(),
        _ => {}
    }
    if a.local_override.is_some() {
        "local override".into()
    } else if a.drift.is_some() {
        "drift".into()
    } else if !rep.converged {
        "degraded".into()
    } else {
        "converged".into()
    }
}

/// `coboxctl fleet status DIR`: exit 0 when every device reported running its rendered
/// config, converged and not stale; else 1.
pub fn status(
    client: &Client,
    dir: &Path,
    stale: &str,
    output: Output,
    colour: Colour,
) -> Result<u8> {
    let stale = cobox_schema::units::parse_duration(stale)
        .map_err(|e| anyhow::anyhow!("--stale: {e}"))?
        .as_secs();
    let fleet = load(dir)?;
    let host = Portable(SystemHost::from_env());
    let mut lines = Vec::new();
    for d in &fleet.devices {
        let rendered = fleet.render(d, &host);
        let r = remote(client, &d.key.to_string())?;
        let in_step = r.config.as_ref().map(|c| Some(c) == rendered.text.as_ref());
        lines.push(StatusLine {
            device: d.name.clone(),
            key: d.key.to_string(),
            in_step,
            applied: r
                .report
                .as_ref()
                .map_or(0, |rep| rep.admins.admin_generation),
            published: r.published,
            state: state_of(&r),
            age_s: r.age_s,
            stale: r.age_s.is_none_or(|a| a > stale),
        });
    }
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&lines)?),
        Output::Text => {
            outln!(
                "{:<16} {:<16} {:<8} {:<9} {:<14} AGE",
                "DEVICE",
                "KEY",
                "DESIRED",
                "APPLIED",
                "STATE"
            );
            for l in &lines {
                let code = if l.state == "converged" {
                    crate::paint::GREEN
                } else {
                    RED
                };
                outln!(
                    "{:<16} {:<16} {:<8} {:<9} {} {}",
                    l.device,
                    &l.key[..16],
                    match l.in_step {
                        Some(true) => "=",
                        Some(false) => "differs",
                        None => "?",
                    },
                    format!("{}/{}", l.applied, l.published),
                    crate::paint::padded(colour, code, &l.state, 14),
                    match l.age_s {
                        Some(a) if l.stale => format!("{a}s (stale)"),
                        Some(a) => format!("{a}s"),
                        None => "-".into(),
                    }
                );
            }
        }
    }
    let ok = lines
        .iter()
        .all(|l| l.in_step == Some(true) && l.state == "converged" && !l.stale);
    Ok(u8::from(!ok))
}

/// `coboxctl fleet diff DIR`: each device's rendered config against the one it last
/// reported. Exit 0 no changes, 1 changes (or a device never reported), 2 error.
pub fn diff(client: &Client, dir: &Path, colour: Colour) -> Result<u8> {
    let fleet = load(dir)?;
    let host = Portable(SystemHost::from_env());
    let mut changes = 0;
    for d in &fleet.devices {
        let rendered = fleet.render(d, &host);
        for f in &rendered.diagnostics {
            eprint!("{}", finding(f, colour));
        }
        let Some(text) = rendered.text.filter(|_| {
            rendered
                .diagnostics
                .iter()
                .all(|f| f.severity != Severity::Error)
        }) else {
            anyhow::bail!("the config of {} does not render; nothing compared", d.name);
        };
        let r = remote(client, &d.key.to_string())?;
        match r.config {
            Some(running) if running == text => outln!("= {}", d.name),
            Some(running) => {
                changes += 1;
                outln!("~ {}", d.name);
                let diff = similar::TextDiff::from_lines(running.as_str(), text.as_str());
                let body = diff
                    .unified_diff()
                    .context_radius(2)
                    .header(
                        &format!("{} running", d.name),
                        &format!("{} rendered", d.name),
                    )
                    .to_string();
                for line in body.lines() {
                    outln!("    {line}");
                }
            }
            None => {
                changes += 1;
                outln!("? {} (no config reported yet)", d.name);
            }
        }
    }
    Ok(u8::from(changes > 0))
}

/// How one device of a wave ended.
enum Verdict {
    Converged,
    Failed(String),
}

/// `coboxctl fleet apply DIR`: publish every changed device's rendered config, wave by
/// wave; a wave passes when at least `min_healthy` of its devices report converged on it
/// within `timeout`, else the rollout stops and later waves are untouched.
pub fn apply(
    client: &Client,
    dir: &Path,
    waves: &str,
    min_healthy: &str,
    timeout: &str,
    yes: bool,
    colour: Colour,
) -> Result<u8> {
    let timeout = cobox_schema::units::parse_duration(timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let min = cobox_client::rollout::share(min_healthy)
        .ok_or_else(|| anyhow::anyhow!("--min-healthy: {min_healthy:?} is not a share like 90%"))?;
    let fleet = load(dir)?;
    let host = Portable(SystemHost::from_env());
    let mut todo = Vec::new();
    for d in &fleet.devices {
        let rendered = fleet.render(d, &host);
        for f in &rendered.diagnostics {
            eprint!("{}", finding(f, colour));
        }
        if !rendered.valid() {
            anyhow::bail!("the config of {} is invalid; nothing was published", d.name);
        }
        let text = rendered.text.expect("valid");
        let r = remote(client, &d.key.to_string())?;
        if r.config.as_ref() != Some(&text) {
            todo.push((d.clone(), text));
        }
    }
    if todo.is_empty() {
        outln!("every device runs its rendered config; nothing to apply");
        return Ok(0);
    }
    let sizes = cobox_client::rollout::waves(todo.len(), waves)
        .map_err(|e| anyhow::anyhow!("--waves: {e}"))?;
    let mut start = 0;
    for (i, &end) in sizes.iter().enumerate() {
        let names: Vec<&str> = todo[start..end]
            .iter()
            .map(|(d, _)| d.name.as_str())
            .collect();
        outln!("wave {}: {}", i + 1, names.join(", "));
        start = end;
    }
    if !yes {
        let answer = crate::ask::ask("publish? [y/N]", "publish to the fleet")?;
        if !matches!(answer.as_str(), "y" | "yes") {
            anyhow::bail!("nothing was published");
        }
    }
    let mut start = 0;
    for (i, &end) in sizes.iter().enumerate() {
        let wave = &todo[start..end];
        let mut published = Vec::new();
        for (d, text) in wave {
            let r: RemoteApplyResponse = client.post(
                "/v1/remote/apply",
                &RemoteApplyRequest {
                    target: d.key.to_string(),
                    config: text.clone(),
                },
            )?;
            published.push(r.generation);
        }
        let began = std::time::Instant::now();
        let mut verdicts: Vec<Option<Verdict>> = wave.iter().map(|_| None).collect();
        while verdicts.iter().any(Option::is_none) && began.elapsed() < timeout {
            for (k, (d, _)) in wave.iter().enumerate() {
                if verdicts[k].is_some() {
                    continue;
                }
                let r = remote(client, &d.key.to_string())?;
                verdicts[k] = verdict(&r, published[k]);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        let mut healthy = 0;
        for (k, (d, _)) in wave.iter().enumerate() {
            match &verdicts[k] {
                Some(Verdict::Converged) => {
                    healthy += 1;
                    outln!(
                        "  {} {}",
                        paint(colour, crate::paint::GREEN, "converged"),
                        d.name
                    );
                }
                Some(Verdict::Failed(why)) => {
                    outln!("  {} {}: {why}", paint(colour, RED, "failed"), d.name)
                }
                None => outln!(
                    "  {} {}: no report of envelope {} within {}",
                    paint(colour, RED, "failed"),
                    d.name,
                    published[k],
                    cobox_schema::units::format_duration(timeout)
                ),
            }
        }
        if !cobox_client::rollout::passes(healthy, wave.len(), min) {
            let untouched: Vec<&str> = todo[end..].iter().map(|(d, _)| d.name.as_str()).collect();
            outln!(
                "rollout stopped at wave {}: {healthy} of {} converged, fewer than {min_healthy}; untouched: {}",
                i + 1,
                wave.len(),
                if untouched.is_empty() {
                    "none".into()
                } else {
                    untouched.join(", ")
                }
            );
            return Ok(1);
        }
        start = end;
    }
    outln!("rollout done: {} device(s) converged", todo.len());
    Ok(0)
}

fn verdict(r: &RemoteStatusResponse, published: u64) -> Option<Verdict> {
    let rep = r.report.as_ref()?;
    let a = &rep.admins;
    if a.admin_generation > published {
        return Some(Verdict::Failed(format!(
            "it took a newer envelope ({})",
            a.admin_generation
        )));
    }
    let e = a
        .last_envelope
        .as_ref()
        .filter(|e| e.generation == published)?;
    match e.outcome.as_str() {
        "refused" | "rolled-back" => Some(Verdict::Failed(format!(
            "{}: {}",
            e.outcome,
            e.reason.as_deref().unwrap_or("no reason given")
        ))),
        "applied" | "unchanged" if rep.converged && e.local_generation == Some(rep.generation) => {
            Some(Verdict::Converged)
        }
        _ => None,
    }
}
