//! Configs that parse but would damage the machine, hang the agent or mean nothing: each is
//! refused (or warned about) with its code, config path and place in the file.

use std::path::PathBuf;

use cobox_schema::host::PathKind;
use cobox_schema::{FixedHost, Source, validate};

fn found(text: &str, host: &FixedHost) -> Vec<(&'static str, String, usize)> {
    let src = Source::new("cobox.toml", text);
    validate(&src, host)
        .diagnostics
        .into_iter()
        .map(|d| {
            let line = d.located(&src).line;
            (d.code, d.path, line)
        })
        .collect()
}

fn errors(text: &str) -> Vec<(&'static str, String, usize)> {
    found(text, &FixedHost::example())
}

#[test]
fn mounts_on_system_directories_or_the_home_directory_are_refused() {
    let cases = [
        (
            "[[space]]\nname = \"s\"\nmount = \"/etc\"\n",
            "space[0].mount",
            4,
        ),
        (
            "[[space]]\nname = \"s\"\nmount = \"/usr/share/s\"\n",
            "space[0].mount",
            4,
        ),
        (
            "[[space]]\nname = \"s\"\nmount = \"~/\"\n",
            "space[0].mount",
            4,
        ),
        (
            "[[space]]\nname = \"s\"\nmount = \"/home\"\n",
            "space[0].mount",
            4,
        ),
        (
            "[device]\nmount_root = \"/\"\n[[space]]\nname = \"etc\"\n",
            "device.mount_root",
            3,
        ),
        ("[device]\ndata_dir = \"/\"\n", "device.data_dir", 3),
        (
            "[device]\ndata_dir = \"/etc/cobox\"\n",
            "device.data_dir",
            3,
        ),
        ("[api]\nsocket = \"/dev/coboxd.sock\"\n", "api.socket", 3),
    ];
    for (body, path, line) in cases {
        let text = format!("version = 1\n{body}");
        let got = errors(&text);
        assert!(
            got.iter()
                .any(|(c, p, l)| *c == "unsafe-place" && p == path && *l == line),
            "{body}: {got:?}"
        );
    }
    // Inside the home directory, under /srv or /var/lib: fine.
    for mount in [
        "~/cobox/s",
        "/srv/cobox/s",
        "/var/lib/cobox-mnt/s",
        "/mnt/s",
    ] {
        let text = format!("version = 1\n[[space]]\nname = \"s\"\nmount = \"{mount}\"\n");
        assert_eq!(errors(&text), [], "{mount}");
    }
}

#[test]
fn a_path_with_a_nul_byte_is_refused() {
    let text = "version = 1\n[[space]]\nname = \"s\"\nmount = \"/srv/a\\u0000b\"\n";
    assert_eq!(
        errors(text),
        [("invalid-path", "space[0].mount".to_string(), 4)]
    );
}

#[test]
fn the_socket_never_replaces_a_file_or_directory() {
    let mut host = FixedHost::example();
    let at = "/home/user/run/coboxd.sock";
    let text = format!("version = 1\n[api]\nsocket = \"{at}\"\n");
    assert_eq!(found(&text, &host), []);
    for kind in [PathKind::Other, PathKind::Directory] {
        host.paths.insert(PathBuf::from(at), kind);
        assert_eq!(
            found(&text, &host),
            [("socket-over-file", "api.socket".to_string(), 3)],
            "{kind:?}"
        );
    }
    // An old socket of ours is replaced.
    host.paths.insert(PathBuf::from(at), PathKind::Socket);
    assert_eq!(found(&text, &host), []);
}

#[test]
fn a_window_longer_than_its_period_is_a_warning_not_a_hang() {
    for length in ["1d", "1y", "100y", "300000y"] {
        let text = format!(
            "version = 1\n[[space]]\nname = \"s\"\nwindows = [{{ when = \"0 22 * * *\", for = \"{length}\" }}]\n"
        );
        let v = validate(&Source::new("c", &text), &FixedHost::example());
        assert!(v.config.is_some(), "{length}: a warning keeps the config");
        let codes: Vec<_> = v
            .diagnostics
            .iter()
            .map(|d| (d.code, d.path.as_str()))
            .collect();
        assert_eq!(
            codes,
            [("window-always-open", "space[0].windows[0].for")],
            "{length}"
        );
    }
    let text = "version = 1\n[[space]]\nname = \"s\"\nwindows = [{ when = \"0 22 * * *\", for = \"23h\" }]\n";
    assert_eq!(errors(text), []);
}

#[test]
fn quotas_of_nothing_and_huge_device_names_are_refused() {
    assert_eq!(
        errors("version = 1\n[storage]\nquota = \"0 B\"\n"),
        [("zero-quota", "storage.quota".to_string(), 3)]
    );
    let seed = format!(
        "version = 1\n[[seed]]\nname = \"s\"\naddress = \"{}\"\nquota = \"0 GiB\"\n",
        "ab".repeat(32)
    );
    assert_eq!(
        errors(&seed),
        [("zero-quota", "seed[0].quota".to_string(), 5)]
    );
    let long = format!(
        "version = 1\n[device]\nname = \"{}\"\n",
        "x".repeat(500_000)
    );
    assert_eq!(errors(&long), [("too-long", "device.name".to_string(), 3)]);
    assert_eq!(
        errors("version = 1\n[device]\nname = \"Ana's laptop\"\n"),
        []
    );
    // A text over the 1 MiB a config may be is refused whole, before it is parsed.
    let huge = format!("version = 1\n# {}\n", "x".repeat(2 << 20));
    assert_eq!(errors(&huge), [("too-long", String::new(), 1)]);
}
