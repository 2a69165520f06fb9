//! The events page: the board's events filtered by kind and text, on the server.

use super::*;

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
pub(super) fn event_filter_form(filter: &EventFilter, kinds: &[String]) -> String {
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
