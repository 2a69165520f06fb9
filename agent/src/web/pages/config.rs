//! The config page: the running text, the generations, a pasted config's plan and the
//! confirmations of apply and rollback, and what an apply answered or refused.

use super::*;

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
