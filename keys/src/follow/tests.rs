//! Following envelopes: the chain from the mark, every refusal with its reason, waiting
//! for authority, fork choice, and the same answer for any order or duplication of a set.

use std::collections::BTreeSet;

use super::*;
use crate::authority::{Change, Entry};
use crate::envelope::Header;
use crate::{Secret32, SigningKeyPair};
use proptest::prelude::*;

const FLEET: [u8; 32] = [7; 32];

fn key(n: u8) -> SigningKeyPair {
    SigningKeyPair::from_seed(&Secret32::from_bytes([n; 32]))
}

fn genesis(admins: &[&SigningKeyPair]) -> Authority {
    Authority::genesis(
        admins.iter().map(|k| k.public.0).collect::<BTreeSet<_>>(),
        1,
    )
    .unwrap()
}

/// An envelope of `text` for `hub` after `parent`, signed by `by`.
fn env(
    by: &SigningKeyPair,
    hub: &SigningKeyPair,
    parent: Mark,
    auth: &Authority,
    text: &str,
) -> Envelope {
    Envelope::seal(
        Header {
            fleet: FLEET,
            target: hub.public.0,
            generation: parent.generation + 1,
            parent: parent.digest,
            authority: auth.head,
        },
        text,
        by,
    )
    .unwrap()
}

fn refusal(s: &Step, e: &Envelope) -> Option<Refusal> {
    s.refused.get(&e.digest()).map(|r| r.2)
}

#[test]
fn a_chain_is_followed_to_its_end_and_not_again() {
    let (a, hub) = (key(1), key(2));
    let auth = genesis(&[&a]);
    let e1 = env(&a, &hub, Mark::default(), &auth, "one");
    let e2 = env(&a, &hub, Mark::of(&e1), &auth, "two");
    let e3 = env(&a, &hub, Mark::of(&e2), &auth, "three");
    let s = step(
        Mark::default(),
        &auth,
        &hub.public.0,
        &FLEET,
        [&e3, &e1, &e2],
    );
    assert_eq!(s.chain, vec![e1.clone(), e2.clone(), e3.clone()]);
    assert_eq!(s.chain.last().unwrap().open(&hub).unwrap(), "three");
    assert!(s.refused.is_empty());
    // From the end, nothing more; the older ones are replays.
    let again = step(
        s.mark(Mark::default()),
        &auth,
        &hub.public.0,
        &FLEET,
        [&e1, &e2, &e3],
    );
    assert!(again.chain.is_empty());
    assert_eq!(refusal(&again, &e1), Some(Refusal::Replayed));
    assert_eq!(refusal(&again, &e2), Some(Refusal::Replayed));
    assert_eq!(
        refusal(&again, &e3),
        None,
        "the one accepted last is not a refusal"
    );
}

#[test]
fn foreign_forged_and_outsider_envelopes_are_refused_with_their_reason() {
    let (a, hub, other, outsider) = (key(1), key(2), key(3), key(4));
    let auth = genesis(&[&a]);
    let for_other = env(&a, &other, Mark::default(), &auth, "x");
    let by_outsider = env(&outsider, &hub, Mark::default(), &auth, "x");
    let mut forged = env(&a, &hub, Mark::default(), &auth, "x");
    forged.signature[0] ^= 1;
    let mut other_fleet = env(&a, &hub, Mark::default(), &auth, "x");
    other_fleet.fleet = [8; 32];
    let s = step(
        Mark::default(),
        &auth,
        &hub.public.0,
        &FLEET,
        [&for_other, &by_outsider, &forged, &other_fleet],
    );
    assert!(s.chain.is_empty());
    assert_eq!(refusal(&s, &for_other), Some(Refusal::OtherTarget));
    assert_eq!(refusal(&s, &by_outsider), Some(Refusal::NotAnAdmin));
    assert_eq!(refusal(&s, &forged), Some(Refusal::BadSignature));
    assert_eq!(refusal(&s, &other_fleet), Some(Refusal::OtherFleet));
}

#[test]
fn a_jump_ahead_waits_and_a_fork_takes_the_smaller_digest() {
    let (a, b, hub) = (key(1), key(2), key(3));
    let auth = genesis(&[&a, &b]);
    let ea = env(&a, &hub, Mark::default(), &auth, "from a");
    let eb = env(&b, &hub, Mark::default(), &auth, "from b");
    let (win, lose) = if ea.digest() < eb.digest() {
        (&ea, &eb)
    } else {
        (&eb, &ea)
    };
    let after_lose = env(&a, &hub, Mark::of(lose), &auth, "after the loser");
    let far = env(
        &a,
        &hub,
        Mark {
            generation: 5,
            digest: [1; 32],
        },
        &auth,
        "far",
    );
    let s = step(
        Mark::default(),
        &auth,
        &hub.public.0,
        &FLEET,
        [&ea, &eb, &after_lose, &far],
    );
    assert_eq!(s.chain, vec![win.clone()]);
    assert_eq!(refusal(&s, lose), Some(Refusal::Forked));
    assert_eq!(
        refusal(&s, &after_lose),
        Some(Refusal::Forked),
        "its parent is not the chain's"
    );
    assert_eq!(refusal(&s, &far), Some(Refusal::Ahead));
}

