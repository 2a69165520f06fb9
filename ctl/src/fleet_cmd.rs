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
/// config, converged and not stale; else 1. With `watch`, redrawn every two seconds until
/// interrupted.
pub fn status(
    client: &Client,
    dir: &Path,
    stale: &str,
    output: Output,
    watch: bool,
    colour: Colour,
) -> Result<u8> {
    let stale = cobox_schema::units::parse_duration(stale)
        .map_err(|e| anyhow::anyhow!("--stale: {e}"))?
        .as_secs();
    loop {
        let lines = status_lines(client, dir, stale)?;
        match output {
            Output::Json => outln!("{}", serde_json::to_string_pretty(&lines)?),
            Output::Text => {
                if watch && colour == Colour::Always {
                    out!("\x1b[2J\x1b[H");
                }
                out!("{}", status_text(&lines, colour));
            }
        }
        if !watch {
            let ok = lines
                .iter()
                .all(|l| l.in_step == Some(true) && l.state == "converged" && !l.stale);
            return Ok(u8::from(!ok));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

fn status_lines(client: &Client, dir: &Path, stale: u64) -> Result<Vec<StatusLine>> {
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
    Ok(lines)
}

fn status_text(lines: &[StatusLine], colour: Colour) -> String {
    let mut out = format!(
        "{:<16} {:<16} {:<8} {:<9} {:<14} AGE\n",
        "DEVICE", "KEY", "DESIRED", "APPLIED", "STATE"
    );
    for l in lines {
        let code = if l.state == "converged" {
            crate::paint::GREEN
        } else {
            RED
        };
        out.push_str(&format!(
            "{:<16} {:<16} {:<8} {:<9} {} {}\n",
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
        ));
    }
    out
}

/// One device in `fleet diff --output json`.
#[derive(Debug, Serialize)]
struct DiffLine {
    device: String,
    key: String,
    /// `same`, `changed`, or `unreported` (no config reported yet).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

/// `coboxctl fleet diff DIR`: each device's rendered config against the one it last
/// reported. Exit 0 no changes, 1 changes (or a device never reported), 2 error.
pub fn diff(client: &Client, dir: &Path, output: Output, colour: Colour) -> Result<u8> {
    let fleet = load(dir)?;
    let host = Portable(SystemHost::from_env());
    let mut lines = Vec::new();
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
        let (state, diff) = match r.config {
            Some(running) if running == text => ("same", None),
            Some(running) => {
                let diff = similar::TextDiff::from_lines(running.as_str(), text.as_str());
                let body = diff
                    .unified_diff()
                    .context_radius(2)
                    .header(
                        &format!("{} running", d.name),
                        &format!("{} rendered", d.name),
                    )
                    .to_string();
                ("changed", Some(body))
            }
            None => ("unreported", None),
        };
        lines.push(DiffLine {
            device: d.name.clone(),
            key: d.key.to_string(),
            state,
            diff,
        });
    }
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&lines)?),
        Output::Text => {
            for l in &lines {
                match l.state {
                    "same" => outln!("= {}", l.device),
                    "changed" => {
                        outln!("~ {}", l.device);
                        for line in l.diff.as_deref().unwrap_or_default().lines() {
                            outln!("    {line}");
                        }
                    }
                    _ => outln!("? {} (no config reported yet)", l.device),
                }
            }
        }
    }
    Ok(u8::from(lines.iter().any(|l| l.state != "same")))
}

/// How a rollout goes: `coboxctl fleet apply`'s options.
pub struct Rollout<'a> {
    pub waves: &'a str,
    pub min_healthy: &'a str,
    pub timeout: &'a str,
    pub yes: bool,
}

/// How one device of a wave ended.
#[derive(Debug, Serialize)]
struct DeviceOutcome {
    device: String,
    key: String,
    /// The envelope generation published for it.
    envelope: u64,
    /// `converged` or `failed`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct WaveOutcome {
    wave: usize,
    devices: Vec<DeviceOutcome>,
    healthy: usize,
    passed: bool,
}

/// The outcome of `coboxctl fleet apply`, as `--output json` prints it.
#[derive(Debug, Default, Serialize)]
struct RolloutOutcome {
    /// Every wave passed (or nothing differed).
    done: bool,
    waves: Vec<WaveOutcome>,
    /// The wave the rollout stopped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at: Option<usize>,
    /// Devices of later waves, not published to.
    untouched: Vec<String>,
}

