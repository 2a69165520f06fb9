//! The dashboard's pages as HTML, pure: each renders the API's own answers (status,
//! members, events, generations, plans, invites, paper keys) into the body of a page. Spaces and seeds are
//! cards coloured by their health, and each colour is said in words too.

use std::fmt::Write;

use cobox_schema::api::{
    ApplyResponse, ConditionType, Event, EventKind, Generations, InviteInfo, InviteRole,
    MembersResponse, NetworkStatus, PlanResponse, ResourceKind, ResourceStatus, Status,
    WireDiagnostic,
};

use super::html::{bytes, csrf_field, escape, short_key};

/// How a space or seed is doing, as a card's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Ready, nothing degraded or in progress.
    Green,
    /// Ready but degraded (too few replicas, a quota reached) or still progressing.
    Amber,
    /// Not ready, or stalled.
    Red,
}

impl Health {
    /// The CSS class.
    pub fn class(self) -> &'static str {
        match self {
            Health::Green => "green",
            Health::Amber => "amber",
            Health::Red => "red",
        }
    }

    /// The colour in words, for those who cannot see it.
    pub fn label(self) -> &'static str {
        match self {
            Health::Green => "Healthy",
            Health::Amber => "Needs attention",
            Health::Red => "Failing",
        }
    }
}

/// A resource's health and the reason for it (`Reason: message`).
pub fn health(r: &ResourceStatus) -> (Health, String) {
    let said = |kind: ConditionType| {
        r.condition(kind).map(|c| {
            if c.message.is_empty() {
                c.reason.clone()
            } else {
                format!("{}: {}", c.reason, c.message)
            }
        })
    };
    let on = |kind: ConditionType| r.condition(kind).is_some_and(|c| c.status);
    if on(ConditionType::Stalled) {
        return (
            Health::Red,
            said(ConditionType::Stalled).unwrap_or_default(),
        );
    }
    if !r.is_ready() {
        let why = said(ConditionType::Ready).unwrap_or_else(|| "NotReady".into());
        return (Health::Red, why);
    }
    for kind in [ConditionType::Degraded, ConditionType::Progressing] {
        if on(kind) {
            return (Health::Amber, said(kind).unwrap_or_default());
        }
    }
    (
        Health::Green,
        said(ConditionType::Degraded)
            .or_else(|| said(ConditionType::Ready))
            .unwrap_or_default(),
    )
}

/// The path of a space's or seed's page.
pub fn resource_path(r: &ResourceStatus) -> String {
    format!("/{}/{}", r.kind, percent(&r.name))
}

/// `text` safe in a URL path segment.
fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn is_card(r: &ResourceStatus) -> bool {
    matches!(r.kind, ResourceKind::Space | ResourceKind::Seed)
}

