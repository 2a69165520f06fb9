//! The pages rendered from hand-made statuses.

use super::*;
use cobox_schema::api::{
    AgentInfo, Condition, Generation, GenerationSource, PeerStatus, QuotaStatus, Replica, Summary,
    TrafficStatus, WindowStatus,
};

fn cond(kind: ConditionType, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        kind,
        status,
        reason: reason.into(),
        message: message.into(),
        since: "2026-12-05T10:00:00Z".into(),
    }
}

fn space(name: &str, conditions: Vec<Condition>) -> ResourceStatus {
    ResourceStatus {
        kind: ResourceKind::Space,
        name: name.into(),
        observed_generation: 2,
        conditions,
        details: Default::default(),
        replicas: vec![Replica {
            peer: "ab".repeat(32),
            role: "seeder".into(),
            connected: true,
            up_to_date: false,
            behind_blocks: 12,
            behind_bytes: 3 << 20,
            behind_since: None,
            last_seen: "2026-12-05T10:01:00Z".into(),
            reported_by: None,
            ahead_blocks: 0,
            fetching: 0,
        }],
        window: Some(WindowStatus {
            open: false,
            state: "closed".into(),
            next_change: Some("2026-12-05T22:00:00Z".into()),
        }),
        traffic: Some(TrafficStatus {
            sent_bytes: 2048,
            received_bytes: 5 << 20,
            upload_cap: Some(1 << 20),
            ..Default::default()
        }),
        quota: Some(QuotaStatus {
            used: 900,
            limit: Some(1000),
            total_used: 900,
            total_limit: None,
            full: false,
            when_full: "stop".into(),
        }),
        usage: None,
    }
}

fn status(resources: Vec<ResourceStatus>, converged: bool) -> Status {
    Status {
        agent: AgentInfo {
            version: "0".into(),
            pid: 1,
            started: String::new(),
            identity: Some("cd".repeat(32)),
            config: "cobox.toml".into(),
            data_dir: "/d".into(),
        },
        generation: 3,
        observed_generation: 3,
        converged,
        reconciles: 1,
        last_reconcile_us: 1,
        reconcile_failures: 0,
        reconcile_us_total: 1,
        config_invalid: None,
        resources,
        network: Default::default(),
        admins: None,
    }
}

#[test]
fn health_is_green_amber_or_red_with_its_reason() {
    use ConditionType::*;
    let green = space(
        "a",
        vec![
            cond(Ready, true, "Open", ""),
            cond(Degraded, false, "Replicated", "1 of 1"),
        ],
    );
    assert_eq!(health(&green), (Health::Green, "Replicated: 1 of 1".into()));
    let amber = space(
        "a",
        vec![
            cond(Ready, true, "Open", ""),
            cond(Degraded, true, "FewReplicas", "0 of 1 wanted"),
        ],
    );
    assert_eq!(
        health(&amber),
        (Health::Amber, "FewReplicas: 0 of 1 wanted".into())
    );
    let red = space("a", vec![cond(Ready, false, "ActionFailed", "disk full")]);
    assert_eq!(
        health(&red),
        (Health::Red, "ActionFailed: disk full".into())
    );
    let stalled = space(
        "a",
        vec![
            cond(Ready, true, "Open", ""),
            cond(Stalled, true, "FeedFault", "feed 1"),
        ],
    );
    assert_eq!(health(&stalled).0, Health::Red);
    let progressing = space(
        "a",
        vec![
            cond(Ready, true, "Open", ""),
            cond(Progressing, true, "Syncing", ""),
        ],
    );
    assert_eq!(health(&progressing).0, Health::Amber);
}

#[test]
fn a_card_escapes_names_and_shows_replicas_lag_window_traffic_and_quota() {
    let r = space(
        "<img src=x onerror=alert(1)>",
        vec![cond(ConditionType::Ready, true, "Open", "")],
    );
    let html = card(&r);
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        html.contains("href=\"/space/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\""),
        "{html}"
    );
    assert!(html.contains("0 of 1 connected and up to date"));
    assert!(html.contains("12 blocks (3.00 MiB)"));
    assert!(html.contains("closed until 2026-12-05T22:00:00Z"));
    assert!(html.contains("2.00 KiB / 5.00 MiB"));
    assert!(
        html.contains("<dt>Caps</dt><dd>1.00 MiB/s up, no cap down</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<meter id=")
            && html.contains("max=\"1000\"")
            && html.contains("value=\"900\"")
    );
    assert!(html.contains("data-health=\"green\"") && html.contains("Healthy"));
}

