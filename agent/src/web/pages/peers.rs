//! The peers page: where the device listens, and each peer with a session: how it is
//! connected, since when, and the bytes carried.

use super::*;

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
