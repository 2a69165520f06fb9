//! What the device keeps of its admins, in one file replaced whole
//! (`DATA_DIR/fleet/state.json`): the root of the authority and the changes known, the
//! mark (the last envelope accepted, stored before its config is applied), the envelope
//! being applied, what became of envelopes, how far each fleet log was read, and — on an
//! admin's device — the envelopes published for each device and the devices' reports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use cobox_keys::authority::{Authority, Entry};
use cobox_keys::envelope::Envelope;
use cobox_keys::follow::{Head, Mark};
use cobox_schema::api::{DeviceReport, EnvelopeOutcome, RefusedEnvelope};
use serde::{Deserialize, Serialize};

/// Refusals kept for status, newest last.
pub const MAX_REFUSED: usize = 16;
/// Envelopes for this device kept until they can be followed.
pub const MAX_INBOX: usize = 256;
/// Envelope heads kept per device on an admin's device before the chain, all but its last
/// [`HEADS_MARGIN`] links, becomes the device's base and the heads up to it are dropped
/// (a fork near the end, whose smaller digest arrives late, still counts).
pub const MAX_HEADS: usize = 64;
pub const HEADS_MARGIN: usize = 16;

/// An admin set as a config states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSet {
    /// Hex, sorted.
    pub keys: BTreeSet<String>,
    pub threshold: u8,
}

impl AdminSet {
    /// The set of a published genesis.
    pub fn from_keys(keys: &std::collections::BTreeSet<[u8; 32]>, threshold: u8) -> AdminSet {
        AdminSet {
            keys: keys
                .iter()
                .map(|k| cobox_schema::hexkey::PublicKey(*k).to_string())
                .collect(),
            threshold,
        }
    }

    pub fn of(admins: &cobox_schema::config::Admins) -> AdminSet {
        AdminSet {
            keys: admins.keys.iter().map(|k| k.to_string()).collect(),
            threshold: admins.threshold,
        }
    }

    /// The authority rooted here.
    pub fn genesis(&self) -> Option<Authority> {
        let keys = self
            .keys
            .iter()
            .filter_map(|k| k.parse::<cobox_schema::hexkey::PublicKey>().ok())
            .map(|k| k.0)
            .collect();
        Authority::genesis(keys, self.threshold).ok()
    }
}

/// The envelope accepted and not applied yet (a crash in between applies it at the start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub generation: u64,
    pub signer: String,
    pub text: String,
}

