//! The cobox.toml model: raw serde types, validation with file:line:col diagnostics, the
//! validated desired state, and the JSON Schema. No I/O happens here.

pub mod api;
pub mod codes;
pub mod config;
mod convert;
pub mod cron_expr;
pub mod describe;
pub mod diagnostic;
pub mod hexkey;
pub mod host;
pub mod invite_code;
pub mod json_schema;
pub mod overlay;
pub mod places;
pub mod raw;
pub mod render;
pub mod source;
mod structure;
mod suggest;
pub mod tree;
pub mod units;
mod validate;
pub mod web_login;
pub mod window;

pub use config::Config;
pub use diagnostic::{Diagnostic, LocatedDiagnostic, Severity};
pub use host::{FixedHost, Host};
pub use source::Source;
pub use validate::VERSION;

use serde::Deserialize;
use toml::de::DeTable;

/// The result of validating a config: the desired state if there was no error, and every
/// diagnostic (errors and warnings), sorted by position.
#[derive(Debug)]
pub struct Validation {
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Validate a config text. Syntax errors, then structural errors (unknown or missing keys,
/// wrong types), then meaning (units, keys, paths, schedules, relations) are each reported
/// in full; a later stage runs only when the earlier ones found no error.
pub fn validate(source: &Source, host: &dyn Host) -> Validation {
    let mut diagnostics = Vec::new();
    if source.text().len() > source::MAX_CONFIG_BYTES {
        let mut d = Diagnostic::error(
            "too-long",
            "",
            0..0,
            format!(
                "config is {} bytes, more than the {} a config may be",
                source.text().len(),
                source::MAX_CONFIG_BYTES
            ),
        );
        d.help = Some("a real config is a few KiB: check that this is the right file".into());
        return Validation {
            config: None,
            diagnostics: vec![d],
        };
    }
    let (root, syntax) = DeTable::parse_recoverable(source.text());
    for e in syntax {
        let span = e.span().unwrap_or(0..0);
        diagnostics.push(Diagnostic::error(
            "syntax",
            "",
            span,
            syntax_message(e.message()),
        ));
    }
    if diagnostics.is_empty() {
        structure::check(&root, json_schema::schema(), &mut diagnostics);
    }
    let mut config = None;
    if diagnostics.is_empty() {
        let spans = tree::Spans::index(&root);
        match RawConfig::deserialize(toml::de::Deserializer::from(root)) {
            Ok(raw) => {
                let mut ctx = convert::Ctx {
                    spans: &spans,
                    host,
                    out: Vec::new(),
                };
                let checked = validate::config(&mut ctx, &raw);
                diagnostics.extend(ctx.out);
                if !diagnostics.iter().any(Diagnostic::is_error) {
                    config = Some(checked);
                }
            }
            // The structural check mirrors serde; should they disagree, serde has the last word.
            Err(e) => diagnostics.push(Diagnostic::error(
                "wrong-type",
                "",
                e.span().unwrap_or(0..0),
                syntax_message(e.message()),
            )),
        }
    }
    diagnostic::sort(&mut diagnostics);
    Validation {
        config,
        diagnostics,
    }
}

use raw::RawConfig;

/// Parser messages in our style: lowercase, one line.
fn syntax_message(message: &str) -> String {
    let line = message.lines().next().unwrap_or("invalid toml").trim();
    let mut c = line.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_else(|| "invalid toml".into())
}
