//! The web dashboard's pages in a real browser (headless Chromium through chromedriver)
//! against real agents: a space's card follows its seed going and coming back; two
//! members' writes of one file that could not see each other show on the space's page as a
//! conflict copy of that file; the events page filters; the peers page says how each peer
//! is connected, since when and what it carried; the lag chart is sampled without its page
//! and kept across a restart. Access and actions are in `web_access.rs`.

use std::net::SocketAddr;

use cobox_tests::dashboard::{device_with_a_space, turn, wait_dashboard, web_table};
use cobox_tests::files::noise;
use cobox_tests::node::{eventually, free_port, two_members_and_a_seed};
use cobox_tests::web::{Browser, request};

/// The health the overview shows on the card of `resource` (like `space home`).
fn card_health(browser: &Browser, port: u16, resource: &str) -> Option<String> {
    browser.go(&format!("http://127.0.0.1:{port}/"));
    browser.attribute(
        &format!("article[data-resource=\"{resource}\"]"),
        "data-health",
    )
}

#[test]
fn a_space_card_turns_amber_when_its_seed_stops_and_green_when_it_returns() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "min_replicas = 2\n");
    let port = free_port();
    let (a, s) = (&trio.a, &trio.s);
    let config = std::fs::read_to_string(a.config()).unwrap();
    std::fs::write(a.config(), format!("{config}{}", web_table(port))).unwrap();
    let logs = || format!("a:\n{}\ns:\n{}", a.log(), s.log());
    wait_dashboard(port, logs);
    let browser = Browser::start(1280, 800);
    let health = || card_health(&browser, port, "space home");
    eventually(
        "the card of space home is green with both replicas up to date",
        120,
        || health().as_deref() == Some("green"),
        || format!("{}\n{}", browser.source(), logs()),
    );

    // The space's page: its replicas' lag charted with a text alternative, and no
    // conflict copies to resolve.
    browser.go(&format!("http://127.0.0.1:{port}/space/home"));
    let label = browser
        .attribute("svg.sparkline", "aria-label")
        .unwrap_or_else(|| panic!("no lag chart:\n{}", browser.source()));
    assert!(
        label.starts_with("Replica lag in blocks over the last hour"),
        "{label}"
    );
    assert!(
        browser
            .text("section[aria-labelledby=\"conflicts\"]")
            .contains("No conflict copies"),
        "{}",
        browser.source()
    );
    assert!(
        browser
            .text("section[aria-labelledby=\"files-to-fetch\"]")
            .contains("None: every file shown here has all its content"),
        "{}",
        browser.source()
    );

    // The seed stops: one replica of the two wanted is left.
    let [agent_a, agent_b, agent_s] = trio.agents;
    agent_s.stop();
    eventually(
        "the card of space home turns amber",
        120,
        || health().as_deref() == Some("amber"),
        || format!("{}\n{}", browser.source(), logs()),
    );
    let reason = browser.text("article[data-resource=\"space home\"] .reason");
    assert!(reason.starts_with("FewReplicas"), "{reason}");
    assert!(
        browser
            .text("article[data-resource=\"space home\"] .state")
            .contains("Needs attention"),
        "the colour is said in words too"
    );

    // It comes back: the page open in the browser turns green by itself (its script
    // re-reads it on the agent's events), without being loaded again.
    browser.go(&format!("http://127.0.0.1:{port}/"));
    browser.script("document.getElementById('main').setAttribute('data-loaded-once', 'yes');");
    let agent_s = s.start();
    let card = "article[data-resource=\"space home\"]";
    eventually(
        "the open page shows the card of space home green again",
        120,
        || browser.attribute(card, "data-health").as_deref() == Some("green"),
        || format!("{}\n{}", browser.source(), logs()),
    );
    assert_eq!(
        browser.attribute("#main", "data-loaded-once").as_deref(),
        Some("yes"),
        "the page was updated in place, not loaded again"
    );
    drop(browser);
    agent_s.stop();
    agent_b.stop();
    agent_a.stop();
}

/// Write `content` to `path` through a mount and make it durable (`fsync`) before returning.
fn write_durably(path: &std::path::Path, content: &[u8]) {
    let mut file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    std::io::Write::write_all(&mut file, content).unwrap();
    file.sync_all().unwrap();
}

