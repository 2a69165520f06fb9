//! The web dashboard in a real browser (headless Chromium through chromedriver) against
//! real agents: a space's card follows its seed going and coming back; two members' writes
//! of one file that could not see each other show on the space's page as a conflict copy
//! of that file; a config pasted into the page is applied and the device converges on it;
//! forms without the CSRF token and requests for a foreign host are refused and change
//! nothing; validation refuses a dashboard beyond loopback without a login.

use std::net::SocketAddr;
use std::sync::Mutex;

use cobox_tests::files::noise;
use cobox_tests::node::{Node, QUIET, eventually, free_port, show, two_members_and_a_seed};
use cobox_tests::web::{Browser, csrf_of, form_encode, request};

/// One browser and its agents at a time: they share two cores with the rest.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `[api]` table of a dashboard on loopback `port`.
fn web_table(port: u16) -> String {
    format!("[api]\nweb = \"127.0.0.1:{port}\"\n")
}

/// Wait until the dashboard on `port` answers.
fn wait_dashboard(port: u16, context: impl Fn() -> String) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    eventually(
        "the dashboard answers",
        60,
        || {
            request(addr, "GET", "/", &format!("127.0.0.1:{port}"), &[], None)
                .is_ok_and(|a| a.status == 200)
        },
        context,
    );
}

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
fn a_config_pasted_into_the_page_is_applied_after_its_diff_and_the_device_converges() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::new(tmp.path(), "web");
    let port = free_port();
    let base = format!("[network]\n{QUIET}{}", web_table(port));
    node.write_config(&base);
    let agent = node.start();
    node.wait_converged(60);
    wait_dashboard(port, || node.log());
    let before = node.status()["generation"].as_u64().unwrap();

    let browser = Browser::start(1280, 800);
    browser.go(&format!("http://127.0.0.1:{port}/config"));
    let wanted = format!("{}{base}[[space]]\nname = \"notes\"\n", node.device_table());
    browser.fill("#config", &wanted);
    browser.click("form[action=\"/config/apply\"] button[type=submit]");
    eventually(
        "the page shows the diff and asks to confirm",
        30,
        || browser.find("button.danger").is_some(),
        || browser.source(),
    );
    let diff = browser.text("pre.diff");
    assert!(diff.contains("+ space notes"), "{diff}");
    assert_eq!(
        node.status()["generation"].as_u64().unwrap(),
        before,
        "nothing is applied before the confirmation"
    );
    browser.click("button.danger");
    eventually(
        "the page says the new generation runs",
        60,
        || browser.source().contains("runs now."),
        || browser.source(),
    );
    // `coboxctl status` may answer for the last reconcile before the new one has run.
    eventually(
        "the device converges on the new generation with space notes ready",
        60,
        || {
            let s = node.status();
            s["generation"] == before + 1
                && s["observed_generation"] == before + 1
                && s["converged"] == true
                && s["resources"].as_array().unwrap().iter().any(|r| {
                    r["kind"] == "space"
                        && r["name"] == "notes"
                        && r["conditions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == true)
                })
        },
        || format!("{}\n{}", node.status(), node.log()),
    );
    // The path of `coboxctl apply`: an API generation, the file replaced by the text.
    let gens = node.ctl_ok(&["generations"]);
    assert!(gens.contains("api"), "{gens}");
    assert_eq!(std::fs::read_to_string(node.config()).unwrap(), wanted);
    drop(browser);
    agent.stop();
}

