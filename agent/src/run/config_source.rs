//! Where the running config comes from and the file's life: read (text first, validated
//! apart, so an unchanged text is never validated again), watched (through its directory,
//! as editors replace files by renaming), replaced whole by an API apply.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result};
use cobox_schema::api::WireDiagnostic;
use cobox_schema::{Source, Validation};

use super::{Trigger, Wake};
use crate::config_file;
use crate::host::SystemHost;

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl ConfigSource {
    pub fn name(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded => config_file::DEFAULT_CONFIG_NAME.to_string(),
        }
    }
}

impl ConfigSource {
    /// The config's text, not yet validated.
    pub fn read(&self) -> Result<Source> {
        Ok(match self {
            ConfigSource::File(p) => config_file::read(p)?,
            ConfigSource::Embedded => Source::new(
                config_file::DEFAULT_CONFIG_NAME,
                config_file::DEFAULT_CONFIG,
            ),
        })
    }
}

/// Validate a config text; each diagnostic is a log event (so a JSON log stays one object
/// per line), with its code, place, config path and help.
pub fn check(src: &Source) -> Validation {
    let v = config_file::check(src, &SystemHost::from_env());
    for d in &v.diagnostics {
        let d = WireDiagnostic::from(&d.located(src));
        let at = format!("{}:{}:{}", d.file, d.line, d.column);
        let help = d.help.as_deref().unwrap_or("");
        if d.severity == "error" {
            tracing::error!(code = %d.code, %at, path = %d.path, help, "{}", d.message);
        } else {
            tracing::warn!(code = %d.code, %at, path = %d.path, help, "{}", d.message);
        }
    }
    v
}

/// Watch the config file (through its directory, as editors replace files by renaming).
pub fn watch(path: &Path, tx: mpsc::Sender<Wake>) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the file (as a reload does) must not trigger another reload.
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = tx.send(Wake::Trigger(Trigger::ConfigChanged));
        }
    })?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(watcher)
}

/// Replace the config file at `path` with `text` whole, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::atomic_file::replace(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