#[test]
fn the_overview_says_why_the_device_has_not_converged() {
    let bad = space(
        "photos",
        vec![
            cond(ConditionType::Ready, true, "Open", ""),
            cond(ConditionType::Degraded, true, "FewReplicas", "0 of 2"),
        ],
    );
    let html = overview(&status(vec![bad.clone()], false), "hub");
    assert!(
        html.contains("id=\"converged\" class=\"amber\">no"),
        "{html}"
    );
    assert!(
        html.contains("<li>space photos: FewReplicas: 0 of 2</li>"),
        "{html}"
    );
    assert!(html.contains("class=\"card amber\""));
    let mut pending = status(vec![], true);
    pending.generation = 4;
    let html = overview(&pending, "hub");
    assert!(
        html.contains("class=\"amber\">no"),
        "a new generation not reconciled yet: {html}"
    );
    assert!(html.contains("Generation 4 is being reconciled."));
    let fine = overview(&status(vec![], true), "hub");
    assert!(fine.contains("class=\"green\">yes"));
    assert!(fine.contains("This device declares no space and no seed."));
    assert!(!fine.contains("Not converged"));
}

#[test]
fn every_form_of_the_config_page_carries_the_csrf_token() {
    let gens = Generations {
        current: 2,
        generations: vec![
            Generation {
                number: 2,
                time: "t2".into(),
                source: GenerationSource::Api,
                name: "web".into(),
                restores: None,
                digest: "ff".repeat(32),
            },
            Generation {
                number: 1,
                time: "t1".into(),
                source: GenerationSource::File,
                name: "cobox.toml".into(),
                restores: None,
                digest: "ee".repeat(32),
            },
        ],
    };
    let html = config("version = 1\n# </textarea><script>", &gens, "TOKEN");
    let forms = html.matches("<form").count();
    assert_eq!(forms, 2, "apply, and a rollback to generation 1: {html}");
    assert_eq!(html.matches("name=\"csrf\" value=\"TOKEN\"").count(), forms);
    assert!(!html.contains("</textarea><script>"));
    assert!(html.contains("Roll back to 1"));
    assert!(!html.contains("Roll back to 2"), "the running generation");
}

#[test]
fn plans_and_refusals_render_as_a_diff_and_located_diagnostics() {
    let p = PlanResponse {
        generation: 3,
        changes: vec![cobox_schema::api::Change {
            op: cobox_schema::api::ChangeOp::Add,
            kind: ResourceKind::Space,
            name: "new".into(),
            fields: vec![],
            actions: vec![],
        }],
        summary: Summary {
            add: 1,
            change: 0,
            remove: 0,
        },
        blocked: vec![],
        warnings: vec![],
    };
    let html = confirm_apply(&p, "version = 1\n\"q\"", "T");
    assert!(
        html.contains("<span class=\"add\">+ space new</span>"),
        "{html}"
    );
    assert!(html.contains("1 to add, 0 to change, 0 to remove"));
    assert!(html.contains("value=\"version = 1\n&quot;q&quot;\""));
    assert!(html.contains("name=\"confirm\" value=\"yes\""));
    let d = WireDiagnostic {
        severity: "error".into(),
        code: "web-without-login".into(),
        message: "no login".into(),
        path: "api.web".into(),
        file: "web".into(),
        line: 5,
        column: 7,
        help: None,
    };
    let r = refused("config is invalid", &[d]);
    assert!(
        r.contains("<code>web:5:7</code> error[web-without-login]: no login"),
        "{r}"
    );
}

#[test]
fn the_identity_is_text_and_a_qr_code() {
    let key = "ab".repeat(32);
    let svg = qr_svg(&key, "QR code of the <key>");
    assert!(svg.starts_with("<svg") && svg.contains("role=\"img\""));
    assert!(
        svg.contains("aria-label=\"QR code of the &lt;key&gt;\""),
        "{svg}"
    );
    let html = identity(&key, Some(&svg), "tok", false);
    assert!(html.contains(&key));
    assert!(html.contains("<figure class=\"qr\"><svg"));
    assert!(!html.contains("notice red"), "{html}");
}

