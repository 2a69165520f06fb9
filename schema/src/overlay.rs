//! Rendering one device's config from layers (a fleet's base, its groups', the device's
//! own): deep-merged in order, with where every value came from, and the placeholders
//! `{{device.name}}` and `{{labels.NAME}}` filled in. Pure: layers in, text and origins
//! out.
//!
//! Tables merge key by key; an array whose elements are all tables with a `name` string
//! (`[[space]]`, `[[seed]]`) merges element by element, matched by name (new names are
//! appended in the order met); any other value, other arrays included (`windows`,
//! `peers`, `keys`), is replaced whole by a later layer. Two groups that set the same value
//! differently for one device are a conflict, whatever their order.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::DeTable;
use toml::{Table, Value};

use crate::diagnostic::{Diagnostic, LocatedDiagnostic};
use crate::source::Source;
use crate::tree::{Spans, index_path, key_path};

/// What a layer is, for the conflict rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKind {
    Base,
    Group(String),
    Device,
}

/// One layer: a file's name and text.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: LayerKind,
    pub source: Source,
}

/// What placeholders stand for.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub device: String,
    pub labels: BTreeMap<String, String>,
}

/// A rendered config and where each of its values came from.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    /// Config path in the rendered config → (layer index, config path in that layer).
    pub origins: BTreeMap<String, (usize, String)>,
}

/// Merge `layers` in order for a device with `vars`. Errors (a layer that does not parse,
/// a conflict between groups, an unknown placeholder) point into the layers.
pub fn render(layers: &[Layer], vars: &Vars) -> Result<Rendered, Vec<LocatedDiagnostic>> {
    let mut errors = Vec::new();
    let spans: Vec<Option<Spans>> = layers
        .iter()
        .map(|l| {
            let (root, syntax) = DeTable::parse_recoverable(l.source.text());
            syntax.is_empty().then(|| Spans::index(&root))
        })
        .collect();
    let mut merged = Table::new();
    let mut m = Merge {
        layers,
        spans: &spans,
        origins: BTreeMap::new(),
        errors: &mut errors,
    };
    for (i, layer) in layers.iter().enumerate() {
        match toml::from_str::<Table>(layer.source.text()) {
            Ok(t) => m.table(&mut merged, &t, "", "", i),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                m.errors.push(
                    Diagnostic::error(
                        "syntax",
                        "",
                        span,
                        format!("{}: {}", layer.source.name(), e.message()),
                    )
                    .located(&layer.source),
                );
            }
        }
    }
    let origins = m.origins;
    fill(&mut merged, "", vars, &mut |path, message| {
        errors.push(at(
            layers,
            &spans,
            &origins,
            path,
            "unknown-placeholder",
            message,
            None,
        ));
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = toml::to_string(&merged).expect("a table of toml values serializes");
    Ok(Rendered { text, origins })
}

/// A diagnostic about the rendered config at `path`, located in the layer that set it.
fn at(
    layers: &[Layer],
    spans: &[Option<Spans>],
    origins: &BTreeMap<String, (usize, String)>,
    path: &str,
    code: &'static str,
    message: String,
    help: Option<String>,
) -> LocatedDiagnostic {
    let (layer, lpath) = origin(origins, path).unwrap_or((0, String::new()));
    let span = span_of(spans, layer, &lpath);
    let mut d = Diagnostic::error(code, path, span, message);
    d.help = help;
    d.located(&layers[layer].source)
}

fn span_of(spans: &[Option<Spans>], layer: usize, path: &str) -> Range<usize> {
    spans
        .get(layer)
        .and_then(|s| s.as_ref())
        .map_or(0..0, |s| s.value_or_parent(path))
}

/// The layer and layer path that set `path`, or its nearest ancestor.
fn origin(origins: &BTreeMap<String, (usize, String)>, path: &str) -> Option<(usize, String)> {
    let mut p = path;
    loop {
        if let Some((layer, lpath)) = origins.get(p) {
            // A descendant the origin's subtree holds under the same relative path.
            return Some((*layer, format!("{lpath}{}", &path[p.len()..])));
        }
        match p.rfind(['.', '[']) {
            Some(i) => p = &p[..i],
            None => return None,
        }
    }
}

/// Locate a validation diagnostic of the rendered config in the layer that set its value.
pub fn relocate(
    layers: &[Layer],
    rendered: &Rendered,
    d: &Diagnostic,
) -> Option<LocatedDiagnostic> {
    let (layer, lpath) = origin(&rendered.origins, &d.path)?;
    let (root, syntax) = DeTable::parse_recoverable(layers[layer].source.text());
    if !syntax.is_empty() {
        return None;
    }
    let span = Spans::index(&root).value_or_parent(&lpath);
    let mut out = d.clone();
    out.span = span;
    Some(out.located(&layers[layer].source))
}

struct Merge<'a> {
    layers: &'a [Layer],
    spans: &'a [Option<Spans>],
    origins: BTreeMap<String, (usize, String)>,
    errors: &'a mut Vec<LocatedDiagnostic>,
}

