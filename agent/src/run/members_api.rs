//! What the control API asks of a device about a space's members: who takes part (the
//! roster's entries, when each admission and removal reached this device, device names)
//! and its key epochs, and a key rotation on demand.

use std::collections::BTreeMap;
use std::sync::Arc;

use cobox_schema::api::{KeyEpoch, MemberInfo, MembersResponse, RotateResponse};
use cobox_schema::hexkey::PublicKey;
use tokio::sync::Mutex;

use super::device::Device;
use crate::space::Space;

impl Device {
    /// The open space `name` and its address; an error names a space not open here.
    fn open_space(&self, name: &str) -> Result<(Arc<Mutex<Space>>, [u8; 32]), String> {
        let space = self
            .spaces
            .get(name)
            .ok_or_else(|| format!("space {name} is not open on this device"))?;
        let address = self
            .rt
            .block_on(async { space.lock().await.keys().address.0 });
        Ok((space.clone(), address))
    }

    /// Who takes part in space `name`, as this device's roster says, and its key epochs.
    pub fn members(&self, name: &str) -> Result<MembersResponse, String> {
        let (space, address) = self.open_space(name)?;
        let (roster, names) = self
            .network
            .as_ref()
            .and_then(|n| n.roster_of(&address))
            .ok_or_else(|| format!("space {name} is not shared yet"))?;
        let me = self.network.as_ref().map(|n| n.identity());
        let hex = |k: &[u8; 32]| PublicKey(*k).to_string();
        let seen = self
            .network
            .as_ref()
            .and_then(|n| n.roster_file(&address))
            .map(|f| cobox_keys::seen::load(&f))
            .unwrap_or_default();
        // When the first admission (or removal) of each identity reached this device.
        let mut first: BTreeMap<([u8; 32], bool), u64> = BTreeMap::new();
        for s in roster.statements() {
            let (identity, removal) = match s {
                crate::space::roster::Statement::Allow { identity, .. }
                | crate::space::roster::Statement::Readmit { identity, .. } => (identity, false),
                crate::space::roster::Statement::Remove { identity, .. } => (identity, true),
                crate::space::roster::Statement::Member { .. } => continue,
            };
            if let Some(t) = seen.get(&s.digest()) {
                let at = first.entry((*identity, removal)).or_insert(*t);
                *at = (*at).min(*t);
            }
        }
        let when = |identity: [u8; 32], removal: bool| {
            first.get(&(identity, removal)).map(|t| {
                chrono::DateTime::<chrono::Utc>::from(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(*t),
                )
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        };
        let members = roster
            .entries()
            .into_iter()
            .map(|e| MemberInfo {
                identity: hex(&e.identity),
                name: names.get(&e.identity).cloned(),
                role: e.role.map(|r| {
                    match r {
                        crate::space::roster::Role::Member => "member",
                        crate::space::roster::Role::Seeder => "seeder",
                    }
                    .to_string()
                }),
                standing: match e.standing {
                    crate::space::roster::Standing::In => "in",
                    crate::space::roster::Standing::Removed => "removed",
                    crate::space::roster::Standing::Out => "out",
                }
                .into(),
                me: Some(e.identity) == me,
                admitted_by: e.admitted_by.iter().map(hex).collect(),
                removed_by: e.removed_by.iter().map(hex).collect(),
                admitted_at: when(e.identity, false),
                removed_at: when(e.identity, true),
            })
            .collect();
        let epochs = self
            .rt
            .block_on(async { key_epochs(space.lock().await.epochs()) });
        Ok(MembersResponse {
            space: name.to_string(),
            members,
            epochs,
        })
    }

    /// Start a new key epoch of space `name` now.
    pub fn rotate(&self, name: &str) -> Result<RotateResponse, String> {
        let (space, address) = self.open_space(name)?;
        let network = self
            .network
            .as_ref()
            .ok_or_else(|| format!("space {name} is not shared yet"))?;
        let rotated = self
            .rt
            .block_on(network.rotate_now(address))
            .map_err(|e| format!("space {name}: {e}"))?;
        let epochs = self
            .rt
            .block_on(async { key_epochs(space.lock().await.epochs()) });
        let epoch = epochs
            .into_iter()
            .find(|e| {
                e.number == rotated.epoch && e.digest == cobox_keys::secret::hex(&rotated.digest)
            })
            .ok_or_else(|| format!("space {name}: the new key epoch is not held"))?;
        Ok(RotateResponse {
            space: name.to_string(),
            epoch,
            bytes: rotated.bytes as u64,
        })
    }
}

/// The key epochs of a space, for the API, oldest first.
fn key_epochs(epochs: &crate::space::epochs::Epochs) -> Vec<KeyEpoch> {
    let hex = |k: &[u8; 32]| PublicKey(*k).to_string();
    let current = epochs.keyring().newest_id();
    epochs
        .known()
        .iter()
        .map(|(&(number, digest), known)| KeyEpoch {
            number,
            digest: cobox_keys::secret::hex(&digest),
            author: (number > 0).then(|| hex(&known.author)),
            holders: known.holders.iter().map(hex).collect(),
            held: epochs.keyring().holds(number, &digest),
            current: current == Some((number, digest)),
        })
        .collect()
}