/// The overview: the device, its generation, whether it converged (and why not), a card
/// per space and seed, and every other resource in a table.
pub fn overview(s: &Status, device: &str) -> String {
    // A generation not reconciled yet is not converged, whatever the last reconcile found.
    let converged = s.converged && s.observed_generation == s.generation;
    let mut out = String::new();
    let _ = write!(
        out,
        "<section aria-labelledby=\"device\" class=\"device\"><h2 id=\"device\">Device</h2><dl>\
         <dt>Name</dt><dd>{}</dd><dt>Identity</dt><dd><code>{}</code></dd>\
         <dt>Generation</dt><dd>{} (reconciled {})</dd><dt>Converged</dt><dd id=\"converged\" class=\"{}\">{}</dd></dl>",
        escape(device),
        escape(s.agent.identity.as_deref().unwrap_or("none yet")),
        s.generation,
        s.observed_generation,
        if converged { "green" } else { "amber" },
        if converged { "yes" } else { "no" },
    );
    if s.observed_generation != s.generation {
        let _ = write!(
            out,
            "<p class=\"why\">Generation {} is being reconciled.</p>",
            s.generation
        );
    }
    if let Some(ci) = &s.config_invalid {
        let _ = write!(
            out,
            "<p class=\"notice red\">The last edit of the config was refused (since {}); generation {} keeps running.</p>",
            escape(&ci.since),
            s.generation
        );
        out.push_str(&diagnostics(&ci.diagnostics));
    }
    if !s.converged {
        let why: Vec<String> = s
            .resources
            .iter()
            .filter_map(|r| {
                let (h, reason) = health(r);
                (h != Health::Green).then(|| format!("{} {}: {}", r.kind, r.name, reason))
            })
            .collect();
        if !why.is_empty() {
            out.push_str("<p>Not converged because of:</p><ul class=\"why\">");
            for w in why {
                let _ = write!(out, "<li>{}</li>", escape(&w));
            }
            out.push_str("</ul>");
        }
    }
    out.push_str(
        "</section>\n<section aria-labelledby=\"spaces\"><h2 id=\"spaces\">Spaces and seeds</h2>",
    );
    let cards: Vec<&ResourceStatus> = s.resources.iter().filter(|r| is_card(r)).collect();
    if cards.is_empty() {
        out.push_str("<p>This device declares no space and no seed.</p>");
    } else {
        out.push_str("<div class=\"cards\">");
        for r in cards {
            out.push_str(&card(r));
        }
        out.push_str("</div>");
    }
    out.push_str(
        "</section>\n<section aria-labelledby=\"others\"><h2 id=\"others\">Other resources</h2>",
    );
    out.push_str(
        "<table><thead><tr><th scope=\"col\">Kind</th><th scope=\"col\">Name</th><th scope=\"col\">State</th><th scope=\"col\">Reason</th></tr></thead><tbody>",
    );
    for r in s.resources.iter().filter(|r| !is_card(r)) {
        let (h, reason) = health(r);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><span class=\"dot {}\" aria-hidden=\"true\"></span>{}</td><td>{}</td></tr>",
            r.kind,
            escape(&r.name),
            h.class(),
            h.label(),
            escape(&reason)
        );
    }
    out.push_str("</tbody></table></section>\n");
    out
}

/// Replicas connected and up to date, of all known; and the largest lag in blocks and
/// bytes.
fn replica_summary(r: &ResourceStatus) -> (usize, usize, u64, u64) {
    let good = r
        .replicas
        .iter()
        .filter(|c| c.connected && c.up_to_date)
        .count();
    let lag_blocks = r
        .replicas
        .iter()
        .map(|c| c.behind_blocks)
        .max()
        .unwrap_or(0);
    let lag_bytes = r.replicas.iter().map(|c| c.behind_bytes).max().unwrap_or(0);
    (good, r.replicas.len(), lag_blocks, lag_bytes)
}

/// One space's or seed's card.
pub fn card(r: &ResourceStatus) -> String {
    let (h, reason) = health(r);
    let (good, all, lag_blocks, lag_bytes) = replica_summary(r);
    let mut out = String::new();
    let _ = write!(
        out,
        "<article class=\"card {}\" data-resource=\"{} {}\" data-health=\"{}\"><h3><a href=\"{}\">{}</a> <small>{}</small></h3>\
         <p class=\"state\"><span class=\"dot {}\" aria-hidden=\"true\"></span><strong>{}</strong></p><p class=\"reason\">{}</p><dl>\
         <dt>Replicas</dt><dd>{good} of {all} connected and up to date</dd>\
         <dt>Lag</dt><dd>{lag_blocks} blocks ({})</dd>",
        h.class(),
        r.kind,
        escape(&r.name),
        h.class(),
        resource_path(r),
        escape(&r.name),
        r.kind,
        h.class(),
        h.label(),
        escape(&reason),
        bytes(lag_bytes),
    );
    if let Some(w) = &r.window {
        let _ = write!(
            out,
            "<dt>Window</dt><dd>{}{}</dd>",
            escape(&w.state),
            w.next_change
                .as_deref()
                .map(|n| format!(" until {}", escape(n)))
                .unwrap_or_default()
        );
    }
    if let Some(t) = &r.traffic {
        let cap = |c: Option<u64>| c.map_or("no cap".to_string(), |c| format!("{}/s", bytes(c)));
        let _ = write!(
            out,
            "<dt>Up / down</dt><dd>{} / {}</dd><dt>Caps</dt><dd>{} up, {} down</dd>",
            bytes(t.sent_bytes),
            bytes(t.received_bytes),
            cap(t.upload_cap),
            cap(t.download_cap),
        );
    }
    out.push_str("</dl>");
    if let Some(q) = &r.quota {
        match q.limit {
            Some(limit) => {
                let _ = write!(
                    out,
                    "<p class=\"quota\"><label for=\"q-{id}\">Quota: {} of {}</label> \
                     <meter id=\"q-{id}\" min=\"0\" max=\"{limit}\" high=\"{}\" value=\"{}\">{}%</meter></p>",
                    bytes(q.used),
                    bytes(limit),
                    limit / 10 * 9,
                    q.used.min(limit),
                    q.used.saturating_mul(100) / limit.max(1),
                    id = percent(&r.name),
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<p class=\"quota\">Stored: {} (no quota)</p>",
                    bytes(q.used)
                );
            }
        }
    }
    out.push_str("</article>");
    out
}

