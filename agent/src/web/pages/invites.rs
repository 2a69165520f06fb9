//! The invites page: create an invite for a pasted key (shown as text and QR code), or open
//! a code to see what it grants.

use super::*;

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

pub(super) fn role_words(role: InviteRole) -> &'static str {
    match role {
        InviteRole::Member => "member (read and write)",
        InviteRole::Seeder => "seeder (stores encrypted data, cannot read it)",
    }
}

pub(super) fn alert(message: &str) -> String {
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
pub(super) fn create_form(spaces: &[String], form: &InviteForm, csrf: &str) -> String {
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
