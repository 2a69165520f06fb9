//! `coboxctl remote` and `coboxctl admins`, from an admin's own device: publish a managed
//! device's desired config and wait for its report; read its last report; change the admin
//! set, co-sign a change, and (on the device itself) take it back from its admins.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use cobox_client::api::Client;
use cobox_client::config_file;
use cobox_client::host::{Portable, SystemHost};
use cobox_schema::api::{
    AdminChangeRequest, AdminEntryResponse, AdminSignRequest, AdminsStatus, DeviceReport,
    RemoteApplyRequest, RemoteApplyResponse, RemoteStatusRequest, RemoteStatusResponse,
};
use cobox_schema::render::{self, Colour};
use cobox_schema::units::parse_duration;

use crate::cli::Output;
use crate::paint::{GREEN, RED, YELLOW, paint};

/// How often a waiting command asks for the device's report.
const POLL: Duration = Duration::from_millis(250);

/// The report's lines for people.
pub fn report_text(r: &RemoteStatusResponse, colour: Colour) -> String {
    let mut out = String::new();
    let Some(rep) = &r.report else {
        out.push_str("no report from this device has been read here yet\n");
        out.push_str(&format!("published  generation {}\n", r.published));
        return out;
    };
    let age = r.age_s.map_or("?".into(), |s| {
        cobox_schema::units::format_duration(Duration::from_secs(s))
    });
    let state = if rep.converged {
        paint(colour, GREEN, "converged")
    } else {
        paint(colour, YELLOW, "converging")
    };
    out.push_str(&format!("device     {} ({})\n", rep.name, rep.device));
    out.push_str(&format!("reported   {} ({age} ago)\n", rep.at));
    out.push_str(&format!(
        "running    generation {} from {} · {state}\n",
        rep.generation, rep.source
    ));
    out.push_str(&format!(
        "admins     applied envelope {} of {} published\n",
        rep.admins.admin_generation, r.published
    ));
    out.push_str(&admins_text(&rep.admins, colour));
    for n in &rep.not_ready {
        out.push_str(&format!("not ready  {n}\n"));
    }
    out
}

/// What a device follows of its admins, for people.
pub fn admins_text(a: &AdminsStatus, colour: Colour) -> String {
    let mut out = String::new();
    if let Some(e) = &a.last_envelope {
        let outcome = match e.outcome.as_str() {
            o @ ("refused" | "rolled-back") => paint(colour, RED, o),
            o @ "probation" => paint(colour, YELLOW, o),
            o => paint(colour, GREEN, o),
        };
        out.push_str(&format!(
            "last       envelope {} from {}: {outcome}{}\n",
            e.generation,
            short(&e.signer),
            e.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    for r in &a.refused {
        out.push_str(&format!(
            "{}    envelope {} from {}: {}\n",
            paint(colour, RED, "refused"),
            r.generation,
            short(&r.signer),
            r.reason
        ));
    }
    if let Some(d) = &a.drift {
        out.push_str(&format!("{}     {d}\n", paint(colour, YELLOW, "drift")));
    }
    if let Some(o) = &a.local_override {
        out.push_str(&format!("{}  {o}\n", paint(colour, YELLOW, "override")));
    }
    out
}

fn short(key: &str) -> &str {
    &key[..key.len().min(16)]
}

/// `coboxctl remote status KEY`: 0 when the device reported converged on the newest
/// envelope published, 1 otherwise.
pub fn status(client: &Client, device: &str, output: Output, colour: Colour) -> Result<u8> {
    let r = remote_status(client, device)?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&r)?),
        Output::Text => outln!("{}", report_text(&r, colour).trim_end()),
    }
    Ok(u8::from(!took_newest(&r)))
}

/// Whether the device reported running the newest envelope published for it, converged:
/// applied (past probation) or unchanged — not refused, rolled back or still on probation.
fn took_newest(r: &RemoteStatusResponse) -> bool {
    r.report.as_ref().is_some_and(|rep| {
        let a = &rep.admins;
        let outcome_ok = match &a.last_envelope {
            Some(e) => matches!(e.outcome.as_str(), "applied" | "unchanged"),
            None => r.published == 0,
        };
        rep.converged && a.admin_generation >= r.published && outcome_ok
    })
}

