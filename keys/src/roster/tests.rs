//! The roster's rules: statements and their encoding, admission, removal and
//! readmission, mutual removals, declared rosters, a long chain, and the file.
use super::*;
use crate::Secret32;

fn id(n: u8) -> SigningKeyPair {
    crate::derive::identity(&Secret32::from_bytes([n; 32]))
}

const ADDR: [u8; 32] = [9; 32];

#[test]
fn statements_round_trip_and_hostile_bytes_are_refused() {
    let (a, b) = (id(1), id(2));
    let all = vec![
        Statement::member(&a, &ADDR, [1; 32], [2; 32]),
        Statement::allow(&a, &ADDR, Role::Seeder, b.public.0),
    ];
    let bytes = encode_all(&all);
    assert_eq!(decode_all(&bytes).unwrap(), all);
    assert!(all.iter().all(|s| s.verifies(&ADDR)));
    assert!(!all[0].verifies(&[8; 32]), "bound to the address");
    for cut in 0..bytes.len() {
        let r = decode_all(&bytes[..cut]);
        assert!(cut == 0 || cut == 162 || r.is_err(), "cut at {cut}");
    }
    assert_eq!(decode_all(&[2, 1]), Err(RosterError::Version(2)));
    assert_eq!(decode_all(&[1, 7]), Err(RosterError::Type(7)));
    let mut bad_role = bytes[162..].to_vec();
    bad_role[2] = 9;
    assert_eq!(decode_all(&bad_role), Err(RosterError::Role(9)));
}

#[test]
fn a_member_trusts_itself_and_whom_trusted_identities_admit() {
    let (me, inviter, other, stranger, seed) = (id(1), id(2), id(3), id(4), id(5));
    let mut r = Roster::member(ADDR, me.public.0);
    // A stranger's own statements admit nobody.
    r.add(Statement::member(&stranger, &ADDR, [4; 32], [5; 32]))
        .unwrap();
    r.add(Statement::allow(
        &stranger,
        &ADDR,
        Role::Member,
        other.public.0,
    ))
    .unwrap();
    assert!(!r.admits(&stranger.public.0));
    assert!(!r.admits(&other.public.0));
    assert!(r.members().is_empty());
    // Admitting the inviter makes whom the inviter admits trusted too.
    r.add(Statement::allow(&me, &ADDR, Role::Member, inviter.public.0))
        .unwrap();
    r.add(Statement::allow(
        &inviter,
        &ADDR,
        Role::Member,
        other.public.0,
    ))
    .unwrap();
    r.add(Statement::allow(&other, &ADDR, Role::Seeder, seed.public.0))
        .unwrap();
    r.add(Statement::member(&other, &ADDR, [6; 32], [7; 32]))
        .unwrap();
    assert!(r.admits(&inviter.public.0));
    assert!(r.admits(&other.public.0));
    assert_eq!(r.allowed()[&seed.public.0], Role::Seeder);
    assert!(!r.admits(&stranger.public.0));
    assert_eq!(
        r.members(),
        vec![MemberFeeds {
            identity: other.public.0,
            log: [6; 32],
            content: [7; 32]
        }]
    );
    // A forged signature is refused and changes nothing.
    let mut forged = Statement::allow(&me, &ADDR, Role::Member, stranger.public.0);
    if let Statement::Allow { signature, .. } = &mut forged {
        signature[0] ^= 1;
    }
    assert_eq!(r.add(forged), Err(RosterError::Signature));
    assert!(!r.admits(&stranger.public.0));
}

#[test]
fn a_seed_serves_anyone_until_it_knows_the_roster_then_only_those_named() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut r = Roster::seed(ADDR);
    assert!(r.admits(&c.public.0));
    r.add(Statement::member(&a, &ADDR, [1; 32], [2; 32]))
        .unwrap();
    r.add(Statement::allow(&a, &ADDR, Role::Seeder, b.public.0))
        .unwrap();
    assert!(r.admits(&a.public.0) && r.admits(&b.public.0));
    assert!(!r.admits(&c.public.0));
    assert_eq!(r.members().len(), 1);
}

/// Member rosters of `me` with `a`, `b`, `c` and seeder `s` admitted by `a` (who invited
/// `me`), and the seed's roster of the same statements.
fn space(me: &SigningKeyPair, ids: &[&SigningKeyPair], more: &[Statement]) -> (Roster, Roster) {
    let a = ids[0];
    let mut member = Roster::member(ADDR, me.public.0);
    let mut seed = Roster::seed(ADDR);
    let mut all = vec![Statement::allow(me, &ADDR, Role::Member, a.public.0)];
    for (n, k) in ids.iter().enumerate() {
        all.push(Statement::member(
            k,
            &ADDR,
            [n as u8; 32],
            [n as u8 + 100; 32],
        ));
        if n > 0 {
            all.push(Statement::allow(a, &ADDR, Role::Member, k.public.0));
        }
    }
    all.extend_from_slice(more);
    for st in all {
        member.add(st.clone()).unwrap();
        seed.add(st).unwrap();
    }
    (member, seed)
}

