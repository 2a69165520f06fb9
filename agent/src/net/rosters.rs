//! Roster gossip: admitting identities, taking in statements from peers and from roster
//! files, keeping the new ones and passing them on.

use std::path::PathBuf;
use std::time::Duration;

use super::{Network, State, file_len};
use crate::space::roster::{self, Roster, Statement};

/// How long a session whose peer a new roster statement refused stays open for the
/// statements to reach it.
const CLOSE_AFTER: Duration = Duration::from_millis(500);

/// Whether a shared address admits `who` as the rosters stand; a space this device was
/// removed from admits nobody here.
pub(super) fn serves(st: &State, who: &[u8; 32]) -> bool {
    st.shares
        .values()
        .any(|s| !s.roster.me_out() && s.roster.admits(who))
}

impl Network {
    /// Sign what the roster of the space shared at `address` lacks for its declared
    /// `seeders` and `removed` identities (see `Roster::declare`): the statements are kept,
    /// passed on to the peers sharing it, and in force at once (sessions of identities no
    /// longer admitted end).
    pub async fn declare_roster(
        &self,
        address: [u8; 32],
        seeders: &[[u8; 32]],
        removed: &[[u8; 32]],
    ) {
        let statements = {
            let st = self.state();
            let Some(share) = st.shares.get(&address) else {
                return;
            };
            share.roster.declare(&self.inner.identity, seeders, removed)
        };
        self.learn(address, statements, None, true).await;
    }

    /// Whether `who` was removed from a shared address this device is still in: its
    /// session is let in only to tell it so.
    pub fn was_removed(&self, who: &[u8; 32]) -> bool {
        self.state()
            .shares
            .values()
            .any(|s| !s.roster.me_out() && s.roster.removed().contains(who))
    }

    /// Whether any shared address admits `who`, as the rosters stand (nothing read again).
    pub(super) fn admitted_anywhere(&self, who: &[u8; 32]) -> bool {
        serves(&self.state(), who)
    }

    /// Whether any shared address admits `who`. An unknown identity makes the rosters be
    /// read again first (at most once a second), in case an invite just admitted it.
    pub fn admits(&self, who: &[u8; 32]) -> bool {
        if *who == self.identity() {
            return false;
        }
        let mut st = self.state();
        if serves(&st, who) {
            return true;
        }
        let now = std::time::Instant::now();
        if st
            .reloaded
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        st.reloaded = Some(now);
        // The roster files that grew since they were read (an invite just created here
        // admits its invitee) decide now, so the invitee's first session is not refused;
        // the full reload (passing statements on, opening new members' feeds) follows.
        // They are read with the state unlocked.
        let rosters: Vec<(Roster, PathBuf, u64)> = st
            .shares
            .values()
            .map(|s| (s.roster.clone(), s.roster_file.clone(), s.roster_read))
            .collect();
        drop(st);
        let admitted = rosters.into_iter().any(|(mut on_disk, file, read)| {
            file_len(&file) != read && on_disk.load(&file).is_ok() && on_disk.admits(who)
        });
        let me = self.clone();
        self.inner
            .rt
            .spawn(async move { me.reload_rosters().await });
        admitted
    }

    /// Read the roster files again (an invite written by another path admits someone),
    /// pass what is new on to peers and act on it.
    pub async fn reload_rosters(&self) {
        // Only files that grew since they were read (a stat, not a read, per address).
        let files: Vec<([u8; 32], PathBuf)> = self
            .state()
            .shares
            .iter_mut()
            .filter_map(|(a, s)| {
                let len = file_len(&s.roster_file);
                (len != s.roster_read).then(|| {
                    s.roster_read = len;
                    (*a, s.roster_file.clone())
                })
            })
            .collect();
        for (address, file) in files {
            let mut on_disk = Roster::seed(address);
            if let Err(e) = on_disk.load(&file) {
                tracing::warn!(file = %file.display(), error = %e, "cannot read a roster");
                continue;
            }
            self.learn(
                address,
                on_disk.statements().cloned().collect(),
                None,
                false,
            )
            .await;
        }
    }

    /// Take in statements about `address` (from session `from`, or local), keep the new
    /// ones (in the roster file too, unless they come from it), pass them on to the other
    /// peers sharing it, and open new members' feeds.
    pub(super) async fn learn(
        &self,
        address: [u8; 32],
        statements: Vec<Statement>,
        from: Option<u64>,
        persist: bool,
    ) {
        // The roster changes in memory under the lock; the file is appended after it is
        // released (no file I/O while the network's state is locked).
        let (new, file, name) = {
            let mut st = self.state();
            let State { shares, peers, .. } = &mut *st;
            let Some(share) = shares.get_mut(&address) else {
                return;
            };
            let new = share.roster.add_new(statements);
            if !new.is_empty() {
                let bytes = roster::encode_all(&new);
                for (k, p) in peers.iter() {
                    if Some(*k) != from && p.spaces.contains(&address) {
                        let _ = p.handle.send(address, bytes.clone());
                    }
                }
                // A session with an identity this space no longer admits (or with anyone,
                // when this device is out of it) ends once the statements had time to go
                // out (closing drops what is not written yet, and the removed device is to
                // learn of its removal); the peer's next session opens only what is still
                // shared with it.
                let me_out = share.roster.me_out();
                for p in peers.values() {
                    if p.spaces.contains(&address)
                        && p.identity
                            .is_some_and(|who| me_out || !share.roster.admits(&who))
                    {
                        let handle = p.handle.clone();
                        self.inner.rt.spawn(async move {
                            tokio::time::sleep(CLOSE_AFTER).await;
                            handle.close();
                        });
                    }
                }
            }
            (new, share.roster_file.clone(), share.name.clone())
        };
        if persist && let Err(e) = roster::keep(&file, &new) {
            tracing::error!(space = %name, error = %e, "cannot keep roster statements");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = cobox_keys::seen::note(&file, &new, now) {
            tracing::warn!(space = %name, error = %e, "cannot note when roster statements arrived");
        }
        if !new.is_empty() {
            self.inner.rosters_changed.send_modify(|n| *n += 1);
            self.open_members(address).await;
            self.offer_to_peers(address);
            // A removal this device made is answered with a new key epoch at once (only
            // this space's roster changed).
            self.rotate_keys(Some(address)).await;
        }
    }
}