fn remote_status(client: &Client, device: &str) -> Result<RemoteStatusResponse> {
    Ok(client.post(
        "/v1/remote/status",
        &RemoteStatusRequest {
            device: device.to_string(),
        },
    )?)
}

/// `coboxctl remote diff KEY FILE`: FILE against the config the device last reported, as a
/// unified diff. Exit 0 no changes, 1 changes, 2 error (or nothing reported yet).
pub fn diff(client: &Client, device: &str, file: &Path, colour: Colour) -> Result<u8> {
    let source = config_file::read(file)?;
    let r = remote_status(client, device)?;
    let Some(running) = r.config else {
        bail!("no config reported by {device} has been read here yet");
    };
    let label = r.report.as_ref().map_or("running".into(), |rep| {
        format!("{} generation {}", rep.name, rep.generation)
    });
    if running == source.text() {
        return Ok(0);
    }
    let diff = similar::TextDiff::from_lines(running.as_str(), source.text());
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&label, source.name())
        .to_string();
    for line in text.lines() {
        let code = match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => Some(GREEN),
            Some(b'-') if !line.starts_with("---") => Some(RED),
            _ => None,
        };
        match code {
            Some(c) => outln!("{}", paint(colour, c, line)),
            None => outln!("{line}"),
        }
    }
    Ok(1)
}

/// `coboxctl remote events KEY`: the device's recent events about its config and admins,
/// as its last report carried them.
pub fn events(client: &Client, device: &str, output: Output) -> Result<u8> {
    let r = remote_status(client, device)?;
    let Some(rep) = r.report else {
        bail!("no report from {device} has been read here yet");
    };
    for e in &rep.events {
        match output {
            Output::Json => outln!("{}", serde_json::to_string(e)?),
            Output::Text => outln!(
                "{}  gen {:<4} {:<16} {}",
                e.time,
                e.generation,
                serde_json::to_value(e.kind)?.as_str().unwrap_or("?"),
                e.message
            ),
        }
    }
    Ok(0)
}