#[test]
fn the_paper_key_form_asks_for_the_confirmation_and_carries_the_csrf_token() {
    let html = identity(&"ab".repeat(32), None, "tok\"", false);
    let form = &html[html
        .find("action=\"/identity/paper-key\"")
        .expect("the form")..];
    assert!(form.contains("name=\"csrf\" value=\"tok&quot;\""), "{form}");
    assert!(form.contains("type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\""));
    assert!(form.contains("<label for=\"confirm\">I am alone"));
    let refused = identity(&"ab".repeat(32), None, "tok", true);
    assert!(refused.contains("The paper key was not shown"), "{refused}");
}

#[test]
fn the_paper_key_sheet_is_shown_escaped() {
    let html = paper_key("device parent key\n 1 abandon <b>\n");
    assert!(
        html.contains(
            "<pre class=\"sheet\" id=\"paper-key\">device parent key\n 1 abandon &lt;b&gt;\n</pre>"
        ),
        "{html}"
    );
}

fn event(id: u64, kind: EventKind, resource: Option<&str>, message: &str) -> Event {
    Event {
        id,
        time: "2026-12-05T10:00:00Z".into(),
        kind,
        generation: 2,
        resource: resource.map(str::to_string),
        message: message.into(),
    }
}

#[test]
fn events_are_filtered_by_kind_and_text_and_the_filter_is_a_get_form() {
    let all = [
        event(
            1,
            EventKind::ConfigAccepted,
            None,
            "generation 2 <accepted>",
        ),
        event(
            2,
            EventKind::Blocked,
            Some("space Home"),
            "waiting for keys",
        ),
        event(3, EventKind::Converged, None, "converged"),
    ];
    let by = |kind: &str, q: &str| {
        let f = EventFilter {
            kind: kind.into(),
            q: q.into(),
        };
        all.iter()
            .filter(|e| f.matches(e))
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by("", ""), [1, 2, 3]);
    assert_eq!(by("blocked", ""), [2]);
    assert_eq!(by("", "home"), [2], "the resource, case-insensitive");
    assert_eq!(by("", "ACCEPTED"), [1], "the message");
    assert_eq!(by("converged", "keys"), Vec::<u64>::new());
    assert_eq!(by("no-such-kind", ""), Vec::<u64>::new());
    assert_eq!(kind_name(EventKind::ConfigAccepted), "config-accepted");

    let filter = EventFilter {
        kind: "blocked".into(),
        q: "\"><script>".into(),
    };
    let kinds = vec!["blocked".to_string(), "converged".to_string()];
    let shown: Vec<&Event> = all.iter().filter(|e| e.id == 2).collect();
    let html = events(&shown, &filter, &kinds);
    assert!(
        html.contains("<form method=\"get\" action=\"/events\""),
        "{html}"
    );
    assert!(html.contains("<option value=\"blocked\" selected>blocked</option>"));
    assert!(
        html.contains("value=\"&quot;&gt;&lt;script&gt;\""),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(html.contains("waiting for keys") && !html.contains("converged</td>"));
    assert!(html.contains("Show all"));
    let none = events(&[], &filter, &kinds);
    assert!(none.contains("No event matches this filter."), "{none}");
    let first = events(&[], &EventFilter::default(), &[]);
    assert!(first.contains("No events yet.") && !first.contains("Show all"));
}

fn csrf_fields(html: &str) -> usize {
    html.matches("name=\"csrf\" value=\"tok\"").count()
}

#[test]
fn the_invites_page_has_two_forms_with_their_token_and_escapes_what_was_pasted() {
    let spaces = vec!["home".to_string(), "<work>".to_string()];
    let form = InviteForm {
        space: "<work>".into(),
        invitee: "\"><b>".into(),
        role: "seeder".into(),
        expires: "12h".into(),
        code: "</textarea><b>".into(),
    };
    let html = invites(&spaces, &form, InviteOutcome::Nothing, "tok");
    assert_eq!(csrf_fields(&html), 2, "{html}");
    assert!(html.contains("action=\"/invites\"") && html.contains("action=\"/invites/open\""));
    assert!(
        html.contains("<option value=\"&lt;work&gt;\" selected>&lt;work&gt;</option>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"seeder\" selected>"));
    assert!(html.contains("value=\"&quot;&gt;&lt;b&gt;\""));
    assert!(html.contains("value=\"12h\""));
    assert!(html.contains("&lt;/textarea&gt;&lt;b&gt;</textarea>"));
    assert!(!html.contains("<b>"));
    let fresh = invites(
        &spaces,
        &InviteForm::default(),
        InviteOutcome::Nothing,
        "tok",
    );
    assert!(fresh.contains("value=\"7d\""), "the expiry `coboxctl` uses");
    let none = invites(&[], &InviteForm::default(), InviteOutcome::Nothing, "tok");
    assert!(none.contains("no space open") && !none.contains("action=\"/invites\""));
    assert_eq!(csrf_fields(&none), 1);
}

#[test]
fn the_invites_page_shows_a_created_code_with_its_qr_and_refusals_as_alerts() {
    let spaces = vec!["home".to_string()];
    let form = InviteForm::default();
    let qr = qr_svg("coboxinvite1abc", "QR code of the invite code");
    let created = invites(
        &spaces,
        &form,
        InviteOutcome::Created {
            code: "coboxinvite1abc",
            qr: &qr,
        },
        "tok",
    );
    assert!(
        created.contains("<code class=\"key invite\" id=\"invite-code\">coboxinvite1abc</code>")
    );
    assert!(created.contains("<figure class=\"qr\"><svg"));
    let refused = invites(
        &spaces,
        &form,
        InviteOutcome::CreateRefused("invitee key \"x<\" is not hex"),
        "tok",
    );
    assert!(refused.contains("role=\"alert\">invitee key &quot;x&lt;&quot; is not hex: nothing was created or changed."), "{refused}");
    let open_refused = invites(
        &spaces,
        &form,
        InviteOutcome::OpenRefused("cannot open the invite"),
        "tok",
    );
    let at = open_refused.find("role=\"alert\"").unwrap();
    assert!(
        at > open_refused.find("id=\"open\"").unwrap(),
        "beside the open form"
    );
}

#[test]
fn an_opened_invite_says_what_it_grants_like_coboxctl() {
    let info = InviteInfo {
        space: "home<".into(),
        address: "cd".repeat(32),
        role: InviteRole::Seeder,
        inviter: "ef".repeat(32),
        invitee: "01".repeat(32),
        expires: Some(1_000 + 7 * 86_400),
    };
    let html = invite_info(&info, " coboxinvite1xyz\n", 1_000);
    assert!(
        html.contains("<dd id=\"invite-space\">home&lt;</dd>"),
        "{html}"
    );
    assert!(html.contains("seeder (stores encrypted data, cannot read it)"));
    assert!(html.contains(&"ef".repeat(32)));
    assert!(html.contains("in 7d (unix time 605800)"), "{html}");
    assert!(
        html.contains("invite = \"coboxinvite1xyz\"</pre>"),
        "{html}"
    );
    let never = invite_info(
        &InviteInfo {
            expires: None,
            ..info
        },
        "c",
        0,
    );
    assert!(never.contains("<dd>never</dd>"));
}

#[test]
fn conflict_copies_are_listed_escaped_with_their_origins() {
    let list = vec![
        (
            "doc.txt.conflict-ada_laptop-20260101T000000Z".to_string(),
            "doc.txt".to_string(),
        ),
        (
            "a<b>.md.conflict-bea-20260102T030405Z-2".to_string(),
            "a<b>.md".to_string(),
        ),
    ];
    let html = conflicts(Some(&list), 200);
    assert!(html.contains("Conflict copies to resolve"));
    assert!(html.contains("2 copies keep"));
    assert!(html.contains(
        "<tr><td><code>doc.txt.conflict-ada_laptop-20260101T000000Z</code></td><td><code>doc.txt</code></td></tr>"
    ));
    assert!(html.contains("a&lt;b&gt;.md.conflict-bea-20260102T030405Z-2"));
    assert!(!html.contains("a<b>"), "paths are escaped");
    assert!(!html.contains("Only the first"));
    let bounded = conflicts(Some(&list), 2);
    assert!(bounded.contains("Only the first 2 are listed."));
}

#[test]
fn no_conflict_copies_and_unknown_ones_say_so() {
    let none = conflicts(Some(&[]), 200);
    assert!(none.contains("No conflict copies"));
    assert!(!none.contains("<table>"));
    let unknown = conflicts(None, 200);
    assert!(unknown.contains("could not be listed"));
}

#[test]
fn what_is_still_to_fetch_is_said_from_the_peers_first_hand() {
    let mut r = space("home", vec![]);
    r.replicas[0].ahead_blocks = 7;
    r.replicas[0].fetching = 3;
    let html = to_fetch(&r);
    assert!(
        html.contains("At least 7 blocks still to fetch from peers"),
        "{html}"
    );
    assert!(html.contains("(3 asked and on the way)"));
    r.replicas[0].ahead_blocks = 0;
    r.replicas[0].fetching = 0;
    assert!(to_fetch(&r).contains("Nothing to fetch"));
    r.replicas[0].reported_by = Some("cd".repeat(32));
    assert!(
        to_fetch(&r).contains("is not known"),
        "a report second hand says nothing of this device"
    );
    r.replicas.clear();
    assert!(to_fetch(&r).contains("is not known"));
}

fn peer(transport: &str, direction: &str, route: &str) -> PeerStatus {
    PeerStatus {
        identity: "ab".repeat(32),
        name: Some("laptop <b>".into()),
        shared: vec!["home".into()],
        transport: Some(transport.into()),
        direction: Some(direction.into()),
        route: Some(route.into()),
        since: Some("2026-12-05T10:00:00Z".into()),
        sent_bytes: 2048,
        received_bytes: 5,
    }
}

#[test]
fn the_peers_page_says_how_each_peer_is_connected_since_when_and_its_traffic() {
    let html = peers(&NetworkStatus {
        listening: vec!["0.0.0.0:7000".into()],
        peers: vec![peer("tcp", "outbound", "10.0.0.2:7000")],
    });
    assert!(
        html.contains("class=\"link\">tcp, dialled 10.0.0.2:7000</td>"),
        "{html}"
    );
    assert!(
        html.contains("<time datetime=\"2026-12-05T10:00:00Z\">2026-12-05 10:00:00 UTC</time>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<code title=\"{0}\">abababab…</code>",
            "ab".repeat(32)
        )),
        "the identity is shortened, whole in its title"
    );
    assert!(html.contains("data-bytes=\"2048\">2.00 KiB</td>"), "{html}");
    assert!(html.contains("data-bytes=\"5\">5 B</td>"), "{html}");
    assert!(html.contains("laptop &lt;b&gt;"), "names are escaped");
    let html = peers(&NetworkStatus {
        listening: vec![],
        peers: vec![],
    });
    assert!(html.contains("No peer is connected."), "{html}");
}

