//! The merge rules, and that every arrival order gives the same tree.

use cobox_drive::{Clock, Drive, Effect, FeedId, FileMeta, Node, Op, Retention, Run, Value};
use proptest::prelude::*;

const A: FeedId = [1; 32];
const B: FeedId = [2; 32];

fn file(tag: u8) -> Value {
    Value::File(FileMeta {
        size: tag as u64,
        mode: 0o644,
        mtime: tag as i64,
        runs: vec![Run {
            feed: [tag; 32],
            start: 0,
            count: 1,
        }],
        inline: None,
    })
}

fn dir() -> Value {
    Value::Dir {
        mode: 0o755,
        mtime: 1,
    }
}

fn op(time: i64, device: &str, seen: &[(FeedId, u64)], effects: &[(&str, Value)]) -> Op {
    let mut clock = Clock::default();
    for (f, n) in seen {
        clock.set(*f, *n);
    }
    Op {
        time,
        device: device.into(),
        clock,
        effects: effects
            .iter()
            .map(|(p, v)| Effect {
                path: p.to_string(),
                value: v.clone(),
            })
            .collect(),
    }
}

fn size_of(d: &Drive, path: &str) -> Option<u64> {
    match d.node(path) {
        Some(Node::File(m)) => Some(m.size),
        _ => None,
    }
}

#[test]
fn every_version_of_a_file_is_kept_through_edits_a_rename_and_a_delete() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(100, "a", &[], &[("doc.txt", file(1))]));
    d.apply(A, 1, &op(200, "a", &[(A, 1)], &[("doc.txt", file(2))]));
    // B, having seen both, moves the file away; A's later edit lands at the new name.
    d.apply(
        B,
        0,
        &op(
            300,
            "b",
            &[(A, 2)],
            &[("doc.txt", Value::Tombstone), ("old/doc.txt", file(2))],
        ),
    );
    d.apply(
        A,
        2,
        &op(400, "a", &[(A, 2), (B, 1)], &[("old/doc.txt", file(3))]),
    );
    let sizes = |path: &str| -> Vec<u64> { d.versions(path).iter().map(|v| v.meta.size).collect() };
    assert_eq!(sizes("doc.txt"), vec![1, 2]);
    assert_eq!(sizes("old/doc.txt"), vec![2, 3]);
    assert!(d.node("doc.txt").is_none(), "the file moved away");
    // The version written at or before a time.
    assert_eq!(d.version_at("doc.txt", 150).map(|v| v.meta.size), Some(1));
    assert_eq!(d.version_at("doc.txt", 99), None);
    assert_eq!(
        d.version_at("old/doc.txt", 1000).map(|v| v.meta.size),
        Some(3)
    );
    // An operation replaced before it arrives is an earlier version at once, and
    // applying anything again changes nothing.
    let mut late = Drive::default();
    late.apply(A, 1, &op(200, "a", &[(A, 1)], &[("doc.txt", file(2))]));
    late.apply(A, 0, &op(100, "a", &[], &[("doc.txt", file(1))]));
    late.apply(A, 0, &op(100, "a", &[], &[("doc.txt", file(1))]));
    assert_eq!(late.versions("doc.txt"), d.versions("doc.txt"));
    assert_eq!(size_of(&late, "doc.txt"), Some(2));
    // Where versions are, as the mount's hidden directory lists them: the moved-away
    // path counts, a directory only through what is beneath it.
    let names = |dir: &str| d.versioned_under(dir).into_iter().collect::<Vec<_>>();
    assert_eq!(names(""), ["doc.txt", "old"]);
    assert_eq!(names("old"), ["doc.txt"]);
    assert!(names("doc.txt").is_empty());
    for (path, has) in [
        ("old", true),
        ("old/doc.txt", true),
        ("doc.txt", true),
        ("ol", false),
        ("old/doc", false),
    ] {
        assert_eq!(d.has_file_versions_at_or_under(path), has, "{path}");
    }
}

