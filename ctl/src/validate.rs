//! `coboxctl validate`: check config files offline and report every diagnostic.

use std::path::PathBuf;

use cobox_client::config_file;
use cobox_schema::render::{self, Colour};
use cobox_schema::{Host, LocatedDiagnostic};
use serde::Serialize;

use crate::cli::Output;

/// The outcome for one file, as printed with `--output json`.
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    /// `true` when the file can be used (with `--deny-warnings`: and has no warning).
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<LocatedDiagnostic>,
    /// Set when the file could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<String>,
}

/// Validate every file; the exit status is 2 if any was unreadable, else 1 if any was
/// invalid, else 0.
pub fn run(
    files: &[PathBuf],
    output: Output,
    deny_warnings: bool,
    colour: Colour,
    host: &dyn Host,
) -> u8 {
    let mut status = 0u8;
    let mut reports = Vec::new();
    for path in files {
        let report = match config_file::read(path) {
            Err(e) => {
                status = 2;
                if output == Output::Text {
                    eprintln!("coboxctl: {e}");
                }
                FileReport {
                    file: path.display().to_string(),
                    valid: false,
                    errors: 0,
                    warnings: 0,
                    diagnostics: vec![],
                    unreadable: Some(e.to_string()),
                }
            }
            Ok(source) => {
                let v = config_file::check(&source, host);
                let errors = v.errors().count();
                let warnings = v.warnings().count();
                let valid = errors == 0 && !(deny_warnings && warnings > 0);
                if !valid {
                    status = status.max(1);
                }
                if output == Output::Text {
                    out!("{}", render::report(&v.diagnostics, &source, colour));
                }
                FileReport {
                    file: source.name().to_string(),
                    valid,
                    errors,
                    warnings,
                    diagnostics: v.diagnostics.iter().map(|d| d.located(&source)).collect(),
                    unreadable: None,
                }
            }
        };
        reports.push(report);
    }
    if output == Output::Json {
        let doc = serde_json::json!({ "valid": status == 0, "files": reports });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("json values serialize")
        );
    }
    status
}
