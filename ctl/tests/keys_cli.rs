//! Identity, paper keys and invites through `coboxctl`, on real data directories.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cobox_keys::derive::{feed, identity};
use cobox_keys::invite::{Invite, Role};
use cobox_keys::secret::hex;
use cobox_keys::{KeyStore, SpaceKeys};

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coboxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "trace")
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The 24 words of a text sheet, in order.
fn words_of(sheet: &str) -> Vec<String> {
    let mut numbered: Vec<(usize, String)> = sheet
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter_map(|w| Some((w[0].strip_suffix('.')?.parse().ok()?, w[1].to_string())))
        .collect();
    numbered.sort();
    numbered.into_iter().map(|(_, w)| w).collect()
}

/// Every file and directory under `dir` with its mode and contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(p.clone(), (mode, vec![]));
                stack.push(p);
            } else {
                out.insert(p.clone(), (mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn space_in(dir: &Path, name: &str) -> SpaceKeys {
    let keys = SpaceKeys::generate(name);
    KeyStore::new(dir).save_space(&keys).unwrap();
    keys
}

#[test]
fn restoring_the_words_on_a_fresh_data_dir_gives_the_same_identity_and_feed_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let id = ok(&run(&a, &["identity"], None)).trim().to_string();
    let spaces = [space_in(&a, "accounts"), space_in(&a, "photos")];
    let sheet = ok(&run(&a, &["keys", "export"], None));
    let words = words_of(&sheet);
    assert_eq!(words.len(), 24, "{sheet}");

    let restored = ok(&run(&b, &["keys", "restore"], Some(&words.join(" "))));
    assert_eq!(restored.trim(), id);
    // The printed sheet pasted back whole (numbered words in columns) restores too.
    let c = tmp.path().join("c");
    let from_sheet = ok(&run(&c, &["keys", "restore"], Some(&sheet)));
    assert_eq!(from_sheet.trim(), id);
    assert_eq!(ok(&run(&b, &["identity"], None)).trim(), id);
    let pa = KeyStore::new(&a).load_parent().unwrap().unwrap();
    let pb = KeyStore::new(&b).load_parent().unwrap().unwrap();
    for s in &spaces {
        for n in 0..3 {
            assert_eq!(
                feed(&pa, &s.address, n).public,
                feed(&pb, &s.address, n).public
            );
        }
    }

    // A space key restores from its own words, labelled with its name and address.
    let sheet = ok(&run(&a, &["keys", "export", "--space", "photos"], None));
    assert!(
        sheet.contains(&format!("address {}", spaces[1].address)),
        "{sheet}"
    );
    let addr = spaces[1].address.to_string();
    ok(&run(
        &b,
        &["keys", "restore", "--space", "photos", "--address", &addr],
        Some(&words_of(&sheet).join(" ")),
    ));
    assert_eq!(
        KeyStore::new(&b).find_space("photos").unwrap().unwrap(),
        spaces[1]
    );
}

#[test]
fn key_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&run(&dir, &["identity"], None));
    let s = space_in(&dir, "accounts");
    let snap = snapshot(&dir);
    assert!(!snap.is_empty());
    for (path, (mode, _)) in &snap {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{}", path.display());
    }
    assert!(snap.contains_key(&dir.join(format!("spaces/{}/space.key", s.address))));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn every_bad_invite_gets_its_own_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (alice, bob, carol) = (
        tmp.path().join("alice"),
        tmp.path().join("bob"),
        tmp.path().join("carol"),
    );
    ok(&run(&alice, &["identity"], None));
    let bob_id = ok(&run(&bob, &["identity"], None)).trim().to_string();
    ok(&run(&carol, &["identity"], None));
    let space = space_in(&alice, "accounts");
    let code = ok(&run(
        &alice,
        &["invite", "create", "--space", "accounts", "--for", &bob_id],
        None,
    ))
    .trim()
    .to_string();

    let shown = ok(&run(
        &bob,
        &["invite", "open", &code, "--output", "json"],
        None,
    ));
    let doc: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(doc["space"], "accounts");
    assert_eq!(doc["address"], space.address.to_string());
    assert_eq!(doc["role"], "member");
    assert!(
        !shown.contains(&hex(space.encryption_key.as_ref().unwrap().expose())),
        "open never prints the key"
    );

    // An expired invite, made directly so its expiry is in the past.
    let alice_id = KeyStore::new(&alice).require_identity().unwrap();
    let expired = Invite {
        space_name: "accounts".into(),
        address: space.address,
        encryption_key: space.encryption_key.clone(),
        role: Role::Member,
        expires: Some(1_000),
        inviter: alice_id.public,
        invitee: bob_id.parse().unwrap(),
    }
    .create(&alice_id)
    .unwrap();
    let mut typo: Vec<char> = code.chars().collect();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == 'x' { 'y' } else { 'x' };
    let typo: String = typo.into_iter().collect();

    let cases: [(&Path, &str, &str); 4] = [
        (&carol, &code, "sealed for another device"),
        (&bob, &typo, "checksum does not match"),
        (&bob, &expired, "expired at 1970-01-01T00:16:40Z"),
        (
            &bob,
            "coboxinvit1qqqq",
            "does not start with `coboxinvite1`",
        ),
    ];
    for (dir, c, message) in cases {
        let before = snapshot(dir);
        let out = run(dir, &["invite", "open", c], None);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(message),
            "{message}: {}",
            stderr(&out)
        );
        assert_eq!(
            snapshot(dir),
            before,
            "a failed open changed {}",
            dir.display()
        );
    }

    // `validate --data-dir` checks invites against that device: Carol's refuses Bob's
    // invite where the code is, Bob's takes it.
    let config = tmp.path().join("join.toml");
    std::fs::write(
        &config,
        format!("version = 1\n[[space]]\nname = \"accounts\"\ninvite = \"{code}\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let refused = run(&carol, &["validate", "--color", "never", config], None);
    let said = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("sealed for another device") && said.contains("join.toml:4:"),
        "{said}"
    );
    ok(&run(&bob, &["validate", config], None));
}

