//! The JSON Schema of `cobox.toml`, generated from the raw types.

use std::sync::OnceLock;

use crate::raw::RawConfig;

/// The schema as a JSON value (draft 2020-12), built once.
pub fn schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(RawConfig).to_value())
}

/// The schema as pretty-printed JSON with a final newline, as committed in
/// `schema/cobox.schema.json`.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(schema()).expect("a json value serializes");
    text.push('\n');
    text
}
