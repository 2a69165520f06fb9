//! Structural checks of a parsed document against the JSON Schema of the raw types:
//! unknown keys, missing keys, wrong types, unknown words and out-of-range numbers,
//! all reported at once (serde alone stops at the first).

use std::ops::Range;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;
use crate::suggest::closest;
use crate::tree::{index_path, json_type, key_path, kind};

/// Check `root` against `schema`, adding a diagnostic for every structural problem.
pub fn check(root: &Spanned<DeTable<'_>>, schema: &Value, out: &mut Vec<Diagnostic>) {
    let walker = Walker { root: schema };
    // The whole file: a missing key points at its first line.
    let span = 0..0;
    out.extend(walker.table(root.get_ref(), span, schema, ""));
}

struct Walker<'s> {
    root: &'s Value,
}

impl<'s> Walker<'s> {
    /// Follow `$ref` (only local `#/$defs/...` references occur).
    fn resolve(&self, mut schema: &'s Value) -> &'s Value {
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(target) = r
                .strip_prefix("#/$defs/")
                .and_then(|name| self.root.get("$defs")?.get(name))
            else {
                break;
            };
            schema = target;
        }
        schema
    }

    /// The alternatives of an `anyOf`/`oneOf`, without `null` (TOML has no null).
    fn alternatives(&self, schema: &'s Value) -> Option<Vec<&'s Value>> {
        let alts = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))?
            .as_array()?;
        Some(
            alts.iter()
                .map(|a| self.resolve(a))
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect(),
        )
    }

    fn value(
        &self,
        value: &DeValue<'_>,
        span: Range<usize>,
        schema: &'s Value,
        path: &str,
    ) -> Vec<Diagnostic> {
        let schema = self.resolve(schema);
        if let Some(alts) = self.alternatives(schema) {
            return self.one_of(value, span, &alts, path);
        }
        if !types(schema).is_empty() && !admits(schema, value) {
            return vec![Diagnostic::error(
                "wrong-type",
                path,
                span,
                format!(
                    "{} should be {}, not {}",
                    describe(path),
                    expected(schema),
                    kind(value)
                ),
            )];
        }
        if let Some(words) = words(schema) {
            return self.word(value, span, &words, path);
        }
        match value {
            DeValue::Table(t) => self.table(t, span, schema, path),
            DeValue::Array(items) => {
                let Some(item_schema) = schema.get("items") else {
                    return vec![];
                };
                items
                    .iter()
                    .enumerate()
                    .flat_map(|(i, item)| {
                        self.value(
                            item.get_ref(),
                            item.span(),
                            item_schema,
                            &index_path(path, i),
                        )
                    })
                    .collect()
            }
            DeValue::Integer(i) => integer_range(i, span, schema, path).into_iter().collect(),
            _ => vec![],
        }
    }

    fn one_of(
        &self,
        value: &DeValue<'_>,
        span: Range<usize>,
        alts: &[&'s Value],
        path: &str,
    ) -> Vec<Diagnostic> {
        if let [only] = alts {
            return self.value(value, span, only, path);
        }
        // A set of words spelt as alternatives (an enum with documented variants).
        let consts: Option<Vec<&str>> = alts
            .iter()
            .map(|a| a.get("const").and_then(Value::as_str))
            .collect();
        if let Some(words) = consts {
            if !matches!(value, DeValue::String(_)) {
                return vec![Diagnostic::error(
                    "wrong-type",
                    path,
                    span,
                    format!("{} should be a string, not {}", describe(path), kind(value)),
                )];
            }
            return self.word(value, span, &words, path);
        }
        let mut fitting = Vec::new();
        for alt in alts {
            let found = self.value(value, span.clone(), alt, path);
            if found.is_empty() {
                return found;
            }
            if admits(alt, value) {
                fitting.push(found);
            }
        }
        if fitting.len() == 1 {
            return fitting.pop().unwrap_or_default();
        }
        let mut names: Vec<String> = alts.iter().map(|a| expected(a)).collect();
        names.dedup();
        vec![Diagnostic::error(
            "wrong-type",
            path,
            span,
            format!(
                "{} should be {}, not {}",
                describe(path),
                names.join(" or "),
                kind(value)
            ),
        )]
    }

    fn word(
        &self,
        value: &DeValue<'_>,
        span: Range<usize>,
        words: &[&str],
        path: &str,
    ) -> Vec<Diagnostic> {
        let Some(text) = value.as_str() else {
            return vec![];
        };
        if words.contains(&text) {
            return vec![];
        }
        let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        let help = match closest(text, words.iter().copied()) {
            Some(w) => format!("did you mean {w:?}?"),
            None => format!("use one of {}", quoted.join(", ")),
        };
        vec![
            Diagnostic::error(
                "unknown-value",
                path,
                span,
                format!(
                    "{} is {text:?}, which is not one of {}",
                    describe(path),
                    quoted.join(", ")
                ),
            )
            .with_help(help),
        ]
    }

    fn table(
        &self,
        table: &DeTable<'_>,
        span: Range<usize>,
        schema: &'s Value,
        path: &str,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let properties = schema.get("properties").and_then(Value::as_object);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, value) in table.iter() {
            let key_text: &str = key.get_ref();
            let p = key_path(path, key_text);
            match properties.and_then(|props| props.get(key_text)) {
                Some(prop) => out.extend(self.value(value.get_ref(), value.span(), prop, &p)),
                None if closed => {
                    let known: Vec<&str> = properties
                        .map(|props| props.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let help = match closest(key_text, known.iter().copied()) {
                        Some(k) => format!("did you mean `{k}`?"),
                        None if known.is_empty() => "this table takes no keys".to_string(),
                        None => format!("known keys here: {}", known.join(", ")),
                    };
                    let place = if path.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in `{path}`")
                    };
                    out.push(
                        Diagnostic::error(
                            "unknown-key",
                            p,
                            key.span(),
                            format!("unknown key `{key_text}` {place}"),
                        )
                        .with_help(help),
                    );
                }
                None => {}
            }
        }
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = required.as_str() else {
                continue;
            };
            if !table.contains_key(name) {
                let place = if path.is_empty() {
                    "the file".to_string()
                } else {
                    format!("`{path}`")
                };
                let example = match name {
                    "version" => " (write `version = 1` at the top of the file)".to_string(),
                    _ => String::new(),
                };
                out.push(
                    Diagnostic::error(
                        "missing-key",
                        key_path(path, name),
                        span.clone(),
                        format!("{place} lacks the required key `{name}`"),
                    )
                    .with_help_opt((!example.is_empty()).then(|| format!("add `{name}`{example}"))),
                );
            }
        }
        out
    }
}