/// A space's conflict copies to resolve, `(copy, origin)` as the agent lists them (at most
/// `limit`); `None` when they could not be listed.
pub fn conflicts(list: Option<&[(String, String)]>, limit: usize) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"conflicts\"><h2 id=\"conflicts\">Conflict copies to resolve</h2>",
    );
    match list {
        None => out.push_str("<p>The conflict copies could not be listed just now.</p>"),
        Some([]) => {
            out.push_str("<p>No conflict copies: no concurrent writes are left to resolve.</p>")
        }
        Some(list) => {
            let _ = write!(
                out,
                "<p>{} {} a losing concurrent write to another file, kept beside it. Compare, keep what matters in the file, then delete or rename the copy.</p>",
                list.len(),
                if list.len() == 1 {
                    "copy keeps"
                } else {
                    "copies keep"
                }
            );
            if list.len() >= limit {
                let _ = write!(
                    out,
                    "<p class=\"notice\">Only the first {limit} are listed.</p>"
                );
            }
            out.push_str(
                "<table><thead><tr><th scope=\"col\">Conflict copy</th><th scope=\"col\">Copy of</th></tr></thead><tbody>",
            );
            for (copy, origin) in list {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    escape(copy),
                    escape(origin)
                );
            }
            out.push_str("</tbody></table>");
        }
    }
    out.push_str("</section>");
    out
}

