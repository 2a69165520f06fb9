//! Diagnostics: what is wrong with a config, where, and how to fix it.

use std::ops::Range;

use serde::Serialize;

use crate::source::{LineCol, Source};

/// How bad a diagnostic is: errors reject the config, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code, like `unknown-key` (see [`crate::codes`]).
    pub code: &'static str,
    /// The config path of the offending item, like `space[2].mount`; empty for the whole file.
    pub path: String,
    /// The byte span in the source it points at.
    pub span: Range<usize>,
    /// A lowercase sentence naming the object.
    pub message: String,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        path: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            path: path.into(),
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(
        code: &'static str,
        path: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, path, span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic with its location resolved against the source, for output.
    pub fn located(&self, source: &Source) -> LocatedDiagnostic {
        let start = source.line_col(self.span.start);
        let end = source.line_col(self.span.end);
        LocatedDiagnostic {
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            path: self.path.clone(),
            file: source.name().to_string(),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            help: self.help.clone(),
        }
    }
}

/// A diagnostic as reported to people and programs: with file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatedDiagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub path: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl LocatedDiagnostic {
    pub fn start(&self) -> LineCol {
        LineCol {
            line: self.line,
            column: self.column,
        }
    }
}

/// Sort diagnostics by position, then severity and code, so output is deterministic, and
/// drop exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| {
        (
            a.span.start,
            a.span.end,
            a.severity,
            a.code,
            &a.path,
            &a.message,
        )
            .cmp(&(
                b.span.start,
                b.span.end,
                b.severity,
                b.code,
                &b.path,
                &b.message,
            ))
    });
    diagnostics.dedup();
}
