//! What an admin's device answers on its socket: a device's next envelope sealed, signed
//! and published; a device's newest report; changes of the admin set proposed, co-signed
//! and published; and, on any device, the owner's reset of its admins.

use base64::Engine;
use cobox_keys::authority::{Authority, Change, Entry};
use cobox_keys::envelope::{Envelope, Header};
use cobox_keys::follow::Head;
use cobox_schema::api::{
    AdminChangeRequest, AdminEntryResponse, AdminSignRequest, AdminsStatus, EventKind,
    RemoteApplyRequest, RemoteApplyResponse, RemoteStatusRequest, RemoteStatusResponse,
};
use cobox_schema::hexkey::PublicKey;

use super::Agent;
use super::admins::{hex, key_arg};
use crate::control::CallError;
use crate::control::board::now_rfc3339;
use crate::fleet::state::AdminSet;
use crate::space::message::Message;

impl Agent {
    /// Publish `req.config` as the next envelope for `req.target`, signed by this device.
    pub(super) fn remote_apply(
        &mut self,
        req: &RemoteApplyRequest,
    ) -> Result<RemoteApplyResponse, CallError> {
        let target = key_arg(&req.target, "target")?;
        let fleet_name = self.config.admins.fleet.clone().ok_or_else(|| {
            CallError::BadRequest("this device's config names no fleet (`admins.fleet`)".into())
        })?;
        let space = self.fleet_space().ok_or_else(|| {
            CallError::NoSuchSpace(format!(
                "the fleet space {fleet_name} is not open on this device"
            ))
        })?;
        // What the others published is read first (`as_admin` follows the fleet): the
        // envelope continues the chain's end.
        let (authority, me) = self.as_admin()?;
        let fleet = self
            .fleet
            .fleet
            .as_deref()
            .and_then(|f| f.parse::<PublicKey>().ok())
            .ok_or_else(|| CallError::Internal("the fleet's address is not known yet".into()))?;
        let end = self.fleet.published_tip(&req.target, &authority);
        let envelope = Envelope::seal(
            Header {
                fleet: fleet.0,
                target: target.0,
                generation: end.generation + 1,
                parent: end.digest,
                authority: authority.head,
            },
            &req.config,
            &me,
        )
        .map_err(|e| CallError::BadRequest(e.to_string()))?;
        self.append_to_fleet(&space, Message::Envelope(envelope.encode()))
            .map_err(|e| CallError::Internal(format!("fleet space {fleet_name}: {e}")))?;
        self.fleet
            .note_published(&req.target, Head::of(&envelope), Some(&authority));
        self.save_fleet();
        Ok(RemoteApplyResponse {
            target: req.target.clone(),
            generation: envelope.generation,
            digest: hex(&envelope.digest()),
            fleet: fleet_name,
        })
    }