fn describe(path: &str) -> String {
    if path.is_empty() {
        "the file".into()
    } else {
        format!("`{path}`")
    }
}

/// The JSON types a schema admits (empty: any).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn admits(schema: &Value, value: &DeValue<'_>) -> bool {
    let ts = types(schema);
    let t = json_type(value);
    ts.is_empty() || ts.contains(&t) || (t == "integer" && ts.contains(&"number"))
}

fn words(schema: &Value) -> Option<Vec<&str>> {
    if let Some(c) = schema.get("const").and_then(Value::as_str) {
        return Some(vec![c]);
    }
    schema
        .get("enum")?
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect()
}

fn expected(schema: &Value) -> String {
    let names: Vec<&str> = types(schema)
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "a boolean (true or false)",
            "array" => "an array",
            "object" => "a table",
            _ => "a value",
        })
        .collect();
    if names.is_empty() {
        "a value".into()
    } else {
        names.join(" or ")
    }
}

fn integer_range(
    i: &toml::de::DeInteger<'_>,
    span: Range<usize>,
    schema: &Value,
    path: &str,
) -> Option<Diagnostic> {
    let digits = i.as_str().replace('_', "");
    let n = i128::from_str_radix(digits.trim_start_matches('+'), i.radix()).ok()?;
    let format_max = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u8::MAX as i128),
        Some("uint16") => Some(u16::MAX as i128),
        Some("uint32") => Some(u32::MAX as i128),
        Some("uint64" | "uint") => Some(u64::MAX as i128),
        _ => None,
    };
    let min = schema
        .get("minimum")
        .and_then(Value::as_i64)
        .map(i128::from);
    let max = schema
        .get("maximum")
        .and_then(Value::as_i64)
        .map(i128::from)
        .or(format_max);
    let below = min.is_some_and(|m| n < m);
    let above = max.is_some_and(|m| n > m);
    (below || above).then(|| {
        let bound = match (min, max) {
            (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (None, None) => String::new(),
        };
        Diagnostic::error(
            "out-of-range",
            path,
            span,
            format!("{} is {n}, but must be {bound}", describe(path)),
        )
    })
}