#[test]
fn a_removal_holds_everywhere_and_a_stale_admission_does_not_undo_it() {
    let (me, a, b, c) = (id(1), id(2), id(3), id(4));
    let ids = [&a, &b, &c];
    let remove_b = Statement::remove(&a, &ADDR, b.public.0);
    let (r, seed) = space(&me, &ids, std::slice::from_ref(&remove_b));
    for (who, r) in [("member", &r), ("seed", &seed)] {
        assert!(!r.admits(&b.public.0), "{who}: b is out");
        assert!(r.admits(&a.public.0) && r.admits(&c.public.0), "{who}");
        assert_eq!(r.removed(), BTreeSet::from([b.public.0]), "{who}");
        // What b wrote before stays part of the space.
        assert!(
            r.members().iter().any(|m| m.identity == b.public.0),
            "{who}"
        );
    }
    // b's own device sees itself removed.
    let (own, _) = space(&b, &ids, std::slice::from_ref(&remove_b));
    assert!(own.removed().contains(&b.public.0));
    assert!(!own.admits(&b.public.0));
    // Admissions arriving later — a's original one again, c's fresh one — do not bring
    // b back; a readmission naming the removal does.
    let stale = Statement::allow(&c, &ADDR, Role::Member, b.public.0);
    let (r, _) = space(&me, &ids, &[remove_b.clone(), stale]);
    assert!(!r.admits(&b.public.0));
    let readmit = Statement::readmit(&c, &ADDR, Role::Member, b.public.0, a.public.0);
    let (r, _) = space(&me, &ids, &[remove_b.clone(), readmit]);
    assert!(r.admits(&b.public.0));
    // Nobody readmits themselves; the remover may retract its removal.
    let own_readmit = Statement::readmit(&b, &ADDR, Role::Member, b.public.0, a.public.0);
    let (r, _) = space(&me, &ids, &[remove_b.clone(), own_readmit]);
    assert!(!r.admits(&b.public.0));
    let retract = Statement::readmit(&a, &ADDR, Role::Member, b.public.0, a.public.0);
    let (r, _) = space(&me, &ids, &[remove_b, retract]);
    assert!(r.admits(&b.public.0));
}

#[test]
fn mutual_removals_put_both_out_until_a_third_member_sides_with_one() {
    let (me, a, b, c) = (id(1), id(2), id(3), id(4));
    let ids = [&a, &b, &c];
    let a_removes_b = Statement::remove(&a, &ADDR, b.public.0);
    let b_removes_a = Statement::remove(&b, &ADDR, a.public.0);
    let both = [a_removes_b.clone(), b_removes_a.clone()];
    let (r, seed) = space(&me, &ids, &both);
    for r in [&r, &seed] {
        assert_eq!(r.removed(), BTreeSet::from([a.public.0, b.public.0]));
    }
    assert!(r.admits(&me.public.0));
    // On a member, c, admitted by a only, waits with a; on the seed (no admissions to
    // follow) it is in.
    assert!(!r.admits(&c.public.0));
    assert!(seed.admits(&c.public.0));
    // c sides with a: b's removal of a counts no more, so a is in and b is out.
    let side = Statement::readmit(&c, &ADDR, Role::Member, a.public.0, b.public.0);
    let mut more = both.to_vec();
    more.push(side);
    let (r, seed) = space(&me, &ids, &more);
    for r in [&r, &seed] {
        assert_eq!(r.removed(), BTreeSet::from([b.public.0]));
        assert!(r.admits(&a.public.0) && r.admits(&c.public.0));
    }
    // b, out, cannot side with itself: its readmission of b over a does not count.
    more.push(Statement::readmit(
        &b,
        &ADDR,
        Role::Member,
        b.public.0,
        a.public.0,
    ));
    let (r, _) = space(&me, &ids, &more);
    assert_eq!(r.removed(), BTreeSet::from([b.public.0]));
}

