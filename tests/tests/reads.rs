//! Reading a file another member just wrote: the file is listed as soon as its operation
//! arrives, before its content (here held back by a download cap); a read of it fetches the
//! blocks it needs first from a connected peer and returns the content, never EIO. With no
//! peer that has them, the read fails with ENODATA and the space says why.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use cobox_tests::node::{Node, QUIET, eventually, free_port};

/// 8 MiB of bytes that differ everywhere.
fn content(salt: u8) -> Vec<u8> {
    cobox_tests::files::noise(8 << 20, u64::from(salt))
}

/// The last `n` bytes of the file at `path`.
fn tail(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::End(-(n as i64)))?;
    let mut out = vec![];
    f.read_to_end(&mut out)?;
    Ok(out)
}

fn listed(path: &Path, len: usize) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == len as u64)
}

#[test]
fn a_just_listed_file_reads_whole_and_an_unreachable_one_says_enodata() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Node::new(tmp.path(), "a"), Node::new(tmp.path(), "b"));
    let pa = free_port();
    let kb = b.identity();
    a.write_config(&format!(
        "[network]\nlisten = [\"127.0.0.1:{pa}\"]\n{QUIET}[[space]]\nname = \"home\"\n"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    // B downloads this space at 1 MiB/s: 8 MiB take about eight seconds to arrive in order.
    b.write_config(&format!(
        "[network]\npeers = [\"127.0.0.1:{pa}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\ndownload = \"1 MiB/s\"\n"
    ));
    let agent_b = b.start();
    b.wait_converged(60);
    let logs = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    std::fs::write(a.mount("home").join("first.bin"), b"hello").unwrap();
    eventually(
        "B and A replicate",
        60,
        || listed(&b.mount("home").join("first.bin"), 5),
        logs,
    );

    // Each lists the other by the device name it gave in the space log.
    for (node, want) in [(&a, "b"), (&b, "a")] {
        let names = || {
            let out = node.ctl(&["status", "--output", "json"]);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            s["network"]["peers"][0]["name"]
                .as_str()
                .map(str::to_string)
        };
        eventually(
            "the peer shows its device name",
            30,
            || names().as_deref() == Some(want),
            logs,
        );
        let text = node.status_text();
        assert!(text.contains(&format!("  {want}  ")), "{text}");
    }

    let one = content(1);
    std::fs::write(a.mount("home").join("one.bin"), &one).unwrap();
    let at_b = b.mount("home").join("one.bin");
    eventually("B lists one.bin", 60, || listed(&at_b, one.len()), logs);
    // Its end has not arrived in order yet; the read asks for it first and gets it.
    assert_eq!(tail(&at_b, 100).unwrap(), &one[one.len() - 100..]);
    assert_eq!(std::fs::read(&at_b).unwrap(), one);

    // A file whose content cannot come: A stops as soon as B lists it.
    let two = content(2);
    std::fs::write(a.mount("home").join("two.bin"), &two).unwrap();
    let at_b = b.mount("home").join("two.bin");
    eventually("B lists two.bin", 60, || listed(&at_b, two.len()), logs);
    agent_a.stop();
    let err = tail(&at_b, 100).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(61), "ENODATA, not EIO: {err}");
    // The space says why reads fail.
    eventually(
        "B's space shows the missing content",
        30,
        || {
            let out = b.ctl(&["status", "--output", "json"]);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            s["resources"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["kind"] == "space"
                        && r["name"] == "home"
                        && r["conditions"].as_array().is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Degraded" && c["reason"] == "ContentMissing")
                        })
                })
            })
        },
        logs,
    );
    agent_b.stop();
}
