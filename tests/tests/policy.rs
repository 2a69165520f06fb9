//! Traffic and storage policy between agents on a LAN of network namespaces: a download
//! cap holds the rate (and a raised cap applies without reconnecting), a space outside its
//! window does not replicate until a one-off sync or the window's opening, a seed stops at
//! its quota and says so (or, set to evict, keeps the newest blocks within it), and
//! `min_replicas` follows a seed leaving and coming back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cobox_tests::files::{data_bytes, tree};
use cobox_tests::lan::Lan;
use cobox_tests::node::{Node, QUIET, eventually};

const PORT: u16 = 7421;

/// The tests that move many megabytes take turns, so a measured rate is the cap's and not
/// the CPU's (the window test mostly waits, and runs beside them).
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}
const MIB: f64 = 1_048_576.0;

fn on(lan: &Lan, dir: &std::path::Path, name: &str, host: usize) -> Node {
    let mut n = Node::new(dir, name);
    n.netns = Some(lan.host(host));
    n
}

/// The status of resource `kind` `name`.
fn resource(n: &Node, kind: &str, name: &str) -> serde_json::Value {
    n.resource(kind, name)
}

/// The first copy on another device that `r` lists (each test here has one peer).
fn replica(r: &serde_json::Value) -> Option<serde_json::Value> {
    r["replicas"].as_array()?.first().cloned()
}

/// Blocks `kind` `name` on `n` lacks that its peer holds, and how many it asks for now:
/// what its channels noted of the peer's copy, after deciding what to ask.
fn ahead_and_fetching(n: &Node, kind: &str, name: &str) -> (u64, u64) {
    replica(&resource(n, kind, name)).map_or((0, 0), |c| {
        (
            c["ahead_blocks"].as_u64().unwrap_or(0),
            c["fetching"].as_u64().unwrap_or(0),
        )
    })
}

/// Blocks `n`'s peer lacks of what `n` holds of `kind` `name`.
fn behind(n: &Node, kind: &str, name: &str) -> u64 {
    replica(&resource(n, kind, name)).map_or(0, |c| c["behind_blocks"].as_u64().unwrap_or(0))
}

/// Wait until B has heard that A holds at least `blocks` more than `before` that B lacks
/// of `home`, with nothing asked for: B's channels took the news in and decided.
fn until_heard_and_not_asked(b: &Node, before: u64, blocks: u64, logs: impl Fn() -> String) {
    eventually(
        "B hears of the new blocks and asks for none",
        60,
        || {
            let (ahead, fetching) = ahead_and_fetching(b, "space", "home");
            ahead >= before + blocks && fetching == 0
        },
        logs,
    );
}