/// The names in directory `dir`, sorted (none when it cannot be listed).
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The names in directory `dir` that are conflict copies of `file`, sorted.
fn conflict_copies_of(dir: &std::path::Path, file: &str) -> Vec<String> {
    let prefix = format!("{file}.conflict-");
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn writes_of_one_file_that_could_not_see_each_other_show_as_a_conflict_copy_on_the_page() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "");
    let port = free_port();
    let (a, b, s) = (&trio.a, &trio.b, &trio.s);
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    let (on_a, on_b) = (b"notes written on a\n", b"notes written on b\n");

    // A writes alone; then B writes alone, never having seen A's write.
    let [agent_a, agent_b, agent_s] = trio.agents;
    agent_s.stop();
    agent_b.stop();
    write_durably(&a.mount("home").join("notes.txt"), on_a);
    agent_a.stop();
    let agent_b = b.start();
    b.wait_converged(60);
    assert!(
        std::fs::read(b.mount("home").join("notes.txt")).is_err(),
        "B saw A's write before making its own\n{}",
        logs()
    );
    write_durably(&b.mount("home").join("notes.txt"), on_b);

    // A comes back with its dashboard, and the seed: the two writes meet.
    let config = std::fs::read_to_string(a.config()).unwrap();
    std::fs::write(a.config(), format!("{config}{}", web_table(port))).unwrap();
    let agent_a = a.start();
    let agent_s = s.start();
    a.wait_converged(60);
    let (mount_a, mount_b) = (a.mount("home"), b.mount("home"));
    eventually(
        "a conflict copy of notes.txt shows in A's mount",
        120,
        || conflict_copies_of(&mount_a, "notes.txt").len() == 1,
        || format!("A's files: {:?}\n{}", names_in(&mount_a), logs()),
    );
    let copy = conflict_copies_of(&mount_a, "notes.txt").remove(0);
    eventually(
        "B shows the same conflict copy",
        60,
        || conflict_copies_of(&mount_b, "notes.txt") == [copy.clone()],
        || format!("B's files: {:?}\n{}", names_in(&mount_b), logs()),
    );

    // No write is lost: the file and its copy hold one each, the copy named after the
    // device that wrote what it keeps.
    let winner = std::fs::read(mount_a.join("notes.txt")).unwrap();
    let kept = std::fs::read(mount_a.join(&copy)).unwrap();
    let mut both = [winner.as_slice(), kept.as_slice()];
    both.sort();
    assert_eq!(
        both,
        [&on_a[..], &on_b[..]],
        "notes.txt holds {:?} and {copy} holds {:?}\n{}",
        String::from_utf8_lossy(&winner),
        String::from_utf8_lossy(&kept),
        logs()
    );
    let writer = if kept == on_a { "a" } else { "b" };
    let stamp = copy
        .strip_prefix(&format!("notes.txt.conflict-{writer}-"))
        .unwrap_or_else(|| panic!("{copy} is not named after {writer}, who wrote it"));
    assert!(
        stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && stamp.chars().filter(char::is_ascii_digit).count() == 14,
        "{copy} ends with a UTC time YYYYMMDDTHHMMSSZ"
    );
    assert_eq!(
        std::fs::read(mount_b.join("notes.txt")).unwrap(),
        winner,
        "B keeps the same winner"
    );

    // The space's page names the copy and the file it lost to.
    wait_dashboard(port, logs);
    let browser = Browser::start(1280, 800);
    browser.go(&format!("http://127.0.0.1:{port}/space/home"));
    let section = "section[aria-labelledby=\"conflicts\"]";
    let page = || format!("{}\n{}", browser.source(), logs());
    let text = browser.text(section);
    assert!(!text.contains("No conflict copies"), "{text}\n{}", page());
    let row = format!("{section} tbody tr");
    let rows = browser.script(&format!(
        "return document.querySelectorAll('{row}').length;"
    ));
    assert_eq!(rows, 1, "one copy is listed\n{}", page());
    assert_eq!(
        browser.text(&format!("{row} td:first-child code")),
        copy,
        "{}",
        page()
    );
    assert_eq!(
        browser.text(&format!("{row} td:nth-child(2) code")),
        "notes.txt",
        "{}",
        page()
    );
    drop(browser);
    agent_s.stop();
    agent_b.stop();
    agent_a.stop();
}

