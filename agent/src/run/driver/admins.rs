//! The loop's side of following the admins: the authority rooted on first use and re-rooted
//! by a local edit of `[admins]`, the fleet read, the authority and the envelopes followed,
//! a config from the admins checked and applied through the same path as `coboxctl apply`,
//! this device's report published. Probation is in `probation.rs`; what an admin's device
//! answers (publishing envelopes and changes of the admin set, devices' reports) in
//! `admin_calls.rs`.

use std::sync::Arc;

use cobox_keys::authority::Authority;
use cobox_keys::follow::{self, Head, Mark};
use cobox_schema::api::{
    AdminsStatus, ConditionType, ConfigRequest, DeviceReport, EnvelopeOutcome, EventKind,
    GenerationSource, RefusedEnvelope,
};
use cobox_schema::hexkey::PublicKey;

use super::Agent;
use crate::control::CallError;
use crate::control::board::now_rfc3339;
use crate::fleet::state::{AdminSet, Pending, Probation};
use crate::fleet::{checks, inbox};
use crate::space::message::Message;
use crate::space::{Space, SpaceError};

/// A device publishes its report when it changed, and at least this often.
const REPORT_EVERY: u64 = 600;

pub(super) fn hex(b: &[u8; 32]) -> String {
    PublicKey(*b).to_string()
}