#[test]
fn a_removed_admin_is_refused_and_an_unknown_authority_head_waits() {
    let (a, b, hub) = (key(1), key(2), key(3));
    let auth = genesis(&[&a, &b]);
    let removal = Entry::new(auth.head, Change::Remove(b.public.0), &a);
    let after = auth.clone().follow([removal]);
    assert_eq!(after.keys.len(), 1);
    let by_b = env(&b, &hub, Mark::default(), &auth, "b was an admin");
    let s = step(Mark::default(), &after, &hub.public.0, &FLEET, [&by_b]);
    assert_eq!(refusal(&s, &by_b), Some(Refusal::NotAnAdmin));
    // Published under a head the hub has not reached: it waits.
    let ahead_of_hub = env(&a, &hub, Mark::default(), &after, "new set");
    let s = step(
        Mark::default(),
        &auth,
        &hub.public.0,
        &FLEET,
        [&ahead_of_hub],
    );
    assert!(s.chain.is_empty() && s.refused.is_empty());
    assert_eq!(s.waiting, vec![ahead_of_hub.digest()]);
    let s = step(
        Mark::default(),
        &after,
        &hub.public.0,
        &FLEET,
        [&ahead_of_hub],
    );
    assert_eq!(s.chain, vec![ahead_of_hub]);
}

/// A history: a chain of four, a fork at two, a replay target, an outsider's, a jump.
fn history() -> (Authority, SigningKeyPair, Vec<Envelope>) {
    let (a, b, hub, outsider) = (key(1), key(2), key(3), key(4));
    let auth = genesis(&[&a, &b]);
    let mut all = Vec::new();
    let mut at = Mark::default();
    for i in 0..4 {
        let e = env(
            if i % 2 == 0 { &a } else { &b },
            &hub,
            at,
            &auth,
            &format!("c{i}"),
        );
        if i == 1 {
            all.push(env(&b, &hub, at, &auth, "fork"));
        }
        at = Mark::of(&e);
        all.push(e);
    }
    all.push(env(&outsider, &hub, Mark::default(), &auth, "x"));
    all.push(env(
        &a,
        &hub,
        Mark {
            generation: 9,
            digest: [3; 32],
        },
        &auth,
        "far",
    ));
    (auth, hub, all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_order_or_duplication_gives_the_same_step(
        order in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<usize> = (0..7).chain(0..7).collect();
            for i in (1..v.len()).rev() {
                v.swap(i, (rng.next_u32() as usize) % (i + 1));
            }
            v.truncate(7 + (rng.next_u32() as usize) % 8);
            v
        }),
        start in 0usize..3,
    ) {
        let (auth, hub, all) = history();
        let mark = if start == 0 { Mark::default() } else {
            // From part-way along the chain (some device applied some already).
            let first = step(Mark::default(), &auth, &hub.public.0, &FLEET, &all);
            Mark::of(&first.chain[(start - 1).min(first.chain.len() - 1)])
        };
        let expected = step(mark, &auth, &hub.public.0, &FLEET, &all);
        // Every envelope at least once, then the shuffled duplicates.
        let mut given: Vec<&Envelope> = all.iter().collect();
        given.extend(order.iter().map(|&i| &all[i]));
        let n = order.len() % given.len();
        given.rotate_left(n);
        let got = step(mark, &auth, &hub.public.0, &FLEET, given);
        prop_assert_eq!(&got, &expected);
        // Applying is idempotent: from where it ended, nothing more.
        let end = got.mark(mark);
        // An admin finds the same end from the headers alone.
        let heads: Vec<Head> = all.iter().filter(|e| e.verifies()).map(Head::of).collect();
        prop_assert_eq!(tip(&auth, Mark::default(), &heads), step(Mark::default(), &auth, &hub.public.0, &FLEET, &all).mark(Mark::default()));
        prop_assert!(step(end, &auth, &hub.public.0, &FLEET, &all).chain.is_empty());
        // The chain's second envelope and the fork compete; the smaller digest wins and
        // only the chain's continues to four.
        let fork_wins = all[1].digest() < all[2].digest();
        prop_assert_eq!(end.generation.max(mark.generation), if fork_wins { 2 } else { 4 });
    }
}