#[test]
fn versions_are_pruned_by_age_since_replaced_keeping_the_newest_few() {
    let mut d = Drive::default();
    // doc.txt: versions written at 100, 200, 300, 400 (current); gone.txt: written at 100,
    // deleted at 500.
    for (seq, t) in [100, 200, 300, 400].into_iter().enumerate() {
        let seen = [(A, seq as u64)];
        d.apply(
            A,
            seq as u64,
            &op(t, "a", &seen, &[("doc.txt", file(seq as u8 + 1))]),
        );
    }
    d.apply(A, 4, &op(100, "a", &[(A, 4)], &[("gone.txt", file(9))]));
    d.apply(
        A,
        5,
        &op(500, "a", &[(A, 5)], &[("gone.txt", Value::Tombstone)]),
    );
    let sizes = |d: &Drive, path: &str| -> Vec<u64> {
        d.versions(path).iter().map(|v| v.meta.size).collect()
    };
    assert_eq!(d.earlier_count(), 4);
    let mut forever = d.clone();
    assert_eq!(forever.prune(i64::MAX, Retention::FOREVER), 0);
    assert_eq!(forever, d);

    // Kept 150 ms after being replaced: at 420 the version replaced at 300 (written at
    // 200) is 120 old and stays, the one replaced at 200 goes; the deleted file (deleted
    // at 500) stays.
    let keep = |ms, min| Retention {
        keep_ms: Some(ms),
        min,
    };
    let mut a = d.clone();
    assert_eq!(a.prune(420, keep(150, 0)), 1);
    assert_eq!(sizes(&a, "doc.txt"), vec![2, 3, 4]);
    assert_eq!(sizes(&a, "gone.txt"), vec![9]);
    // Everything past: only the current file stays; with min 1, the newest earlier one
    // of each path too.
    let mut b = d.clone();
    assert_eq!(b.prune(10_000, keep(0, 0)), 4);
    assert_eq!(sizes(&b, "doc.txt"), vec![4]);
    assert!(sizes(&b, "gone.txt").is_empty());
    assert_eq!(
        b.file_versions().count(),
        1,
        "only the current file refers to blocks"
    );
    let mut c = d.clone();
    assert_eq!(c.prune(10_000, keep(0, 1)), 2);
    assert_eq!(sizes(&c, "doc.txt"), vec![3, 4]);
    assert_eq!(sizes(&c, "gone.txt"), vec![9]);
    // Pruning is a function of the versions, the time and the policy: pruning again
    // changes nothing, and a drive that got the operations in another order agrees.
    assert_eq!(c.clone().prune(10_000, keep(0, 1)), 0);
    let mut other = Drive::default();
    for (seq, t) in [100, 200, 300, 400].into_iter().enumerate().rev() {
        let seen = [(A, seq as u64)];
        other.apply(
            A,
            seq as u64,
            &op(t, "a", &seen, &[("doc.txt", file(seq as u8 + 1))]),
        );
    }
    other.apply(
        A,
        5,
        &op(500, "a", &[(A, 5)], &[("gone.txt", Value::Tombstone)]),
    );
    other.apply(A, 4, &op(100, "a", &[(A, 4)], &[("gone.txt", file(9))]));
    other.prune(10_000, keep(0, 1));
    assert_eq!(other, c);
}

#[test]
fn concurrent_writes_keep_a_winner_and_a_named_conflict_copy() {
    let mut d = Drive::default();
    d.apply(
        A,
        0,
        &op(
            1_767_225_600_000,
            "ada laptop",
            &[],
            &[("doc.txt", file(1))],
        ),
    );
    d.apply(
        B,
        0,
        &op(1_767_225_700_000, "bea", &[], &[("doc.txt", file(2))]),
    );
    assert_eq!(size_of(&d, "doc.txt"), Some(2), "the later write wins");
    let names: Vec<String> = d
        .children("")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["doc.txt", "doc.txt.conflict-ada_laptop-20260101T000000Z"]
    );
    assert_eq!(
        size_of(&d, "doc.txt.conflict-ada_laptop-20260101T000000Z"),
        Some(1)
    );
    assert_eq!(
        d.conflict_copies(10),
        [(
            "doc.txt.conflict-ada_laptop-20260101T000000Z".to_string(),
            "doc.txt".to_string()
        )]
    );
    assert!(d.conflict_copies(0).is_empty(), "the limit bounds the list");
}

