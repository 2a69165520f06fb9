//! A fleet directory kept in Git by its admins: `fleet.toml` (the fleet's name, its groups
//! and devices with their keys and labels) and the config layers — `base.toml`,
//! `groups/GROUP.toml`, `devices/DEVICE.toml` — rendered into each device's config (base <
//! the groups that match it, in declared order < its own), validated, with every finding
//! located in the layer that set the value.
//!
//! A group matches a device it lists in `devices`, or whose labels include all of the
//! group's `labels`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cobox_schema::diagnostic::{Diagnostic, LocatedDiagnostic, Severity};
use cobox_schema::hexkey::PublicKey;
use cobox_schema::overlay::{self, Layer, LayerKind, Vars};
use cobox_schema::{Host, Source};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    fleet: RawFleet,
    #[serde(default)]
    group: Vec<RawGroup>,
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    devices: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: String,
    key: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A group of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub devices: Vec<String>,
}

impl Group {
    pub fn matches(&self, d: &FleetDevice) -> bool {
        self.devices.contains(&d.name)
            || (!self.labels.is_empty()
                && self.labels.iter().all(|(k, v)| d.labels.get(k) == Some(v)))
    }
}

/// A device of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDevice {
    pub name: String,
    pub key: PublicKey,
    pub labels: BTreeMap<String, String>,
}

/// A fleet directory, read and checked.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub dir: PathBuf,
    pub name: String,
    pub groups: Vec<Group>,
    pub devices: Vec<FleetDevice>,
}

/// One device's rendered config: the text when the layers merged, and every finding.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub device: FleetDevice,
    pub text: Option<String>,
    pub diagnostics: Vec<LocatedDiagnostic>,
}

impl DeviceConfig {
    /// Whether the config can be published: rendered and free of errors.
    pub fn valid(&self) -> bool {
        self.text.is_some()
            && !self
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error)
    }
}

fn err(
    source: &Source,
    path: &str,
    span: std::ops::Range<usize>,
    code: &'static str,
    m: String,
) -> LocatedDiagnostic {
    Diagnostic::error(code, path, span, m).located(source)
}

/// Read `dir/fleet.toml`; every problem with file:line:col.
pub fn load(dir: &Path) -> Result<Fleet, Vec<LocatedDiagnostic>> {
    let path = dir.join("fleet.toml");
    let name = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        vec![err(
            &Source::new(&name, ""),
            "",
            0..0,
            "fleet-invalid",
            format!("cannot read {name}: {e}"),
        )]
    })?;
    let source = Source::new(&name, text);
    let raw: RawFile = toml::from_str(source.text()).map_err(|e| {
        vec![err(
            &source,
            "",
            e.span().unwrap_or(0..0),
            "fleet-invalid",
            e.message().to_string(),
        )]
    })?;
    let (root, _) = toml::de::DeTable::parse_recoverable(source.text());
    let spans = cobox_schema::tree::Spans::index(&root);
    let mut errors = Vec::new();
    let mut bad = |p: String, m: String, code: &'static str| {
        errors.push(err(&source, &p, spans.value_or_parent(&p), code, m));
    };
    let mut devices = Vec::new();
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (i, d) in raw.device.iter().enumerate() {
        if !names.insert(d.name.clone()) {
            bad(
                format!("device[{i}].name"),
                format!("device `{}` is listed twice", d.name),
                "fleet-invalid",
            );
        }
        match d.key.parse::<PublicKey>() {
            Ok(k) if !keys.insert(k) => bad(
                format!("device[{i}].key"),
                format!("key {k} is listed for two devices"),
                "fleet-invalid",
            ),
            Ok(k) => devices.push(FleetDevice {
                name: d.name.clone(),
                key: k,
                labels: d.labels.clone(),
            }),
            Err(_) => bad(
                format!("device[{i}].key"),
                format!("device `{}`: the key is not 64 hex characters", d.name),
                "fleet-invalid",
            ),
        }
    }
    let mut groups = Vec::new();
    let mut group_names = BTreeSet::new();
    for (i, g) in raw.group.iter().enumerate() {
        if !group_names.insert(g.name.clone()) {
            bad(
                format!("group[{i}].name"),
                format!("group `{}` is listed twice", g.name),
                "fleet-invalid",
            );
        }
        for (j, d) in g.devices.iter().enumerate() {
            if !names.contains(d) {
                bad(
                    format!("group[{i}].devices[{j}]"),
                    format!(
                        "group `{}` lists device `{d}`, which the fleet does not",
                        g.name
                    ),
                    "unknown-device",
                );
            }
        }
        groups.push(Group {
            name: g.name.clone(),
            labels: g.labels.clone(),
            devices: g.devices.clone(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Fleet {
        dir: dir.to_path_buf(),
        name: raw.fleet.name,
        groups,
        devices,
    })
}

impl Fleet {
    pub fn device(&self, name: &str) -> Option<&FleetDevice> {
        self.devices
            .iter()
            .find(|d| d.name == name || d.key.to_string() == name)
    }

    /// The layers of `device`, in order; a missing group or device file is no layer.
    pub fn layers(&self, device: &FleetDevice) -> Result<Vec<Layer>, Vec<LocatedDiagnostic>> {
        let read = |rel: String,
                    kind: LayerKind,
                    required: bool|
         -> Result<Option<Layer>, Vec<LocatedDiagnostic>> {
            let path = self.dir.join(&rel);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(Layer {
                    kind,
                    source: Source::new(path.display().to_string(), text),
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
                Err(e) => Err(vec![err(
                    &Source::new(path.display().to_string(), ""),
                    "",
                    0..0,
                    "fleet-invalid",
                    format!("cannot read {}: {e}", path.display()),
                )]),
            }
        };
        let mut layers = Vec::new();
        layers.extend(read("base.toml".into(), LayerKind::Base, true)?);
        for g in self.groups.iter().filter(|g| g.matches(device)) {
            layers.extend(read(
                format!("groups/{}.toml", g.name),
                LayerKind::Group(g.name.clone()),
                false,
            )?);
        }
        layers.extend(read(
            format!("devices/{}.toml", device.name),
            LayerKind::Device,
            false,
        )?);
        Ok(layers)
    }

    /// Render and validate `device`'s config (validated as for another machine).
    pub fn render(&self, device: &FleetDevice, host: &dyn Host) -> DeviceConfig {
        let out = |text, diagnostics| DeviceConfig {
            device: device.clone(),
            text,
            diagnostics,
        };
        let layers = match self.layers(device) {
            Ok(l) => l,
            Err(ds) => return out(None, ds),
        };
        let vars = Vars {
            device: device.name.clone(),
            labels: device.labels.clone(),
        };
        let rendered = match overlay::render(&layers, &vars) {
            Ok(r) => r,
            Err(ds) => return out(None, ds),
        };
        let source = Source::new(format!("<{} rendered>", device.name), rendered.text.clone());
        let v = cobox_schema::validate(&source, host);
        let diagnostics = v
            .diagnostics
            .iter()
            .map(|d| overlay::relocate(&layers, &rendered, d).unwrap_or_else(|| d.located(&source)))
            .collect();
        out(Some(rendered.text), diagnostics)
    }
}