#[test]
fn forms_without_the_csrf_token_or_for_a_foreign_host_are_refused_and_change_nothing() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::new(tmp.path(), "guarded");
    let port = free_port();
    let base = format!("[network]\n{QUIET}{}", web_table(port));
    node.write_config(&base);
    let agent = node.start();
    node.wait_converged(60);
    wait_dashboard(port, || node.log());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("127.0.0.1:{port}");
    let generation = || node.status()["generation"].as_u64().unwrap();
    let before = generation();

    let page = request(addr, "GET", "/config", &host, &[], None).unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
        )
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csrf = csrf_of(&page.body).expect("the config page's forms carry a token");
    let wanted = format!(
        "{}{base}[[space]]\nname = \"sneaky\"\n",
        node.device_table()
    );
    let body = |csrf: Option<&str>| {
        let mut b = format!("confirm=yes&config={}", form_encode(&wanted));
        if let Some(c) = csrf {
            b.push_str(&format!("&csrf={c}"));
        }
        b
    };

    let missing = request(addr, "POST", "/config/apply", &host, &[], Some(&body(None))).unwrap();
    assert_eq!(missing.status, 403, "{}", missing.body);
    let forged = "0".repeat(64);
    let wrong = request(
        addr,
        "POST",
        "/config/apply",
        &host,
        &[],
        Some(&body(Some(&forged))),
    )
    .unwrap();
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    // A page of another site whose name was pointed at this device (DNS rebinding).
    let rebound = format!("cobox.attacker.example:{port}");
    let foreign = request(
        addr,
        "POST",
        "/config/apply",
        &rebound,
        &[],
        Some(&body(Some(&csrf))),
    )
    .unwrap();
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let read = request(addr, "GET", "/", &rebound, &[], None).unwrap();
    assert_eq!(read.status, 403, "reads too: {}", read.body);
    assert!(!read.body.contains("guarded"), "{}", read.body);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(generation(), before, "a refused form changed the device");
    assert!(
        node.status()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "sneaky")
    );

    // The same form with the page's token, for the right host, is applied.
    let ok = request(
        addr,
        "POST",
        "/config/apply",
        &host,
        &[],
        Some(&body(Some(&csrf))),
    )
    .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    eventually(
        "the accepted form makes a generation",
        30,
        || generation() == before + 1,
        || node.log(),
    );
    agent.stop();
}