/// `coboxctl fleet apply DIR`: publish every changed device's rendered config, wave by
/// wave; a wave passes when at least `min_healthy` of its devices report converged on it
/// within `timeout`, else the rollout stops and later waves are untouched.
pub fn apply(
    client: &Client,
    dir: &Path,
    how: &Rollout<'_>,
    output: Output,
    colour: Colour,
) -> Result<u8> {
    let timeout = cobox_schema::units::parse_duration(how.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let min = cobox_client::rollout::share(how.min_healthy).ok_or_else(|| {
        anyhow::anyhow!(
            "--min-healthy: {:?} is not a share like 90%",
            how.min_healthy
        )
    })?;
    // With JSON, standard output holds the outcome only; people's lines go to stderr.
    let say = |line: String| match output {
        Output::Json => eprintln!("{line}"),
        Output::Text => outln!("{line}"),
    };
    let colour = if output == Output::Json {
        Colour::Never
    } else {
        colour
    };
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
    let mut outcome = RolloutOutcome::default();
    if todo.is_empty() {
        say("every device runs its rendered config; nothing to apply".into());
        outcome.done = true;
        if output == Output::Json {
            outln!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        return Ok(0);
    }
    let sizes = cobox_client::rollout::waves(todo.len(), how.waves)
        .map_err(|e| anyhow::anyhow!("--waves: {e}"))?;
    let mut start = 0;
    for (i, &end) in sizes.iter().enumerate() {
        let names: Vec<&str> = todo[start..end]
            .iter()
            .map(|(d, _)| d.name.as_str())
            .collect();
        say(format!("wave {}: {}", i + 1, names.join(", ")));
        start = end;
    }
    if !how.yes {
        let answer = crate::ask::ask("publish? [y/N]", "publish to the fleet")?;
        if !matches!(answer.as_str(), "y" | "yes") {
            anyhow::bail!("nothing was published");
        }
    }
    let mut start = 0;
    for (i, &end) in sizes.iter().enumerate() {
        let wave = run_wave(client, &todo[start..end], timeout)?;
        let mut devices = Vec::new();
        for ((d, _), (envelope, verdict)) in todo[start..end].iter().zip(wave) {
            let (result, reason) = match verdict {
                Some(Verdict::Converged) => ("converged", None),
                Some(Verdict::Failed(why)) => ("failed", Some(why)),
                None => (
                    "failed",
                    Some(format!(
                        "no report of envelope {envelope} within {}",
                        cobox_schema::units::format_duration(timeout)
                    )),
                ),
            };
            let word = if result == "converged" {
                paint(colour, crate::paint::GREEN, result)
            } else {
                paint(colour, RED, result)
            };
            match &reason {
                Some(why) => say(format!("  {word} {}: {why}", d.name)),
                None => say(format!("  {word} {}", d.name)),
            }
            devices.push(DeviceOutcome {
                device: d.name.clone(),
                key: d.key.to_string(),
                envelope,
                result,
                reason,
            });
        }
        let healthy = devices.iter().filter(|d| d.result == "converged").count();
        let passed = cobox_client::rollout::passes(healthy, devices.len(), min);
        let size = devices.len();
        outcome.waves.push(WaveOutcome {
            wave: i + 1,
            devices,
            healthy,
            passed,
        });
        if !passed {
            outcome.stopped_at = Some(i + 1);
            outcome.untouched = todo[end..].iter().map(|(d, _)| d.name.clone()).collect();
            say(format!(
                "rollout stopped at wave {}: {healthy} of {size} converged, fewer than {}; untouched: {}",
                i + 1,
                how.min_healthy,
                if outcome.untouched.is_empty() {
                    "none".into()
                } else {
                    outcome.untouched.join(", ")
                }
            ));
            break;
        }
        start = end;
    }
    outcome.done = outcome.stopped_at.is_none();
    if outcome.done {
        say(format!("rollout done: {} device(s) converged", todo.len()));
    }
    if output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(u8::from(!outcome.done))
}

/// Publish to one wave's devices and wait for each to end (or the timeout): the envelope
/// generation published for each, and how it ended (`None`: no answer in time).
fn run_wave(
    client: &Client,
    wave: &[(fleet_dir::FleetDevice, String)],
    timeout: std::time::Duration,
) -> Result<Vec<(u64, Option<Verdict>)>> {
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
            if verdicts[k].is_none() {
                verdicts[k] = verdict(&remote(client, &d.key.to_string())?, published[k]);
            }
        }
        if verdicts.iter().any(Option::is_none) {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
    Ok(published.into_iter().zip(verdicts).collect())
}

/// How one device of a wave ended.
enum Verdict {
    Converged,
    Failed(String),
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