#[test]
fn an_edit_concurrent_with_a_delete_survives_but_a_later_delete_removes() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(1, "a", &[], &[("x", file(1))]));
    // B saw the file and deleted it; A, concurrently, edited it.
    d.apply(B, 0, &op(2, "b", &[(A, 1)], &[("x", Value::Tombstone)]));
    d.apply(A, 1, &op(3, "a", &[], &[("x", file(5))]));
    assert_eq!(size_of(&d, "x"), Some(5));
    // A delete that saw the edit removes the file.
    d.apply(B, 1, &op(4, "b", &[(A, 2)], &[("x", Value::Tombstone)]));
    assert_eq!(d.node("x"), None);
    // A write after the delete creates it again.
    d.apply(A, 2, &op(5, "a", &[(B, 2)], &[("x", file(7))]));
    assert_eq!(size_of(&d, "x"), Some(7));
}

#[test]
fn deleting_a_directory_keeps_what_was_added_inside_concurrently() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(1, "a", &[], &[("dir", dir())]));
    d.apply(B, 0, &op(2, "b", &[(A, 1)], &[("dir", Value::Tombstone)]));
    assert_eq!(d.node("dir"), None);
    d.apply(A, 1, &op(3, "a", &[], &[("dir/new.txt", file(1))]));
    assert!(matches!(d.node("dir"), Some(Node::Dir { .. })));
    assert_eq!(size_of(&d, "dir/new.txt"), Some(1));
}

#[test]
fn a_file_and_a_directory_created_at_one_path_keep_both() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(10, "a", &[], &[("p", file(1))]));
    d.apply(B, 0, &op(5, "b", &[], &[("p/inner", file(2))]));
    assert!(matches!(d.node("p"), Some(Node::Dir { .. })));
    let names: Vec<String> = d
        .children("")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["p", "p.conflict-a-19700101T000000Z"]);
}

#[test]
fn a_rename_concurrent_with_an_edit_loses_nothing() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(1, "a", &[], &[("old", file(1))]));
    d.apply(
        B,
        0,
        &op(
            2,
            "b",
            &[(A, 1)],
            &[("new", file(1)), ("old", Value::Tombstone)],
        ),
    );
    d.apply(A, 1, &op(3, "a", &[], &[("old", file(9))]));
    assert_eq!(size_of(&d, "new"), Some(1), "the renamed file");
    assert_eq!(
        size_of(&d, "old"),
        Some(9),
        "the concurrent edit stays at the old path"
    );
}

#[test]
fn retiring_a_conflict_keeps_the_copy_as_an_ordinary_file() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(1_000, "a", &[], &[("f", file(1))]));
    d.apply(B, 0, &op(2_000, "b", &[], &[("f", file(2))]));
    let copy = "f.conflict-a-19700101T000001Z";
    assert_eq!(size_of(&d, copy), Some(1));
    // Overwriting f: the copy is materialised in the same operation, so it stays.
    let mut effects = d.retire_effects("f");
    effects.push(Effect {
        path: "f".into(),
        value: file(3),
    });
    d.apply(
        B,
        1,
        &Op {
            time: 3_000,
            device: "b".into(),
            clock: d.clock(),
            effects,
        },
    );
    assert_eq!(size_of(&d, "f"), Some(3));
    assert_eq!(size_of(&d, copy), Some(1));
    assert_eq!(d.children("").unwrap().len(), 2);

    // Deleting a (virtual) conflict copy leaves the winner alone.
    let mut d2 = Drive::default();
    d2.apply(A, 0, &op(1_000, "a", &[], &[("f", file(1))]));
    d2.apply(B, 0, &op(2_000, "b", &[], &[("f", file(2))]));
    let effects = d2.retire_effects(copy);
    d2.apply(
        B,
        1,
        &Op {
            time: 3_000,
            device: "b".into(),
            clock: d2.clock(),
            effects,
        },
    );
    assert_eq!(size_of(&d2, "f"), Some(2));
    assert_eq!(d2.node(copy), None);
}

#[test]
fn the_last_effect_of_an_operation_on_a_path_counts() {
    let mut d = Drive::default();
    d.apply(A, 0, &op(1, "a", &[], &[("x", file(1))]));
    // A rename onto x: x is tombstoned and put again in one operation.
    d.apply(
        A,
        1,
        &op(
            2,
            "a",
            &[],
            &[
                ("x", Value::Tombstone),
                ("x", file(2)),
                ("y", Value::Tombstone),
            ],
        ),
    );
    assert_eq!(size_of(&d, "x"), Some(2));
}