/// A config from the admins on probation: it must reach again a peer reached before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probation {
    /// The local generation it became, and the one it replaced.
    pub generation: u64,
    pub previous: u64,
    /// When it was applied, and when probation ends (unix seconds).
    pub since: u64,
    pub until: u64,
    /// The peers (identities, hex) connected when it was applied.
    pub before: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetState {
    /// The `[admins]` of the last accepted config: a local edit of it re-roots.
    pub seen: Option<AdminSet>,
    /// The root of the authority (trust on first use, or the owner's re-root).
    pub genesis: Option<AdminSet>,
    /// Set when the owner re-rooted the authority locally: when and how.
    pub local_override: Option<String>,
    /// Set while a local edit runs after a config from the admins.
    pub drift: Option<String>,
    /// Geneses the fleet's admins published.
    pub geneses: Vec<AdminSet>,
    /// The genesis this device (an admin) published last.
    pub genesis_published: Option<AdminSet>,
    /// Changes of the admin set known (encoded, base64), in the order first read.
    pub entries: Vec<String>,
    /// The last envelope accepted.
    pub mark: Mark,
    pub pending: Option<Pending>,
    /// The config from the admins on probation, if one is.
    pub probation: Option<Probation>,
    pub last: Option<EnvelopeOutcome>,
    pub refused: Vec<RefusedEnvelope>,
    /// The fleet's address (hex): the cursors below are for its logs.
    pub fleet: Option<String>,
    /// Entries of each fleet log read so far, by log key (hex).
    pub cursors: BTreeMap<String, u64>,
    /// The identity each fleet log belongs to, by log key (hex).
    pub owners: BTreeMap<String, String>,
    /// Envelopes for this device not followed yet (encoded, base64).
    pub inbox: Vec<String>,
    /// Whether this device was an admin in force at the last look: one becoming an admin
    /// reads the fleet again (a device that is not one keeps only what is about itself).
    pub admin: bool,
    /// Set while the fleet is read again from the start: envelopes for this device up to
    /// the mark were followed before and are passed over, not refused as replays.
    pub rereading: bool,
    /// Envelopes published for each device past its base, by its identity (hex).
    pub published: BTreeMap<String, Vec<Head>>,
    /// Where each device's chain was known to go when its heads were last trimmed.
    pub published_base: BTreeMap<String, Mark>,
    /// The newest report of each device, by identity (hex).
    pub reports: BTreeMap<String, DeviceReport>,
    /// The running config each device last reported, by identity (hex).
    pub configs: BTreeMap<String, String>,
    /// The last report this device published, and when (unix seconds).
    pub reported: Option<(DeviceReport, u64)>,
    /// The bytes last written or read: an unchanged state is not written again (the loop
    /// saves after every look at the fleet).
    #[serde(skip)]
    saved: Vec<u8>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl FleetState {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("fleet").join("state.json")
    }

    /// The state kept under `data_dir`; none yet is the empty state. An unreadable file is
    /// an error: the mark must never silently go back.
    pub fn load(data_dir: &Path) -> anyhow::Result<FleetState> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("fleet state {} is unreadable: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FleetState::default()),
            Err(e) => Err(anyhow::anyhow!("fleet state {}: {e}", path.display())),
        }
    }

    /// Replace the file whole and durably, when it changed.
    pub fn save(&mut self, data_dir: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        if bytes == self.saved {
            return Ok(());
        }
        let path = Self::path(data_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::atomic_file::replace(&path, &bytes)
            .map_err(|e| anyhow::anyhow!("fleet state {}: {e}", path.display()))?;
        self.saved = bytes;
        Ok(())
    }

    /// The authority in force: the genesis followed through the changes known.
    pub fn authority(&self) -> Option<Authority> {
        let root = self.genesis.as_ref()?.genesis()?;
        Some(root.follow(self.entries()))
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .filter_map(|e| b64().decode(e).ok())
            .filter_map(|b| Entry::decode(&b).ok())
            .collect()
    }

    /// Keep a change of the admin set (a co-signature of a known one merges into it).
    pub fn add_entry(&mut self, entry: &Entry) {
        let d = entry.digest();
        let mut all = self.entries();
        match all.iter_mut().find(|e| e.digest() == d) {
            Some(known) => {
                let before = known.signatures.len();
                known.signatures.extend(entry.signatures.clone());
                if known.signatures.len() == before {
                    return;
                }
            }
            None => all.push(entry.clone()),
        }
        // Only what can still matter stays: a member who is not an admin cannot grow it.
        let all = match self.genesis.as_ref().and_then(AdminSet::genesis) {
            Some(root) => root.follow(all.clone()).keep(all),
            None => all
                .into_iter()
                .take(cobox_keys::authority::MAX_PARKED)
                .collect(),
        };
        self.entries = all.iter().map(|e| b64().encode(e.encode())).collect();
    }

    /// Note an envelope published for `target` (hex); past [`MAX_HEADS`] heads, the chain
    /// under `authority` but its last [`HEADS_MARGIN`] links becomes the target's base and
    /// the heads up to it go.
    pub fn note_published(&mut self, target: &str, head: Head, authority: Option<&Authority>) {
        let base = self.published_base.get(target).copied().unwrap_or_default();
        let heads = self.published.entry(target.to_string()).or_default();
        if head.generation <= base.generation || heads.contains(&head) {
            return;
        }
        heads.push(head);
        if heads.len() > MAX_HEADS
            && let Some(a) = authority
        {
            let links = cobox_keys::follow::chain(a, base, heads);
            if let Some(end) = links.len().checked_sub(HEADS_MARGIN + 1).map(|i| links[i]) {
                heads.retain(|h| h.generation > end.generation);
                self.published_base.insert(target.to_string(), end);
            }
        }
    }

    /// The end of the chain of envelopes published for `target` (hex) under `authority`.
    pub fn published_tip(&self, target: &str, authority: &Authority) -> Mark {
        let base = self.published_base.get(target).copied().unwrap_or_default();
        let heads = self.published.get(target).map_or(&[][..], Vec::as_slice);
        cobox_keys::follow::tip(authority, base, heads)
    }

    pub fn inbox(&self) -> Vec<Envelope> {
        self.inbox
            .iter()
            .filter_map(|e| b64().decode(e).ok())
            .filter_map(|b| Envelope::decode(&b).ok())
            .collect()
    }

    /// Keep envelopes for this device past the mark, at most [`MAX_INBOX`] (the lowest
    /// generations first: they are the ones the chain continues with).
    pub fn set_inbox(&mut self, mut envelopes: Vec<Envelope>) {
        envelopes.retain(|e| e.generation > self.mark.generation);
        envelopes.sort_by_key(|e| (e.generation, e.digest()));
        envelopes.dedup_by_key(|e| e.digest());
        envelopes.truncate(MAX_INBOX);
        self.inbox = envelopes.iter().map(|e| b64().encode(e.encode())).collect();
    }

    /// Note a refusal once, keeping the newest [`MAX_REFUSED`].
    pub fn refuse(&mut self, r: RefusedEnvelope) -> bool {
        if self.refused.iter().any(|k| k.digest == r.digest) {
            return false;
        }
        self.refused.push(r);
        let over = self.refused.len().saturating_sub(MAX_REFUSED);
        self.refused.drain(..over);
        true
    }

    /// Forget what was read of another fleet's logs.
    pub fn follow_fleet(&mut self, address: &str) {
        if self.fleet.as_deref() != Some(address) {
            self.fleet = Some(address.to_string());
            self.cursors.clear();
            self.owners.clear();
            self.inbox.clear();
            self.published.clear();
            self.published_base.clear();
            self.reports.clear();
            self.configs.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_keys::authority::Change;
    use cobox_keys::{Secret32, SigningKeyPair};

    fn key(n: u8) -> SigningKeyPair {
        SigningKeyPair::from_seed(&Secret32::from_bytes([n; 32]))
    }

    #[test]
    fn the_state_survives_a_save_and_a_co_signature_merges() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (key(1), key(2), key(3));
        let mut s = FleetState {
            genesis: Some(AdminSet {
                keys: [a.public.to_string(), b.public.to_string()].into(),
                threshold: 2,
            }),
            ..FleetState::default()
        };
        let head = s.authority().unwrap().head;
        let add = Entry::new(head, Change::Add(c.public.0), &a);
        s.add_entry(&add);
        assert_eq!(s.authority().unwrap().keys.len(), 2, "one signature of two");
        s.add_entry(&Entry::new(head, Change::Add(c.public.0), &b));
        assert_eq!(s.entries.len(), 1);
        s.mark = Mark {
            generation: 4,
            digest: [9; 32],
        };
        s.save(dir.path()).unwrap();
        let back = FleetState::load(dir.path()).unwrap();
        assert_eq!(back.mark, s.mark);
        assert_eq!(back.authority().unwrap().keys.len(), 3);
    }

    #[test]
    fn an_admins_heads_of_a_device_stay_bounded_and_its_chain_end_is_kept() {
        let a = key(1);
        let s0 = FleetState {
            genesis: Some(AdminSet {
                keys: [a.public.to_string()].into(),
                threshold: 1,
            }),
            ..FleetState::default()
        };
        let auth = s0.authority().unwrap();
        let mut s = s0.clone();
        let target = "t";
        // A chain of 300 envelopes' heads, with a losing fork at every tenth generation.
        let mut parent = [0u8; 32];
        for g in 1..=300u64 {
            let digest = |salt: u8| {
                let mut d = [salt; 32];
                d[..8].copy_from_slice(&g.to_le_bytes());
                d
            };
            let head = |d: [u8; 32]| Head {
                generation: g,
                digest: d,
                parent,
                signer: a.public.0,
            };
            if g % 10 == 0 {
                s.note_published(target, head(digest(0xff)), Some(&auth));
            }
            s.note_published(target, head(digest(1)), Some(&auth));
            // The same head again changes nothing.
            s.note_published(target, head(digest(1)), Some(&auth));
            parent = digest(1);
            assert!(
                s.published[target].len() <= MAX_HEADS + 1,
                "{}",
                s.published[target].len()
            );
            let tip = s.published_tip(target, &auth);
            assert_eq!((tip.generation, tip.digest), (g, parent), "generation {g}");
        }
        // A head at or below the base is not kept again.
        let before = s.published[target].clone();
        s.note_published(
            target,
            Head {
                generation: 1,
                digest: [7; 32],
                parent: [0; 32],
                signer: a.public.0,
            },
            Some(&auth),
        );
        assert_eq!(s.published[target], before);
    }

    #[test]
    fn a_damaged_state_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fleet")).unwrap();
        std::fs::write(FleetState::path(dir.path()), b"{not json").unwrap();
        assert!(FleetState::load(dir.path()).is_err());
    }
}
