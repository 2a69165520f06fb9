//! The calls that change the desired config: a candidate planned against the device, applied
//! (from the API or the fleet), and a rollback to an earlier generation.

use anyhow::Result;
use cobox_schema::api::{
    ApplyResponse, ConfigRequest, GenerationSource, PlanResponse, RollbackRequest, Summary,
};
use cobox_schema::{Config, Source};

use crate::config_file;
use crate::control::{CallError, changes};
use crate::host::SystemHost;
use crate::plan::{Observed, Plan, plan};
use crate::run::config_source::{self, ConfigSource, watch};

use super::{Agent, internal, wire};

impl Agent {
    /// Validate a candidate and plan it against the device as it is now.
    pub(super) fn dry_run(
        &mut self,
        req: &ConfigRequest,
    ) -> Result<(PlanResponse, Config), CallError> {
        let name = req.name.clone().unwrap_or_else(|| "<api>".into());
        let src = Source::new(name.clone(), req.config.clone());
        let v = config_file::check(&src, &SystemHost::from_env());
        let diagnostics = wire(&v, &src);
        let Some(candidate) = v.config else {
            let errors = diagnostics.iter().filter(|d| d.severity == "error").count();
            return Err(CallError::Invalid {
                message: format!(
                    "config {name} is invalid ({errors} error(s)); nothing was changed"
                ),
                diagnostics,
            });
        };
        let observed: Observed = self.device.observe(&candidate).map_err(internal)?;
        let p: Plan = plan(&candidate, &observed);
        let changes = changes::changes(Some(&self.config), &candidate, &observed, &p);
        let blocked = p
            .blocked
            .iter()
            .map(|b| format!("{}: {}", b.resource, b.reason))
            .collect();
        Ok((
            PlanResponse {
                generation: self.generation,
                summary: Summary::of(&changes),
                changes,
                blocked,
                warnings: diagnostics,
            },
            candidate,
        ))
    }

    pub(super) fn apply(
        &mut self,
        req: &ConfigRequest,
        kind: GenerationSource,
        restores: Option<u64>,
    ) -> Result<ApplyResponse, CallError> {
        self.apply_with(req, kind, restores, |_| None)
    }

    /// Apply `req` unless `check` refuses the validated candidate (the reason is the error).
    pub(super) fn apply_checked(
        &mut self,
        req: &ConfigRequest,
        kind: GenerationSource,
        check: impl FnOnce(&Config) -> Option<String>,
    ) -> Result<ApplyResponse, CallError> {
        self.apply_with(req, kind, None, check)
    }

    pub(super) fn apply_with(
        &mut self,
        req: &ConfigRequest,
        kind: GenerationSource,
        restores: Option<u64>,
        check: impl FnOnce(&Config) -> Option<String>,
    ) -> Result<ApplyResponse, CallError> {
        let (plan, candidate) = self.dry_run(req)?;
        if let Some(why) = check(&candidate) {
            return Err(CallError::BadRequest(why));
        }
        if req.config == self.accepted_text && restores.is_none() {
            return Ok(ApplyResponse {
                generation: self.generation,
                unchanged: true,
                plan,
            });
        }
        // The file is the desired state on disk: write it first, so a restart (or the
        // watcher's reload) finds the same text.
        let path = match &self.source {
            ConfigSource::File(p) => Some(p.clone()),
            ConfigSource::Embedded => config_file::default_path(),
        };
        if let Some(path) = &path {
            config_source::write(path, &req.config).map_err(internal)?;
            if matches!(self.source, ConfigSource::Embedded) {
                self.source = ConfigSource::File(path.clone());
                self.board.set_config_name(&path.display().to_string());
                match watch(path, self.tx.clone()) {
                    Ok(w) => self.watcher = Some(w),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "cannot watch the new config file")
                    }
                }
                tracing::info!(path = %path.display(), "the applied config is now the config file");
            }
        }
        let name = req.name.clone().unwrap_or_else(|| "<api>".into());
        let generation = self
            .accept(&req.config, &name, candidate, kind, restores)
            .map_err(internal)?;
        Ok(ApplyResponse {
            generation,
            unchanged: false,
            plan,
        })
    }

    pub(super) fn rollback(&mut self, req: &RollbackRequest) -> Result<ApplyResponse, CallError> {
        let (target, config) = self.rollback_config(req)?;
        self.apply(&config, GenerationSource::Rollback, Some(target))
    }

    /// The generation a rollback returns to, and its config.
    pub(super) fn rollback_config(
        &self,
        req: &RollbackRequest,
    ) -> Result<(u64, ConfigRequest), CallError> {
        let target = match req.generation {
            Some(n) => n,
            None => self
                .generations
                .list()
                .map_err(|e| internal(e.into()))?
                .iter()
                .rev()
                .map(|g| g.info.number)
                .find(|n| *n < self.generation)
                .ok_or_else(|| {
                    CallError::NoSuchGeneration(format!(
                        "no generation before {} is stored",
                        self.generation
                    ))
                })?,
        };
        let stored = self
            .generations
            .get(target)
            .map_err(|e| CallError::NoSuchGeneration(e.to_string()))?;
        let config = ConfigRequest {
            config: stored.text,
            name: Some(format!("generation {target}")),
        };
        Ok((target, config))
    }
}
