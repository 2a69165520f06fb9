//! HTML building blocks, pure: escaping (every text that reaches a page goes through
//! [`escape`]), the page layout with its navigation, and small helpers for numbers.

use std::fmt::Write;

/// `text` safe in HTML text and in a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages of the navigation: (path, title).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/events", "Events"),
    ("/peers", "Peers"),
    ("/config", "Config"),
    ("/invites", "Invites"),
    ("/identity", "Identity"),
];

/// What the layout needs besides the page's body.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The page's title (escaped here).
    pub title: &'a str,
    /// The path of the navigation entry to mark as current.
    pub current: &'a str,
    /// The device's name, shown in the header.
    pub device: &'a str,
    /// A logout button is shown (a session is open) with this CSRF token.
    pub logout_csrf: Option<&'a str>,
    /// The page re-reads itself on the agent's events when scripts run.
    pub live: bool,
}

/// A whole page: the layout around `body` (already HTML).
pub fn page(f: Frame<'_>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1500);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · cobox {}</title>\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\">\
         <script src=\"/assets/dashboard.js\" defer></script></head>\n<body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><p class=\"brand\">cobox <span>{}</span></p><nav aria-label=\"Pages\"><ul>",
        escape(f.title),
        escape(f.device),
        escape(f.device)
    );
    for (path, name) in NAV {
        let current = if *path == f.current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(out, "<li><a href=\"{path}\"{current}>{name}</a></li>");
    }
    out.push_str("</ul></nav>");
    if let Some(csrf) = f.logout_csrf {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/logout\" class=\"logout\">{}<button type=\"submit\">Log out</button></form>",
            csrf_field(csrf)
        );
    }
    let _ = write!(
        out,
        "</header>\n<main id=\"main\"{}><h1>{}</h1>\n{body}</main>\n</body></html>\n",
        if f.live { " data-live" } else { "" },
        escape(f.title)
    );
    out
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        super::guard::CSRF_FIELD,
        escape(token)
    )
}

/// Bytes as people read them: `0 B`, `12.3 KiB`, `4.00 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v < 10.0 { 2 } else { 1 };
    format!("{v:.digits$} {}", UNITS[unit])
}

/// A key shortened for display: its first 8 hex characters and an ellipsis.
pub fn short_key(key: &str) -> String {
    match key.get(..8) {
        Some(head) if key.len() > 8 => format!("{head}…"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn the_layout_escapes_its_texts_marks_the_current_page_and_fits_a_phone() {
        let p = page(
            Frame {
                title: "<b>",
                current: "/peers",
                device: "hub \"1\"",
                logout_csrf: Some("tok"),
                live: true,
            },
            "<p>body</p>",
        );
        assert!(p.contains("<h1>&lt;b&gt;</h1>"), "{p}");
        assert!(p.contains("hub &quot;1&quot;"));
        assert!(p.contains("<a href=\"/peers\" aria-current=\"page\">Peers</a>"));
        assert!(p.contains("<a href=\"/\">Overview</a>"));
        assert!(p.contains("name=\"viewport\""));
        assert!(p.contains("<html lang=\"en\">"));
        assert!(p.contains("name=\"csrf\" value=\"tok\""));
        assert!(p.contains("<p>body</p>"));
        assert!(p.contains("<main id=\"main\" data-live>"));
        assert!(
            !p.contains("http://") && !p.contains("https://"),
            "no third-party asset"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(50 << 30), "50.0 GiB");
        assert_eq!(short_key("0123456789abcdef"), "01234567…");
        assert_eq!(short_key("abc"), "abc");
    }
}
