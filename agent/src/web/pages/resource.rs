//! A space's or seed's page: its card, replica health, members, what is still to fetch, and
//! a space's conflict copies.

use super::*;

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
            "<table class=\"stack\"><thead><tr><th scope=\"col\">Peer</th><th scope=\"col\">Role</th><th scope=\"col\">Connected</th>\
             <th scope=\"col\">Up to date</th><th scope=\"col\">Behind</th><th scope=\"col\">Last seen</th></tr></thead><tbody>",
        );
        for c in &r.replicas {
            let _ = write!(
                out,
                "<tr><td data-label=\"Peer\"><code title=\"{}\">{}</code></td><td data-label=\"Role\">{}</td><td data-label=\"Connected\">{}</td><td data-label=\"Up to date\">{}</td><td data-label=\"Behind\">{} blocks ({})</td><td data-label=\"Last seen\">{}{}</td></tr>",
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
            "<table class=\"stack\"><thead><tr><th scope=\"col\">Identity</th><th scope=\"col\">Name</th><th scope=\"col\">Role</th>\
             <th scope=\"col\">Standing</th><th scope=\"col\">Admitted by</th></tr></thead><tbody>",
        );
        for p in &m.members {
            let by: Vec<String> = p.admitted_by.iter().map(|k| short_key(k)).collect();
            let _ = write!(
                out,
                "<tr><td data-label=\"Identity\"><code title=\"{}\">{}</code>{}</td><td data-label=\"Name\">{}</td><td data-label=\"Role\">{}</td><td data-label=\"Standing\">{}</td><td data-label=\"Admitted by\">{}</td></tr>",
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

/// The files of a space whose content is not all here, as the agent listed them; `None`
/// when they could not be listed.
pub fn files_to_fetch(t: Option<&cobox_schema::api::ToFetch>) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"files-to-fetch\"><h2 id=\"files-to-fetch\">Files waiting for their content</h2>",
    );
    match t {
        None => {
            out.push_str("<p>The files waiting for their content could not be listed just now.</p>")
        }
        Some(t) if t.total == 0 => {
            out.push_str("<p>None: every file shown here has all its content on this device.</p>")
        }
        Some(t) => {
            let _ = write!(
                out,
                "<p>{} {} shown but not all here yet: reading {} waits for a peer that holds the rest.</p>",
                t.total,
                if t.total == 1 { "file is" } else { "files are" },
                if t.total == 1 { "it" } else { "one" },
            );
            if t.total > t.files.len() {
                let _ = write!(out, "<p>The first {} are listed.</p>", t.files.len());
            }
            out.push_str("<table><thead><tr><th scope=\"col\">File</th><th scope=\"col\">Size</th><th scope=\"col\">Blocks missing</th></tr></thead><tbody>");
            for f in &t.files {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{} of {}</td></tr>",
                    escape(&f.path),
                    bytes(f.size),
                    f.missing,
                    f.blocks
                );
            }
            out.push_str("</tbody></table>");
        }
    }
    out.push_str("</section>");
    out
}

pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
