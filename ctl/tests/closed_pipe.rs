//! `coboxctl … | head -1`: when the reader goes away, the command ends quietly with the
//! status of a Unix tool killed by SIGPIPE (141), never with a panic or an error message.

use std::process::{Command, Stdio};

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let examples: Vec<_> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut validate = vec!["validate".to_string()];
    // Enough files that the report outgrows any pipe buffer.
    for _ in 0..200 {
        validate.extend(examples.iter().map(|p| p.display().to_string()));
    }
    for args in [
        validate,
        vec!["man".into()],
        vec!["schema".into()],
        vec!["completions".into(), "bash".into()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coboxctl"))
            .args(&args)
            .env("HOME", root.join("target"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is read.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{}: {err}", args[0]);
        assert!(err.is_empty(), "{}: {err}", args[0]);
    }
}
