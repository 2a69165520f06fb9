//! `coboxctl validate` as users run it: the invalid corpus, the examples, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn coboxctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coboxctl"))
        .args(args)
        .current_dir(root())
        .env("HOME", "/home/user")
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("coboxctl runs")
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The `# expect: CODE PATH LINE:COL` header of a corpus file.
struct Expect {
    code: String,
    path: String,
    line: u64,
    column: u64,
}

fn expectation(file: &Path) -> Expect {
    let text = std::fs::read_to_string(file).unwrap();
    let header = text.lines().next().unwrap();
    let fields: Vec<&str> = header
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} lacks an `# expect:` header", file.display()))
        .split_whitespace()
        .collect();
    let [code, path, loc] = fields[..] else {
        panic!(
            "{}: header is not `# expect: CODE PATH LINE:COL`",
            file.display()
        )
    };
    let (line, column) = loc.split_once(':').unwrap();
    Expect {
        code: code.into(),
        path: if path == "-" {
            String::new()
        } else {
            path.into()
        },
        line: line.parse().unwrap(),
        column: column.parse().unwrap(),
    }
}

#[test]
fn every_corpus_file_is_rejected_with_its_code_path_and_location() {
    let files = toml_files("tests/corpus/invalid");
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    for file in &files {
        let want = expectation(file);
        let rel = file.strip_prefix(root()).unwrap().to_str().unwrap();
        let out = coboxctl(&["validate", "--deny-warnings", "--output", "json", rel]);
        assert_eq!(out.status.code(), Some(1), "{rel} should be invalid");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["valid"], false);
        let diags = doc["files"][0]["diagnostics"].as_array().unwrap();
        let found = diags.iter().any(|d| {
            d["code"] == want.code.as_str()
                && d["path"] == want.path.as_str()
                && d["line"] == want.line
                && d["column"] == want.column
                && d["file"] == rel
        });
        assert!(
            found,
            "{rel}: expected {} at {} {}:{}, got {diags:#?}",
            want.code, want.path, want.line, want.column
        );

        let human = coboxctl(&["validate", "--deny-warnings", rel]);
        let text = String::from_utf8(human.stdout).unwrap();
        assert!(text.contains(&format!("[{}]", want.code)), "{rel}: {text}");
        assert!(
            text.contains(&format!("{rel}:{}:{}", want.line, want.column)),
            "{rel}: {text}"
        );
    }
}

#[test]
fn every_diagnostic_code_has_a_corpus_file_and_every_corpus_code_is_documented() {
    let used: Vec<String> = toml_files("tests/corpus/invalid")
        .iter()
        .map(|f| expectation(f).code)
        .collect();
    for (code, _) in cobox_schema::codes::ALL {
        assert!(
            used.iter().any(|u| u == code),
            "no corpus file shows `{code}`"
        );
    }
    for code in &used {
        assert!(
            cobox_schema::codes::summary(code).is_some(),
            "`{code}` is not in codes::ALL"
        );
    }
}

#[test]
fn the_hub_image_config_is_valid() {
    let out = coboxctl(&[
        "validate",
        "--portable",
        "--deny-warnings",
        "image/hub.toml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("image/hub.toml: valid (0 errors, 0 warnings)"),
        "{text}"
    );
}

#[test]
fn the_examples_are_valid() {
    let files = toml_files("examples");
    assert!(files.len() >= 3);
    let rels: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut args = vec!["validate", "--portable", "--deny-warnings"];
    args.extend(rels.iter().map(String::as_str));
    let out = coboxctl(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for rel in &rels {
        assert!(
            text.contains(&format!("{rel}: valid (0 errors, 0 warnings)")),
            "{text}"
        );
        let first = std::fs::read_to_string(root().join(rel)).unwrap();
        assert!(
            first.starts_with("#:schema ../schema/cobox.schema.json\n"),
            "{rel} must start with a #:schema line"
        );
    }
}

#[test]
fn an_unreadable_file_exits_2_and_says_why() {
    let out = coboxctl(&["validate", "no/such/cobox.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read config no/such/cobox.toml"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let out = coboxctl(&["validate", "--output", "json", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["files"][0]["unreadable"]
            .as_str()
            .unwrap()
            .contains("not UTF-8")
    );

    // A device never ends and a FIFO waits for a writer: both refused at once.
    let fifo = dir.path().join("fifo.toml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, says) in [
        ("/dev/zero", "is a device, not a regular file"),
        (fifo.to_str().unwrap(), "is a FIFO, not a regular file"),
    ] {
        let out = coboxctl(&["validate", path]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }

    // Unreadable beats invalid: one bad path among good files still exits 2.
    let out = coboxctl(&[
        "validate",
        "examples/laptop.toml",
        "tests/corpus/invalid/empty-limit.toml",
        "missing.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coboxctl"))
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"version = 1\n[storage]\nquota = \"5 parsecs\"\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("<stdin>:3:9"), "{text}");
    assert!(text.contains("error[invalid-size]"), "{text}");
}

#[test]
fn warnings_pass_unless_denied() {
    let file = "tests/corpus/invalid/duplicate-admin-key.toml";
    assert_eq!(coboxctl(&["validate", file]).status.code(), Some(0));
    assert_eq!(
        coboxctl(&["validate", "--deny-warnings", file])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let out = coboxctl(&["validate", "--output", "json", "-"]);
    // Nothing on stdin: an empty file lacks `version`.
    assert_eq!(out.status.code(), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cobox.toml");
    std::fs::write(
        &file,
        "version = 1\n[network]\nupload = \"fast\"\n[storage]\nquota = \"lots\"\n[[space]]\nname = \"a b\"\nmount = \"rel\"\n",
    )
    .unwrap();
    let out = coboxctl(&["validate", "--output", "json", file.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = doc["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "invalid-rate",
            "invalid-size",
            "invalid-name",
            "relative-path"
        ]
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = coboxctl(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read(root().join("schema/cobox.schema.json")).unwrap();
    assert_eq!(out.stdout, committed);
}

#[test]
fn completions_and_man_page_are_generated() {
    let out = coboxctl(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("validate"));
    let out = coboxctl(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH coboxctl"));
}