#[test]
fn a_seeder_invite_carries_no_encryption_key_and_bad_invitees_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (alice, hub) = (tmp.path().join("alice"), tmp.path().join("hub"));
    ok(&run(&alice, &["identity"], None));
    let hub_id = ok(&run(&hub, &["identity"], None)).trim().to_string();
    space_in(&alice, "accounts");
    let code = ok(&run(
        &alice,
        &[
            "invite",
            "create",
            "--space",
            "accounts",
            "--for",
            &hub_id,
            "--role",
            "seeder",
            "--expires",
            "never",
        ],
        None,
    ));
    let shown = ok(&run(&hub, &["invite", "open", code.trim()], None));
    assert!(shown.contains("seeder"), "{shown}");
    assert!(shown.contains("expires  never"), "{shown}");
    let hub_keys = KeyStore::new(&hub).require_identity().unwrap();
    let opened = cobox_keys::invite::open(code.trim(), &hub_keys, 0).unwrap();
    assert!(opened.encryption_key.is_none());

    let out = run(
        &alice,
        &["invite", "create", "--space", "accounts", "--for", "abc"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invitee key \"abc\""),
        "{}",
        stderr(&out)
    );
    let out = run(
        &alice,
        &["invite", "create", "--space", "nope", "--for", &hub_id],
        None,
    );
    assert!(
        stderr(&out).contains("space `nope` has no keys"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn restore_refuses_to_replace_an_identity_without_force_and_keeps_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&run(&a, &["identity"], None));
    let b_id = ok(&run(&b, &["identity"], None)).trim().to_string();
    let words = words_of(&ok(&run(&a, &["keys", "export"], None))).join(" ");
    let before = snapshot(&b);
    let out = run(&b, &["keys", "restore"], Some(&words));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(snapshot(&b), before);
    assert_eq!(ok(&run(&b, &["identity"], None)).trim(), b_id);

    let out = run(&b, &["keys", "restore", "--force"], Some(&words));
    ok(&out);
    assert!(
        stderr(&out).contains("previous parent key is kept"),
        "{}",
        stderr(&out)
    );
    assert_ne!(ok(&run(&b, &["identity"], None)).trim(), b_id);
}

