//! Property-based fuzzing, on the stable toolchain, of every decoder that takes input from
//! outside: configs (parsed and validated), invite codes and sealed invites, roster
//! statements, space log messages, drive operations, config envelopes, admin authority
//! entries, devices' status reports and replication frames. No input may
//! panic, hang or allocate more than a stated bound: every allocation is counted, and one
//! past the bound aborts the test.
//!
//! Cases per target: 2,000 by default (CI); `FUZZ_CASES=1000000 cargo test --release -p
//! cobox-tests --test fuzz -- --nocapture` for a long run (BENCHMARKS.md has the figures).

use std::time::Instant;

use cap::Cap;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::AsyncWriteExt;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// More than any one decoding may allocate: a config of the 1 MiB limit is validated well
/// within it, frames are at most 16 MiB.
const BOUND: usize = 256 << 20;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000)
}

/// Run `check` on `cases` inputs from `strategy`, with allocations bounded; print the
/// figures.
fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let start = Instant::now();
    let base = ALLOCATOR.allocated();
    ALLOCATOR.set_limit(base + BOUND).unwrap();
    runner
        .run(&strategy, |input| {
            check(input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    eprintln!(
        "fuzz {name}: {cases} cases in {:.2} s",
        start.elapsed().as_secs_f64()
    );
}

/// Bytes: arbitrary, or a valid sample with a few bytes changed, cut or repeated.
fn mutated(samples: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let arbitrary = prop::collection::vec(any::<u8>(), 0..512);
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..8);
    let samples = if samples.is_empty() {
        vec![Vec::new()]
    } else {
        samples
    };
    let edited = (prop::sample::select(samples), edits).prop_map(|(mut b, edits)| {
        for (at, byte, how) in edits {
            let i = at % (b.len() + 1);
            match how {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                2 if i < b.len() => {
                    b.truncate(i);
                }
                _ => {
                    let tail = b[i.min(b.len())..].to_vec();
                    b.extend_from_slice(&tail);
                }
            }
        }
        b
    });
    prop_oneof![arbitrary, edited]
}

fn corpus() -> Vec<Vec<u8>> {
    let root = cobox_tests::root();
    ["examples", "tests/corpus/invalid"]
        .iter()
        .flat_map(|d| cobox_tests::toml_files(d))
        .map(|p| std::fs::read(root.join(p)).unwrap())
        .collect()
}

/// Config-like text: TOML pieces of the schema in any order and number.
fn config_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "version = 1\n",
        "[device]\n",
        "name = \"x\"\n",
        "data_dir = \"/srv/c\"\n",
        "mount_root = \"/\"\n",
        "[[space]]\n",
        "name = \"etc\"\n",
        "mount = \"/etc\"\n",
        "windows = [{ when = \"* * * * * *\", for = \"300000y\" }]\n",
        "windows = [{ when = \"0 0 0 1 1 * 1969\", for = \"1e309 h\" }]\n",
        "quota = \"0 B\"\n",
        "quota = \"inf MiB\"\n",
        "upload = \"-1 MiB/s\"\n",
        "[[seed]]\n",
        "address = \"abab\"\n",
        "[network]\n",
        "listen = [\"[::]:99999\"]\n",
        "peers = [\"k@h:1\", \"\"]\n",
        "[[network.limit]]\n",
        "[api]\n",
        "socket = \"/dev/null\"\n",
        "[storage]\n",
        "[admins]\nkeys = [\"00\"]\n",
        "x = { a = [1, [2, [3]]] }\n",
        "\"\\u0000\" = 1\n",
        "[[space]]\n[[space]]\n[[space]]\n",
    ]);
    prop_oneof![
        prop::collection::vec(pieces, 0..24).prop_map(|p| p.concat()),
        ".{0,300}".prop_map(|s: String| s),
    ]
}