#[test]
fn the_events_page_filters_by_kind_and_text() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_node, agent) = device_with_a_space(tmp.path(), "watched", port);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("127.0.0.1:{port}");
    let rows = |path: &str| {
        let a = request(addr, "GET", path, &host, &[], None).unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        a.body.matches("<tr><td>").count()
    };
    let all = rows("/events");
    let accepted = rows("/events?kind=config-accepted");
    assert!(accepted >= 1 && accepted < all, "{accepted} of {all}");
    assert_eq!(rows("/events?q=no-such-text-anywhere"), 0);
    assert_eq!(
        rows("/events?kind=config-accepted&q=no-such-text-anywhere"),
        0
    );
    let browser = Browser::start(800, 600);
    browser.go(&format!("http://127.0.0.1:{port}/events"));
    browser.fill("#q", "home");
    browser.click("form.filter button[type=submit]");
    eventually(
        "the filter is in the address",
        30,
        || browser.script("return window.location.search;").as_str() == Some("?kind=&q=home"),
        || browser.source(),
    );
    drop(browser);
    agent.stop();
}

/// The bytes the peers page says were sent to (`sent`) or received from (`received`)
/// peer `identity`, as counted (none when the peer is not listed).
fn carried(browser: &Browser, identity: &str, way: &str) -> Option<u64> {
    browser
        .attribute(
            &format!("tr[data-peer=\"{identity}\"] td.{way}"),
            "data-bytes",
        )?
        .parse()
        .ok()
}

#[test]
fn the_peers_page_says_how_each_peer_is_connected_since_when_and_what_it_carried() {
    let _turn = turn();
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "");
    let port = free_port();
    let (a, b, s) = (&trio.a, &trio.b, &trio.s);
    let (kb, ks) = (b.identity(), s.identity());
    let config = std::fs::read_to_string(a.config()).unwrap();
    std::fs::write(a.config(), format!("{config}{}", web_table(port))).unwrap();
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    wait_dashboard(port, logs);
    let browser = Browser::start(1280, 800);
    let page = format!("http://127.0.0.1:{port}/peers");
    eventually(
        "A's peers page lists B and the seed",
        60,
        || {
            browser.go(&page);
            carried(&browser, &kb, "sent").is_some() && carried(&browser, &ks, "sent").is_some()
        },
        || format!("{}\n{}", browser.source(), logs()),
    );

    // How: A dialled the seed (its `peers` entry); B dialled A.
    let seed_at = config
        .split("peers = [\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("A dials the seed");
    let link = |who: &str| browser.text(&format!("tr[data-peer=\"{who}\"] td.link"));
    assert_eq!(link(&ks), format!("tcp, dialled {seed_at}"));
    let from_b = link(&kb);
    assert!(
        from_b.starts_with("tcp, accepted from 127.0.0.1:"),
        "{from_b}"
    );

    // Since when: after the test started, not after now.
    for who in [&kb, &ks] {
        let since = browser
            .attribute(&format!("tr[data-peer=\"{who}\"] time"), "datetime")
            .unwrap_or_else(|| panic!("no time for {who}:\n{}", browser.source()));
        let since = chrono::DateTime::parse_from_rfc3339(&since)
            .unwrap_or_else(|e| panic!("{since}: {e}"))
            .with_timezone(&chrono::Utc);
        assert!(
            since >= started && since <= chrono::Utc::now(),
            "{since} is not between {started} and now"
        );
    }

    // Traffic: a MiB written on A goes to both, so at least that much more is sent to
    // each on the session that carried it (encrypted and framed, never less). A session
    // replaced meanwhile starts again from 0, so it is judged only if it is the same.
    let session =
        |who: &str| browser.attribute(&format!("tr[data-peer=\"{who}\"] time"), "datetime");
    let before = [&kb, &ks].map(|who| (carried(&browser, who, "sent").unwrap(), session(who)));
    let received_from_b = carried(&browser, &kb, "received").unwrap();
    let big = noise(1 << 20, 7);
    write_durably(&a.mount("home").join("big.bin"), &big);
    eventually(
        "B's mount shows the MiB written on A",
        120,
        || std::fs::read(b.mount("home").join("big.bin")).is_ok_and(|got| got == big),
        logs,
    );
    let kept = |who: &str, was: &Option<String>| session(who) == *was;
    eventually(
        "A's peers page counts the MiB sent to B and to the seed",
        120,
        || {
            browser.go(&page);
            [&kb, &ks].iter().zip(&before).all(|(who, (sent, since))| {
                !kept(who, since)
                    || carried(&browser, who, "sent").is_some_and(|n| n >= sent + (1 << 20))
            })
        },
        || format!("before {before:?}\n{}\n{}", browser.source(), logs()),
    );
    assert!(
        [&kb, &ks]
            .iter()
            .zip(&before)
            .any(|(who, (_, since))| kept(who, since)),
        "both sessions were replaced during the test: {before:?}\n{}\n{}",
        browser.source(),
        logs()
    );
    if kept(&kb, &before[0].1) {
        assert!(
            carried(&browser, &kb, "received").unwrap() >= received_from_b,
            "a counter never goes back"
        );
    }
    let seed_kept = kept(&ks, &before[1].1);
    drop(browser);

    // The API and `coboxctl status` say the same.
    let status = a.status();
    let peers = status["network"]["peers"].as_array().unwrap();
    let seed = peers.iter().find(|p| p["identity"] == ks.as_str()).unwrap();
    assert_eq!(seed["transport"], "tcp", "{seed}");
    assert_eq!(seed["direction"], "outbound", "{seed}");
    assert_eq!(seed["route"], seed_at, "{seed}");
    if seed_kept {
        assert!(seed["sent_bytes"].as_u64().unwrap() >= before[1].0 + (1 << 20));
    }
    let text = a.status_text();
    assert!(text.contains("CONNECTION"), "{text}");
    assert!(text.contains(&format!("tcp, dialled {seed_at}")), "{text}");
    trio.stop();
}