/// `coboxctl remote apply KEY FILE`: validate for another device, publish, wait for the
/// device's report. Exit 0 converged on it, 1 refused or not reported in time, 2 error.
pub fn apply(
    client: &Client,
    device: &str,
    file: &Path,
    timeout: &str,
    wait: bool,
    colour: Colour,
) -> Result<u8> {
    let timeout = parse_duration(timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let source = config_file::read(file)?;
    let v = config_file::check(&source, &Portable(SystemHost::from_env()));
    if !v.diagnostics.is_empty() {
        eprint!("{}", render::report(&v.diagnostics, &source, colour));
    }
    if v.config.is_none() {
        bail!("config {} is invalid; nothing was published", source.name());
    }
    let published: RemoteApplyResponse = client.post(
        "/v1/remote/apply",
        &RemoteApplyRequest {
            target: device.to_string(),
            config: source.text().to_string(),
        },
    )?;
    eprintln!(
        "published envelope {} for {} in fleet {}",
        published.generation, published.target, published.fleet
    );
    if !wait {
        return Ok(0);
    }
    let start = Instant::now();
    let mut last: Option<DeviceReport> = None;
    loop {
        let r = remote_status(client, device)?;
        if let Some(rep) = r.report {
            let a = &rep.admins;
            if let Some(e) = a
                .last_envelope
                .as_ref()
                .filter(|e| e.generation == published.generation)
            {
                if e.outcome == "refused" || e.outcome == "rolled-back" {
                    eprintln!(
                        "{}: the device {} envelope {}: {}",
                        paint(colour, RED, &e.outcome),
                        if e.outcome == "refused" {
                            "refused"
                        } else {
                            "rolled back"
                        },
                        e.generation,
                        e.reason.as_deref().unwrap_or("no reason given")
                    );
                    return Ok(1);
                }
                // On probation it is not a success yet.
                if e.outcome != "probation"
                    && rep.converged
                    && e.local_generation == Some(rep.generation)
                {
                    eprintln!(
                        "{}: {} runs envelope {} as its generation {}",
                        paint(colour, GREEN, "converged"),
                        rep.name,
                        e.generation,
                        rep.generation
                    );
                    return Ok(0);
                }
            }
            if a.admin_generation > published.generation {
                eprintln!(
                    "the device has since taken a newer envelope ({})",
                    a.admin_generation
                );
                return Ok(1);
            }
            last = Some(rep);
        }
        if start.elapsed() >= timeout {
            eprintln!(
                "timed out after {}: {}",
                cobox_schema::units::format_duration(timeout),
                match &last {
                    Some(rep) => format!(
                        "the device's last report ({}) shows envelope {} applied",
                        rep.at, rep.admins.admin_generation
                    ),
                    None => "no report from the device was read".into(),
                }
            );
            return Ok(1);
        }
        std::thread::sleep(POLL);
    }
}

fn entry_text(r: &AdminEntryResponse) -> String {
    format!(
        "entry {}\nsignatures {} of {} needed · {}\n{}\n",
        r.digest,
        r.signatures,
        r.threshold,
        if r.applied {
            "applied"
        } else {
            "waiting for co-signers (`coboxctl admins sign ENTRY` on their devices)"
        },
        r.entry
    )
}

/// `coboxctl admins add|remove|revoke KEY`, `admins threshold N`.
pub fn change(
    client: &Client,
    change: &str,
    key: Option<&str>,
    threshold: Option<u8>,
) -> Result<u8> {
    let r: AdminEntryResponse = client.post(
        "/v1/admins/change",
        &AdminChangeRequest {
            change: change.to_string(),
            key: key.map(str::to_string),
            threshold,
        },
    )?;
    outln!("{}", entry_text(&r).trim_end());
    Ok(0)
}

/// `coboxctl admins sign ENTRY`.
pub fn sign(client: &Client, entry: &str) -> Result<u8> {
    let r: AdminEntryResponse = client.post(
        "/v1/admins/sign",
        &AdminSignRequest {
            entry: entry.to_string(),
        },
    )?;
    outln!("{}", entry_text(&r).trim_end());
    Ok(0)
}

/// `coboxctl admins reset`: take the device back (asks first on a terminal).
pub fn reset(client: &Client, yes: bool) -> Result<u8> {
    if !yes {
        let answer = crate::ask::ask(
            "take this device back from its admins (their changes of the admin set are dropped)? [y/N]",
            "reset the admins",
        )?;
        if !matches!(answer.as_str(), "y" | "yes") {
            bail!("nothing was changed");
        }
    }
    let a: AdminsStatus = client.post("/v1/admins/reset", &serde_json::json!({}))?;
    outln!(
        "admins re-rooted: {} key(s), threshold {}",
        a.keys.len(),
        a.threshold
    );
    Ok(0)
}

/// What a config trusts, for `coboxctl admins show` and the hub's first-boot report.
#[derive(Debug, serde::Serialize)]
struct Trust {
    file: String,
    fleet: Option<String>,
    admins: Vec<String>,
    threshold: u8,
    probation_s: u64,
}

/// `coboxctl admins show [FILE]`: the fleet and admins a config names, read offline. Exit
/// 0 when it names admins, 1 when it names none, 2 when it cannot be read or is invalid.
pub fn show(path: &Path, output: Output, host: &SystemHost) -> Result<u8> {
    let source = config_file::read(path)?;
    let v = config_file::check(&source, &Portable(host.clone()));
    let Some(config) = v.config else {
        bail!(
            "{} is not a valid config: {}",
            path.display(),
            v.errors()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        );
    };
    let a = &config.admins;
    let trust = Trust {
        file: path.display().to_string(),
        fleet: a.fleet.clone(),
        admins: a.keys.iter().map(ToString::to_string).collect(),
        threshold: a.threshold,
        probation_s: a.probation.as_secs(),
    };
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&trust)?),
        Output::Text if trust.admins.is_empty() => {
            outln!("admins: none (only this device's owner steers it)")
        }
        Output::Text => {
            outln!(
                "fleet: {}",
                trust
                    .fleet
                    .as_deref()
                    .unwrap_or("none (no fleet space named)")
            );
            outln!(
                "admins: {} key(s), {} signature(s) needed to change them",
                trust.admins.len(),
                trust.threshold
            );
            for k in &trust.admins {
                outln!("  {k}");
            }
            outln!(
                "probation: {}",
                if a.probation.is_zero() {
                    "off".into()
                } else {
                    cobox_schema::units::format_duration(a.probation)
                }
            );
        }
    }
    Ok(u8::from(trust.admins.is_empty()))
}