#[test]
fn decoders_of_outside_input_never_panic_hang_or_allocate_without_bound() {
    let host = cobox_schema::FixedHost::example();
    let validate = |text: &str| {
        let src = cobox_schema::Source::new("fuzz.toml", text);
        let v = cobox_schema::validate(&src, &host);
        // Every diagnostic has a place in the text.
        for d in &v.diagnostics {
            let at = d.located(&src);
            assert!(at.line >= 1 && at.column >= 1, "{d:?}");
        }
    };
    fuzz("config text", cases(), config_text(), |t| validate(&t));
    fuzz("config bytes", cases(), mutated(corpus()), |b| {
        if let Ok(t) = String::from_utf8(b) {
            validate(&t)
        }
    });

    // A real invite for `me`, so that mutated codes get as deep as they can.
    use cobox_keys::{Secret32, SigningKeyPair};
    let inviter = SigningKeyPair::from_seed(&Secret32::from_bytes([1; 32]));
    let me = SigningKeyPair::from_seed(&Secret32::from_bytes([2; 32]));
    let invite = cobox_keys::invite::Invite {
        space_name: "home".into(),
        address: cobox_schema::hexkey::Address([3; 32]),
        encryption_key: Some(Secret32::from_bytes([4; 32])),
        role: cobox_keys::invite::Role::Member,
        expires: None,
        inviter: inviter.public,
        invitee: me.public,
    };
    let code = invite.create(&inviter).unwrap();
    fuzz(
        "invite code",
        cases(),
        mutated(vec![code.as_bytes().to_vec()]),
        |b| {
            let text = String::from_utf8_lossy(&b);
            let _ = cobox_schema::invite_code::decode(&text);
            let _ = cobox_keys::invite::open(&text, &me, 0);
        },
    );
    let signed = invite.signed_payload(&inviter).unwrap();
    fuzz("sealed invite", cases(), mutated(vec![signed]), |b| {
        let _ = cobox_keys::invite::parse_signed(&b);
    });
    fuzz("roster statements", cases(), mutated(vec![]), |b| {
        let _ = cobox_keys::roster::decode_all(&b);
    });
    fuzz("space log message", cases(), mutated(vec![]), |b| {
        let _ = coboxd::space::message::Message::decode(&b);
    });
    fuzz("drive operation", cases(), mutated(vec![]), |b| {
        let _ = cobox_drive::op::Op::decode(&b);
    });
    // What admins and managed devices write to a fleet: envelopes, changes of the admin
    // set, status reports.
    let envelope = cobox_keys::envelope::Envelope::seal(
        cobox_keys::envelope::Header {
            fleet: [7; 32],
            target: me.public.0,
            generation: 1,
            parent: [0; 32],
            authority: [1; 32],
        },
        "version = 1\n",
        &inviter,
    )
    .unwrap();
    fuzz(
        "config envelope",
        cases(),
        mutated(vec![envelope.encode()]),
        |b| {
            if let Ok(e) = cobox_keys::envelope::Envelope::decode(&b) {
                let _ = e.verifies();
                let _ = e.open(&me);
            }
        },
    );
    let entry = cobox_keys::authority::Entry::new(
        [1; 32],
        cobox_keys::authority::Change::Add([2; 32]),
        &inviter,
    );
    fuzz(
        "authority entry",
        cases(),
        mutated(vec![entry.encode()]),
        |b| {
            let _ = cobox_keys::authority::Entry::decode(&b);
        },
    );
    // Key epochs (a member's log) and blocks of any epoch (any peer's feed).
    let epoch = cobox_keys::epoch::Epoch::new(
        &inviter,
        [7; 32],
        1,
        [0; 32],
        vec![[3; 32]],
        &cobox_keys::Secret32::from_bytes([5; 32]),
        &[me.public.0, inviter.public.0],
    )
    .unwrap();
    fuzz("key epoch", cases(), mutated(vec![epoch.encode()]), |b| {
        if let Ok(e) = cobox_keys::epoch::Epoch::decode(&b) {
            let _ = e.open(&me);
        }
    });
    let grant = cobox_keys::epoch::Grant::new(
        &inviter,
        [7; 32],
        me.public.0,
        &[(1, [4; 32], &cobox_keys::Secret32::from_bytes([5; 32]))],
    )
    .unwrap();
    fuzz("key grant", cases(), mutated(vec![grant.encode()]), |b| {
        if let Ok(g) = cobox_keys::epoch::Grant::decode(&b) {
            let _ = g.open(&me);
        }
    });
    let mut ring = cobox_keys::block::Keyring::default();
    let block_key =
        |n: u8| cobox_keys::block::BlockKey::for_space(&cobox_keys::Secret32::from_bytes([n; 32]));
    ring.insert(0, block_key(1));
    ring.insert(1, block_key(2));
    fuzz(
        "sealed block",
        cases(),
        mutated(vec![
            block_key(1).seal(&[9; 32], 0, b"v1"),
            block_key(2).seal_in(1, &[9; 32], 0, b"v2"),
        ]),
        |b| {
            let _ = ring.open(&[9; 32], 0, &b);
        },
    );
    fuzz(
        "status report",
        cases(),
        mutated(vec![b"{\"device\":\"\"}".to_vec()]),
        |b| {
            let _ = serde_json::from_slice::<cobox_schema::api::DeviceReport>(&b);
        },
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Each frame case runs a session's reader over a pipe (and a header may ask for a
    // 16 MiB frame): a tenth as many.
    fuzz("replication frames", cases() / 10, mutated(vec![]), |b| {
        rt.block_on(async {
            let written = b.len();
            let (mut tx, rx) = tokio::io::duplex(1 << 16);
            let (mut framed, _closed) = cobox_protocol::replicate::frame::Framed::new(rx);
            let writer = async move {
                let _ = tx.write_all(&b).await;
                drop(tx);
            };
            let reader = async move {
                let mut total = 0usize;
                while let Some(Ok(frame)) = framed.next().await {
                    total += frame.len() + 3;
                }
                total
            };
            let (_, total) = tokio::join!(writer, reader);
            // Frames come only from bytes that were written, each with its header.
            assert!(total <= written, "{total} of {written}");
        });
    });
}
