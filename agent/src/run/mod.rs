//! The agent's loop: load the config, plan, execute, and again on every trigger (a change
//! of the config file, SIGHUP, a periodic resync), until SIGTERM or SIGINT.

pub mod backoff;
pub mod device;
pub mod service;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use cobox_schema::render::{self, Colour};
use cobox_schema::{Config, Source};
use notify::Watcher;

use crate::config_file;
use crate::host::SystemHost;
use crate::plan::{Action, plan};
use device::Device;

/// How often the agent reconciles with no other trigger (drift: a mount removed by hand).
pub const RESYNC: Duration = Duration::from_secs(10);
/// Changes to the config file closer together than this make one reload.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// What wakes the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    ConfigChanged,
    Reload,
    Stop,
}

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

fn load(source: &ConfigSource) -> Result<(Source, Option<Config>)> {
    let src = match source {
        ConfigSource::File(p) => config_file::read(p)?,
        ConfigSource::Embedded => Source::new(
            config_file::DEFAULT_CONFIG_NAME,
            config_file::DEFAULT_CONFIG,
        ),
    };
    let v = config_file::check(&src, &SystemHost::from_env());
    if !v.diagnostics.is_empty() {
        eprint!("{}", render::report(&v.diagnostics, &src, Colour::Never));
    }
    Ok((src, v.config))
}

/// Run the agent until stopped. Returns an error only when the first config is unusable.
pub fn run(source: ConfigSource) -> Result<()> {
    let (src, first) = load(&source)?;
    let Some(mut config) = first else {
        anyhow::bail!("config {} is invalid; nothing was started", src.name());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::channel();
    let _watcher = match &source {
        ConfigSource::File(path) => Some(watch(path, tx.clone())?),
        ConfigSource::Embedded => None,
    };
    {
        let tx = tx.clone();
        rt.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::hangup()),
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                let t = tokio::select! {
                    _ = hup.recv() => Trigger::Reload,
                    _ = term.recv() => Trigger::Stop,
                    _ = int.recv() => Trigger::Stop,
                };
                if tx.send(t).is_err() || t == Trigger::Stop {
                    return;
                }
            }
        });
    }
    let manager = service::Notifier::from_env();
    let mut accepted_text = src.text().to_string();
    let mut device = Device::new(rt.handle().clone(), &config)?;
    let mut generation = 1u64;
    tracing::info!(generation, source = %src.name(), "config accepted");
    let mut announced = false;
    let mut retries = backoff::Retries::default();
    loop {
        let converged = reconcile(&mut device, &config, generation, &mut retries);
        let status = if converged {
            format!("generation {generation}: converged")
        } else {
            format!("generation {generation}: converging")
        };
        if announced {
            manager.status(&status)
        } else {
            manager.ready(&status)
        }
        announced = true;
        let wait = retries
            .next_due(std::time::Instant::now())
            .map_or(RESYNC, |d| d.min(RESYNC));
        let mut trigger = match rx.recv_timeout(wait) {
            Ok(t) => Some(t),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Trigger::Stop),
        };
        // Coalesce a burst of triggers into one.
        while let Ok(t) = rx.recv_timeout(DEBOUNCE) {
            trigger = Some(match (trigger, t) {
                (Some(Trigger::Stop), _) | (_, Trigger::Stop) => Trigger::Stop,
                _ => t,
            });
        }
        if matches!(trigger, Some(Trigger::ConfigChanged | Trigger::Reload)) {
            manager.reloading();
        }
        match trigger {
            Some(Trigger::Stop) => break,
            Some(Trigger::ConfigChanged | Trigger::Reload) => match load(&source) {
                Ok((src, _)) if src.text() == accepted_text => {
                    tracing::debug!("config unchanged");
                }
                Ok((src, Some(next))) => {
                    retries.reset();
                    accepted_text = src.text().to_string();
                    config = next;
                    generation += 1;
                    tracing::info!(generation, source = %src.name(), "config accepted");
                }
                Ok((src, None)) => {
                    tracing::error!(generation, source = %src.name(), "config is invalid (ConfigInvalid); generation {generation} keeps running")
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot read the config; the running generation stays")
                }
            },
            None => {}
        }
    }
    manager.stopping();
    tracing::info!("stopping: unmounting and closing spaces");
    device.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Plan and execute once. A failed action is logged, and the actions of the same
/// resource after it are skipped (they depend on it); the next trigger tries again.
/// Returns whether nothing is left to do.
fn reconcile(
    device: &mut Device,
    config: &Config,
    generation: u64,
    retries: &mut backoff::Retries,
) -> bool {
    let observed = match device.observe(config) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot observe the device");
            return false;
        }
    };
    let p = plan(config, &observed);
    let mut failed: Vec<String> = Vec::new();
    let now = std::time::Instant::now();
    for action in &p.actions {
        let resource = resource_of(action);
        if failed.contains(&resource) {
            continue;
        }
        if !retries.due(&resource, now) {
            failed.push(resource);
            continue;
        }
        if let Action::Blocked { resource, reason } = action {
            tracing::warn!(%resource, %reason, "blocked");
            continue;
        }
        tracing::info!(generation, "{action}");
        match device.execute(action) {
            Ok(()) => retries.succeeded(&resource),
            Err(e) => {
                let wait = retries.failed(&resource, now);
                tracing::error!(generation, action = %action, error = %format!("{e:#}"), retry_in_s = wait.as_secs(), "action failed");
                failed.push(resource);
            }
        }
    }
    let acted = p
        .actions
        .iter()
        .any(|a| !matches!(a, Action::Blocked { .. }));
    if failed.is_empty() && acted {
        tracing::info!(
            generation,
            identity = device.identity().unwrap_or_default(),
            "converged"
        );
    } else if failed.is_empty() {
        tracing::debug!(generation, "converged");
    }
    failed.is_empty()
}

fn resource_of(action: &Action) -> String {
    match action {
        Action::Unmount { space, .. }
        | Action::CloseSpace { space }
        | Action::CreateSpace { space }
        | Action::JoinSpace { space, .. }
        | Action::OpenSpace { space }
        | Action::Mount { space, .. } => format!("space {space}"),
        Action::StopSeed { seed } | Action::StartSeed { seed, .. } => format!("seed {seed}"),
        Action::CreateIdentity => "identity".into(),
        Action::Blocked { resource, .. } => resource.clone(),
    }
}

/// Watch the config file (through its directory, as editors replace files by renaming).
fn watch(path: &Path, tx: mpsc::Sender<Trigger>) -> Result<notify::RecommendedWatcher> {
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
            let _ = tx.send(Trigger::ConfigChanged);
        }
    })?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(watcher)
}