#[test]
fn validation_refuses_a_dashboard_beyond_loopback_without_a_login() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::new(tmp.path(), "open");
    node.write_config(&format!(
        "[network]\n{QUIET}[api]\nweb = \"0.0.0.0:8384\"\n"
    ));
    let out = node.ctl(&["validate", node.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("error[web-without-login]"), "{text}");
    let line = node.device_table().lines().count() + 2 + QUIET.lines().count() + 1;
    assert!(
        text.contains(&format!("cobox.toml:{line}:7")),
        "located at the value of `web`: {text}"
    );
    // With a password hash it is accepted; on loopback it needs none.
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI";
    node.write_config(&format!(
        "[network]\n{QUIET}[api]\nweb = \"0.0.0.0:8384\"\nweb_password_hash = \"{hash}\"\n"
    ));
    let out = node.ctl(&["validate", node.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    node.write_config(&format!("[network]\n{QUIET}{}", web_table(8384)));
    let out = node.ctl(&["validate", node.config().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// An IPv4 address of this machine other than loopback (from `ip -4 -o addr`).
fn outside_address() -> std::net::Ipv4Addr {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .expect("ip runs (Debian package iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next()?.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
        .expect("this test needs a network interface other than loopback")
}

#[test]
fn off_loopback_the_dashboard_asks_for_its_token_and_opens_a_strict_session() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::new(tmp.path(), "remote");
    let port = free_port();
    let token = node.root.join("web-token");
    std::fs::write(&token, "correct-token-4711\n").unwrap();
    node.write_config(&format!(
        "[network]\n{QUIET}[api]\nweb = \"0.0.0.0:{port}\"\nweb_token_file = \"{}\"\n",
        token.display()
    ));
    let agent = node.start();
    node.wait_converged(60);
    wait_dashboard(port, || node.log());
    let ip = outside_address();
    let addr: SocketAddr = (ip, port).into();
    let host = format!("{ip}:{port}");

    // Reached from outside loopback: only the login page answers.
    let first = request(addr, "GET", "/", &host, &[], None).unwrap();
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(first.header("location"), Some("/login"));
    let denied = request(addr, "POST", "/config/apply", &host, &[], Some("config=x")).unwrap();
    assert_eq!(denied.status, 403);
    let login = request(addr, "GET", "/login", &host, &[], None).unwrap();
    assert_eq!(login.status, 200);
    let csrf = csrf_of(&login.body).unwrap();
    let wrong = request(
        addr,
        "POST",
        "/login",
        &host,
        &[],
        Some(&format!("csrf={csrf}&secret=guess")),
    )
    .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.header("set-cookie").is_none());
    let no_csrf = request(
        addr,
        "POST",
        "/login",
        &host,
        &[],
        Some("secret=correct-token-4711"),
    )
    .unwrap();
    assert_eq!(no_csrf.status, 403, "a login without the form's token");
    let ok = request(
        addr,
        "POST",
        "/login",
        &host,
        &[],
        Some(&format!("csrf={csrf}&secret=correct-token-4711")),
    )
    .unwrap();
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = ok
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();

    // With the session: the pages answer, and forms still need their token.
    let cookies = [("Cookie", session.as_str())];
    let overview = request(addr, "GET", "/", &host, &cookies, None).unwrap();
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Log out"));
    let before = node.status()["generation"].as_u64().unwrap();
    let forged = request(
        addr,
        "POST",
        "/config/rollback",
        &host,
        &cookies,
        Some("generation=1&confirm=yes"),
    )
    .unwrap();
    assert_eq!(forged.status, 403);
    let forged_cookie = [("Cookie", "cobox_session=00")];
    let guessed = request(addr, "GET", "/", &host, &forged_cookie, None).unwrap();
    assert_eq!(guessed.status, 303, "a made-up session is no session");
    assert_eq!(node.status()["generation"].as_u64().unwrap(), before);
    agent.stop();
}

/// A device with space `home` and its dashboard on loopback `port`, started and converged.
fn device_with_a_space(
    dir: &std::path::Path,
    name: &str,
    port: u16,
) -> (Node, cobox_tests::node::Agent) {
    let node = Node::new(dir, name);
    node.write_config(&format!(
        "[network]\n{QUIET}{}[[space]]\nname = \"home\"\n",
        web_table(port)
    ));
    let agent = node.start();
    node.wait_converged(60);
    wait_dashboard(port, || node.log());
    (node, agent)
}

/// The identities `coboxctl members home` lists.
fn members_of_home(node: &Node) -> String {
    node.ctl_ok(&["members", "home", "--output", "json"])
}

#[test]
fn an_invite_made_on_the_page_opens_on_the_invitee_and_a_forged_one_makes_nothing() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (node, agent) = device_with_a_space(tmp.path(), "inviter", port);
    let invitee_node = Node::new(tmp.path(), "invitee");
    let invitee = invitee_node.identity();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("127.0.0.1:{port}");

    // A malformed key is refused on the page, precisely.
    let browser = Browser::start(1280, 800);
    browser.go(&format!("http://127.0.0.1:{port}/invites"));
    browser.fill("#invitee", "not-a-key");
    browser.click("form[action=\"/invites\"] button[type=submit]");
    eventually(
        "the page says why the key is refused",
        30,
        || browser.find("p[role=alert]").is_some(),
        || browser.source(),
    );
    let why = browser.text("p[role=alert]");
    assert!(why.contains("invitee key \"not-a-key\""), "{why}");
    assert!(browser.find("#invite-code").is_none());

    // The invitee's key: a code, as text and as a QR code.
    browser.fill("#invitee", &invitee);
    browser.click("form[action=\"/invites\"] button[type=submit]");
    eventually(
        "the page shows the invite code",
        30,
        || browser.find("#invite-code").is_some(),
        || browser.source(),
    );
    let code = browser.text("#invite-code");
    assert!(code.starts_with("coboxinvite1"), "{code}");
    assert!(browser.find("figure.qr svg[role=img]").is_some());
    let out = invitee_node.ctl_ok(&["invite", "open", &code]);
    assert!(out.lines().any(|l| l == "space    home"), "{out}");
    assert!(
        out.contains(&node.identity()),
        "the inviter is named: {out}"
    );
    eventually(
        "the invitee is a member of home",
        30,
        || members_of_home(&node).contains(&invitee),
        || members_of_home(&node),
    );

    // The code is for the invitee: opened here, the page says so and shows no grant.
    browser.fill("#code", &code);
    browser.click("form[action=\"/invites/open\"] button[type=submit]");
    eventually(
        "the page refuses to open another device's invite",
        30,
        || browser.find("p[role=alert]").is_some(),
        || browser.source(),
    );
    assert!(
        browser.find("#invite-info").is_none(),
        "{}",
        browser.source()
    );
    drop(browser);

    // Without the page's token, an invite is refused and nobody is admitted.
    let other = Node::new(tmp.path(), "other").identity();
    let page = request(addr, "GET", "/invites", &host, &[], None).unwrap();
    let csrf = csrf_of(&page.body).expect("the invites page's forms carry a token");
    let form = format!("space=home&role=member&expires=7d&invitee={other}");
    let forged = request(addr, "POST", "/invites", &host, &[], Some(&form)).unwrap();
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!forged.body.contains("coboxinvite1"), "{}", forged.body);
    let wrong = format!("{form}&csrf={}", "0".repeat(64));
    let wrong = request(addr, "POST", "/invites", &host, &[], Some(&wrong)).unwrap();
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!members_of_home(&node).contains(&other));
    // With the token the same form is accepted: the refusal was the token's.
    let ok = format!("{form}&csrf={csrf}");
    let ok = request(addr, "POST", "/invites", &host, &[], Some(&ok)).unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("coboxinvite1"), "{}", ok.body);
    agent.stop();
}

