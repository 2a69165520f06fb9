//! The replica lag chart of a space or seed over the last hour, from the samples the
//! status board keeps (`control::lag`): an inline SVG sparkline (no script) with its
//! latest values in text.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::{escape, short_key};
pub use crate::control::lag::{SAMPLES, Sample};

const WIDTH: u64 = 240;
const HEIGHT: u64 = 48;

/// The points of one replica's line: x across the hour ending at `last`, y scaled so
/// that `max` is the top (a lag of 0 is the bottom).
pub fn points(samples: &[(u64, u64)], last: u64, max: u64) -> String {
    let max = max.max(1);
    let span = SAMPLES as u64 - 1;
    samples
        .iter()
        .map(|&(minute, lag)| {
            let ago = last.saturating_sub(minute).min(span);
            let x = (span - ago) * WIDTH / span;
            let y = HEIGHT - lag.min(max) * HEIGHT / max;
            format!("{x},{y}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lag chart of a space and its latest values, from its samples (oldest first).
pub fn chart(samples: &[Sample]) -> String {
    let mut out =
        String::from("<section aria-labelledby=\"lag\"><h2 id=\"lag\">Replica lag, last hour</h2>");
    let Some(newest) = samples.last() else {
        out.push_str("<p>No lag has been sampled yet.</p></section>");
        return out;
    };
    let mut peers: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for s in samples {
        for (peer, lag) in &s.lags {
            peers.entry(peer).or_default().push((s.minute, *lag));
        }
    }
    if peers.is_empty() {
        out.push_str("<p>No replica has been sampled yet.</p></section>");
        return out;
    }
    let max = peers
        .values()
        .flatten()
        .map(|&(_, lag)| lag)
        .max()
        .unwrap_or(0);
    let label = format!(
        "Replica lag in blocks over the last hour, {} samples, at most {max} blocks",
        samples.len()
    );
    let _ = write!(
        out,
        "<svg class=\"sparkline\" role=\"img\" aria-label=\"{label}\" viewBox=\"-3 -3 {w} {h}\" width=\"{w}\" height=\"{h}\"><title>{label}</title>\
         <line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"currentColor\" stroke-opacity=\"0.3\"/>",
        label = escape(&label),
        w = WIDTH + 6,
        h = HEIGHT + 6
    );
    for (peer, line) in &peers {
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            points(line, newest.minute, max),
            escape(&short_key(peer))
        );
        // The latest point as a dot: a line of one sample draws nothing.
        if let Some(last) = line.last() {
            let point = points(&[*last], newest.minute, max);
            let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                out,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"currentColor\"/>"
            );
        }
    }
    out.push_str("</svg>");
    out.push_str(
        "<table><thead><tr><th scope=\"col\">Peer</th><th scope=\"col\">Lag now</th><th scope=\"col\">Most in the hour</th></tr></thead><tbody>",
    );
    for (peer, line) in &peers {
        let now = newest
            .lags
            .get(*peer)
            .map_or("not sampled".to_string(), |l| format!("{l} blocks"));
        let most = line.iter().map(|&(_, l)| l).max().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td><code title=\"{}\">{}</code></td><td>{}</td><td>{most} blocks</td></tr>",
            escape(peer),
            escape(&short_key(peer)),
            escape(&now)
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::lag::sample;

    #[test]
    fn points_are_scaled_to_the_hour_and_the_largest_lag() {
        assert_eq!(points(&[(0, 0), (59, 10)], 59, 10), "0,48 240,0");
        assert_eq!(points(&[(30, 5)], 59, 10), "122,24");
        assert_eq!(points(&[(0, 0)], 0, 0), "240,48", "no lag at all is flat");
    }

    #[test]
    fn the_chart_has_a_text_alternative_and_the_latest_values() {
        let peer = "ab".repeat(32);
        let html = chart(&[
            sample(100, &[(&peer, 4)]),
            sample(101, &[(&peer, 8)]),
            sample(102, &[(&peer, 2)]),
        ]);
        assert!(html.contains("<svg class=\"sparkline\" role=\"img\" aria-label=\"Replica lag in blocks over the last hour, 3 samples, at most 8 blocks\""));
        assert!(html.contains("<title>Replica lag in blocks"));
        assert!(html.contains("points=\"231,24 235,0 240,36\""));
        assert!(html.contains("<td>2 blocks</td><td>8 blocks</td>"));
        assert!(
            html.contains("<circle cx=\"240\" cy=\"36\""),
            "the latest point is a dot"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn an_empty_history_says_so() {
        let html = chart(&[]);
        assert!(html.contains("No lag has been sampled yet"));
        assert!(!html.contains("<svg"));
        let html = chart(&[sample(1, &[])]);
        assert!(html.contains("No replica has been sampled yet"));
    }
}
