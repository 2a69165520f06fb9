//! Validation end to end on the pure library: defaults, resolution, relations, ordering.

use std::path::Path;

use cobox_schema::config::{Relays, WhenFull, WindowAction};
use cobox_schema::{FixedHost, Source, validate};

fn check(text: &str) -> cobox_schema::Validation {
    validate(&Source::new("cobox.toml", text), &FixedHost::example())
}

fn codes(text: &str) -> Vec<(&'static str, String)> {
    check(text)
        .diagnostics
        .into_iter()
        .map(|d| (d.code, d.path))
        .collect()
}

#[test]
fn a_minimal_file_gets_every_default() {
    let v = check("version = 1\n");
    assert!(v.diagnostics.is_empty());
    let c = v.config.unwrap();
    assert_eq!(
        c.device.data_dir,
        Path::new("/home/user/.local/share/cobox")
    );
    assert_eq!(c.device.mount_root, Path::new("/home/user/cobox"));
    assert!(c.network.lan_discovery && c.network.internet_discovery && c.network.portmapper);
    assert_eq!(c.network.relays, Relays::Default);
    assert_eq!(c.storage.when_full, WhenFull::Stop);
    assert_eq!(c.storage.min_free.0, 1 << 30);
    assert_eq!(
        c.api.socket,
        Path::new("/home/user/.local/share/cobox/coboxd.sock")
    );
    assert!(c.spaces.is_empty() && c.seeds.is_empty() && c.admins.keys.is_empty());
}

#[test]
fn paths_resolve_home_and_dots_and_mounts_default_under_the_root() {
    let c = check(
        "version = 1\n[device]\ndata_dir = \"~/data/../state\"\nmount_root = \"/mnt/./spaces\"\n\
         [[space]]\nname = \"a\"\n[[space]]\nname = \"b\"\nmount = \"~/B\"\n[[space]]\nname = \"c\"\nmount = false\n",
    )
    .config
    .unwrap();
    assert_eq!(c.device.data_dir, Path::new("/home/user/state"));
    assert_eq!(
        c.spaces[0].mount.as_deref(),
        Some(Path::new("/mnt/spaces/a"))
    );
    assert_eq!(
        c.spaces[1].mount.as_deref(),
        Some(Path::new("/home/user/B"))
    );
    assert_eq!(c.spaces[2].mount, None);
}

#[test]
fn units_keys_and_windows_become_typed_values() {
    let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    let text = format!(
        "version = 1\n[network]\nupload = \"2 MiB/s\"\nrelays = []\npeers = [\"{key}@hub.example:7070\", \"[::1]:9\"]\n\
         [storage]\nquota = \"1.5 TiB\"\n\
         [[space]]\nname = \"s\"\nseeders = [\"{}\"]\nmin_replicas = 2\n\
         windows = [{{ action = \"deny\", when = \"0 9 * * mon-fri\", for = \"9h\", zone = \"Europe/Berlin\" }}]\n",
        key.to_uppercase()
    );
    let c = check(&text).config.unwrap();
    assert_eq!(c.network.upload.unwrap().0, 2 << 20);
    assert_eq!(c.network.relays, Relays::Disabled);
    assert_eq!(
        c.network.peers[0].to_string(),
        format!("{key}@hub.example:7070")
    );
    assert_eq!(c.network.peers[1].host, "::1");
    assert_eq!(c.network.peers[1].to_string(), "[::1]:9");
    assert_eq!(c.storage.quota.unwrap().0, 3 << 39);
    assert_eq!(c.spaces[0].seeders[0].to_string(), key);
    assert_eq!(c.spaces[0].min_replicas, 2);
    let w = &c.spaces[0].windows[0];
    assert_eq!(w.action, WindowAction::Deny);
    assert_eq!(w.period.duration.as_secs(), 9 * 3600);
    assert_eq!(w.period.zone.name(), "Europe/Berlin");
}

#[test]
fn structural_problems_are_all_reported_and_stop_before_meaning_is_checked() {
    // Two structural errors; the bad size is not reported until they are fixed.
    let found =
        codes("version = 1\ncolour = \"red\"\n[storage]\nquota = \"lots\"\nwhen_full = 3\n");
    assert_eq!(
        found,
        [
            ("unknown-key", "colour".to_string()),
            ("wrong-type", "storage.when_full".to_string())
        ]
    );
}

#[test]
fn a_mount_around_another_is_reported_on_the_later_space() {
    let found = codes(
        "version = 1\n[[space]]\nname = \"inner\"\nmount = \"/s/a/b\"\n[[space]]\nname = \"outer\"\nmount = \"/s/a\"\n",
    );
    assert_eq!(found, [("nested-mount", "space[1].mount".to_string())]);
}