    /// A device's newest report read here.
    pub(super) fn remote_status(
        &mut self,
        req: &RemoteStatusRequest,
    ) -> Result<RemoteStatusResponse, CallError> {
        let device = key_arg(&req.device, "device")?;
        // Read what arrived since the loop's last look (nothing to do when nothing did: a
        // fleet's status asks once per device).
        if self.fleet_grew() {
            self.follow_admins();
        }
        let key = device.to_string();
        let report = self.fleet.reports.get(&key).cloned();
        let age_s = report.as_ref().and_then(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(&r.at).ok()?;
            Some(
                (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0) as u64,
            )
        });
        let published = self
            .fleet
            .authority()
            .map_or(0, |a| self.fleet.published_tip(&key, &a).generation);
        Ok(RemoteStatusResponse {
            report,
            age_s,
            published,
            config: self.fleet.configs.get(&key).cloned(),
        })
    }

    /// The authority and this device's key, when this device is an admin in force.
    fn as_admin(&mut self) -> Result<(Authority, cobox_keys::SigningKeyPair), CallError> {
        let me = self
            .device
            .signer()
            .ok_or_else(|| CallError::BadRequest("this device has no identity yet".into()))?;
        self.follow_admins();
        let authority = self.fleet.authority().ok_or_else(|| {
            CallError::BadRequest("this device has no admin set (`[admins] keys`)".into())
        })?;
        if !authority.keys.contains(&me.public.0) {
            return Err(CallError::BadRequest(format!(
                "this device's key {} is not among the admins in force",
                me.public
            )));
        }
        Ok((authority, me))
    }

    /// Propose a change of the admin set, signed by this device, and publish it.
    pub(super) fn admins_change(
        &mut self,
        req: &AdminChangeRequest,
    ) -> Result<AdminEntryResponse, CallError> {
        let key = || -> Result<[u8; 32], CallError> {
            let text = req.key.as_deref().ok_or_else(|| {
                CallError::BadRequest(format!("a change `{}` needs a key", req.change))
            })?;
            text.parse::<PublicKey>().map(|k| k.0).map_err(|_| {
                CallError::BadRequest(format!(
                    "key {text:?} is not a public key (64 hex characters)"
                ))
            })
        };
        let change = match req.change.as_str() {
            "add" => Change::Add(key()?),
            "remove" => Change::Remove(key()?),
            "revoke" => Change::Revoke(key()?),
            "threshold" => Change::Threshold(req.threshold.ok_or_else(|| {
                CallError::BadRequest("a change `threshold` needs a threshold".into())
            })?),
            other => {
                return Err(CallError::BadRequest(format!(
                    "unknown change {other:?}: add, remove, revoke or threshold"
                )));
            }
        };
        let (authority, me) = self.as_admin()?;
        if !authority.allows(&change) {
            return Err(CallError::BadRequest(format!(
                "the admin set in force ({} key(s), threshold {}) cannot take this change: it changes nothing, brings back a revoked key, or leaves fewer keys than the threshold",
                authority.keys.len(),
                authority.threshold
            )));
        }
        self.publish_entry(Entry::new(authority.head, change, &me))
    }

    /// Add this device's signature to a proposed change and publish it.
    pub(super) fn admins_sign(
        &mut self,
        req: &AdminSignRequest,
    ) -> Result<AdminEntryResponse, CallError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(req.entry.trim())
            .map_err(|_| CallError::BadRequest("the entry is not base64".into()))?;
        let mut entry = Entry::decode(&bytes)
            .map_err(|e| CallError::BadRequest(format!("the entry does not decode: {e}")))?;
        let (authority, me) = self.as_admin()?;
        if entry.parent != authority.head {
            return Err(CallError::BadRequest(
                "the entry is not on this device's authority head: it was applied already, lost to a concurrent change, or this device has not caught up"
                    .into(),
            ));
        }
        entry.sign(&me);
        self.publish_entry(entry)
    }

    fn publish_entry(&mut self, entry: Entry) -> Result<AdminEntryResponse, CallError> {
        let space = self.fleet_space().ok_or_else(|| {
            CallError::NoSuchSpace("the fleet space is not open on this device".into())
        })?;
        self.append_to_fleet(&space, Message::Authority(entry.encode()))
            .map_err(|e| CallError::Internal(format!("fleet space: {e}")))?;
        let digest = entry.digest();
        self.fleet.add_entry(&entry);
        let merged = self
            .fleet
            .entries()
            .into_iter()
            .find(|e| e.digest() == digest)
            .unwrap_or(entry);
        let authority = self.fleet.authority();
        let applied = authority
            .as_ref()
            .is_some_and(|a| a.applied.contains(&digest));
        self.save_fleet();
        self.show_admins();
        Ok(AdminEntryResponse {
            entry: base64::engine::general_purpose::STANDARD.encode(merged.encode()),
            digest: hex(&digest),
            signatures: merged.signatures.len(),
            threshold: authority.map_or(0, |a| a.threshold),
            applied,
        })
    }

    /// Break-glass: the owner takes the device back on the local socket. The authority is
    /// re-rooted on the running config's `[admins]`; logged and reported.
    pub(super) fn admins_reset(&mut self) -> Result<AdminsStatus, CallError> {
        let set = AdminSet::of(&self.config.admins);
        let message = if set.keys.is_empty() {
            self.fleet.genesis = None;
            "the owner reset the admins on the local socket: this device is no longer managed"
                .to_string()
        } else {
            let m = format!(
                "the owner reset the admins on the local socket: re-rooted on the config's {} key(s), threshold {}",
                set.keys.len(),
                set.threshold
            );
            self.fleet.genesis = Some(set);
            m
        };
        self.fleet.entries.clear();
        self.fleet.local_override = Some(format!(
            "{}: admins reset on the local socket",
            now_rfc3339()
        ));
        tracing::warn!("{message}");
        self.board
            .emit(EventKind::Admins, self.generation, None, message);
        self.save_fleet();
        self.show_admins();
        Ok(self.admins_status().unwrap_or_default())
    }
}
