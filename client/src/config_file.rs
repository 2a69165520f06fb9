//! Finding, reading and validating the config file; the embedded default config.

use std::path::{Path, PathBuf};

use cobox_schema::source::MAX_CONFIG_BYTES;
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
    // The cause is in the message, not a source: `{:#}` would print it twice.
    #[error("cannot read config {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("config {path}:{line}:{column} is not UTF-8 text")]
    NotUtf8 {
        path: String,
        line: usize,
        column: usize,
    },
    #[error("config {path} is larger than {limit} bytes: not a config")]
    TooLarge { path: String, limit: usize },
    #[error("config {path} is {what}, not a regular file")]
    NotRegular { path: String, what: &'static str },
}

/// Read a config file (`-` is standard input): a regular file only (a FIFO or a device
/// would block or never end), at most [`MAX_CONFIG_BYTES`] of it.
pub fn read(path: &Path) -> Result<Source, ReadError> {
    use std::io::Read;
    let name = path.display().to_string();
    let io = |cause| ReadError::Io {
        path: name.clone(),
        cause,
    };
    let limit = MAX_CONFIG_BYTES;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        open_regular(path, &name)?
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    }
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { path: name, limit });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        ReadError::NotUtf8 {
            path: name.clone(),
            line: valid.iter().filter(|b| **b == b'\n').count() + 1,
            column: String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1,
        }
    })?;
    let name = if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        name
    };
    Ok(Source::new(name, text))
}

/// Open `path` for reading without waiting (a FIFO would wait for a writer), and only if it
/// is a regular file.
fn open_regular(path: &Path, name: &str) -> Result<std::fs::File, ReadError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|cause| ReadError::Io {
            path: name.to_string(),
            cause,
        })?;
    let kind = file
        .metadata()
        .map_err(|cause| ReadError::Io {
            path: name.to_string(),
            cause,
        })?
        .file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular {
        path: name.to_string(),
        what,
    })
}

/// Validate a source against a host.
pub fn check(source: &Source, host: &dyn Host) -> Validation {
    validate(source, host)
}