/// An array merged by its elements' names.
fn named(items: &[Value]) -> bool {
    !items.is_empty()
        && items.iter().all(|v| {
            v.as_table()
                .is_some_and(|t| t.get("name").is_some_and(Value::is_str))
        })
}

fn name_of(v: &Value) -> Option<&str> {
    v.as_table()?.get("name")?.as_str()
}

impl Merge<'_> {
    fn table(&mut self, dst: &mut Table, src: &Table, mpath: &str, lpath: &str, layer: usize) {
        for (k, v) in src {
            let (mp, lp) = (key_path(mpath, k), key_path(lpath, k));
            match (dst.get_mut(k), v) {
                (Some(Value::Table(d)), Value::Table(s)) => self.table(d, s, &mp, &lp, layer),
                (Some(Value::Array(d)), Value::Array(s)) if named(d) && named(s) => {
                    for (i, item) in s.iter().enumerate() {
                        let name = name_of(item).expect("named");
                        let ilp = index_path(&lp, i);
                        match d.iter().position(|x| name_of(x) == Some(name)) {
                            Some(j) => {
                                let imp = index_path(&mp, j);
                                let src = item.as_table().expect("named");
                                let dst = d[j].as_table_mut().expect("named");
                                self.table(dst, src, &imp, &ilp, layer);
                            }
                            None => {
                                let imp = index_path(&mp, d.len());
                                self.set_origins(&imp, &ilp, item, layer);
                                d.push(item.clone());
                            }
                        }
                    }
                }
                (Some(old), new) => {
                    self.conflict(&mp, &lp, old, new, layer);
                    self.origins.retain(|p, _| {
                        !(p == &mp
                            || p.starts_with(&format!("{mp}."))
                            || p.starts_with(&format!("{mp}[")))
                    });
                    self.set_origins(&mp, &lp, new, layer);
                    *old = new.clone();
                }
                (None, new) => {
                    self.set_origins(&mp, &lp, new, layer);
                    dst.insert(k.clone(), new.clone());
                }
            }
        }
    }

    /// Two groups setting one value differently.
    fn conflict(&mut self, mp: &str, lp: &str, old: &Value, new: &Value, layer: usize) {
        let LayerKind::Group(g) = &self.layers[layer].kind else {
            return;
        };
        let Some((before, before_path)) = origin(&self.origins, mp) else {
            return;
        };
        let LayerKind::Group(other) = &self.layers[before].kind else {
            return;
        };
        if before == layer || old == new {
            return;
        }
        let first = &self.layers[before].source;
        let at_first = first.line_col(span_of(self.spans, before, &before_path).start);
        let mut d = Diagnostic::error(
            "fleet-conflict",
            mp,
            span_of(self.spans, layer, lp),
            format!(
                "groups `{other}` and `{g}` both match this device and set `{mp}` differently ({} here, {} in {}:{}:{})",
                short(new),
                short(old),
                first.name(),
                at_first.line,
                at_first.column
            ),
        );
        d.help = Some(format!(
            "set `{mp}` in one of the two groups only, or in the device's own layer"
        ));
        self.errors.push(d.located(&self.layers[layer].source));
    }

    fn set_origins(&mut self, mp: &str, lp: &str, v: &Value, layer: usize) {
        self.origins.insert(mp.to_string(), (layer, lp.to_string()));
        match v {
            Value::Table(t) => {
                for (k, v) in t {
                    self.set_origins(&key_path(mp, k), &key_path(lp, k), v, layer);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.set_origins(&index_path(mp, i), &index_path(lp, i), v, layer);
                }
            }
            _ => {}
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Fill placeholders in every string; report unknown ones at their path.
fn fill(v: &mut Table, path: &str, vars: &Vars, report: &mut dyn FnMut(&str, String)) {
    for (k, item) in v.iter_mut() {
        fill_value(item, &key_path(path, k), vars, report);
    }
}

fn fill_value(v: &mut Value, path: &str, vars: &Vars, report: &mut dyn FnMut(&str, String)) {
    match v {
        Value::String(s) if s.contains("{{") => match substitute(s, vars) {
            Ok(t) => *s = t,
            Err(m) => report(path, m),
        },
        Value::Table(t) => fill(t, path, vars, report),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                fill_value(item, &index_path(path, i), vars, report);
            }
        }
        _ => {}
    }
}