#[test]
fn applying_twice_changes_nothing_and_checkpoints_round_trip() {
    let mut d = Drive::default();
    let o = op(1, "a", &[], &[("a/b", file(1)), ("c", dir())]);
    d.apply(A, 0, &o);
    let once = d.clone();
    d.apply(A, 0, &o);
    assert_eq!(d, once);
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Drive>(&json).unwrap(), d);
    let listing: Vec<String> = d.subtree("").into_iter().map(|(p, _)| p).collect();
    assert_eq!(listing, ["", "a", "c", "a/b"]);
}

/// A random history: writers that sometimes sync with each other and write operations
/// on a small set of paths.
#[derive(Debug, Clone)]
enum Step {
    Sync {
        from: usize,
        to: usize,
    },
    Write {
        writer: usize,
        path: usize,
        value: u8,
        time: i64,
    },
}

const PATHS: [&str; 6] = ["a", "a/b", "a/c", "b", "b/x/y", "c"];

fn history() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=4).prop_flat_map(|n| {
        let step = prop_oneof![
            (0..n, 0..n).prop_map(|(from, to)| Step::Sync { from, to }),
            (0..n, 0..PATHS.len(), 0u8..6, 0i64..5).prop_map(|(writer, path, value, time)| {
                Step::Write {
                    writer,
                    path,
                    value,
                    time,
                }
            }),
        ];
        (Just(n), proptest::collection::vec(step, 1..30))
    })
}

/// Play a history: each writer's log of operations.
fn play(n: usize, steps: &[Step]) -> Vec<Vec<Op>> {
    let mut logs: Vec<Vec<Op>> = vec![vec![]; n];
    let mut seen: Vec<Vec<u64>> = vec![vec![0; n]; n];
    for s in steps {
        match *s {
            Step::Sync { from, to } => {
                let known = seen[from].clone();
                for (mine, theirs) in seen[to].iter_mut().zip(known) {
                    *mine = (*mine).max(theirs);
                }
                seen[to][from] = logs[from].len() as u64;
            }
            Step::Write {
                writer,
                path,
                value,
                time,
            } => {
                let mut clock = Clock::default();
                for (f, &k) in seen[writer].iter().enumerate() {
                    clock.set([f as u8 + 1; 32], k);
                }
                let v = match value {
                    0 => Value::Tombstone,
                    1 => dir(),
                    v => file(v),
                };
                logs[writer].push(Op {
                    time,
                    device: format!("w{writer}"),
                    clock,
                    effects: vec![Effect {
                        path: PATHS[path].into(),
                        value: v,
                    }],
                });
                seen[writer][writer] = logs[writer].len() as u64;
            }
        }
    }
    logs
}

/// Apply the logs interleaved as `choices` says (each feed in order).
fn merge(logs: &[Vec<Op>], choices: &[usize]) -> Drive {
    let mut next = vec![0usize; logs.len()];
    let mut d = Drive::default();
    let mut c = choices.iter();
    loop {
        let open: Vec<usize> = (0..logs.len())
            .filter(|&f| next[f] < logs[f].len())
            .collect();
        if open.is_empty() {
            return d;
        }
        let f = open[c.next().copied().unwrap_or(0) % open.len()];
        d.apply([f as u8 + 1; 32], next[f] as u64, &logs[f][next[f]]);
        next[f] += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn every_arrival_order_gives_the_same_tree(
        (n, steps) in history(),
        orders in proptest::collection::vec(proptest::collection::vec(0usize..8, 0..200), 2..5),
    ) {
        let logs = play(n, &steps);
        let first = merge(&logs, &orders[0]);
        for order in &orders[1..] {
            let other = merge(&logs, order);
            prop_assert_eq!(&other, &first);
            prop_assert_eq!(other.subtree(""), first.subtree(""));
        }
        // Replaying everything again (duplicates) changes nothing.
        let mut again = first.clone();
        for (f, log) in logs.iter().enumerate() {
            for (i, o) in log.iter().enumerate() {
                again.apply([f as u8 + 1; 32], i as u64, o);
            }
        }
        prop_assert_eq!(again, first);
    }
}
