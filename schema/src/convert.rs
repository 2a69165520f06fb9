//! Turning raw values into checked ones, one value at a time, recording a diagnostic
//! (with the value's span) for each that fails.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use chrono_tz::Tz;

use crate::cron_expr::Cron;
use crate::diagnostic::Diagnostic;
use crate::hexkey::{Address, PublicKey};
use crate::host::Host;
use crate::suggest::closest;
use crate::tree::Spans;
use crate::units::{Rate, Size, parse_duration};

/// The state of one validation: where values are, what the host is, what was found.
pub struct Ctx<'a> {
    pub spans: &'a Spans,
    pub host: &'a dyn Host,
    pub out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn error(
        &mut self,
        code: &'static str,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.spans.value_or_parent(path);
        self.out.push(Diagnostic::error(code, path, span, message));
        self.out.last_mut().expect("just pushed")
    }

    pub fn warning(
        &mut self,
        code: &'static str,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.spans.value_or_parent(path);
        self.out
            .push(Diagnostic::warning(code, path, span, message));
        self.out.last_mut().expect("just pushed")
    }

    pub fn size(&mut self, path: &str, text: Option<&str>) -> Option<Size> {
        match Size::parse(text?) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error("invalid-size", path, format!("`{path}`: {e}"))
                    .help = Some("write a number and a unit, like \"50 GiB\" or \"500MB\"".into());
                None
            }
        }
    }

    pub fn rate(&mut self, path: &str, text: Option<&str>) -> Option<Rate> {
        match Rate::parse(text?) {
            Ok(Rate(0)) => {
                self.error("invalid-rate", path, format!("`{path}` is zero"))
                    .help = Some(
                    "remove the cap for no limit, or use a deny window to stop traffic".into(),
                );
                None
            }
            Ok(r) => Some(r),
            Err(e) => {
                self.error("invalid-rate", path, format!("`{path}`: {e}"))
                    .help = Some("write a size per second, like \"2 MiB/s\"".into());
                None
            }
        }
    }

    pub fn duration(&mut self, path: &str, text: &str) -> Option<std::time::Duration> {
        match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.error(
                    "zero-window",
                    path,
                    format!("`{path}` is zero: the period would never be open"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error("invalid-duration", path, format!("`{path}`: {e}"))
                    .help =
                    Some("write a number and a unit, like \"8h\", \"90m\" or \"1h30m\"".into());
                None
            }
        }
    }

    pub fn cron(&mut self, path: &str, text: &str) -> Option<Cron> {
        match Cron::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                let help = match text.split_whitespace().count() {
                    6 => {
                        "with seconds: `sec min hour day month weekday`, like \"0 0 22 * * mon-fri\""
                    }
                    7 => {
                        "with seconds and a year: `sec min hour day month weekday year`, like \"0 0 22 * * * 2027\""
                    }
                    _ => "write `min hour day month weekday`, like \"0 22 * * mon-fri\"",
                };
                self.error(
                    "invalid-cron",
                    path,
                    format!("cron expression {text:?} is not valid: {e}"),
                )
                .help = Some(help.into());
                None
            }
        }
    }

    pub fn zone(&mut self, path: &str, text: Option<&str>) -> Option<Tz> {
        let Some(text) = text else {
            return Some(Tz::UTC);
        };
        match text.parse::<Tz>() {
            Ok(z) => Some(z),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let help = closest(text, names)
                    .map(|z| format!("did you mean {z:?}?"))
                    .unwrap_or_else(|| {
                        "use an IANA zone name like \"Europe/Berlin\" or \"UTC\"".into()
                    });
                self.error(
                    "invalid-zone",
                    path,
                    format!("time zone {text:?} is not an IANA zone name"),
                )
                .help = Some(help);
                None
            }
        }
    }

    pub fn public_key(&mut self, path: &str, text: &str) -> Option<PublicKey> {
        match text.parse() {
            Ok(k) => Some(k),
            Err(e) => {
                self.error("invalid-key", path, format!("public key {text:?} {e}"))
                    .help = Some(
                    "a public key is 64 hex characters, as printed by `coboxctl identity`".into(),
                );
                None
            }
        }
    }

    pub fn address(&mut self, path: &str, text: &str) -> Option<Address> {
        match text.parse() {
            Ok(a) => Some(a),
            Err(e) => {
                self.error(
                    "invalid-address",
                    path,
                    format!("space address {text:?} {e}"),
                )
                .help = Some("a space address is 64 hex characters".into());
                None
            }
        }
    }

    pub fn socket_addr(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    "invalid-socket-address",
                    path,
                    format!("{text:?} is not an ip:port address"),
                )
                .help = Some(
                    "write an IP address and a port, like \"0.0.0.0:7070\" or \"[::]:7070\"".into(),
                );
                None
            }
        }
    }

    /// An absolute path, or one under the home directory (`~/…`), lexically normalized.
    pub fn path(&mut self, path: &str, text: &str) -> Option<PathBuf> {
        if text.contains('\0') {
            self.error(
                "invalid-path",
                path,
                format!("path {text:?} contains a NUL byte"),
            );
            return None;
        }
        let resolved = if text == "~" || text.starts_with("~/") {
            match self.host.home() {
                Some(home) => home.join(text.trim_start_matches('~').trim_start_matches('/')),
                None => {
                    self.error(
                        "relative-path",
                        path,
                        format!("path {text:?} starts with `~` but there is no home directory"),
                    );
                    return None;
                }
            }
        } else if Path::new(text).is_absolute() {
            PathBuf::from(text)
        } else {
            self.error("relative-path", path, format!("path {text:?} is relative"))
                .help = Some("write an absolute path, or one starting with `~/`".into());
            return None;
        };
        Some(normalize(&resolved))
    }
}

/// Remove `.` and resolve `..` without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