#[test]
fn wrong_words_are_named_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&run(&a, &["identity"], None));
    let mut words = words_of(&ok(&run(&a, &["keys", "export"], None)));
    std::fs::create_dir_all(&b).unwrap();
    let before = snapshot(&b);
    let out = run(&b, &["keys", "restore"], Some(&words[..20].join(" ")));
    assert!(
        stderr(&out).contains("expected 24 words, found 20"),
        "{}",
        stderr(&out)
    );
    words[2] = "zzzz".into();
    let out = run(&b, &["keys", "restore"], Some(&words.join(" ")));
    assert!(
        stderr(&out).contains("word 3 \"zzzz\" is not in the BIP39 English list"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&b), before);
}

#[test]
fn sheets_are_written_private_and_never_overwritten_by_accident() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    ok(&run(&dir, &["identity"], None));
    space_in(&dir, "accounts");
    for (format, magic) in [
        ("html", "<!DOCTYPE html>"),
        ("pdf", "%PDF-1.4"),
        ("text", "cobox paper key"),
    ] {
        let file = tmp.path().join(format!("sheet.{format}"));
        ok(&run(
            &dir,
            &[
                "keys",
                "export",
                "--all",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
            ],
            None,
        ));
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.starts_with(magic.as_bytes()), "{format}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("space accounts"), "{format} lists the space");
        let out = run(
            &dir,
            &[
                "keys",
                "export",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("exists; pass --force"));
    }
}

#[test]
fn no_secret_reaches_the_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut logs = String::new();
    let mut step = |dir: &Path, args: &[&str], input: Option<&str>| {
        let out = run(dir, args, input);
        logs.push_str(&stderr(&out));
        out
    };
    step(&a, &["identity"], None);
    let b_id = String::from_utf8(step(&b, &["identity"], None).stdout).unwrap();
    let space = space_in(&a, "accounts");
    let sheet_file = tmp.path().join("sheet.txt");
    step(
        &a,
        &[
            "keys",
            "export",
            "--all",
            "-o",
            sheet_file.to_str().unwrap(),
        ],
        None,
    );
    let sheet = std::fs::read_to_string(&sheet_file).unwrap();
    let code = String::from_utf8(
        step(
            &a,
            &[
                "invite",
                "create",
                "--space",
                "accounts",
                "--for",
                b_id.trim(),
            ],
            None,
        )
        .stdout,
    )
    .unwrap();
    step(&b, &["invite", "open", code.trim()], None);
    step(
        &b,
        &["keys", "restore", "--force"],
        Some(&words_of(&sheet)[..24].join(" ")),
    );

    assert!(logs.contains("INFO"), "the commands did log: {logs}");
    let parent = KeyStore::new(&a).load_parent().unwrap().unwrap();
    let mut secrets = vec![
        hex(parent.expose()),
        hex(space.encryption_key.as_ref().unwrap().expose()),
    ];
    // Any three words in a row (single words are ordinary English and may appear anyway).
    let words = cobox_keys::paper::to_words(&parent);
    secrets.extend(words.windows(3).map(|w| w.join(" ")));
    secrets.push(hex(&identity(&parent).secret_bytes()[..32]));
    for s in &secrets {
        assert!(
            !logs.contains(s.as_str()),
            "a secret ({s}) reached the logs:\n{logs}"
        );
    }
}

#[test]
fn identity_with_qr_prints_the_key_then_its_qr_code_in_text_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = ok(&run(&dir, &["identity", "--qr"], None));
    let key = ok(&run(&dir, &["identity"], None)).trim().to_string();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(key.as_str()));
    let qr: Vec<&str> = lines.collect();
    // A 64-character key needs a QR code of at least 29 modules, plus the quiet zone, two
    // module rows per line.
    assert!(qr.len() >= 16, "{out}");
    let width = qr[0].chars().count();
    assert!(width >= 33, "{out}");
    for line in &qr {
        assert_eq!(line.chars().count(), width, "{out}");
        assert!(line.chars().all(|c| "█▀▄ ".contains(c)), "{out}");
    }
    // The quiet zone is light all round: the first line is solid.
    assert!(qr[0].chars().all(|c| c == '█'), "{out}");
    assert_eq!(ok(&run(&dir, &["identity", "--qr"], None)), out);
}