/// A device key given in a request, or why it is not one.
pub(super) fn key_arg(text: &str, what: &str) -> Result<PublicKey, CallError> {
    text.parse().map_err(|_| {
        CallError::BadRequest(format!(
            "{what} {text:?} is not a device key (64 hex characters)"
        ))
    })
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Agent {
    /// After a config is accepted (and at the start): root the authority on first use; a
    /// local edit of `[admins]` (the file, the socket) takes the device back: re-rooted,
    /// reported loudly. A config from the admins never moves the root.
    pub(super) fn admins_accepted(&mut self, kind: GenerationSource) {
        let set = AdminSet::of(&self.config.admins);
        // A config from the admins, or probation putting back the one before it, is not
        // the owner's doing.
        let local = kind != GenerationSource::RemoteAdmin && !self.fleet_reverting;
        let edited = self.fleet.seen.as_ref() != Some(&set);
        let mut note = None;
        if set.keys.is_empty() {
            if self.fleet.genesis.is_some() && local && edited {
                self.fleet.genesis = None;
                self.fleet.entries.clear();
                note = Some(format!(
                    "the admins were removed by a local edit ({kind}); this device is no longer managed"
                ));
            }
        } else if self.fleet.genesis.is_none() {
            note = Some(format!(
                "trusting {} admin key(s), threshold {}, from this first config (trust on first use)",
                set.keys.len(),
                set.threshold
            ));
            self.fleet.genesis = Some(set.clone());
        } else if local && edited && self.fleet.genesis.as_ref() != Some(&set) {
            note = Some(format!(
                "[admins] was edited locally ({kind}): the admin authority is re-rooted on its {} key(s), threshold {}",
                set.keys.len(),
                set.threshold
            ));
            self.fleet.local_override = Some(format!(
                "{}: [admins] edited locally ({kind})",
                now_rfc3339()
            ));
            self.fleet.genesis = Some(set.clone());
            self.fleet.entries.clear();
        }
        // Drift: the owner runs something else than the admins' last config.
        if !local {
            self.fleet.drift = None;
        } else if self.fleet.mark.generation > 0 && self.config.admins.managed() {
            self.fleet.drift = Some(format!(
                "{}: generation {} from a local edit ({kind})",
                now_rfc3339(),
                self.generation
            ));
        }
        self.fleet.seen = Some(set);
        if let Some(message) = note {
            tracing::warn!("{message}");
            self.board
                .emit(EventKind::Admins, self.generation, None, message);
        }
        self.save_fleet();
    }

    pub(super) fn save_fleet(&mut self) {
        if let Err(e) = self.fleet.save(&self.config.device.data_dir) {
            tracing::error!(error = %format!("{e:#}"), "cannot keep what this device follows of its admins");
        }
    }

    /// The fleet space, when this config names one and it is open.
    pub(super) fn fleet_space(&self) -> Option<Arc<tokio::sync::Mutex<Space>>> {
        self.device.space(self.device.following()?)
    }

    /// Append `message` to this device's log in the fleet space, durably.
    pub(super) fn append_to_fleet(
        &self,
        space: &Arc<tokio::sync::Mutex<Space>>,
        message: Message,
    ) -> Result<(), SpaceError> {
        self.rt
            .block_on(async { space.lock().await.append(&[message]).await })
            .map(|_| ())
    }

    /// Whether this device follows its admins (the planned resource is in place).
    pub fn follows_fleet(&self) -> bool {
        self.device.following().is_some()
    }

    /// Whether anything was written to the fleet since the last look (cheap: log lengths;
    /// a busy space is looked at the next time).
    pub fn fleet_grew(&mut self) -> bool {
        let Some(space) = self.fleet_space() else {
            return false;
        };
        let Ok(mut s) = space.try_lock() else {
            return false;
        };
        let total = self.rt.block_on(inbox::total(&mut s)).unwrap_or(0);
        drop(s);
        let grew = self.fleet_total != Some(total);
        self.fleet_total = Some(total);
        grew
    }

    /// Read the fleet, follow the authority and the envelopes, apply a config the admins
    /// published, publish this device's report. Returns whether the running config changed.
    pub fn follow_admins(&mut self) -> bool {
        if self.config.admins.fleet.is_none() {
            self.board.set_admins(None);
            return false;
        }
        let mut changed = false;
        if self.fleet.pending.is_some() {
            // Accepted before a crash and not applied: applied now.
            changed |= self.apply_pending();
        }
        let (Some(space), Some(me)) = (self.fleet_space(), self.device.signer()) else {
            self.show_admins();
            return changed;
        };
        let read = self.rt.block_on(async {
            let mut s = space.lock().await;
            inbox::read_new(&mut s, &mut self.fleet).await
        });
        let found = match read {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fleet");
                return changed;
            }
        };
        let head_before = self.fleet.authority().map(|a| a.head);
        for e in &found.entries {
            self.fleet.add_entry(e);
        }
        for (keys, threshold) in &found.geneses {
            let g = AdminSet::from_keys(keys, *threshold);
            if !self.fleet.geneses.contains(&g) {
                self.fleet.geneses.push(g);
            }
        }
        self.adopt_chain();
        self.publish_genesis(&space, &me);
        let authority = self.fleet.authority();
        if let Some(a) = &authority
            && head_before.is_some_and(|h| h != a.head)
        {
            self.board.emit(
                EventKind::Admins,
                self.generation,
                None,
                format!(
                    "the admin set changed: {} key(s), threshold {}",
                    a.keys.len(),
                    a.threshold
                ),
            );
        }
        // Only an admin's device keeps what the fleet says about other devices; one that
        // just became an admin reads the fleet again from the start.
        let admin = authority
            .as_ref()
            .is_some_and(|a| a.keys.contains(&me.public.0));
        let rereading = self.fleet.rereading;
        self.fleet.rereading &= !found.caught_up;
        if admin && !self.fleet.admin {
            self.fleet.cursors.clear();
            self.fleet.rereading = true;
            self.fleet_total = None;
        }
        self.fleet.admin = admin;
        for mut r in found.reports.into_iter().filter(|_| admin) {
            let newer = self
                .fleet
                .reports
                .get(&r.device)
                .is_none_or(|known| known.at <= r.at);
            if newer {
                if let Some(text) = r.config.take() {
                    self.fleet.configs.insert(r.device.clone(), text);
                }
                self.fleet.reports.insert(r.device.clone(), r);
            }
        }
        let mut mine = self.fleet.inbox();
        for e in found.envelopes {
            if !e.verifies() {
                continue;
            }
            if admin || e.target == me.public.0 {
                self.fleet
                    .note_published(&hex(&e.target), Head::of(&e), authority.as_ref());
            }
            if e.target == me.public.0 && !(rereading && e.generation <= self.fleet.mark.generation)
            {
                mine.push(e);
            }
        }
        if let (Some(auth), Some(fleet)) = (&authority, &self.fleet.fleet) {
            let fleet: [u8; 32] = fleet.parse::<PublicKey>().map(|k| k.0).unwrap_or([0; 32]);
            let step = follow::step(self.fleet.mark, auth, &me.public.0, &fleet, &mine);
            for (digest, (generation, signer, why)) in &step.refused {
                let r = RefusedEnvelope {
                    generation: *generation,
                    signer: hex(signer),
                    digest: hex(digest),
                    reason: why.code().into(),
                };
                if self.fleet.refuse(r) {
                    self.board.emit(
                        EventKind::Admins,
                        self.generation,
                        None,
                        format!(
                            "refused envelope generation {generation} signed by {}: {}",
                            hex(signer),
                            why.code()
                        ),
                    );
                }
            }
            if let Some(tip) = step.chain.last() {
                self.fleet.mark = Mark::of(tip);
                match tip.open(&me) {
                    Ok(text) => {
                        self.fleet.pending = Some(Pending {
                            generation: tip.generation,
                            signer: hex(&tip.signer),
                            text,
                        })
                    }
                    Err(e) => {
                        self.fleet.last = Some(EnvelopeOutcome {
                            generation: tip.generation,
                            signer: hex(&tip.signer),
                            outcome: "refused".into(),
                            local_generation: None,
                            reason: Some(e.to_string()),
                        })
                    }
                }
                // The mark is durable before the config is applied: a replay of an older
                // envelope is refused even after a crash.
                self.fleet.set_inbox(mine);
                self.save_fleet();
                changed |= self.apply_pending();
            } else {
                self.fleet.set_inbox(mine);
            }
        }
        self.save_fleet();
        self.show_admins();
        changed
    }

    /// A device rooted on the set the fleet's admins hold *now* (baked after the set
    /// changed) joins their chain: when it has followed no change yet and a published
    /// genesis, followed through the known changes, ends at exactly its own keys and
    /// threshold, that genesis becomes its root. It trusts no key it did not trust before;
    /// it only learns the chain's heads, so envelopes published under them are taken.
    fn adopt_chain(&mut self) {
        let (Some(own), Some(now)) = (self.fleet.genesis.clone(), self.fleet.authority()) else {
            return;
        };
        if !now.applied.is_empty() {
            return;
        }
        let entries = self.fleet.entries();
        let found = self.fleet.geneses.iter().find(|g| {
            **g != own
                && g.genesis().is_some_and(|root| {
                    let end = root.follow(entries.clone());
                    !end.applied.is_empty()
                        && end.keys == now.keys
                        && end.threshold == now.threshold
                })
        });
        if let Some(g) = found.cloned() {
            let message = format!(
                "joined the admins' chain: its {} key(s), threshold {} are the ones this device trusts",
                now.keys.len(),
                now.threshold
            );
            tracing::info!("{message}");
            self.board
                .emit(EventKind::Admins, self.generation, None, message);
            self.fleet.genesis = Some(g);
        }
    }

    /// An admin's device publishes its authority's genesis once, so devices baked later
    /// with the set in force can find the chain.
    fn publish_genesis(
        &mut self,
        space: &Arc<tokio::sync::Mutex<Space>>,
        me: &cobox_keys::SigningKeyPair,
    ) {
        let Some(g) = self.fleet.genesis.clone() else {
            return;
        };
        if self.fleet.genesis_published.as_ref() == Some(&g) {
            return;
        }
        let Some(root) = g.genesis() else {
            return;
        };
        if !self
            .fleet
            .authority()
            .is_some_and(|a| a.keys.contains(&me.public.0))
        {
            return;
        }
        let bytes = Authority::encode_genesis(&root.keys, root.threshold);
        let written = self.append_to_fleet(space, Message::Genesis(bytes));
        match written {
            Ok(_) => {
                self.fleet.genesis_published = Some(g);
                self.save_fleet();
            }
            Err(e) => tracing::warn!(error = %e, "cannot publish the authority's genesis"),
        }
    }

    /// Apply the envelope accepted last, through the same path as `coboxctl apply`, after
    /// the pre-apply checks. Returns whether the running config changed.
    fn apply_pending(&mut self) -> bool {
        let Some(p) = self.fleet.pending.clone() else {
            return false;
        };
        let Some(authority) = self.fleet.authority() else {
            return false;
        };
        let req = ConfigRequest {
            config: p.text.clone(),
            name: Some(format!("admin {} gen {}", p.signer, p.generation)),
        };
        let current = self.config.clone();
        let previous = self.generation;
        let before = self.connected_peers();
        let result = self.apply_checked(&req, GenerationSource::RemoteAdmin, |candidate| {
            checks::refusal(&current, candidate, &authority)
                .map(|why| format!("refused by the pre-apply check: {why}"))
        });
        let (outcome, changed) = match result {
            Ok(a) => {
                // Success is reported only once the device reaches again a peer it
                // reached before (nothing to lose when it reached none).
                let probation =
                    !a.unchanged && !current.admins.probation.is_zero() && !before.is_empty();
                if probation {
                    let now = unix_now();
                    self.fleet.probation = Some(Probation {
                        generation: a.generation,
                        previous,
                        since: now,
                        until: now + current.admins.probation.as_secs().max(1),
                        before,
                    });
                }
                let word = match (a.unchanged, probation) {
                    (true, _) => "unchanged",
                    (false, true) => "probation",
                    (false, false) => "applied",
                };
                (
                    EnvelopeOutcome {
                        generation: p.generation,
                        signer: p.signer.clone(),
                        outcome: word.into(),
                        local_generation: Some(a.generation),
                        reason: None,
                    },
                    !a.unchanged,
                )
            }
            Err(e) => (
                EnvelopeOutcome {
                    generation: p.generation,
                    signer: p.signer.clone(),
                    outcome: "refused".into(),
                    local_generation: None,
                    reason: Some(e.message().to_string()),
                },
                false,
            ),
        };
        let message = match &outcome.reason {
            Some(why) => format!(
                "envelope generation {} from admin {} refused: {why}; generation {} keeps running",
                p.generation, p.signer, self.generation
            ),
            None => format!(
                "envelope generation {} from admin {}: {} as generation {}",
                p.generation, p.signer, outcome.outcome, self.generation
            ),
        };
        tracing::info!("{message}");
        self.board
            .emit(EventKind::Admins, self.generation, None, message);
        self.fleet.pending = None;
        self.fleet.last = Some(outcome);
        self.save_fleet();
        changed
    }

    pub(super) fn admins_status(&self) -> Option<AdminsStatus> {
        let authority = self.fleet.authority();
        if authority.is_none() && self.config.admins.fleet.is_none() {
            return None;
        }
        let (keys, threshold, head, changes) = match &authority {
            Some(a) => (
                a.keys.iter().map(hex).collect(),
                a.threshold,
                hex(&a.head),
                a.applied.len(),
            ),
            None => (vec![], 0, String::new(), 0),
        };
        Some(AdminsStatus {
            fleet: self.config.admins.fleet.clone(),
            keys,
            threshold,
            head,
            changes,
            admin_generation: self.fleet.mark.generation,
            last_envelope: self.fleet.last.clone(),
            refused: self.fleet.refused.clone(),
            local_override: self.fleet.local_override.clone(),
            drift: self.fleet.drift.clone(),
        })
    }

    /// What status shows of the admins, for the fleet resource's conditions.
    pub(super) fn admins_view(&self) -> Option<AdminsStatus> {
        self.admins_status()
    }

    pub(super) fn show_admins(&self) {
        self.board.set_admins(self.admins_status());
    }

    /// Publish this device's report to its admins when it changed, or when the last is
    /// [`REPORT_EVERY`] old (only a managed device reports).
    pub fn report_to_admins(&mut self, converged: bool) {
        if !self.config.admins.managed() {
            return;
        }
        let (Some(space), Some(me), Some(admins)) = (
            self.fleet_space(),
            self.device.signer(),
            self.admins_status(),
        ) else {
            return;
        };
        let status = self.board.status();
        let not_ready = status
            .resources
            .iter()
            .filter_map(|r| {
                let c = r
                    .conditions
                    .iter()
                    .find(|c| c.kind == ConditionType::Ready && !c.status)?;
                Some(format!("{} {}: {} {}", r.kind, r.name, c.reason, c.message))
            })
            .collect();
        let digest = crate::control::generations::digest(&self.accepted_text);
        let events = self.board.recent(
            16,
            &[
                EventKind::Admins,
                EventKind::ConfigAccepted,
                EventKind::ConfigInvalid,
                EventKind::ActionFailed,
            ],
        );
        let mut report = DeviceReport {
            device: me.public.to_string(),
            name: self.device.name().to_string(),
            at: now_rfc3339(),
            generation: self.generation,
            digest,
            source: self.generation_source,
            converged,
            not_ready,
            admins,
            events,
            config: None,
        };
        let now = unix_now();
        let same = self.fleet.reported.as_ref().is_some_and(|(last, when)| {
            now < when + REPORT_EVERY
                && DeviceReport {
                    at: last.at.clone(),
                    ..report.clone()
                } == *last
        });
        // The text travels when it changed since the last report (and with the periodic one).
        let text_known =
            self.fleet.reported.as_ref().is_some_and(|(last, when)| {
                last.digest == report.digest && now < when + REPORT_EVERY
            });
        let kept = report.clone();
        if !text_known {
            report.config = Some(self.accepted_text.clone());
        }
        if same {
            return;
        }
        let bytes = serde_json::to_vec(&report).expect("reports serialize");
        let written = self.append_to_fleet(&space, Message::Status(bytes));
        match written {
            Ok(_) => {
                self.fleet.reported = Some((kept, now));
                self.save_fleet();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish this device's report to its admins")
            }
        }
    }
}