/// The words of a paper-key sheet, in order (`1. word` … `24. word`).
fn sheet_words(sheet: &str) -> Vec<(u32, String)> {
    let tokens: Vec<&str> = sheet.split_whitespace().collect();
    let mut words: Vec<(u32, String)> = tokens
        .windows(2)
        .filter_map(|w| {
            let n = w[0].strip_suffix('.')?.parse().ok()?;
            Some((n, w[1].to_string()))
        })
        .collect();
    words.sort();
    words
}

#[test]
fn the_paper_key_is_shown_only_after_the_confirmation_and_matches_coboxctl() {
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (node, agent) = device_with_a_space(tmp.path(), "keeper", port);
    let exported = node.ctl_ok(&["keys", "export"]);
    let words = sheet_words(&exported);
    assert_eq!(words.len(), 24, "{exported}");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("127.0.0.1:{port}");

    // Without the confirmation: the identity page again, and no word.
    let page = request(addr, "GET", "/identity", &host, &[], None).unwrap();
    let csrf = csrf_of(&page.body).unwrap();
    let body = format!("csrf={csrf}");
    let unconfirmed =
        request(addr, "POST", "/identity/paper-key", &host, &[], Some(&body)).unwrap();
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(unconfirmed.body.contains("The paper key was not shown"));
    assert!(!unconfirmed.body.contains("id=\"paper-key\""));
    assert!(!unconfirmed.body.contains("cobox paper key"));
    assert!(
        words
            .iter()
            .all(|(n, w)| !unconfirmed.body.contains(&format!("{n}. {w}"))),
        "{}",
        unconfirmed.body
    );
    assert!(
        sheet_words(&unconfirmed.body).is_empty(),
        "{}",
        unconfirmed.body
    );
    let tokenless = request(
        addr,
        "POST",
        "/identity/paper-key",
        &host,
        &[],
        Some("confirm=yes"),
    )
    .unwrap();
    assert_eq!(tokenless.status, 403);
    assert!(!tokenless.body.contains("paper-key"), "{}", tokenless.body);

    // With it: the 24 words of `coboxctl keys export`, never cached.
    let confirmed = format!("{body}&confirm=yes");
    let answer = request(
        addr,
        "POST",
        "/identity/paper-key",
        &host,
        &[],
        Some(&confirmed),
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(sheet_words(&answer.body), words);

    let browser = Browser::start(1280, 800);
    browser.go(&format!("http://127.0.0.1:{port}/identity"));
    browser.click("form[action=\"/identity/paper-key\"] button[type=submit]");
    assert!(
        browser.find("#paper-key").is_none(),
        "the browser does not send the form unticked"
    );
    browser.click("#confirm");
    browser.click("form[action=\"/identity/paper-key\"] button[type=submit]");
    eventually(
        "the page shows the paper key",
        30,
        || browser.find("#paper-key").is_some(),
        || browser.source(),
    );
    assert_eq!(sheet_words(&browser.text("#paper-key")), words);
    drop(browser);
    agent.stop();
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
