//! Probation of a config from the admins: a success only once the device reaches again a
//! peer it reached before; past the deadline without one, the config before it is put back
//! and `rolled-back` reported.

use cobox_schema::api::EventKind;

use super::Agent;
use super::admins::{hex, unix_now};

/// Probation looks at the peers only this long after the apply, once the new config's
/// teardown (dialers stopped, their sessions ended) has happened.
const SETTLE: u64 = 3;

impl Agent {
    /// The identities (hex) of the peers connected now.
    pub(super) fn connected_peers(&self) -> Vec<String> {
        self.device
            .network()
            .map(|n| n.peers().iter().map(|p| hex(&p.identity)).collect())
            .unwrap_or_default()
    }

    /// Whether a config from the admins is on probation.
    pub fn on_probation(&self) -> bool {
        self.fleet.probation.is_some()
    }

    /// Judge the config on probation: passed once a peer reached before is reached again
    /// (after the teardown settled); past the deadline without one, the config before it is
    /// put back, the envelope stays rejected (the mark does not go back, so it is never
    /// applied again) and `rolled-back` is reported. Returns whether the config changed.
    pub fn check_probation(&mut self) -> bool {
        let Some(p) = self.fleet.probation.clone() else {
            return false;
        };
        if self.generation != p.generation {
            // Something newer replaced it: nothing left to judge.
            self.fleet.probation = None;
            self.save_fleet();
            return false;
        }
        let now = unix_now();
        let connected = self.connected_peers();
        if now >= p.since + SETTLE && p.before.iter().any(|k| connected.contains(k)) {
            self.fleet.probation = None;
            if let Some(last) = self.fleet.last.as_mut() {
                last.outcome = "applied".into();
            }
            self.board.emit(
                EventKind::Admins,
                self.generation,
                None,
                format!(
                    "generation {} passed probation: a peer reached before is reached again",
                    p.generation
                ),
            );
            self.save_fleet();
            self.show_admins();
            return false;
        }
        if now < p.until {
            return false;
        }
        let reason = format!(
            "it reached none of the {} peer(s) reached before within {}s; generation {} was put back",
            p.before.len(),
            p.until - p.since,
            p.previous
        );
        self.fleet_reverting = true;
        let back = self.rollback(&cobox_schema::api::RollbackRequest {
            generation: Some(p.previous),
            dry_run: false,
        });
        self.fleet_reverting = false;
        if let Err(e) = &back {
            tracing::error!(error = %e.message(), "probation cannot put the previous generation back");
        }
        self.fleet.probation = None;
        if let Some(last) = self.fleet.last.as_mut() {
            last.outcome = "rolled-back".into();
            last.reason = Some(reason.clone());
        }
        tracing::warn!("config from the admins rolled back: {reason}");
        self.board.emit(
            EventKind::Admins,
            self.generation,
            None,
            format!("rolled back generation {}: {reason}", p.generation),
        );
        self.save_fleet();
        self.show_admins();
        back.is_ok()
    }
}
