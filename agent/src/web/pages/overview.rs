//! The overview: the device, whether it converged, and a card per space and seed coloured
//! by its health, each colour said in words too.

use super::*;

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
pub(super) fn percent(text: &str) -> String {
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

pub(super) fn is_card(r: &ResourceStatus) -> bool {
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
pub(super) fn replica_summary(r: &ResourceStatus) -> (usize, usize, u64, u64) {
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
