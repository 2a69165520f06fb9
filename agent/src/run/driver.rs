//! The running agent: the accepted config and its generation, the device, the status board
//! and the control API; one reconcile, one reload or one API call at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Result;
use cobox_schema::api::{
    AgentInfo, ConfigInvalid, EventKind, GenerationSource, PruneCandidates, WireDiagnostic,
};
use cobox_schema::{Config, Source, Validation};

use super::action_error::Retry;
use super::config_source::{self, ConfigSource, watch};
use super::device::Device;
use super::{RESYNC, Wake, calls};
use crate::backoff::Retries;
use crate::control::board::{Board, now_rfc3339};
use crate::control::conditions::{self, Failure as ActionFailure};
use crate::control::generations::{Generations, digest};
use crate::control::metrics::MetricsServer;
use crate::control::server::{ApiState, Server};
use crate::control::{Call, CallError, CallMsg};
use crate::fleet::state::FleetState;
use crate::plan::ResourceId;
use crate::plan::plan;
use crate::web::{WebConfig, WebServer};
use crate::{atomic_file, config_file};

mod admin_calls;
mod admins;
mod config_calls;
mod probation;
mod space_calls;

fn wire(v: &Validation, src: &Source) -> Vec<WireDiagnostic> {
    v.diagnostics
        .iter()
        .map(|d| WireDiagnostic::from(&d.located(src)))
        .collect()
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("api types serialize")
}

fn internal(e: anyhow::Error) -> CallError {
    CallError::internal(e)
}

/// The agent between reconciles.
pub struct Agent {
    rt: tokio::runtime::Runtime,
    source: ConfigSource,
    config: Config,
    accepted_text: String,
    generation: u64,
    generations: Generations,
    board: Board,
    device: Device,
    retries: Retries<ResourceId>,
    failures: BTreeMap<ResourceId, ActionFailure>,
    blocked: BTreeMap<ResourceId, String>,
    was_converged: bool,
    /// Feed faults already reported as events: (resource, fault).
    faults_seen: BTreeSet<(String, String)>,
    tx: mpsc::Sender<Wake>,
    watcher: Option<notify::RecommendedWatcher>,
    server: Option<Server>,
    /// The Prometheus endpoint, when `[api] metrics` asks for one.
    metrics: Option<MetricsServer>,
    /// The web dashboard, when `[api] web` asks for one.
    web: Option<WebServer>,
    /// Where the running generation came from.
    generation_source: GenerationSource,
    /// What the device follows of its admins (kept on disk).
    fleet: FleetState,
    /// Entries in the fleet's logs at the last look.
    fleet_total: Option<u64>,
    /// Probation is putting back the config before one from the admins.
    fleet_reverting: bool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("generation", &self.generation)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Take `config` (read from `src`) as the running generation, open the control API.
    pub fn start(
        rt: tokio::runtime::Runtime,
        source: ConfigSource,
        src: Source,
        config: Config,
        tx: mpsc::Sender<Wake>,
    ) -> Result<Agent> {
        // Validation refused these already; checked again where they take effect.
        if let Some(why) = cobox_schema::places::refusal(
            &config.device.data_dir,
            cobox_schema::places::Use::DataDir,
            None,
        ) {
            anyhow::bail!("data directory refused: {why}");
        }
        // What replacements interrupted by a crash left (the config file written by an
        // apply, generations) goes first.
        let mut swept = atomic_file::sweep(&config.device.data_dir.join("generations"));
        if let ConfigSource::File(path) = &source {
            swept.extend(atomic_file::sweep_for(path));
        }
        for path in swept {
            tracing::info!(path = %path.display(), "removed the temporary file of an interrupted write");
        }
        let generations = Generations::new(&config.device.data_dir);
        let text = src.text().to_string();
        let latest = generations.latest()?;
        let (generation, generation_source) = match latest {
            Some(g) if g.info.digest == digest(&text) => (g.info.number, g.info.source),
            _ => {
                let kind = match source {
                    ConfigSource::File(_) => GenerationSource::File,
                    ConfigSource::Embedded => GenerationSource::Embedded,
                };
                let number = generations
                    .record(&text, kind, src.name(), None, &now_rfc3339())?
                    .number;
                (number, kind)
            }
        };
        // Unreadable, it would let the mark go back: nothing starts.
        let fleet = FleetState::load(&config.device.data_dir)?;
        let board = Board::new(AgentInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started: now_rfc3339(),
            identity: None,
            config: source.name(),
            data_dir: config.device.data_dir.display().to_string(),
        });
        board.set_generation(generation);
        board.set_lag_history(crate::control::lag::LagHistory::load(
            &config.device.data_dir,
            crate::control::lag::minute_of(std::time::SystemTime::now()),
        ));
        board.emit(
            EventKind::ConfigAccepted,
            generation,
            None,
            format!("generation {generation} from {}", src.name()),
        );
        tracing::info!(generation, source = %src.name(), "config accepted");
        let device = Device::new(rt.handle().clone(), &config)?;
        board.set_identity(device.identity());
        let watcher = match &source {
            ConfigSource::File(path) => Some(watch(path, tx.clone())?),
            ConfigSource::Embedded => None,
        };
        let state = ApiState {
            board: board.clone(),
            calls: calls(&tx),
            store: device.store().clone(),
        };
        let server = Server::start(rt.handle(), &config.api.socket, state)?;
        let metrics = start_metrics(rt.handle(), config.api.metrics, &board);
        let web = start_web(
            rt.handle(),
            &config,
            ApiState {
                board: board.clone(),
                calls: calls(&tx),
                store: device.store().clone(),
            },
        );
        let mut agent = Agent {
            web,
            generation_source,
            fleet,
            fleet_total: None,
            fleet_reverting: false,
            metrics,
            rt,
            source,
            config,
            accepted_text: text,
            generation,
            generations,
            board,
            device,
            retries: Retries::default(),
            failures: BTreeMap::new(),
            blocked: BTreeMap::new(),
            was_converged: false,
            faults_seen: BTreeSet::new(),
            tx,
            watcher,
            server: Some(server),
        };
        agent.admins_accepted(generation_source);
        Ok(agent)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long to sleep: until the next retry, at most the resync period.
    pub fn wait_time(&self) -> std::time::Duration {
        self.retries
            .next_due(Instant::now())
            .map_or(RESYNC, |d| d.min(RESYNC))
    }