#[test]
fn data_dir_inside_a_mount_is_caught_too() {
    let found = codes(
        "version = 1\n[device]\ndata_dir = \"/srv/m/data\"\n[[space]]\nname = \"m\"\nmount = \"/srv/m\"\n",
    );
    assert_eq!(found, [("mount-in-data-dir", "space[0].mount".to_string())]);
}

#[test]
fn quota_larger_than_the_disk_is_a_warning_that_keeps_the_config() {
    let host = FixedHost {
        disk_capacity: Some(100 << 30),
        ..FixedHost::example()
    };
    let v = validate(
        &Source::new("c", "version = 1\n[storage]\nquota = \"200 GiB\"\n"),
        &host,
    );
    assert_eq!(v.warnings().count(), 1);
    assert_eq!(v.warnings().next().unwrap().code, "quota-exceeds-disk");
    assert!(v.config.is_some());
}

#[test]
fn a_schedule_that_ended_before_now_never_fires() {
    let text = "version = 1\n[[space]]\nname = \"s\"\nwindows = [{ when = \"0 0 0 1 1 * 2025\", for = \"1h\" }]\n";
    assert_eq!(
        codes(text),
        [("window-never-fires", "space[0].windows[0].when".to_string())]
    );
    // The same expression is fine for a host whose clock is before it.
    let host = FixedHost {
        now: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        ..FixedHost::example()
    };
    assert!(validate(&Source::new("c", text), &host).config.is_some());
}

#[test]
fn the_same_input_gives_the_same_diagnostics_in_the_same_order() {
    let text = "version = 3\n[[space]]\nname = \"b b\"\nupload = \"x\"\n[[space]]\nname = \"b b\"\n[api]\nmetrics = \"nope\"\n";
    let first = codes(text);
    assert_eq!(first.len(), 6, "{first:?}");
    for _ in 0..5 {
        assert_eq!(codes(text), first);
    }
}

#[test]
fn version_retention_defaults_parses_and_refuses_nonsense_at_its_place() {
    use std::time::Duration;
    let c = check(
        "version = 1\n[[space]]\nname = \"a\"\n[[space]]\nname = \"b\"\nversions = { keep = \"0s\" }\n\
         [[space]]\nname = \"c\"\nversions = { keep = \"forever\", min = 3 }\n\
         [[space]]\nname = \"d\"\n[space.versions]\nkeep = \"12h\"\nmin = 2\n",
    )
    .config
    .unwrap();
    let v: Vec<_> = c
        .spaces
        .iter()
        .map(|s| (s.versions.keep, s.versions.min))
        .collect();
    assert_eq!(
        v,
        vec![
            (Some(Duration::from_secs(30 * 86_400)), 0),
            (Some(Duration::ZERO), 0),
            (None, 3),
            (Some(Duration::from_secs(12 * 3600)), 2),
        ]
    );
    let src = "version = 1\n[[space]]\nname = \"a\"\nversions = { keep = \"a while\" }\n";
    let d = check(src).diagnostics;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].code, d[0].path.as_str()),
        ("invalid-duration", "space[0].versions.keep")
    );
    let at = d[0].located(&Source::new("cobox.toml", src));
    assert_eq!((at.line, at.column), (4, 21));
    assert_eq!(
        codes("version = 1\n[[space]]\nname = \"a\"\nversions = { keep = \"1d\", min = -1 }\n")
            .len(),
        1
    );
    let unknown = codes("version = 1\n[[space]]\nname = \"a\"\nversions = { kept = \"1d\" }\n");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(unknown[0].1, "space[0].versions.kept");
    assert!(
        check("version = 1\n[[space]]\nname = \"a\"\nversions = { min = 10001 }\n")
            .config
            .is_none()
    );
}

#[test]
fn the_commit_interval_defaults_to_a_second_and_refuses_more_than_a_minute() {
    use std::time::Duration;
    let interval = |text: &str| check(text).config.map(|c| c.device.commit_interval);
    assert_eq!(interval("version = 1\n"), Some(Duration::from_secs(1)));
    assert_eq!(
        interval("version = 1\n[device]\ncommit_interval = \"0s\"\n"),
        Some(Duration::ZERO)
    );
    assert_eq!(
        interval("version = 1\n[device]\ncommit_interval = \"250ms\"\n"),
        Some(Duration::from_millis(250))
    );
    for (text, code) in [
        (
            "version = 1\n[device]\ncommit_interval = \"2m\"\n",
            "too-long",
        ),
        (
            "version = 1\n[device]\ncommit_interval = \"soon\"\n",
            "invalid-duration",
        ),
    ] {
        assert_eq!(
            codes(text),
            vec![(code, "device.commit_interval".to_string())],
            "{text}"
        );
    }
}