#[test]
fn a_removed_identity_removes_nobody_and_whom_only_it_admitted_must_be_admitted_again() {
    let (me, a, b, c, e) = (id(1), id(2), id(3), id(4), id(5));
    let ids = [&a, &b, &c];
    let b_admits_e = Statement::allow(&b, &ADDR, Role::Member, e.public.0);
    let e_feeds = Statement::member(&e, &ADDR, [50; 32], [51; 32]);
    let remove_b = Statement::remove(&a, &ADDR, b.public.0);
    // b, removed, removes c: a's removal of b counts (a is in), so b's does not.
    let b_removes_c = Statement::remove(&b, &ADDR, c.public.0);
    let (r, _) = space(&me, &ids, &[b_admits_e.clone(), e_feeds.clone()]);
    assert!(r.admits(&e.public.0), "e is in through b");
    let (r, seed) = space(&me, &ids, &[b_admits_e, e_feeds, remove_b, b_removes_c]);
    assert!(r.admits(&c.public.0));
    assert!(!r.admits(&e.public.0), "e was in only through b");
    assert!(
        r.members().iter().any(|m| m.identity == e.public.0),
        "e's data stays"
    );
    assert!(!seed.admits(&b.public.0));
    // c admits e: e is back.
    let mut again = r.clone();
    again
        .add(Statement::allow(&c, &ADDR, Role::Member, e.public.0))
        .unwrap();
    assert!(again.admits(&e.public.0));
}

proptest::proptest! {
    /// Whatever else is known, an admission never brings back an identity that a member
    /// in the space removed, and the outcome does not depend on who holds the roster
    /// among the members that are in.
    #[test]
    fn no_admission_undoes_a_removal_and_members_in_agree(
        extra in proptest::collection::vec((0u8..3, 0usize..5, 0usize..5), 0..12),
    ) {
        let ids: Vec<SigningKeyPair> = (1..=5).map(id).collect();
        let (a, b) = (&ids[0], &ids[1]);
        let mut all = Vec::new();
        for k in &ids[1..] {
            all.push(Statement::allow(a, &ADDR, Role::Member, k.public.0));
            all.push(Statement::allow(k, &ADDR, Role::Member, a.public.0));
        }
        all.push(Statement::remove(a, &ADDR, b.public.0));
        for (kind, by, whom) in extra {
            let (by, whom) = (&ids[by], ids[whom].public.0);
            all.push(match kind {
                0 => Statement::allow(by, &ADDR, Role::Member, whom),
                1 => Statement::remove(by, &ADDR, whom),
                _ => Statement::readmit(by, &ADDR, Role::Member, whom, ids[0].public.0),
            });
        }
        let roster = |me: &SigningKeyPair| {
            let mut r = Roster::member(ADDR, me.public.0);
            for st in &all {
                r.add(st.clone()).unwrap();
            }
            r
        };
        let views: Vec<Roster> = ids.iter().map(roster).collect();
        let ra = &views[0];
        // a's removal of b counts while a is in and no readmission overrides it.
        let overridden = all.iter().any(|s| matches!(s, Statement::Readmit { identity, .. } if *identity == b.public.0));
        if ra.admits(&a.public.0) && !overridden {
            for v in &views {
                proptest::prop_assert!(!v.admits(&b.public.0));
            }
        }
        // Every member that is in on its own device sees the same members in.
        let ins: Vec<&Roster> = views
            .iter()
            .zip(&ids)
            .filter(|(v, k)| v.admits(&k.public.0) && ra.admits(&k.public.0))
            .map(|(v, _)| v)
            .collect();
        for v in &ins {
            proptest::prop_assert_eq!(v.allowed(), ins[0].allowed());
        }
    }
}

#[test]
fn a_declared_roster_signs_what_is_missing_and_a_seeder_dropped_from_it_is_removed() {
    let (me, s1, s2, b) = (id(1), id(2), id(3), id(4));
    let mut r = Roster::member(ADDR, me.public.0);
    let first = r.declare(&me, &[s1.public.0, s2.public.0], &[]);
    assert_eq!(first.len(), 2);
    r.add_new(first);
    assert!(r.declare(&me, &[s1.public.0, s2.public.0], &[]).is_empty());
    // s2 leaves the list and b is removed: both are out.
    let next = r.declare(&me, &[s1.public.0], &[b.public.0]);
    r.add_new(next);
    assert!(r.admits(&s1.public.0));
    assert!(!r.admits(&s2.public.0));
    assert_eq!(r.removed(), BTreeSet::from([s2.public.0, b.public.0]));
    // s2 declared again: readmitted over this device's own removal.
    let again = r.declare(&me, &[s1.public.0, s2.public.0], &[b.public.0]);
    assert_eq!(again.len(), 1, "the readmission only");
    r.add_new(again);
    assert!(r.admits(&s2.public.0));
    assert!(!r.admits(&b.public.0));
    // Removing oneself is not signed.
    assert!(
        r.declare(&me, &[], &[me.public.0])
            .iter()
            .all(|s| !matches!(s, Statement::Remove { identity, .. } if *identity == me.public.0))
    );
}