/// A space's or seed's page: its card, its replicas, then `sections` (for a space its lag
/// chart and conflict copies), and for a space its members.
pub fn resource(r: &ResourceStatus, members: Option<&MembersResponse>, sections: &str) -> String {
    let mut out = card(r);
    out.push_str("<section aria-labelledby=\"replicas\"><h2 id=\"replicas\">Replica health</h2>");
    if r.replicas.is_empty() {
        out.push_str("<p>No other device has replicated it with this one yet.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th scope=\"col\">Peer</th><th scope=\"col\">Role</th><th scope=\"col\">Connected</th>\
             <th scope=\"col\">Up to date</th><th scope=\"col\">Behind</th><th scope=\"col\">Last seen</th></tr></thead><tbody>",
        );
        for c in &r.replicas {
            let _ = write!(
                out,
                "<tr><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{} blocks ({})</td><td>{}{}</td></tr>",
                escape(&c.peer),
                escape(&short_key(&c.peer)),
                escape(&c.role),
                yes_no(c.connected),
                yes_no(c.up_to_date),
                c.behind_blocks,
                bytes(c.behind_bytes),
                escape(&c.last_seen),
                c.reported_by
                    .as_deref()
                    .map(|b| format!(" (reported by {})", escape(&short_key(b))))
                    .unwrap_or_default()
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
    out.push_str(&to_fetch(r));
    out.push_str(sections);
    if let Some(m) = members {
        out.push_str("<section aria-labelledby=\"members\"><h2 id=\"members\">Members</h2>");
        out.push_str(
            "<table><thead><tr><th scope=\"col\">Identity</th><th scope=\"col\">Name</th><th scope=\"col\">Role</th>\
             <th scope=\"col\">Standing</th><th scope=\"col\">Admitted by</th></tr></thead><tbody>",
        );
        for p in &m.members {
            let by: Vec<String> = p.admitted_by.iter().map(|k| short_key(k)).collect();
            let _ = write!(
                out,
                "<tr><td><code title=\"{}\">{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.identity),
                escape(&short_key(&p.identity)),
                if p.me { " (this device)" } else { "" },
                escape(p.name.as_deref().unwrap_or("")),
                escape(p.role.as_deref().unwrap_or("")),
                escape(&p.standing),
                escape(&by.join(", "))
            );
        }
        out.push_str("</tbody></table></section>");
    }
    if !r.details.is_empty() {
        out.push_str("<section aria-labelledby=\"details\"><h2 id=\"details\">Details</h2><dl>");
        for (k, v) in &r.details {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
        }
        out.push_str("</dl></section>");
    }
    out
}

/// What this device still has to fetch of a resource, as its peers told it first hand:
/// the most blocks one peer holds that it lacks (at least that many are missing), and
/// those asked and on the way. Their size is not known before they arrive.
pub fn to_fetch(r: &ResourceStatus) -> String {
    let mut out =
        String::from("<section aria-labelledby=\"fetch\"><h2 id=\"fetch\">Still to fetch</h2>");
    let seen: Vec<&cobox_schema::api::Replica> = r
        .replicas
        .iter()
        .filter(|c| c.reported_by.is_none())
        .collect();
    let ahead = seen.iter().map(|c| c.ahead_blocks).max().unwrap_or(0);
    let asked: u64 = seen.iter().map(|c| c.fetching).sum();
    if seen.is_empty() {
        out.push_str("<p>No peer has told this device what it holds yet: what is left to fetch is not known.</p>");
    } else if ahead == 0 && asked == 0 {
        out.push_str("<p>Nothing to fetch: no peer holds a block this device lacks.</p>");
    } else {
        let _ = write!(
            out,
            "<p><strong>At least {ahead} {} still to fetch from peers</strong> ({asked} asked and on the way). Their size in bytes is not known until they arrive.</p>",
            if ahead == 1 { "block" } else { "blocks" }
        );
    }
    out.push_str("</section>");
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// An event kind as the API names it (`config-accepted`).
pub fn kind_name(kind: EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Which events the events page shows: of one kind, and with a text in their resource or
/// message (case-insensitive); empty fields filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct EventFilter {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub q: String,
}

impl EventFilter {
    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &Event) -> bool {
        let kind = self.kind.trim();
        if !kind.is_empty() && kind_name(e.kind) != kind {
            return false;
        }
        let q = self.q.trim().to_lowercase();
        q.is_empty()
            || e.message.to_lowercase().contains(&q)
            || e.resource
                .as_deref()
                .is_some_and(|r| r.to_lowercase().contains(&q))
    }

    fn is_empty(&self) -> bool {
        self.kind.trim().is_empty() && self.q.trim().is_empty()
    }
}

/// The events filter as a GET form: a kind among `kinds` (or any) and a text.
fn event_filter_form(filter: &EventFilter, kinds: &[String]) -> String {
    let mut out = String::from(
        "<form method=\"get\" action=\"/events\" class=\"filter\" role=\"search\">\
         <label for=\"kind\">Kind</label> <select id=\"kind\" name=\"kind\"><option value=\"\">any</option>",
    );
    let mut listed: Vec<&str> = kinds.iter().map(String::as_str).collect();
    if !filter.kind.is_empty() && !listed.contains(&filter.kind.as_str()) {
        listed.push(&filter.kind);
    }
    for k in listed {
        let selected = if k == filter.kind { " selected" } else { "" };
        let _ = write!(
            out,
            "<option value=\"{0}\"{selected}>{0}</option>",
            escape(k)
        );
    }
    let _ = write!(
        out,
        "</select> <label for=\"q\">Text</label> <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\">\
         <button type=\"submit\">Filter</button>{}</form>",
        escape(&filter.q),
        if filter.is_empty() {
            ""
        } else {
            " <a href=\"/events\">Show all</a>"
        }
    );
    out
}

/// The events page: the filter form and the events passing it, newest first; `kinds` are
/// the kinds to choose from.
pub fn events(list: &[&Event], filter: &EventFilter, kinds: &[String]) -> String {
    let mut out = event_filter_form(filter, kinds);
    if list.is_empty() {
        out.push_str(if filter.is_empty() {
            "<p>No events yet.</p>"
        } else {
            "<p>No event matches this filter.</p>"
        });
        return out;
    }
    out.push_str(
        "<table class=\"events\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Time</th><th scope=\"col\">Kind</th>\
         <th scope=\"col\">Resource</th><th scope=\"col\">Message</th></tr></thead><tbody>",
    );
    for e in list.iter().rev() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.id,
            escape(&e.time),
            escape(&kind_name(e.kind)),
            escape(e.resource.as_deref().unwrap_or("")),
            escape(&e.message)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// What the agent does not report of its peers yet, said on the peers page.
/// The peers with a session now and where the device listens.
pub fn peers(n: &NetworkStatus) -> String {
    let mut out =
        String::from("<section aria-labelledby=\"listening\"><h2 id=\"listening\">Listening</h2>");
    if n.listening.is_empty() {
        out.push_str("<p>This device listens on no TCP address.</p>");
    } else {
        out.push_str("<ul>");
        for l in &n.listening {
            let _ = write!(out, "<li><code>{}</code></li>", escape(l));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section><section aria-labelledby=\"connected\"><h2 id=\"connected\">Connected peers</h2>");
    if n.peers.is_empty() {
        out.push_str("<p>No peer is connected.</p>");
    } else {
        out.push_str(
            "<table class=\"stack\"><thead><tr><th scope=\"col\">Identity</th><th scope=\"col\">Name</th><th scope=\"col\">Shares</th><th scope=\"col\">Connected</th><th scope=\"col\">Since</th><th scope=\"col\">Sent</th><th scope=\"col\">Received</th></tr></thead><tbody>",
        );
        for p in &n.peers {
            let since = p.since.as_deref().map_or_else(
                || "not known".to_string(),
                |t| {
                    format!(
                        "<time datetime=\"{}\">{}</time>",
                        escape(t),
                        escape(&t.replacen('T', " ", 1).replace('Z', " UTC"))
                    )
                },
            );
            let _ = write!(
                out,
                "<tr data-peer=\"{}\"><td data-label=\"Identity\"><code title=\"{}\">{}</code></td><td data-label=\"Name\">{}</td><td data-label=\"Shares\">{}</td><td data-label=\"Connected\" class=\"link\">{}</td><td data-label=\"Since\" class=\"since\">{since}</td><td data-label=\"Sent\" class=\"sent\" data-bytes=\"{}\">{}</td><td data-label=\"Received\" class=\"received\" data-bytes=\"{}\">{}</td></tr>",
                escape(&p.identity),
                escape(&p.identity),
                escape(&short_key(&p.identity)),
                p.name.as_deref().map_or_else(
                    || "<span class=\"unknown\">not given</span>".to_string(),
                    escape
                ),
                escape(&p.shared.join(", ")),
                escape(&p.connection()),
                p.sent_bytes,
                bytes(p.sent_bytes),
                p.received_bytes,
                bytes(p.received_bytes),
            );
        }
        out.push_str("</tbody></table><p>Bytes are counted on the wire for the session running now, encrypted and framed.</p>");
    }
    out.push_str("</section>");
    out
}

/// The config page: the running text, a form to paste a new one (shown as a diff before
/// it is applied), and the generations with a rollback each.
pub fn config(running: &str, gens: &Generations, csrf: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<section aria-labelledby=\"running\"><h2 id=\"running\">Running config (generation {})</h2><pre class=\"config\">{}</pre></section>\
         <section aria-labelledby=\"paste\"><h2 id=\"paste\">Apply a config</h2>\
         <form method=\"post\" action=\"/config/apply\">{}\
         <label for=\"config\">Paste a whole cobox.toml; you will see what changes before anything is applied.</label>\
         <textarea id=\"config\" name=\"config\" rows=\"14\" spellcheck=\"false\" required>{}</textarea>\
         <button type=\"submit\">Show the changes</button></form></section>",
        gens.current,
        escape(running),
        csrf_field(csrf),
        escape(running),
    );
    out.push_str(
        "<section aria-labelledby=\"generations\"><h2 id=\"generations\">Generations</h2>\
         <table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Time</th><th scope=\"col\">Source</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">Digest</th><th scope=\"col\"><span class=\"sr\">Action</span></th></tr></thead><tbody>",
    );
    for g in &gens.generations {
        let action = if g.number == gens.current {
            "running".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"/config/rollback\">{}<input type=\"hidden\" name=\"generation\" value=\"{}\">\
                 <button type=\"submit\">Roll back to {}</button></form>",
                csrf_field(csrf),
                g.number,
                g.number
            )
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            g.number,
            escape(&g.time),
            g.source,
            g.restores.map(|r| format!(" of {r}")).unwrap_or_default(),
            escape(&g.name),
            escape(&short_key(&g.digest)),
            action
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// What a plan changes, resource by resource, as a diff.
pub fn plan(p: &PlanResponse) -> String {
    let mut out = format!(
        "<p class=\"summary\">Against generation {}: {}.</p>",
        p.generation,
        escape(&p.summary.to_string())
    );
    if p.changes.is_empty() {
        out.push_str("<p>Nothing changes.</p>");
    } else {
        out.push_str("<pre class=\"diff\">");
        for c in &p.changes {
            let class = match c.op.sign() {
                '+' => "add",
                '-' => "remove",
                _ => "change",
            };
            let _ = writeln!(
                out,
                "<span class=\"{class}\">{} {} {}</span>",
                c.op.sign(),
                c.kind,
                escape(&c.name)
            );
            for f in &c.fields {
                let _ = writeln!(
                    out,
                    "<span class=\"{class}\">    {}: {} → {}</span>",
                    escape(&f.field),
                    escape(f.from.as_deref().unwrap_or("(none)")),
                    escape(f.to.as_deref().unwrap_or("(none)"))
                );
            }
        }
        out.push_str("</pre>");
    }
    if !p.blocked.is_empty() {
        out.push_str("<p>Blocked:</p><ul>");
        for b in &p.blocked {
            let _ = write!(out, "<li>{}</li>", escape(b));
        }
        out.push_str("</ul>");
    }
    if !p.warnings.is_empty() {
        out.push_str(&diagnostics(&p.warnings));
    }
    out
}

/// The confirmation of an apply: the diff, and the text again with a confirm button.
pub fn confirm_apply(p: &PlanResponse, text: &str, csrf: &str) -> String {
    format!(
        "{}<form method=\"post\" action=\"/config/apply\">{}<input type=\"hidden\" name=\"confirm\" value=\"yes\">\
         <input type=\"hidden\" name=\"config\" value=\"{}\">\
         <button type=\"submit\" class=\"danger\">Apply this config</button> <a href=\"/config\">Cancel</a></form>",
        plan(p),
        csrf_field(csrf),
        escape(text)
    )
}

/// The confirmation of a rollback: the diff and a confirm button.
pub fn confirm_rollback(p: &PlanResponse, generation: u64, csrf: &str) -> String {
    format!(
        "{}<form method=\"post\" action=\"/config/rollback\">{}<input type=\"hidden\" name=\"confirm\" value=\"yes\">\
         <input type=\"hidden\" name=\"generation\" value=\"{generation}\">\
         <button type=\"submit\" class=\"danger\">Roll back to generation {generation}</button> <a href=\"/config\">Cancel</a></form>",
        plan(p),
        csrf_field(csrf),
    )
}

/// What an apply or rollback did.
pub fn applied(a: &ApplyResponse) -> String {
    let head = if a.unchanged {
        format!(
            "<p class=\"notice green\" role=\"status\">The config is the running one already: generation {} keeps running.</p>",
            a.generation
        )
    } else {
        format!(
            "<p class=\"notice green\" role=\"status\">Generation {} runs now.</p>",
            a.generation
        )
    };
    format!(
        "{head}{}<p><a href=\"/\">Back to the overview</a></p>",
        plan(&a.plan)
    )
}

/// A refusal: its message and the diagnostics, `file:line:col` each.
pub fn refused(message: &str, diags: &[WireDiagnostic]) -> String {
    format!(
        "<p class=\"notice red\" role=\"alert\">{}</p>{}<p><a href=\"/config\">Back to the config</a></p>",
        escape(message),
        diagnostics(diags)
    )
}

/// Diagnostics as a list, `file:line:col`, code, message and help.
pub fn diagnostics(diags: &[WireDiagnostic]) -> String {
    if diags.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ul class=\"diagnostics\">");
    for d in diags {
        let _ = write!(
            out,
            "<li class=\"{}\"><code>{}:{}:{}</code> {}[{}]: {}{}</li>",
            escape(&d.severity),
            escape(&d.file),
            d.line,
            d.column,
            escape(&d.severity),
            escape(&d.code),
            escape(&d.message),
            d.help
                .as_deref()
                .map(|h| format!("<br><small>help: {}</small>", escape(h)))
                .unwrap_or_default()
        );
    }
    out.push_str("</ul>");
    out
}

/// The identity page: the public key as text and, when given, as a QR code; and the
/// form asking for the paper key (`refused`: it was sent without the confirmation).
pub fn identity(public_key: &str, qr: Option<&str>, csrf: &str, refused: bool) -> String {
    format!(
        "<p>This device is known to its peers, in allow-lists, admin lists and invites by this public key:</p>\
         <p><code class=\"key\" id=\"identity\">{}</code></p>{}\
         <section aria-labelledby=\"paper\"><h2 id=\"paper\">Paper key</h2>{}\
         <p>The paper key is 24 words that restore this device's identity and all of its feed keys, \
         as <code>coboxctl keys export</code> prints them. Anyone who sees them can become this device.</p>\
         <form method=\"post\" action=\"/identity/paper-key\">{}\
         <p><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required> \
         <label for=\"confirm\">I am alone at this screen and nobody can see it</label></p>\
         <button type=\"submit\" class=\"danger\">Show the paper key</button></form></section>",
        escape(public_key),
        qr.map(|svg| format!("<figure class=\"qr\">{svg}<figcaption>The public key as a QR code</figcaption></figure>"))
            .unwrap_or_default(),
        if refused {
            "<p class=\"notice red\" role=\"alert\">The paper key was not shown: tick the box to confirm that nobody else can see this screen.</p>"
        } else {
            ""
        },
        csrf_field(csrf),
    )
}

/// The paper-key page: the sheet as `coboxctl keys export` prints it.
pub fn paper_key(sheet: &str) -> String {
    format!(
        "<p class=\"notice red\" role=\"alert\">Secret: write these words down or print them, keep them safe, \
         and close this page. It is not kept by the browser.</p>\
         <pre class=\"sheet\" id=\"paper-key\">{}</pre><p><a href=\"/identity\">Back to the identity</a></p>",
        escape(sheet)
    )
}

/// A QR code of `text` as inline SVG (modules as one path), labelled `label` for screen
/// readers.
pub fn qr_svg(text: &str, label: &str) -> String {
    let (size, path) = cobox_keys::sheet::qr_path(&[text]);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"240\" height=\"240\" role=\"img\" \
         aria-label=\"{}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>",
        escape(label)
    )
}

/// What the invite forms were filled with, shown again when they are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteForm {
    pub space: String,
    pub invitee: String,
    pub role: String,
    pub expires: String,
    pub code: String,
}

/// What the invites page reports above its forms.
#[derive(Debug, Clone, Copy)]
pub enum InviteOutcome<'a> {
    Nothing,
    /// A code was created: the code and its QR code (SVG).
    Created {
        code: &'a str,
        qr: &'a str,
    },
    /// The create form was refused, with this message.
    CreateRefused(&'a str),
    /// A code was opened, `now` in Unix seconds.
    Opened {
        info: &'a InviteInfo,
        code: &'a str,
        now: u64,
    },
    /// The open form was refused, with this message.
    OpenRefused(&'a str),
}

fn role_words(role: InviteRole) -> &'static str {
    match role {
        InviteRole::Member => "member (read and write)",
        InviteRole::Seeder => "seeder (stores encrypted data, cannot read it)",
    }
}

fn alert(message: &str) -> String {
    format!(
        "<p class=\"notice red\" role=\"alert\">{}: nothing was created or changed.</p>",
        escape(message)
    )
}

/// The invites page: a form creating an invite to one of `spaces` for a pasted identity,
/// and a form opening a pasted code; `outcome` is shown beside the form it answers.
pub fn invites(
    spaces: &[String],
    form: &InviteForm,
    outcome: InviteOutcome<'_>,
    csrf: &str,
) -> String {
    let mut out =
        String::from("<section aria-labelledby=\"create\"><h2 id=\"create\">Invite a device</h2>");
    match outcome {
        InviteOutcome::Created { code, qr } => {
            let _ = write!(
                out,
                "<p class=\"notice green\" role=\"status\">Invite created: give this code to the invitee; only their device can open it.</p>\
                 <p><code class=\"key invite\" id=\"invite-code\">{}</code></p>\
                 <figure class=\"qr\">{qr}<figcaption>The invite code as a QR code</figcaption></figure>",
                escape(code)
            );
        }
        InviteOutcome::CreateRefused(m) => out.push_str(&alert(m)),
        _ => {}
    }
    out.push_str(&create_form(spaces, form, csrf));
    out.push_str("</section><section aria-labelledby=\"open\"><h2 id=\"open\">Open an invite</h2>");
    match outcome {
        InviteOutcome::Opened { info, code, now } => out.push_str(&invite_info(info, code, now)),
        InviteOutcome::OpenRefused(m) => out.push_str(&alert(m)),
        _ => {}
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/invites/open\">{}\
         <label for=\"code\">An invite code for this device (<code>coboxinvite1…</code>); opening it only shows what it grants.</label>\
         <textarea id=\"code\" name=\"code\" rows=\"3\" spellcheck=\"false\" required>{}</textarea>\
         <button type=\"submit\">Open the invite</button></form></section>",
        csrf_field(csrf),
        escape(&form.code)
    );
    out
}

/// The form creating an invite.
fn create_form(spaces: &[String], form: &InviteForm, csrf: &str) -> String {
    if spaces.is_empty() {
        return "<p>This device has no space open to invite to.</p>".into();
    }
    let mut out = format!(
        "<form method=\"post\" action=\"/invites\">{}<p><label for=\"space\">Space</label> <select id=\"space\" name=\"space\">",
        csrf_field(csrf)
    );
    for name in spaces {
        let selected = if *name == form.space { " selected" } else { "" };
        let _ = write!(
            out,
            "<option value=\"{0}\"{selected}>{0}</option>",
            escape(name)
        );
    }
    let role = |r: &str| if form.role == r { " selected" } else { "" };
    let expires = if form.expires.is_empty() {
        "7d"
    } else {
        &form.expires
    };
    let _ = write!(
        out,
        "</select></p><p><label for=\"invitee\">The invitee's identity (<code>coboxctl identity</code> on their device)</label>\
         <input type=\"text\" id=\"invitee\" name=\"invitee\" value=\"{}\" spellcheck=\"false\" autocomplete=\"off\" required></p>\
         <p><label for=\"role\">Role</label> <select id=\"role\" name=\"role\">\
         <option value=\"member\"{}>member: read and write</option>\
         <option value=\"seeder\"{}>seeder: keep and serve the encrypted data only</option></select></p>\
         <p><label for=\"expires\">Valid for (like 7d or 12h; never for no expiry)</label> \
         <input type=\"text\" id=\"expires\" name=\"expires\" value=\"{}\" required></p>\
         <button type=\"submit\">Create the invite</button></form>",
        escape(&form.invitee),
        role("member"),
        role("seeder"),
        escape(expires)
    );
    out
}

/// What an opened invite grants, as `coboxctl invite open` says it.
pub fn invite_info(info: &InviteInfo, code: &str, now: u64) -> String {
    let expires = match info.expires {
        Some(t) => format!(
            "in {} (unix time {t})",
            cobox_schema::units::format_duration(std::time::Duration::from_secs(
                t.saturating_sub(now)
            ))
        ),
        None => "never".into(),
    };
    format!(
        "<dl class=\"invite\" id=\"invite-info\"><dt>Space</dt><dd id=\"invite-space\">{}</dd>\
         <dt>Address</dt><dd><code>{}</code></dd><dt>Role</dt><dd>{}</dd>\
         <dt>Inviter</dt><dd><code>{}</code></dd><dt>Expires</dt><dd>{}</dd></dl>\
         <p>To join, add to cobox.toml:</p><pre>[[space]]\nname = \"{}\"\ninvite = \"{}\"</pre>",
        escape(&info.space),
        escape(&info.address),
        role_words(info.role),
        escape(&info.inviter),
        escape(&expires),
        escape(&info.space),
        escape(code.trim()),
    )
}

/// The login form.
pub fn login(csrf: &str, failed: bool) -> String {
    format!(
        "{}<form method=\"post\" action=\"/login\" class=\"login\">{}<label for=\"secret\">Password or token</label>\
         <input type=\"password\" id=\"secret\" name=\"secret\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Log in</button></form>",
        if failed {
            "<p class=\"notice red\" role=\"alert\">That password or token is not right.</p>"
        } else {
            "<p>This dashboard is reached over the network: log in with its password or token.</p>"
        },
        csrf_field(csrf)
    )
}

#[cfg(test)]
mod tests;