    /// Plan and execute once, then record status. A failed action is logged and recorded,
    /// and actions that depend on its resource are skipped this time. A transient failure
    /// is retried with backoff; a permanent one (the error policy) stalls its resource
    /// until the config or the planned action changes. Returns whether nothing is left to
    /// do.
    pub fn reconcile(&mut self) -> bool {
        let started = Instant::now();
        let converged = self.reconcile_once();
        self.board
            .reconciled(started.elapsed(), !self.failures.is_empty());
        converged
    }

    fn reconcile_once(&mut self) -> bool {
        let observed = match self.device.observe(&self.config) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot observe the device");
                return false;
            }
        };
        for (resource, message) in self.device.take_drift() {
            self.board
                .emit(EventKind::Drift, self.generation, Some(resource), message);
        }
        let p = plan(&self.config, &observed);
        let mut failed: BTreeSet<ResourceId> = BTreeSet::new();
        let mut acted = false;
        let now = Instant::now();
        let generation = self.generation;
        for b in &p.blocked {
            if self.blocked.get(&b.resource) != Some(&b.reason) {
                tracing::warn!(resource = %b.resource, reason = %b.reason, "blocked");
                self.board.emit(
                    EventKind::Blocked,
                    generation,
                    Some(b.resource.to_string()),
                    b.reason.clone(),
                );
            }
        }
        for action in &p.actions {
            let resource = action.resource();
            if failed.contains(&resource)
                || action.depends_on().is_some_and(|d| failed.contains(&d))
            {
                continue;
            }
            let held = self
                .failures
                .get(&resource)
                .is_some_and(|f| f.retry_in_s.is_none() && f.action == *action);
            if held || !self.retries.due(&resource, now) {
                failed.insert(resource);
                continue;
            }
            acted = true;
            tracing::info!(generation, "{action}");
            // A panic while acting on one resource fails that resource only: the device
            // goes on with every other one.
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.device.execute(action)
            }))
            .unwrap_or_else(|panic| {
                Err(anyhow::anyhow!("panicked: {}", panic_message(&panic)).into())
            });
            match done {
                Ok(()) => {
                    self.retries.succeeded(&resource);
                    self.failures.remove(&resource);
                    self.board.emit(
                        EventKind::ActionSucceeded,
                        generation,
                        Some(resource.to_string()),
                        action.to_string(),
                    );
                }
                Err(e) => {
                    let retry_in_s = match e.retry {
                        Retry::Backoff => Some(self.retries.failed(&resource, now).as_secs()),
                        Retry::WhenChanged => None,
                    };
                    let error = e.to_string();
                    match retry_in_s {
                        Some(wait) => {
                            tracing::error!(generation, action = %action, error = %error, retry_in_s = wait, "action failed")
                        }
                        None => {
                            tracing::error!(generation, action = %action, error = %error, "action failed; not retried until the config changes")
                        }
                    }
                    self.board.emit(
                        EventKind::ActionFailed,
                        generation,
                        Some(resource.to_string()),
                        format!("{action}: {error}"),
                    );
                    self.failures.insert(
                        resource.clone(),
                        ActionFailure {
                            action: action.clone(),
                            error,
                            retry_in_s,
                        },
                    );
                    failed.insert(resource);
                }
            }
        }
        self.device.housekeep();
        self.board.set_policy(self.device.policy().clone());
        self.board.set_network(
            self.device.network().cloned(),
            self.device
                .listening()
                .iter()
                .map(ToString::to_string)
                .collect(),
        );
        self.blocked = p
            .blocked
            .iter()
            .map(|b| (b.resource.clone(), b.reason.clone()))
            .collect();
        // What is left: plan again only when something was done.
        let (observed, remaining) = if acted {
            match self.device.observe(&self.config) {
                Ok(o) => {
                    let r = plan(&self.config, &o);
                    (o, r)
                }
                Err(_) => (observed, p),
            }
        } else {
            (observed, p)
        };
        self.failures
            .retain(|res, _| remaining.actions.iter().any(|a| a.resource() == *res));
        let converged = failed.is_empty() && remaining.is_converged();
        let live = self.device.live();
        for (name, faults) in &live.faults {
            let kind = if self.config.spaces.iter().any(|s| s.name == *name) {
                "space"
            } else {
                "seed"
            };
            for fault in faults {
                let key = (format!("{kind} {name}"), fault.clone());
                if self.faults_seen.insert(key.clone()) {
                    self.board
                        .emit(EventKind::FeedFault, generation, Some(key.0), key.1);
                }
            }
        }
        let mut found =
            conditions::resources(&self.config, &observed, &remaining, &self.failures, &live);
        if let Some(a) = self.admins_view() {
            for r in found
                .iter_mut()
                .filter(|r| r.kind == cobox_schema::api::ResourceKind::Fleet)
            {
                conditions::admins(r, &a);
            }
        }
        self.board.set_identity(self.device.identity());
        self.board.set_resources(generation, converged, found);
        if converged && (acted || !self.was_converged) {
            tracing::info!(
                generation,
                identity = self.device.identity().unwrap_or_default(),
                "converged"
            );
            self.board.emit(
                EventKind::Converged,
                generation,
                None,
                format!("generation {generation} converged"),
            );
        } else if converged {
            tracing::debug!(generation, "converged");
        }
        self.was_converged = converged;
        converged
    }

    /// The config file changed or SIGHUP: take a valid new text as the next generation; an
    /// invalid one leaves the running generation and shows `ConfigInvalid`.
    pub fn reload_file(&mut self) {
        // The agent's own write of an applied config reads back unchanged: it is neither
        // validated nor planned again.
        match self.source.read().map(|src| {
            let v = (src.text() != self.accepted_text).then(|| config_source::check(&src));
            (src, v)
        }) {
            Ok((_, None)) => {
                tracing::debug!("config unchanged");
                self.board.set_config_invalid(None);
            }
            Ok((src, Some(v))) => match v.config {
                Some(next) => {
                    let kind = match self.source {
                        ConfigSource::File(_) => GenerationSource::File,
                        ConfigSource::Embedded => GenerationSource::Embedded,
                    };
                    if let Err(e) = self.accept(src.text(), src.name(), next, kind, None) {
                        tracing::error!(error = %format!("{e:#}"), "cannot record the new generation; the running one stays");
                    }
                }
                None => {
                    let diagnostics = wire(&v, &src);
                    let errors = diagnostics.iter().filter(|d| d.severity == "error").count();
                    tracing::error!(generation = self.generation, source = %src.name(), errors, "config is invalid (ConfigInvalid); generation {} keeps running", self.generation);
                    self.board.emit(
                        EventKind::ConfigInvalid,
                        self.generation,
                        None,
                        format!(
                            "{} has {errors} error(s); generation {} keeps running",
                            src.name(),
                            self.generation
                        ),
                    );
                    self.board.set_config_invalid(Some(ConfigInvalid {
                        since: now_rfc3339(),
                        diagnostics,
                    }));
                }
            },
            Err(e) => {
                // Gone, not a regular file, too large, not UTF-8: a refused edit like any
                // other, shown as ConfigInvalid.
                let message = format!("{e:#}");
                let (line, column) = match e.downcast_ref::<config_file::ReadError>() {
                    Some(config_file::ReadError::NotUtf8 { line, column, .. }) => (*line, *column),
                    _ => (1, 1),
                };
                let file = self.source.name();
                tracing::error!(generation = self.generation, error = %message, "config is unreadable (ConfigInvalid); generation {} keeps running", self.generation);
                self.board.emit(
                    EventKind::ConfigInvalid,
                    self.generation,
                    None,
                    format!(
                        "{file} cannot be read; generation {} keeps running",
                        self.generation
                    ),
                );
                self.board.set_config_invalid(Some(ConfigInvalid {
                    since: now_rfc3339(),
                    diagnostics: vec![WireDiagnostic {
                        severity: "error".into(),
                        code: cobox_schema::codes::UNREADABLE.0.into(),
                        message,
                        path: String::new(),
                        file,
                        line,
                        column,
                        help: Some(
                            "write the config back as a regular UTF-8 file of at most 1 MiB".into(),
                        ),
                    }],
                }));
            }
        }
    }

    /// Make `text` the running generation.
    fn accept(
        &mut self,
        text: &str,
        name: &str,
        config: Config,
        kind: GenerationSource,
        restores: Option<u64>,
    ) -> Result<u64> {
        let g = self
            .generations
            .record(text, kind, name, restores, &now_rfc3339())?;
        self.generation = g.number;
        self.accepted_text = text.to_string();
        self.retries.reset();
        self.failures.clear();
        self.was_converged = false;
        if config.api.socket != self.config.api.socket {
            let state = ApiState {
                board: self.board.clone(),
                calls: calls(&self.tx),
                store: self.device.store().clone(),
            };
            match Server::start(self.rt.handle(), &config.api.socket, state) {
                Ok(s) => self.server = Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot move the control API; it stays where it was")
                }
            }
        }
        if config.api.metrics != self.config.api.metrics {
            self.metrics = None;
            self.metrics = start_metrics(self.rt.handle(), config.api.metrics, &self.board);
        }
        if config.api.web != self.config.api.web
            || config.api.web_login != self.config.api.web_login
            || config.device.name != self.config.device.name
        {
            self.web = None;
            let state = ApiState {
                board: self.board.clone(),
                calls: calls(&self.tx),
                store: self.device.store().clone(),
            };
            self.web = start_web(self.rt.handle(), &config, state);
        }
        if config.device.data_dir != self.config.device.data_dir {
            tracing::warn!(
                "a changed [device] data_dir takes effect when the agent restarts; this one keeps {}",
                self.config.device.data_dir.display()
            );
        }
        self.config = config;
        self.generation_source = kind;
        self.admins_accepted(kind);
        self.board.set_generation(g.number);
        self.board.emit(
            EventKind::ConfigAccepted,
            g.number,
            None,
            format!("generation {} from {name} ({kind})", g.number),
        );
        tracing::info!(generation = g.number, source = %name, %kind, "config accepted");
        Ok(g.number)
    }

    /// Answer an API call; returns whether the desired state changed (reconcile now).
    pub fn answer(&mut self, msg: CallMsg) -> bool {
        let CallMsg { call, reply } = msg;
        let (answer, changed) = match call {
            // Answered beside the loop: they wait for the space's lock.
            call @ (Call::Versions(_)
            | Call::Restore(_)
            | Call::Usage(_)
            | Call::Conflicts(_)
            | Call::ToFetch(_)) => {
                self.answer_files(call, reply);
                return false;
            }
            Call::Plan(req) => (self.dry_run(&req).map(|p| to_value(&p.0)), false),
            Call::Apply(req) => match self.apply(&req, GenerationSource::Api, None) {
                Ok(a) => {
                    let changed = !a.unchanged;
                    (Ok(to_value(&a)), changed)
                }
                Err(e) => (Err(e), false),
            },
            Call::Rollback(req) if req.dry_run => (
                self.rollback_config(&req)
                    .and_then(|(_, config)| self.dry_run(&config))
                    .map(|p| to_value(&p.0)),
                false,
            ),
            Call::Rollback(req) => match self.rollback(&req) {
                Ok(a) => (Ok(to_value(&a)), true),
                Err(e) => (Err(e), false),
            },
            Call::PruneCandidates => (
                self.device
                    .prune_candidates(&self.config)
                    .map(|c| to_value(&PruneCandidates { candidates: c }))
                    .map_err(internal),
                false,
            ),
            Call::Prune(req) => (self.prune(&req).map(|c| to_value(&c)), false),
            // Reconciled at once, so status shows the sync.
            Call::Sync(req) => (self.sync(&req).map(|c| to_value(&c)), true),
            Call::RemoteApply(req) => (self.remote_apply(&req).map(|r| to_value(&r)), false),
            Call::RemoteStatus(req) => (self.remote_status(&req).map(|r| to_value(&r)), false),
            Call::AdminsChange(req) => (self.admins_change(&req).map(|r| to_value(&r)), false),
            Call::AdminsSign(req) => (self.admins_sign(&req).map(|r| to_value(&r)), false),
            Call::AdminsReset => (self.admins_reset().map(|r| to_value(&r)), false),
            Call::Members(req) => (
                self.device
                    .members(&req.space)
                    .map(|m| to_value(&m))
                    .map_err(CallError::NoSuchSpace),
                false,
            ),
            Call::Rotate(req) => (
                self.device
                    .rotate(&req.space)
                    .map(|m| to_value(&m))
                    .map_err(CallError::NoSuchSpace),
                false,
            ),
        };
        // The caller may have given up waiting; that is fine.
        let _ = reply.send(answer);
        changed
    }

    /// Keep the lag history, unmount everything, checkpoint every space, close the API.
    pub fn shutdown(mut self) {
        let dir = &self.config.device.data_dir;
        if let Err(e) = self.board.lag_history().save(dir) {
            tracing::warn!(path = %dir.join(crate::control::lag::FILE).display(), error = %e, "cannot keep the replica lag history");
        }
        self.server = None;
        self.metrics = None;
        self.web = None;
        self.device.shutdown();
        drop(self.watcher.take());
        drop(self.rt);
    }
}

/// Serve metrics on `addr` when asked; a failure to listen is logged and leaves none.
fn start_metrics(
    rt: &tokio::runtime::Handle,
    addr: Option<std::net::SocketAddr>,
    board: &Board,
) -> Option<MetricsServer> {
    let addr = addr?;
    match MetricsServer::start(rt, addr, board.clone()) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot serve metrics");
            None
        }
    }
}

/// Serve the web dashboard when `[api] web` asks for it; a failure to listen is logged
/// and leaves none.
fn start_web(rt: &tokio::runtime::Handle, config: &Config, api: ApiState) -> Option<WebServer> {
    let addr = config.api.web?;
    let web = WebConfig {
        addr,
        device: config
            .device
            .name
            .clone()
            .unwrap_or_else(super::device::host_name),
        login: (&config.api.web_login).into(),
    };
    match WebServer::start(rt, web, api) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot serve the web dashboard");
            None
        }
    }
}

/// The message a panic carried.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