#[test]
fn a_connection_is_said_in_words() {
    assert_eq!(
        peer("tcp", "inbound", "10.0.0.3:51000").connection(),
        "tcp, accepted from 10.0.0.3:51000"
    );
    assert_eq!(
        peer("iroh", "outbound", "relay https://relay.example/").connection(),
        "iroh, dialled relay https://relay.example/"
    );
    assert_eq!(
        peer("iroh", "inbound", "direct 192.168.1.4:4000").connection(),
        "iroh, accepted direct 192.168.1.4:4000"
    );
    let mut old = peer("tcp", "outbound", "x");
    old.transport = None;
    assert_eq!(old.connection(), "not known", "an older agent's report");
}

#[test]
fn files_waiting_for_their_content_are_listed_with_what_is_missing() {
    use cobox_schema::api::{FileToFetch, ToFetch};
    let file = |path: &str, missing| FileToFetch {
        path: path.into(),
        size: 200_000,
        blocks: 4,
        missing,
    };
    let html = files_to_fetch(Some(&ToFetch {
        files: vec![file("a <b>.bin", 4), file("c.bin", 1)],
        total: 3,
    }));
    assert!(
        html.contains("3 files are shown but not all here yet"),
        "{html}"
    );
    assert!(html.contains("The first 2 are listed."), "{html}");
    assert!(
        html.contains("<td><code>a &lt;b&gt;.bin</code></td><td>195.3 KiB</td><td>4 of 4</td>"),
        "{html}"
    );
    assert!(html.contains("<td>1 of 4</td>"), "{html}");
    let one = files_to_fetch(Some(&ToFetch {
        files: vec![file("c.bin", 1)],
        total: 1,
    }));
    assert!(one.contains("1 file is shown but not all here yet: reading it waits"));
    assert!(!one.contains("The first"));
    assert!(files_to_fetch(Some(&ToFetch::default())).contains("None: every file"));
    assert!(files_to_fetch(None).contains("could not be listed"));
}
