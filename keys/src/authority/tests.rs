//! The admin authority's rules on small histories: thresholds and co-signatures, removal and
//! revocation, the threshold floor, the fork rule, order independence and the encoding.

use super::*;
use crate::Secret32;
use proptest::prelude::*;

fn admin(n: u8) -> SigningKeyPair {
    SigningKeyPair::from_seed(&Secret32::from_bytes([n; 32]))
}

fn set(of: &[&SigningKeyPair]) -> BTreeSet<[u8; 32]> {
    of.iter().map(|k| k.public.0).collect()
}

#[test]
fn a_genesis_needs_a_threshold_its_keys_can_meet() {
    let (a, b) = (admin(1), admin(2));
    assert!(Authority::genesis(set(&[&a, &b]), 0).is_err());
    assert!(Authority::genesis(set(&[&a, &b]), 3).is_err());
    let g = Authority::genesis(set(&[&a, &b]), 2).unwrap();
    assert_eq!(g, Authority::genesis(set(&[&b, &a]), 2).unwrap());
    assert_ne!(g.head, Authority::genesis(set(&[&a, &b]), 1).unwrap().head);
}

#[test]
fn a_change_needs_threshold_signatures_of_the_set_in_force() {
    let (a, b, c, outsider) = (admin(1), admin(2), admin(3), admin(9));
    let g = Authority::genesis(set(&[&a, &b]), 2).unwrap();
    let add_c = Entry::new(g.head, Change::Add(c.public.0), &a);
    assert_eq!(
        g.clone().follow([add_c.clone()]).keys,
        set(&[&a, &b]),
        "one of two"
    );
    let mut by_outsider = add_c.clone();
    by_outsider.sign(&outsider);
    assert!(
        g.clone().follow([by_outsider]).applied.is_empty(),
        "not an admin"
    );
    // The co-signature gathered separately makes the same entry.
    let cosigned = Entry::new(g.head, Change::Add(c.public.0), &b);
    let after = g.clone().follow([add_c.clone(), cosigned]);
    assert_eq!(after.keys, set(&[&a, &b, &c]));
    assert_eq!(after.head, add_c.digest());
    // A forged signature counts for nothing.
    let mut forged = add_c;
    forged.signatures.insert(b.public.0, [7; 64]);
    assert!(g.follow([forged]).applied.is_empty());
}

#[test]
fn a_removed_keys_later_entries_are_ignored_and_a_revoked_key_never_comes_back() {
    let (a, b, c) = (admin(1), admin(2), admin(3));
    let g = Authority::genesis(set(&[&a, &b]), 1).unwrap();
    let remove_b = Entry::new(g.head, Change::Remove(b.public.0), &a);
    let by_b = Entry::new(remove_b.digest(), Change::Add(c.public.0), &b);
    let after = g.clone().follow([by_b, remove_b.clone()]);
    assert_eq!((after.keys, after.applied.len()), (set(&[&a]), 1));
    // Removed, it may be added again; revoked, never.
    let back = Entry::new(remove_b.digest(), Change::Add(b.public.0), &a);
    assert_eq!(g.clone().follow([remove_b, back]).keys, set(&[&a, &b]));
    let revoke_b = Entry::new(g.head, Change::Revoke(b.public.0), &a);
    let again = Entry::new(revoke_b.digest(), Change::Add(b.public.0), &a);
    let after = g.follow([revoke_b, again]);
    assert_eq!((after.keys, after.revoked), (set(&[&a]), set(&[&b])));
}

#[test]
fn no_change_leaves_fewer_keys_than_the_threshold() {
    let (a, b) = (admin(1), admin(2));
    let g = Authority::genesis(set(&[&a, &b]), 2).unwrap();
    let mut remove_b = Entry::new(g.head, Change::Remove(b.public.0), &a);
    remove_b.sign(&b);
    assert!(g.clone().follow([remove_b]).applied.is_empty());
    let mut lower = Entry::new(g.head, Change::Threshold(1), &a);
    lower.sign(&b);
    let mut remove_b = Entry::new(lower.digest(), Change::Remove(b.public.0), &a);
    remove_b.sign(&b);
    let after = g.clone().follow([remove_b, lower]);
    assert_eq!((after.keys, after.threshold), (set(&[&a]), 1));
    let mut zero = Entry::new(g.head, Change::Threshold(0), &a);
    zero.sign(&b);
    assert!(g.follow([zero]).applied.is_empty());
}

#[test]
fn of_two_concurrent_changes_a_removal_wins_and_the_other_is_never_applied() {
    let (a, b) = (admin(1), admin(2));
    let g = Authority::genesis(set(&[&a, &b]), 1).unwrap();
    let remove = Entry::new(g.head, Change::Remove(b.public.0), &a);
    // b adds someone while a removes b, both on the genesis: whichever digest is smaller.
    for n in 3..10 {
        let add = Entry::new(g.head, Change::Add(admin(n).public.0), &b);
        let after = g.clone().follow([add.clone(), remove.clone()]);
        assert_eq!(after.keys, set(&[&a]));
        assert_eq!(after.applied, vec![remove.digest()]);
        assert_eq!(after, g.clone().follow([remove.clone(), add]));
    }
}

