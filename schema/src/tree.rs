//! Walking the parsed TOML tree: config paths (`space[2].mount`) and their spans.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The config path of a key inside the table at `parent`.
pub fn key_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// The config path of element `index` of the array at `parent`.
pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The spans of every key and value in a document, by config path.
#[derive(Debug, Default)]
pub struct Spans {
    values: BTreeMap<String, Range<usize>>,
    keys: BTreeMap<String, Range<usize>>,
}

impl Spans {
    pub fn index(root: &Spanned<DeTable<'_>>) -> Spans {
        let mut spans = Spans::default();
        spans.values.insert(String::new(), root.span());
        spans.table("", root.get_ref());
        spans
    }

    fn table(&mut self, path: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let p = key_path(path, key.get_ref());
            self.keys.insert(p.clone(), key.span());
            self.value(&p, value);
        }
    }

    fn value(&mut self, path: &str, value: &Spanned<DeValue<'_>>) {
        self.values.insert(path.to_string(), value.span());
        match value.get_ref() {
            DeValue::Table(t) => self.table(path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(&index_path(path, i), item);
                }
            }
            _ => {}
        }
    }

    /// The span of the value at `path`, or of its nearest enclosing item that is written
    /// out (a defaulted value points at the table it would belong to).
    pub fn value_or_parent(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(span) = self.values.get(p) {
                return span.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.values.get("").cloned().unwrap_or(0..0),
            }
        }
    }
}

/// How a value reads in a message: "a string", "an integer", ….
pub fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The JSON Schema type name a value has.
pub fn json_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Datetime(_) => "datetime",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "number",
        DeValue::Boolean(_) => "boolean",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "object",
    }
}
