//! Fleet rendering, data-driven: each `fleets/*.case` holds a fleet directory's files
//! (`--- fleet.toml`, `--- base.toml`, `--- groups/NAME.toml`, `--- devices/NAME.toml`)
//! and what rendering a device must give: `--- expect DEVICE` its exact config, or
//! `--- errors DEVICE` (or `--- errors fleet`) one `CODE FILE:LINE:COL` per finding.
//! Every fleet code (`codes::FLEET`) is shown by some case.

use std::collections::BTreeSet;
use std::path::Path;

use cobox_client::fleet_dir;
use cobox_schema::FixedHost;

fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("--- ") {
            out.push((head.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn findings(dir: &Path, ds: &[cobox_schema::LocatedDiagnostic]) -> String {
    ds.iter()
        .map(|d| {
            let file = Path::new(&d.file)
                .strip_prefix(dir)
                .map_or(d.file.clone(), |p| p.display().to_string());
            format!("{} {file}:{}:{}\n", d.code, d.line, d.column)
        })
        .collect()
}

#[test]
fn every_fleet_case_renders_as_expected() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fleets");
    let mut files: Vec<_> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    let mut codes = BTreeSet::new();
    for case in files {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&case).unwrap();
        let mut checks = Vec::new();
        for (head, body) in sections(&text) {
            if head.starts_with("expect ") || head.starts_with("errors ") {
                checks.push((head, body));
            } else {
                let path = dir.path().join(&head);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, body).unwrap();
            }
        }
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        for (head, want) in checks {
            let (what, device) = head.split_once(' ').unwrap();
            let got = match fleet_dir::load(dir.path()) {
                Err(ds) => {
                    assert_eq!(
                        (what, device),
                        ("errors", "fleet"),
                        "{name}: {}",
                        findings(dir.path(), &ds)
                    );
                    findings(dir.path(), &ds)
                }
                Ok(fleet) => {
                    let d = fleet
                        .device(device)
                        .unwrap_or_else(|| panic!("{name}: no device {device}"));
                    let r = fleet.render(d, &FixedHost::example());
                    match what {
                        "expect" => {
                            assert!(
                                r.valid(),
                                "{name}: {device}: {}",
                                findings(dir.path(), &r.diagnostics)
                            );
                            r.text.unwrap()
                        }
                        _ => findings(dir.path(), &r.diagnostics),
                    }
                }
            };
            for line in want.lines() {
                if let Some(code) = line.split_whitespace().next() {
                    codes.insert(code.to_string());
                }
            }
            assert_eq!(got, want, "{name}: {head}");
        }
    }
    for (code, _) in cobox_schema::codes::FLEET {
        assert!(codes.contains(*code), "no fleet case shows `{code}`");
    }
}
