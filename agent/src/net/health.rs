//! Replica health of a shared address: what each other device holds of it, first hand
//! (from what its channels announced) or as another member's health report in the space
//! log says, and the reports this device publishes in turn.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cobox_keys::secret::{hex, unhex};
use cobox_schema::api::Replica;

use super::Share;
use crate::space::message::{MAX_SEEN, Message, Seen};
use crate::space::roster::Role;

/// Health reports are published when what this device sees changed, at most this often.
const MIN_REPORT: Duration = Duration::from_secs(10);
/// And at least this often.
const REPORT_EVERY: Duration = Duration::from_secs(600);

/// A peer as a health report sums it up: (peer, connected, up to date).
pub(super) type Sighting = (String, bool, bool);

/// One other device's copy of a share.
#[derive(Debug, Clone)]
struct Copy {
    peer: [u8; 32],
    role: Option<Role>,
    connected: bool,
    behind_blocks: u64,
    behind_bytes: u64,
    behind_since: Option<SystemTime>,
    last_seen: SystemTime,
    /// The member whose health report this comes from; `None`: seen first hand.
    reported_by: Option<[u8; 32]>,
    ahead_blocks: u64,
    fetching: u64,
}

impl Copy {
    fn to_replica(&self) -> Replica {
        Replica {
            peer: hex(&self.peer),
            role: self.role.map_or("unknown", role_word).into(),
            connected: self.connected,
            up_to_date: self.behind_blocks == 0,
            behind_blocks: self.behind_blocks,
            behind_bytes: self.behind_bytes,
            behind_since: self.behind_since.map(rfc3339),
            last_seen: rfc3339(self.last_seen),
            reported_by: self.reported_by.as_ref().map(|k| hex(k)),
            ahead_blocks: self.ahead_blocks,
            fetching: self.fetching,
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Member => "member",
        Role::Seeder => "seeder",
    }
}

/// The copies this device saw itself: what each peer said it holds of the share's feeds
/// (tracking since when each has been behind).
fn first_hand(share: &mut Share) -> BTreeMap<[u8; 32], Copy> {
    let roles = share.roster.allowed();
    let mut copies: BTreeMap<[u8; 32], Copy> = BTreeMap::new();
    let feeds: Vec<_> = share
        .feeds
        .values()
        .map(|f| (f.held(), f.remotes()))
        .collect();
    for (_, remotes) in &feeds {
        for (name, r) in remotes {
            let Some(peer) = unhex(name).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
                continue;
            };
            let c = copies.entry(peer).or_insert(Copy {
                peer,
                role: roles.get(&peer).copied(),
                connected: false,
                behind_blocks: 0,
                behind_bytes: 0,
                behind_since: None,
                last_seen: UNIX_EPOCH,
                reported_by: None,
                ahead_blocks: 0,
                fetching: 0,
            });
            c.connected |= r.connected;
            c.fetching += r.asking as u64;
            c.last_seen = c.last_seen.max(r.seen);
        }
    }
    for (held, remotes) in &feeds {
        for c in copies.values_mut() {
            let theirs = remotes.get(&hex(&c.peer)).map_or(0, |r| r.contiguous);
            let lacking = held.length.saturating_sub(theirs);
            c.ahead_blocks += theirs.saturating_sub(held.contiguous);
            c.behind_blocks += lacking;
            c.behind_bytes += (lacking as u128 * held.bytes as u128)
                .checked_div(held.length as u128)
                .unwrap_or(0) as u64;
        }
    }
    let now = SystemTime::now();
    share
        .behind_since
        .retain(|p, _| copies.get(p).is_some_and(|c| c.behind_blocks > 0));
    for c in copies.values_mut().filter(|c| c.behind_blocks > 0) {
        c.behind_since = Some(*share.behind_since.entry(c.peer).or_insert(now));
    }
    copies
}

/// The replicas of one share: first hand, then, for devices this one has not heard from
/// more recently, as other members last reported them. `me` is this device's identity.
pub(super) fn replicas_of(share: &mut Share, me: &[u8; 32]) -> Vec<Replica> {
    let mut copies = first_hand(share);
    let reports = share
        .health
        .as_ref()
        .map(|h| h.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default();
    let roles = share.roster.allowed();
    for (log, (_, seen)) in reports {
        let Some(by) = share
            .members
            .iter()
            .find(|m| m.log == log)
            .map(|m| m.identity)
        else {
            continue;
        };
        if by == *me {
            continue;
        }
        for s in seen.into_iter().filter(|s| s.peer != *me) {
            let last_seen = UNIX_EPOCH + Duration::from_secs(s.last_seen);
            if copies.get(&s.peer).is_some_and(|c| {
                (c.connected && c.reported_by.is_none()) || c.last_seen >= last_seen
            }) {
                continue;
            }
            copies.insert(
                s.peer,
                Copy {
                    peer: s.peer,
                    role: roles.get(&s.peer).copied().or(s.role),
                    connected: s.connected,
                    behind_blocks: s.behind_blocks,
                    behind_bytes: 0,
                    behind_since: None,
                    last_seen,
                    reported_by: Some(by),
                    ahead_blocks: 0,
                    fetching: 0,
                },
            );
        }
    }
    copies.values().map(Copy::to_replica).collect()
}

/// The health report this device should publish for a member share now, if one is due:
/// when what it sees changed (at most every `MIN_REPORT`) and every `REPORT_EVERY` anyway.
pub(super) fn report_due(share: &mut Share) -> Option<Message> {
    let copies = first_hand(share);
    let digest: Vec<Sighting> = copies
        .values()
        .map(|c| (hex(&c.peer), c.connected, c.behind_blocks == 0))
        .collect();
    let now = Instant::now();
    let due = match &share.published {
        None => !copies.is_empty(),
        Some((at, said)) => {
            let age = now.duration_since(*at);
            (age >= MIN_REPORT && *said != digest) || age >= REPORT_EVERY
        }
    };
    if !due {
        return None;
    }
    share.published = Some((now, digest));
    let seen = copies
        .values()
        .take(MAX_SEEN)
        .map(|c| Seen {
            peer: c.peer,
            role: c.role,
            connected: c.connected,
            behind_blocks: c.behind_blocks,
            last_seen: unix(c.last_seen),
        })
        .collect();
    Some(Message::Health {
        at: unix(SystemTime::now()),
        seen,
    })
}