fn condition(r: &serde_json::Value, kind: &str) -> Option<(bool, String)> {
    r["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"] == true,
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Bytes per second arriving in `feeds` over `secs`, measured on disk.
fn rate(feeds: &std::path::Path, secs: u64) -> f64 {
    let (t0, b0) = (Instant::now(), data_bytes(feeds));
    std::thread::sleep(Duration::from_secs(secs));
    (data_bytes(feeds) - b0) as f64 / t0.elapsed().as_secs_f64()
}

fn pattern(bytes: usize, seed: u64) -> Vec<u8> {
    cobox_tests::files::noise(bytes, seed)
}

/// A member A with space `home`, listening, started and converged; B, with an invite to
/// join it. Returns A, B, A's agent and the invite.
fn pair(lan: &Lan, dir: &std::path::Path) -> (Node, Node, cobox_tests::node::Agent, String) {
    let (a, b) = (on(lan, dir, "a", 0), on(lan, dir, "b", 1));
    let aa = lan.addr(0);
    a.write_config(&format!(
        "[network]\nlisten = [\"{aa}:{PORT}\"]\n{QUIET}[[space]]\nname = \"home\"\n"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let kb = b.identity();
    let code = a.ctl_ok(&["invite", "create", "--space", "home", "--for", &kb]);
    (a, b, agent_a, code)
}

#[test]
fn a_download_cap_holds_the_rate_and_a_raised_cap_applies_without_reconnecting() {
    let _turn = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(2, 81);
    let (a, b, agent_a, code) = pair(&lan, tmp.path());
    let aa = lan.addr(0);
    let b_config = |cap: &str| {
        format!(
            "[network]\npeers = [\"{aa}:{PORT}\"]\n{QUIET}\
             [[space]]\nname = \"home\"\ninvite = \"{code}\"\ndownload = \"{cap}\"\n"
        )
    };
    // The file is whole on A before B starts: B's rate is the cap's, not A's writing.
    let big = pattern(48 << 20, 1);
    std::fs::write(a.mount("home").join("big.bin"), &big).unwrap();
    b.write_config(&b_config("1 MiB/s"));
    let agent_b = b.start();
    b.wait_converged(60);
    let logs = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    let address = a.space_address();
    let b_feeds = b.data().join("spaces").join(&address).join("feeds");
    eventually(
        "B receives the big file",
        60,
        || data_bytes(&b_feeds) > 512 * 1024,
        logs,
    );
    let slow = rate(&b_feeds, 10);
    assert!(
        (0.5 * MIB..=1.05 * MIB).contains(&slow),
        "capped at 1 MiB/s, B received {:.3} MiB/s\n{}",
        slow / MIB,
        logs()
    );

    // Raise the cap: the agent reloads the file; the session stays.
    let sessions = b.log().matches("session ended").count();
    b.write_config(&b_config("3 MiB/s"));
    eventually(
        "B's status shows the raised cap",
        30,
        || resource(&b, "space", "home")["traffic"]["download_cap"] == 3 * (1 << 20),
        logs,
    );
    let fast = rate(&b_feeds, 8);
    assert!(
        fast <= 3.0 * 1.05 * MIB && fast / slow >= 1.8,
        "capped at 3 MiB/s, B received {:.3} MiB/s (at 1 MiB/s: {:.3})\n{}",
        fast / MIB,
        slow / MIB,
        logs()
    );
    assert_eq!(
        b.log().matches("session ended").count(),
        sessions,
        "changing the cap dropped no connection\n{}",
        b.log()
    );
    let text = b.status_text();
    assert!(text.contains("space home: always open"), "{text}");
    assert!(text.contains("(3 MiB/s)"), "{text}");
    agent_a.stop();
    agent_b.stop();
}

/// The next minute boundary at least `secs` from now, as (unix seconds, hour, minute).
fn minute_after(secs: u64) -> (u64, u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t = (now + secs).div_ceil(60) * 60;
    (t, (t / 3600) % 24, (t / 60) % 60)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn outside_its_window_a_space_waits_for_a_sync_or_the_opening() {
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(2, 82);
    let (a, b, agent_a, code) = pair(&lan, tmp.path());
    let aa = lan.addr(0);
    // B may replicate "home" only from a minute at least ten minutes away, for two minutes
    // (moved closer once the sync has been tried).
    let (opens, hour, minute) = minute_after(600);
    b.write_config(&format!(
        "[network]\npeers = [\"{aa}:{PORT}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\n\
         windows = [{{ when = \"{minute} {hour} * * *\", for = \"2m\", zone = \"UTC\" }}]\n"
    ));
    let agent_b = b.start();
    b.wait_converged(60);
    let logs = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    let window = resource(&b, "space", "home")["window"].clone();
    assert_eq!(window["state"], "closed", "{window}");
    let opening = window["next_change"].as_str().unwrap().to_string();
    assert!(
        opening.ends_with(&format!("{hour:02}:{minute:02}:00Z")),
        "{opening}"
    );

    // Written while B's window is closed: B hears of it and asks for nothing. (A counts
    // what B lacks of A's data; B has fetched none of it.)
    eventually(
        "A sees B",
        60,
        || replica(&resource(&a, "space", "home")).is_some(),
        logs,
    );
    let before = behind(&a, "space", "home");
    let first = pattern(300_000, 2);
    std::fs::write(a.mount("home").join("first.bin"), &first).unwrap();
    until_heard_and_not_asked(&b, before, 4, logs);
    assert!(
        unix_now() < opens,
        "the window was still closed when B heard of the first file"
    );
    assert!(
        !b.mount("home").join("first.bin").exists(),
        "nothing replicates outside the window\n{}",
        logs()
    );

    // A one-off sync brings it (`--wait` says what it waits for and returns once B is in
    // step), then the window closes again by itself.
    let said = b.ctl_ok(&["sync", "--space", "home", "--for", "10m", "--wait"]);
    assert!(said.contains("space home replicates now"), "{said}");
    assert!(
        said.contains("space home is in step with its 1 connected peer(s)"),
        "{said}"
    );
    // In step means every block is here; the log is merged into the tree just after.
    eventually(
        "the one-off sync brings the first file",
        30,
        || std::fs::read(b.mount("home").join("first.bin")).ok() == Some(first.clone()),
        logs,
    );
    eventually(
        "the sync ends once B is in step",
        40,
        || b.log().contains("one-off sync caught up"),
        logs,
    );
    eventually(
        "status shows the window closed again",
        20,
        || resource(&b, "space", "home")["window"]["state"] == "closed",
        logs,
    );

    // Written after the sync: it waits for the window, moved to open 30 s from now
    // (a cron with seconds), whatever time the test took so far.
    let opens = unix_now() + 30;
    let (hour, minute, second) = ((opens / 3600) % 24, (opens / 60) % 60, opens % 60);
    b.write_config(&format!(
        "[network]\npeers = [\"{aa}:{PORT}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\ninvite = \"{code}\"\n\
         windows = [{{ when = \"{second} {minute} {hour} * * *\", for = \"2m\", zone = \"UTC\" }}]\n"
    ));
    eventually(
        "B's window moves",
        30,
        || {
            let w = resource(&b, "space", "home")["window"].clone();
            w["state"] == "closed"
                && w["next_change"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("{hour:02}:{minute:02}:{second:02}Z")))
        },
        logs,
    );
    let before = behind(&a, "space", "home");
    let second = pattern(200_000, 3);
    std::fs::write(a.mount("home").join("second.bin"), &second).unwrap();
    until_heard_and_not_asked(&b, before, 3, logs);
    assert!(
        unix_now() < opens,
        "the window was still closed when B heard of the second file"
    );
    assert!(
        !b.mount("home").join("second.bin").exists(),
        "nothing replicates outside the window after a sync\n{}",
        logs()
    );
    eventually(
        "the second file arrives once the window opens",
        opens.saturating_sub(unix_now()) + 60,
        || std::fs::read(b.mount("home").join("second.bin")).ok() == Some(second.clone()),
        logs,
    );
    assert!(
        unix_now() >= opens,
        "the second file arrived before the window opened"
    );
    assert_eq!(tree(&b.mount("home")), tree(&a.mount("home")));
    agent_a.stop();
    agent_b.stop();
}

/// A member A sharing `home` (with `space_extra` in its space table) that dials a seed S,
/// started and converged; S not yet configured. Returns A, S, the space's address and A's
/// agent.
fn member_with_seed(
    lan: &Lan,
    dir: &std::path::Path,
    space_extra: &str,
) -> (Node, Node, String, cobox_tests::node::Agent) {
    let (a, s) = (on(lan, dir, "a", 0), on(lan, dir, "s", 1));
    let (aa, sa) = (lan.addr(0), lan.addr(1));
    let ks = s.identity();
    a.write_config(&format!(
        "[network]\nlisten = [\"{aa}:{PORT}\"]\npeers = [\"{sa}:{PORT}\"]\n{QUIET}\
         [[space]]\nname = \"home\"\nseeders = [\"{ks}\"]\n{space_extra}"
    ));
    let agent_a = a.start();
    a.wait_converged(60);
    let address = a.space_address();
    (a, s, address, agent_a)
}

/// A seed's config for `home` at `address`: listening, with `extra` (tables after it).
fn seed_config(lan: &Lan, address: &str, seed_extra: &str, extra: &str) -> String {
    let sa = lan.addr(1);
    format!(
        "[network]\nlisten = [\"{sa}:{PORT}\"]\n{QUIET}{extra}\
         [[seed]]\nname = \"home\"\naddress = \"{address}\"\n{seed_extra}"
    )
}

#[test]
fn a_seed_stops_at_its_quota_and_min_replicas_follows_the_seed() {
    let _turn = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(2, 83);
    let (a, s, address, agent_a) = member_with_seed(&lan, tmp.path(), "min_replicas = 1\n");
    let with_quota =
        |quota: &str| seed_config(&lan, &address, &format!("quota = \"{quota}\"\n"), "");
    s.write_config(&with_quota("6 MiB"));
    let agent_s = s.start();
    s.wait_converged(60);
    let logs = || format!("a:\n{}\ns:\n{}", a.log(), s.log());
    let big = pattern(16 << 20, 4);
    std::fs::write(a.mount("home").join("big.bin"), &big).unwrap();
    let seed_dir = s.data().join("seeds").join(&address);
    eventually(
        "the seed reports its quota reached",
        90,
        || {
            condition(&resource(&s, "seed", "home"), "Degraded")
                == Some((true, "QuotaExceeded".into()))
        },
        || format!("{}\n{}", s.status_text(), logs()),
    );
    // It stays there: once what was asked for has arrived (or was refused) and the seed
    // asks for nothing more, nothing more is stored than the quota and one request.
    eventually(
        "the seed asks for nothing more",
        60,
        || {
            let r = resource(&s, "seed", "home");
            r["quota"]["used"].as_u64().unwrap_or(0) > 0
                && replica(&r)
                    .is_some_and(|c| c["fetching"] == 0 && c["ahead_blocks"].as_u64() > Some(0))
        },
        || format!("{}\n{}", s.status_text(), logs()),
    );
    let on_disk = disk_usage(&seed_dir);
    let limit = 6u64 << 20;
    assert!(
        on_disk <= limit + 128 * 1024,
        "the seed stores {on_disk} bytes against a quota of {limit}"
    );
    assert!(on_disk >= limit / 2, "the seed stored {on_disk} bytes");
    let quota = resource(&s, "seed", "home")["quota"].clone();
    assert_eq!(quota["limit"], limit, "{quota}");
    assert_eq!(quota["full"], true, "{quota}");
    let text = s.status_text();
    assert!(text.contains("QuotaExceeded"), "{text}");
    // A sees its seed is not a full copy: the space is degraded.
    eventually(
        "A counts no up-to-date replica",
        30,
        || {
            condition(&resource(&a, "space", "home"), "Degraded")
                == Some((true, "FewReplicas".into()))
        },
        logs,
    );

    // A raised quota lets the seed finish: the space is replicated.
    s.write_config(&with_quota("64 MiB"));
    eventually(
        "A's space is Ready with its seed up to date",
        120,
        || {
            condition(&resource(&a, "space", "home"), "Degraded")
                == Some((false, "Replicated".into()))
        },
        || format!("{}\n{}", s.status_text(), logs()),
    );
    // The seed goes away (cut off the LAN): degraded; it comes back: replicated.
    lan.partition(1);
    eventually(
        "A notices its only replica is gone",
        60,
        || {
            condition(&resource(&a, "space", "home"), "Degraded")
                == Some((true, "FewReplicas".into()))
        },
        logs,
    );
    lan.heal(1);
    eventually(
        "A sees its replica again",
        120,
        || {
            condition(&resource(&a, "space", "home"), "Degraded")
                == Some((false, "Replicated".into()))
        },
        logs,
    );
    agent_a.stop();
    agent_s.stop();
}

/// Bytes allocated on disk under `dir`.
fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    cobox_tests::files::files_under(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.blocks() * 512))
        .sum()
}

#[test]
fn a_seed_set_to_evict_keeps_the_newest_blocks_within_its_quota() {
    let _turn = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new(2, 84);
    let (a, s, address, agent_a) = member_with_seed(&lan, tmp.path(), "");
    s.write_config(&seed_config(
        &lan,
        &address,
        "quota = \"6 MiB\"\n",
        "[storage]\nwhen_full = \"evict-oldest\"\n",
    ));
    let agent_s = s.start();
    s.wait_converged(60);
    let logs = || format!("a:\n{}\ns:\n{}", a.log(), s.log());
    let big = pattern(16 << 20, 5);
    std::fs::write(a.mount("home").join("big.bin"), &big).unwrap();
    // A's content feed: the one holding the file.
    let a_feeds = a.data().join("spaces").join(&address).join("feeds");
    let content = cobox_tests::files::feed_sizes(&a_feeds)
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .unwrap();
    let seed_data = s
        .data()
        .join("seeds")
        .join(&address)
        .join("feeds")
        .join(&content.0)
        .join("data");
    // The seed ends up with the last block (the file reaches its full length) while
    // storing no more than its quota.
    eventually(
        "the seed fetched the newest blocks",
        180,
        || std::fs::metadata(&seed_data).is_ok_and(|m| m.len() == content.1),
        || format!("{}\n{}", s.status_text(), logs()),
    );
    assert!(s.log().contains("evicted the oldest blocks"), "{}", s.log());
    // Everything asked for has arrived.
    eventually(
        "the seed asks for nothing more",
        60,
        || replica(&resource(&s, "seed", "home")).is_some_and(|c| c["fetching"] == 0),
        || format!("{}\n{}", s.status_text(), logs()),
    );
    let limit = 6u64 << 20;
    let on_disk = disk_usage(&s.data().join("seeds").join(&address));
    assert!(
        on_disk <= limit + 128 * 1024,
        "the seed stores {on_disk} bytes against a quota of {limit}"
    );
    // The oldest blocks are gone (their range reads back as a hole of zeros).
    let head = std::fs::read(&seed_data).unwrap();
    assert!(
        head[..64 * 1024].iter().all(|b| *b == 0),
        "the first block was evicted"
    );
    agent_a.stop();
    agent_s.stop();
}