/// A small history with a fork, duplicates and co-signatures; and the key the fork added.
fn history() -> (Authority, Vec<Entry>, SigningKeyPair) {
    let (a, b, c, d) = (admin(1), admin(2), admin(3), admin(4));
    let g = Authority::genesis(set(&[&a, &b]), 1).unwrap();
    // Two additions on the genesis: the one with the smaller digest is followed.
    let add_c = Entry::new(g.head, Change::Add(c.public.0), &a);
    let add_d = Entry::new(g.head, Change::Add(d.public.0), &b);
    let (won, new) = if add_c.digest() < add_d.digest() {
        (&add_c, c)
    } else {
        (&add_d, d)
    };
    let two = Entry::new(won.digest(), Change::Threshold(2), &new);
    let mut remove_a = Entry::new(two.digest(), Change::Remove(a.public.0), &b);
    let cosign = Entry::new(two.digest(), Change::Remove(a.public.0), &new);
    remove_a.sign(&a);
    let late = Entry::new(remove_a.digest(), Change::Add(a.public.0), &a);
    let entries = vec![add_c.clone(), add_d.clone(), two, remove_a, cosign, late];
    (g, entries, new)
}

#[test]
fn the_sample_history_ends_where_its_rules_say() {
    let (g, entries, new) = history();
    let after = g.follow(entries);
    assert_eq!(
        after.applied.len(),
        3,
        "an addition, threshold 2, removal of a"
    );
    assert_eq!(after.keys, set(&[&admin(2), &new]));
    assert_eq!(after.threshold, 2);
}

#[test]
fn only_entries_that_can_still_matter_are_kept() {
    let (g, entries, new) = history();
    let after = g.clone().follow(entries.clone());
    let kept = after.keep(entries.clone());
    let digests: Vec<Digest> = kept.iter().map(Entry::digest).collect();
    for d in &after.applied {
        assert!(digests.contains(d), "an applied entry is kept");
    }
    assert_eq!(
        g.clone().follow(kept.clone()),
        after,
        "what is kept gives the same authority"
    );
    // A proposal on the head signed by an admin is kept (it may gather a co-signature);
    // the same change signed only by an outsider is not, nor a losing fork.
    let (outsider, e) = (admin(9), admin(5));
    let proposal = Entry::new(after.head, Change::Add(e.public.0), &new);
    let spam = Entry::new(after.head, Change::Add(outsider.public.0), &outsider);
    let mut all = entries.clone();
    all.extend([proposal.clone(), spam.clone()]);
    let kept = after.keep(all);
    let digests: Vec<Digest> = kept.iter().map(Entry::digest).collect();
    assert!(digests.contains(&proposal.digest()));
    assert!(!digests.contains(&spam.digest()));
    let lost = entries
        .iter()
        .find(|x| x.parent == g.head && !after.applied.contains(&x.digest()))
        .unwrap();
    assert!(
        !digests.contains(&lost.digest()),
        "the losing fork is dropped"
    );
    // Entries of unknown parent: the first MAX_PARKED are kept, the rest not.
    let orphans: Vec<Entry> = (0..MAX_PARKED + 10)
        .map(|i| Entry::new([i as u8; 32], Change::Threshold(1), &outsider))
        .collect();
    let kept = after.keep(orphans.clone());
    assert_eq!(kept.len(), MAX_PARKED);
    assert_eq!(kept[0], orphans[0]);
}

proptest! {
    #[test]
    fn any_order_or_duplication_of_entries_gives_the_same_authority(
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        repeats in proptest::collection::vec(0..6usize, 0..6),
    ) {
        let (g, entries, _) = history();
        let expected = g.clone().follow(entries.clone());
        let mut shuffled: Vec<Entry> = order.iter().map(|&i| entries[i].clone()).collect();
        shuffled.extend(repeats.iter().map(|&i| entries[i].clone()));
        prop_assert_eq!(g.follow(shuffled), expected);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Entry::decode(&bytes);
    }
}

#[test]
fn an_entry_round_trips_and_every_truncation_or_extension_is_an_error() {
    let (_, entries, _) = history();
    for e in &entries {
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).as_ref(), Ok(e));
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Entry::decode(&long), Err(AuthorityError::Trailing(1)));
    }
    let mut twice = entries[3].encode();
    let n = twice.len();
    let first = twice[n - 2 * 96..n - 96].to_vec();
    twice[n - 96..].copy_from_slice(&first);
    assert_eq!(Entry::decode(&twice), Err(AuthorityError::DuplicateSigner));
}