#[test]
fn the_entries_say_who_is_in_who_removed_whom_and_who_is_out_with_its_admitter() {
    let (me, a, b, c, e) = (id(1), id(2), id(3), id(4), id(5));
    let ids = [&a, &b, &c];
    let (r, _) = space(
        &me,
        &ids,
        &[
            Statement::allow(&b, &ADDR, Role::Member, e.public.0),
            Statement::remove(&a, &ADDR, b.public.0),
        ],
    );
    let entries = r.entries();
    let of = |k: &SigningKeyPair| entries.iter().find(|x| x.identity == k.public.0).unwrap();
    assert_eq!(of(&me).standing, Standing::In);
    assert_eq!(of(&a).standing, Standing::In);
    assert_eq!(of(&b).standing, Standing::Removed);
    assert_eq!(of(&b).removed_by, vec![a.public.0]);
    assert_eq!(of(&b).admitted_by, vec![a.public.0]);
    assert_eq!(of(&e).standing, Standing::Out);
    assert_eq!(of(&e).admitted_by, vec![b.public.0]);
    assert!(entries.windows(2).all(|w| w[0].identity < w[1].identity));
}

#[test]
fn a_removal_near_the_root_of_a_long_chain_of_admissions_puts_the_chain_out() {
    // 5,000 identities, each admitted by the one before: the sizes a long-lived space
    // or a hostile peer reaches. The root admits the first; removing the second puts
    // every later one out (each admitted only through it), the first stays in.
    let me = id(0);
    let ids: Vec<SigningKeyPair> = (1..=5_000u32)
        .map(|n| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            crate::derive::identity(&Secret32::from_bytes(seed))
        })
        .collect();
    let mut r = Roster::member(ADDR, me.public.0);
    let mut all = vec![Statement::allow(&me, &ADDR, Role::Member, ids[0].public.0)];
    for w in ids.windows(2) {
        all.push(Statement::allow(&w[0], &ADDR, Role::Member, w[1].public.0));
    }
    r.add_new(all);
    assert_eq!(r.allowed().len(), 5_001);
    r.add_new([Statement::remove(&ids[0], &ADDR, ids[1].public.0)]);
    let allowed = r.allowed();
    assert_eq!(allowed.len(), 2, "the root and the remover");
    assert!(allowed.contains_key(&ids[0].public.0));
    assert_eq!(r.removed(), BTreeSet::from([ids[1].public.0]));
}

#[test]
fn removals_and_readmissions_round_trip_and_are_bound_to_the_space() {
    let (a, b) = (id(1), id(2));
    let all = vec![
        Statement::remove(&a, &ADDR, b.public.0),
        Statement::readmit(&a, &ADDR, Role::Seeder, b.public.0, [7; 32]),
    ];
    let bytes = encode_all(&all);
    assert_eq!(decode_all(&bytes).unwrap(), all);
    assert!(all.iter().all(|s| s.verifies(&ADDR)));
    assert!(all.iter().all(|s| !s.verifies(&[8; 32])));
    for cut in 1..bytes.len() {
        if cut != 130 {
            assert!(decode_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

#[test]
fn the_file_keeps_statements_and_ignores_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roster");
    let a = id(1);
    let mut r = Roster::member(ADDR, a.public.0);
    let s1 = Statement::member(&a, &ADDR, [1; 32], [2; 32]);
    let s2 = Statement::allow(&a, &ADDR, Role::Seeder, [3; 32]);
    assert_eq!(r.add_and_keep(&file, [s1.clone()]).unwrap().len(), 1);
    assert_eq!(
        r.add_and_keep(&file, [s1.clone(), s2.clone()]).unwrap(),
        vec![s2.clone()]
    );
    // A crash during an append leaves part of a statement.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(&[1, 1, 5, 5]).unwrap();
    let mut again = Roster::member(ADDR, a.public.0);
    again.load(&file).unwrap();
    // Later appends stay readable.
    let s3 = Statement::allow(&a, &ADDR, Role::Member, [4; 32]);
    again.add_and_keep(&file, [s3.clone()]).unwrap();
    let mut third = Roster::member(ADDR, a.public.0);
    third.load(&file).unwrap();
    assert_eq!(third.statements().cloned().collect::<Vec<_>>(), {
        let mut v = vec![s1, s2, s3];
        v.sort();
        v
    });
}