#[test]
fn the_lag_chart_is_sampled_without_the_page_and_kept_across_a_restart() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let trio = two_members_and_a_seed(tmp.path(), "");
    let port = free_port();
    let (a, b, s) = (&trio.a, &trio.b, &trio.s);
    let kb = b.identity();
    let config = std::fs::read_to_string(a.config()).unwrap();
    std::fs::write(a.config(), format!("{config}{}", web_table(port))).unwrap();
    let logs = || format!("a:\n{}\nb:\n{}\ns:\n{}", a.log(), b.log(), s.log());
    let lag_of_b = || {
        let home = a.resource("space", "home");
        let b = home["replicas"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["peer"] == kb.as_str()).cloned());
        b.map(|r| {
            (
                r["behind_blocks"].as_u64().unwrap_or(0),
                r["up_to_date"] == true,
            )
        })
    };

    // B is away while A writes: A's status sees B fall behind. Nobody opens a page.
    let [agent_a, agent_b, agent_s] = trio.agents;
    agent_b.stop();
    for i in 0..5 {
        write_durably(
            &a.mount("home").join(format!("f{i}.bin")),
            &noise(100_000, i),
        );
    }
    eventually(
        "A sees B behind",
        60,
        || lag_of_b().is_some_and(|(n, _)| n > 0),
        logs,
    );
    let seen = lag_of_b().unwrap().0;
    let agent_b = b.start();
    eventually(
        "A sees B catch up",
        120,
        || lag_of_b().is_some_and(|(n, up)| n == 0 && up),
        logs,
    );

    // A stops: the history it sampled is kept, with B's lag.
    agent_a.stop();
    let file = a.data().join("lag-history.json");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), logs()));
    let mut kept: serde_json::Value = serde_json::from_str(&text).unwrap();
    let samples = kept["resources"]["space home"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no samples of space home in {text}"));
    let most = samples
        .iter()
        .filter_map(|s| s["lags"][kb.as_str()].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        most >= seen,
        "kept {most} blocks at most, saw {seen}: {text}"
    );

    // What A reads back at start is what its chart shows: B's worst lag marked in the
    // file shows as the most in the hour.
    for s in samples.iter_mut() {
        if s["lags"][kb.as_str()].is_u64() {
            s["lags"][kb.as_str()] = 4242.into();
        }
    }
    std::fs::write(&file, serde_json::to_vec(&kept).unwrap()).unwrap();
    let agent_a = a.start();
    wait_dashboard(port, logs);
    let browser = Browser::start(1280, 800);
    browser.go(&format!("http://127.0.0.1:{port}/space/home"));
    let row = format!("section[aria-labelledby=\"lag\"] tr:has(code[title=\"{kb}\"])");
    assert_eq!(
        browser.text(&format!("{row} td:nth-child(3)")),
        "4242 blocks",
        "{}\n{}",
        browser.source(),
        logs()
    );
    drop(browser);
    agent_s.stop();
    agent_b.stop();
    agent_a.stop();
}
