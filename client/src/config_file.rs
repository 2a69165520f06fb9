//! Finding, reading and validating the config file; the embedded default config.

use std::path::{Path, PathBuf};

use cobox_schema::{Host, Source, Validation, validate};

/// The config used when no file exists: one space, `home`, mounted under the mount root.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The name under which the embedded default config is reported.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded default>";

/// `$XDG_CONFIG_HOME/cobox/cobox.toml`, else `~/.config/cobox/cobox.toml`.
pub fn default_path() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .map(|c| c.join("cobox").join("cobox.toml"))
}

/// Why a config could not be read at all (as opposed to being invalid).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path} is not UTF-8 text")]
    NotUtf8 { path: String },
}

/// Read a config file (`-` is standard input).
pub fn read(path: &Path) -> Result<Source, ReadError> {
    let name = path.display().to_string();
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    }
    .map_err(|source| ReadError::Io {
        path: name.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 { path: name.clone() })?;
    let name = if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        name
    };
    Ok(Source::new(name, text))
}

/// Validate a source against a host.
pub fn check(source: &Source, host: &dyn Host) -> Validation {
    validate(source, host)
}
