//! What a device takes from its admins: of the envelopes it holds, the chain that continues
//! from the last one it accepted (its *mark*), and a typed reason for every envelope it will
//! not take. Pure: a function of the mark, the authority and the set of envelopes, so every
//! order, duplication or loss of messages that leaves the same set gives the same answer.
//!
//! An envelope continues the chain when it is for this fleet and this device, signed by a
//! key of the admin set in force, published under an authority head this device knows, of
//! generation exactly one more than the chain's end and naming that end as its parent. When
//! several do (two admins published at once), the one with the smallest digest is taken
//! and the others are refused as forks. An envelope under an authority head not known here
//! yet waits for it; one further ahead than the next generation waits for the envelopes
//! between (it is reported as ahead).

use std::collections::BTreeMap;

use crate::authority::{Authority, Digest};
use crate::envelope::Envelope;

/// The last envelope a device accepted from its admins: generation 0 is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub generation: u64,
    pub digest: Digest,
}

impl Mark {
    pub fn of(e: &Envelope) -> Mark {
        Mark {
            generation: e.generation,
            digest: e.digest(),
        }
    }
}

/// Why an envelope is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// For another fleet.
    OtherFleet,
    /// For another device.
    OtherTarget,
    /// Its signature does not verify.
    BadSignature,
    /// Its signer is not in the admin set in force.
    NotAnAdmin,
    /// Its generation is at or below the one accepted: a replay or a rollback.
    Replayed,
    /// Another envelope of its generation was taken, or its parent is not the chain's.
    Forked,
    /// Its generation is beyond the next one: it waits for the envelopes between.
    Ahead,
}

impl Refusal {
    /// A stable code for reports.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::OtherFleet => "other-fleet",
            Refusal::OtherTarget => "other-target",
            Refusal::BadSignature => "bad-signature",
            Refusal::NotAnAdmin => "not-an-admin",
            Refusal::Replayed => "replayed",
            Refusal::Forked => "forked",
            Refusal::Ahead => "ahead",
        }
    }
}

/// What following the envelopes held gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// The envelopes that continue the chain, in order: the last is the config to run.
    pub chain: Vec<Envelope>,
    /// Envelopes not taken, by digest, with the reason.
    pub refused: BTreeMap<Digest, (u64, [u8; 32], Refusal)>,
    /// Envelopes under an authority head not known here yet.
    pub waiting: Vec<Digest>,
}

impl Step {
    /// Where the chain ends: the new mark.
    pub fn mark(&self, from: Mark) -> Mark {
        self.chain.last().map_or(from, Mark::of)
    }
}

/// What an admin keeps of an envelope published for a device: enough to find the chain's
/// end without the payload (its signature was checked when it was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub generation: u64,
    pub digest: Digest,
    pub parent: Digest,
    pub signer: [u8; 32],
}

impl Head {
    pub fn of(e: &Envelope) -> Head {
        Head {
            generation: e.generation,
            digest: e.digest(),
            parent: e.parent,
            signer: e.signer,
        }
    }
}

/// Where the chain of `heads` ends from `from` (the chain's start, or an end found before),
/// by the device's rule (signers in the set in force; the smallest digest at a fork): what
/// the next envelope for that device continues.
pub fn tip(authority: &Authority, from: Mark, heads: &[Head]) -> Mark {
    chain(authority, from, heads)
        .last()
        .copied()
        .unwrap_or(from)
}

/// The chain of `heads` from `from` (excluded), link by link, by the rule of [`tip`].
pub fn chain(authority: &Authority, from: Mark, heads: &[Head]) -> Vec<Mark> {
    let mut links = Vec::new();
    let mut end = from;
    loop {
        let next = heads
            .iter()
            .filter(|h| {
                h.generation == end.generation + 1
                    && h.parent == end.digest
                    && authority.keys.contains(&h.signer)
            })
            .min_by_key(|h| h.digest);
        match next {
            Some(h) => {
                end = Mark {
                    generation: h.generation,
                    digest: h.digest,
                };
                links.push(end);
            }
            None => return links,
        }
    }
}

/// Follow `envelopes` from `mark` for device `me` in `fleet` under `authority`.
pub fn step<'a>(
    mark: Mark,
    authority: &Authority,
    me: &[u8; 32],
    fleet: &[u8; 32],
    envelopes: impl IntoIterator<Item = &'a Envelope>,
) -> Step {
    let mut out = Step::default();
    let mut valid: BTreeMap<Digest, &Envelope> = BTreeMap::new();
    for e in envelopes {
        let d = e.digest();
        if valid.contains_key(&d) || out.refused.contains_key(&d) || out.waiting.contains(&d) {
            continue;
        }
        let refusal = if e.fleet != *fleet {
            Some(Refusal::OtherFleet)
        } else if e.target != *me {
            Some(Refusal::OtherTarget)
        } else if !e.verifies() {
            Some(Refusal::BadSignature)
        } else if !authority.keys.contains(&e.signer) {
            Some(Refusal::NotAnAdmin)
        } else {
            None
        };
        match refusal {
            Some(r) => {
                out.refused.insert(d, (e.generation, e.signer, r));
            }
            None if !authority.has_head(&e.authority) => out.waiting.push(d),
            None => {
                valid.insert(d, e);
            }
        }
    }
    let mut end = mark;
    loop {
        // The smallest digest among the candidates wins: `valid` is ordered by digest.
        let next = valid
            .iter()
            .find(|(_, e)| e.generation == end.generation + 1 && e.parent == end.digest)
            .map(|(d, _)| *d);
        let Some(d) = next else { break };
        let e = valid.remove(&d).expect("found above");
        end = Mark::of(e);
        out.chain.push(e.clone());
    }
    for (d, e) in valid {
        let r = if d == mark.digest {
            continue; // the one accepted last
        } else if e.generation <= mark.generation {
            Refusal::Replayed
        } else if e.generation <= end.generation + 1 {
            Refusal::Forked
        } else {
            Refusal::Ahead
        };
        out.refused.insert(d, (e.generation, e.signer, r));
    }
    out.waiting.sort();
    out
}

#[cfg(test)]
mod tests;
