//! Key rotation driven by the rosters: a member space whose newest key epoch may be read by
//! someone no longer in it starts a new epoch sealed to the members in, and members admitted
//! after an epoch are granted its key.
//!
//! Who acts: the member that removed an exposed identity rotates at once; any other member
//! in rotates once the rotation has been due for [`ROTATE_AFTER`] (the remover was offline,
//! or its epoch did not arrive). A member admitted after the newest epoch is granted it at
//! once by whoever admitted it, by anyone holding it after [`GRANT_AFTER`]. Two members
//! acting at once make a fork, which is harmless: both epochs answer, both keys are kept,
//! and new blocks go under the smaller digest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Holder, Network};
use crate::space::Space;
use crate::space::epochs::Epochs;
use crate::space::roster::{Entry, Statement};

/// How long a member that removed nobody waits before answering a removal itself.
pub const ROTATE_AFTER: Duration = Duration::from_secs(30);
/// How long a member that did not admit a newcomer waits before granting it the keys.
pub const GRANT_AFTER: Duration = Duration::from_secs(30);

/// What a rotation on demand did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub epoch: u32,
    pub digest: [u8; 32],
    pub members: usize,
    pub bytes: usize,
}

/// Since when rotations and grants have been due, by address: kept between passes so the
/// waits above are counted.
#[derive(Debug, Default)]
pub(super) struct Due {
    rotation: BTreeMap<[u8; 32], Instant>,
    grants: BTreeMap<([u8; 32], [u8; 32]), Instant>,
}

impl Network {
    /// Rotate and grant where due (see the module's text), in every member space (`None`)
    /// or in the one at an address whose roster just changed.
    pub async fn rotate_keys(&self, only: Option<[u8; 32]>) {
        for (address, space, entries, removals) in self.member_rosters(only) {
            self.rotate_space(address, &space, &entries, &removals)
                .await;
        }
    }

    /// Start a new key epoch of the space at `address` now (a suspected leak).
    pub async fn rotate_now(&self, address: [u8; 32]) -> Result<Rotated, String> {
        let (_, space, entries, _) = self
            .member_rosters(Some(address))
            .into_iter()
            .next()
            .ok_or_else(|| "space is not shared as a member here".to_string())?;
        let to = Epochs::recipients(&entries);
        let mut s = space.lock().await;
        let (epoch, digest, bytes) = s.rotate(&to, Vec::new()).await.map_err(|e| e.to_string())?;
        Ok(Rotated {
            epoch,
            digest,
            members: s.epochs().known()[&(epoch, digest)].holders.len(),
            bytes,
        })
    }

    /// Each member space this device is in (or only the one at `only`): its address, space,
    /// roster entries and removal statements.
    #[allow(clippy::type_complexity)]
    fn member_rosters(
        &self,
        only: Option<[u8; 32]>,
    ) -> Vec<(
        [u8; 32],
        Arc<tokio::sync::Mutex<Space>>,
        Vec<Entry>,
        Vec<Statement>,
    )> {
        let st = self.state();
        st.shares
            .iter()
            .filter(|(address, _)| only.is_none_or(|o| o == **address))
            .filter_map(|(address, share)| match &share.holder {
                Holder::Member(space) if !share.roster.me_out() => Some((
                    *address,
                    space.clone(),
                    share.roster.entries(),
                    share
                        .roster
                        .statements()
                        .filter(|s| matches!(s, Statement::Remove { .. }))
                        .cloned()
                        .collect(),
                )),
                _ => None,
            })
            .collect()
    }

    async fn rotate_space(
        &self,
        address: [u8; 32],
        space: &tokio::sync::Mutex<Space>,
        entries: &[Entry],
        removals: &[Statement],
    ) {
        let me = self.identity();
        let now = Instant::now();
        let mut s = space.lock().await;
        let exposed = s.epochs().exposed(entries);
        let removed_by_me = exposed.iter().any(|k| {
            entries
                .iter()
                .any(|e| e.identity == *k && e.removed_by.contains(&me))
        });
        let rotate = {
            let mut st = self.state();
            let due = &mut st.due.rotation;
            if exposed.is_empty() {
                due.remove(&address);
                false
            } else {
                let since = *due.entry(address).or_insert(now);
                removed_by_me || now.duration_since(since) >= ROTATE_AFTER
            }
        };
        if rotate {
            let answered = removals
                .iter()
                .filter(|r| matches!(r, Statement::Remove { identity, .. } if exposed.contains(identity)))
                .map(Statement::digest)
                .collect();
            match s.rotate(&Epochs::recipients(entries), answered).await {
                Ok(_) => {
                    self.state().due.rotation.remove(&address);
                }
                Err(e) => {
                    tracing::error!(space = %s.name(), error = %e, "cannot start a new key epoch")
                }
            }
        }
        let wanting = s.epochs().grants_due(entries, &me);
        let grant: Vec<[u8; 32]> = {
            let mut st = self.state();
            let due = &mut st.due.grants;
            due.retain(|(a, k), _| *a != address || wanting.contains(k));
            wanting
                .into_iter()
                .filter(|k| {
                    let since = *due.entry((address, *k)).or_insert(now);
                    let admitted_by_me = entries
                        .iter()
                        .any(|e| e.identity == *k && e.admitted_by.contains(&me));
                    admitted_by_me || now.duration_since(since) >= GRANT_AFTER
                })
                .collect()
        };
        for k in grant {
            if let Err(e) = s.grant(k).await {
                tracing::error!(space = %s.name(), error = %e, "cannot grant the key epochs");
            }
        }
    }
}