/// `{{device.name}}` and `{{labels.NAME}}`, nothing else.
fn substitute(s: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err(format!(
                "placeholder `{}` is not closed with `}}}}`",
                &rest[i..]
            ));
        };
        let name = after[..j].trim();
        let value = match name.strip_prefix("labels.") {
            _ if name == "device.name" => Some(vars.device.as_str()),
            Some(label) => vars.labels.get(label).map(String::as_str),
            None => None,
        };
        match value {
            Some(v) => out.push_str(v),
            None if name.starts_with("labels.") => {
                return Err(format!(
                    "placeholder `{{{{{name}}}}}`: device `{}` has no label `{}`",
                    vars.device,
                    &name["labels.".len()..]
                ));
            }
            None => {
                return Err(format!(
                    "unknown placeholder `{{{{{name}}}}}`: only `{{{{device.name}}}}` and `{{{{labels.NAME}}}}` are filled in"
                ));
            }
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(kind: LayerKind, name: &str, text: &str) -> Layer {
        Layer {
            kind,
            source: Source::new(name, text),
        }
    }

    #[test]
    fn named_tables_merge_by_name_and_other_lists_are_replaced() {
        let base = layer(
            LayerKind::Base,
            "base.toml",
            "version = 1\n[network]\npeers = [\"a:1\"]\n[[seed]]\nname = \"x\"\naddress = \"aa\"\n[[seed]]\nname = \"y\"\naddress = \"bb\"\n",
        );
        let group = layer(
            LayerKind::Group("g".into()),
            "groups/g.toml",
            "[network]\npeers = [\"b:2\"]\n[[seed]]\nname = \"y\"\nquota = \"1 GiB\"\n[[seed]]\nname = \"z\"\naddress = \"cc\"\n",
        );
        let r = render(&[base, group], &Vars::default()).unwrap();
        let t: Table = toml::from_str(&r.text).unwrap();
        assert_eq!(t["network"]["peers"], Value::Array(vec!["b:2".into()]));
        let seeds = t["seed"].as_array().unwrap();
        let names: Vec<&str> = seeds.iter().map(|s| name_of(s).unwrap()).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!(seeds[1]["quota"].as_str(), Some("1 GiB"));
        assert_eq!(seeds[1]["address"].as_str(), Some("bb"));
        assert_eq!(r.origins["seed[1].quota"], (1, "seed[0].quota".to_string()));
        assert_eq!(
            r.origins["seed[1].address"],
            (0, "seed[1].address".to_string())
        );
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_point_into_their_layer() {
        let vars = Vars {
            device: "hub-01".into(),
            labels: [("site".to_string(), "berlin".to_string())].into(),
        };
        let ok = layer(
            LayerKind::Base,
            "base.toml",
            "[device]\nname = \"{{device.name}}-{{ labels.site }}\"\n",
        );
        let r = render(std::slice::from_ref(&ok), &vars).unwrap();
        assert!(r.text.contains("name = \"hub-01-berlin\""), "{}", r.text);
        let bad = layer(
            LayerKind::Device,
            "devices/hub-01.toml",
            "[device]\n\nname = \"{{labels.room}}\"\n",
        );
        let e = render(&[ok, bad], &vars).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].file.as_str(), e[0].line, e[0].column),
            ("devices/hub-01.toml", 3, 8)
        );
        assert!(e[0].message.contains("no label `room`"), "{}", e[0].message);
    }

    #[test]
    fn two_groups_setting_a_value_differently_conflict_but_a_device_overrides() {
        let g1 = layer(
            LayerKind::Group("a".into()),
            "groups/a.toml",
            "[storage]\nquota = \"1 TiB\"\n",
        );
        let g2 = layer(
            LayerKind::Group("b".into()),
            "groups/b.toml",
            "\n[storage]\nquota = \"2 TiB\"\n",
        );
        let e = render(&[g1.clone(), g2.clone()], &Vars::default()).unwrap_err();
        assert_eq!((e[0].file.as_str(), e[0].line), ("groups/b.toml", 3));
        assert!(
            e[0].message.contains("groups/a.toml:2:9"),
            "{}",
            e[0].message
        );
        let same = layer(
            LayerKind::Group("b".into()),
            "groups/b.toml",
            "[storage]\nquota = \"1 TiB\"\n",
        );
        assert!(
            render(&[g1.clone(), same], &Vars::default()).is_ok(),
            "equal values agree"
        );
        let device = layer(
            LayerKind::Device,
            "devices/d.toml",
            "[storage]\nquota = \"3 TiB\"\n",
        );
        let base = layer(
            LayerKind::Base,
            "base.toml",
            "[storage]\nquota = \"9 TiB\"\n",
        );
        let r = render(&[base, g1, device], &Vars::default()).unwrap();
        assert!(r.text.contains("quota = \"3 TiB\""), "{}", r.text);
    }
}
