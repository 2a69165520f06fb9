//! `coboxctl fleet render DIR [DEVICE]`: a fleet directory's configs as its devices would
//! get them, each validated, findings located in the layer that set the value.

use std::path::Path;

use anyhow::Result;
use cobox_client::fleet_dir::{self, DeviceConfig};
use cobox_client::host::{Portable, SystemHost};
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
