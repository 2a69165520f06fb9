//! The web dashboard's access and actions in a real browser (headless Chromium through
//! chromedriver) against real agents: a config pasted into the page is applied and the
//! device converges on it; forms without the CSRF token and requests for a foreign host are
//! refused and change nothing; validation refuses a dashboard beyond loopback without a
//! login, and off loopback the dashboard asks for its token; an invite made on the page
//! admits the invitee; the paper key is shown only after a confirmation.

use std::net::SocketAddr;

use cobox_tests::dashboard::{device_with_a_space, turn, wait_dashboard, web_table};
use cobox_tests::node::{Node, QUIET, eventually, free_port, show};
use cobox_tests::web::{Browser, csrf_of, form_encode, request};

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
