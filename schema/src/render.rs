//! Diagnostics rendered for people, compiler style: location, the line, a caret, help.

use std::fmt::Write;

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::Source;

/// Colours on or off (the caller decides: only on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Never,
    Always,
}

struct Paint(Colour);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        match self.0 {
            Colour::Never => text.to_string(),
            Colour::Always => format!("\x1b[{code}m{text}\x1b[0m"),
        }
    }
}

/// Render one diagnostic:
///
/// ```text
/// error[invalid-size]: `storage.quota`: size "50 GBs" has an unknown unit "GBs"
///   --> cobox.toml:12:9
///    |
/// 12 | quota = "50 GBs"
///    |         ^^^^^^^^
///    = at: storage.quota
///    = help: write a number and a unit, like "50 GiB" or "500MB"
/// ```
pub fn diagnostic(d: &Diagnostic, source: &Source, colour: Colour) -> String {
    let paint = Paint(colour);
    let loc = d.located(source);
    let (label, code) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        paint.wrap(code, &format!("{label}[{}]", d.code)),
        paint.wrap("1", &d.message)
    );
    let gutter = loc.line.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(
        out,
        "{pad}{} {}:{}:{}",
        paint.wrap("1;34", "-->"),
        source.name(),
        loc.line,
        loc.column
    );
    let text = source.line_text(loc.line);
    if !text.is_empty() || loc.line > 0 {
        let bar = paint.wrap("1;34", "|");
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(
            out,
            "{} {bar} {}",
            paint.wrap("1;34", &loc.line.to_string()),
            text.replace('\t', " ")
        );
        let width = if loc.end_line == loc.line {
            loc.end_column.saturating_sub(loc.column).max(1)
        } else {
            text.chars().count().saturating_sub(loc.column - 1).max(1)
        };
        let carets = paint.wrap(code, &"^".repeat(width));
        let _ = writeln!(out, "{pad} {bar} {}{carets}", " ".repeat(loc.column - 1));
    }
    if !d.path.is_empty() {
        let _ = writeln!(out, "{pad} = at: {}", d.path);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} = {}: {help}", paint.wrap("1", "help"));
    }
    out
}

/// Render every diagnostic, then a summary line.
pub fn report(diagnostics: &[Diagnostic], source: &Source, colour: Colour) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&diagnostic(d, source, colour));
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let verdict = if errors == 0 { "valid" } else { "invalid" };
    let _ = writeln!(
        out,
        "{}: {verdict} ({}, {})",
        source.name(),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
