//! The identity page (the public key as text and QR code, the paper key behind a
//! confirmation) and the login page.

use super::*;

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
