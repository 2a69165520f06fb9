//! `coboxctl status`, `generations` and `events`: what the agent reports.

use std::time::Duration;

use anyhow::Result;
use cobox_client::api::Client;
use cobox_schema::api::{ConditionType, Event, Generations, ResourceStatus, Status};
use cobox_schema::render::Colour;

use crate::cli::Output;
use crate::paint::{BOLD, GREEN, RED, YELLOW, padded, paint};

fn state(r: &ResourceStatus) -> (&'static str, &'static str) {
    if r.is_stalled() {
        (RED, "Stalled")
    } else if r
        .condition(ConditionType::Degraded)
        .is_some_and(|c| c.status)
    {
        (YELLOW, "Degraded")
    } else if r.is_ready() {
        (GREEN, "Ready")
    } else {
        (YELLOW, "Progressing")
    }
}

/// The status as a table.
pub fn render(s: &Status, colour: Colour) -> String {
    let mut out = String::new();
    let id = s.agent.identity.as_deref().unwrap_or("(none yet)");
    out.push_str(&format!(
        "coboxd {} (pid {}) · identity {id}\nconfig {} · data {}\n",
        s.agent.version, s.agent.pid, s.agent.config, s.agent.data_dir
    ));
    let summary = if s.converged && s.observed_generation == s.generation {
        paint(colour, GREEN, "converged")
    } else {
        paint(colour, YELLOW, "converging")
    };
    out.push_str(&format!("generation {} · {summary}\n", s.generation));
    if let Some(ci) = &s.config_invalid {
        out.push_str(&paint(
            colour,
            RED,
            &format!(
                "ConfigInvalid since {}: the last edit was refused; generation {} keeps running\n",
                ci.since, s.generation
            ),
        ));
        for d in &ci.diagnostics {
            out.push_str(&format!("  {d}\n"));
        }
    }
    let rows: Vec<[String; 5]> = s
        .resources
        .iter()
        .map(|r| {
            let (_, word) = state(r);
            let ready = r.condition(ConditionType::Ready);
            let shown = [
                ConditionType::Stalled,
                ConditionType::Degraded,
                ConditionType::Ready,
            ]
            .iter()
            .find_map(|k| {
                r.condition(*k)
                    .filter(|c| c.status || *k == ConditionType::Ready)
            });
            [
                r.kind.to_string(),
                r.name.clone(),
                word.to_string(),
                shown.map(|c| c.reason.clone()).unwrap_or_default(),
                shown
                    .map(|c| {
                        let mut m = c.message.clone();
                        if let Some(rd) = ready {
                            if !m.is_empty() {
                                m.push_str(" · ");
                            }
                            m.push_str(&format!("since {}", rd.since));
                        }
                        m
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["KIND", "NAME", "STATE", "REASON", "MESSAGE"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    out.push('\n');
    let head: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| padded(colour, BOLD, h, width[i]))
        .collect();
    out.push_str(head.join("  ").trim_end());
    out.push('\n');
    for (row, r) in rows.iter().zip(&s.resources) {
        let (code, _) = state(r);
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 2 {
                    padded(colour, code, c, width[i])
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&render_addresses(s));
    out.push_str(&render_flows(s, colour));
    out.push_str(&render_replicas(s, colour));
    out.push_str(&render_network(&s.network, colour));
    if let Some(a) = &s.admins {
        out.push_str(&format!(
            "\nadmins: {} key(s), threshold {}, fleet {} · envelope {} applied · authority {}\n",
            a.keys.len(),
            a.threshold,
            a.fleet.as_deref().unwrap_or("none"),
            a.admin_generation,
            &a.head[..a.head.len().min(16)]
        ));
        for line in crate::remote_cmd::admins_text(a, colour).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if s.resources
        .iter()
        .any(|r| r.kind == cobox_schema::api::ResourceKind::Endpoint && r.is_ready())
    {
        out.push_str("reachable through iroh by this device's identity\n");
    }
    out
}

/// Each space's address: what a partner needs to seed it.
fn render_addresses(s: &Status) -> String {
    let spaces: Vec<(&str, &str)> = s
        .resources
        .iter()
        .filter(|r| r.kind == cobox_schema::api::ResourceKind::Space)
        .filter_map(|r| Some((r.name.as_str(), r.details.get("address")?.as_str())))
        .collect();
    if spaces.is_empty() {
        return String::new();
    }
    let width = spaces.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::from("\naddresses (to ask a partner to seed a space):\n");
    for (name, address) in spaces {
        out.push_str(&format!("  {name:<width$}  {address}\n"));
    }
    out
}

/// Each space's and seed's window, traffic and quota, one line each.
fn render_flows(s: &Status, colour: Colour) -> String {
    use cobox_schema::units::{Rate, Size};
    let mut out = String::new();
    for r in &s.resources {
        let (Some(w), Some(t)) = (&r.window, &r.traffic) else {
            continue;
        };
        if out.is_empty() {
            out.push('\n');
        }
        let window = match (w.state.as_str(), &w.next_change) {
            ("always", _) => paint(colour, GREEN, "always open"),
            ("closed", Some(at)) => paint(colour, YELLOW, &format!("closed until {at}")),
            ("closed", None) => paint(colour, RED, "closed"),
            ("sync", Some(at)) => paint(colour, GREEN, &format!("one-off sync until {at}")),
            (_, Some(at)) => paint(colour, GREEN, &format!("open until {at}")),
            (_, None) => paint(colour, GREEN, "open"),
        };
        let cap = |c: Option<u64>| c.map_or("no cap".to_string(), |c| Rate(c).to_string());
        out.push_str(&format!(
            "{} {}: {window} · sent {} ({}) · received {} ({})",
            r.kind,
            r.name,
            Size(t.sent_bytes),
            cap(t.upload_cap),
            Size(t.received_bytes),
            cap(t.download_cap),
        ));
        if let Some(u) = &r.usage {
            out.push_str(&format!(
                " · files {} · versions {} · reclaimable {}",
                Size(u.tree_bytes),
                Size(u.versions_bytes),
                Size(u.reclaimable_bytes)
            ));
        }
        if let Some(q) = &r.quota {
            let of = q
                .limit
                .map_or(String::new(), |l| format!(" of {}", Size(l)));
            let text = format!("stores {}{of}", Size(q.used));
            let code = if q.full { RED } else { GREEN };
            out.push_str(&format!(" · {}", paint(colour, code, &text)));
            if q.full {
                out.push_str(&format!(" ({})", q.when_full));
            }
        }
        out.push('\n');
    }
    out
}

/// Each space's copies on other devices: green up to date and connected, yellow behind,
/// red out of reach.
fn render_replicas(s: &Status, colour: Colour) -> String {
    let mut out = String::new();
    for r in s.resources.iter().filter(|r| !r.replicas.is_empty()) {
        out.push_str(&format!("\nreplicas of {} {}:\n", r.kind, r.name));
        for c in &r.replicas {
            let behind = || {
                let mut b = format!(
                    "{} blocks ({}) behind",
                    c.behind_blocks,
                    cobox_schema::units::Size(c.behind_bytes)
                );
                if let Some(since) = &c.behind_since {
                    b.push_str(&format!(" since {since}"));
                }
                b
            };
            let (code, mut state) = match (c.connected, c.up_to_date) {
                (true, true) => (GREEN, "up to date".to_string()),
                (true, false) => (YELLOW, behind()),
                (false, true) => (
                    RED,
                    format!("not connected (up to date at {})", c.last_seen),
                ),
                (false, false) => (
                    RED,
                    format!("not connected, {} (last seen {})", behind(), c.last_seen),
                ),
            };
            if c.fetching > 0 || c.ahead_blocks > 0 {
                state = format!(
                    "{state}; holds {} blocks this device lacks, {} asked for",
                    c.ahead_blocks, c.fetching
                );
            }
            if let Some(by) = &c.reported_by {
                state = format!(
                    "{state}, as reported by member {} at {}",
                    &by[..by.len().min(16)],
                    c.last_seen
                );
            }
            out.push_str(&format!(
                "  {} {:<7} {}\n",
                c.peer,
                c.role,
                paint(colour, code, &state)
            ));
        }
    }
    out
}

/// Where the device listens and its peers.
fn render_network(n: &cobox_schema::api::NetworkStatus, colour: Colour) -> String {
    let mut out = String::from("\n");
    if !n.listening.is_empty() {
        out.push_str(&format!("listening on {}\n", n.listening.join(", ")));
    }
    if n.peers.is_empty() {
        out.push_str("no peers connected\n");
        return out;
    }
    use cobox_schema::units::Size;
    let rows: Vec<[String; 7]> = n
        .peers
        .iter()
        .map(|p| {
            [
                p.identity.clone(),
                p.name.clone().unwrap_or_else(|| "-".into()),
                p.connection(),
                p.since.clone().unwrap_or_else(|| "-".into()),
                Size(p.sent_bytes).to_string(),
                Size(p.received_bytes).to_string(),
                p.shared.join(", "),
            ]
        })
        .collect();
    let heads = [
        "PEER",
        "NAME",
        "CONNECTION",
        "SINCE",
        "SENT",
        "RECEIVED",
        "SHARED",
    ];
    let widths: Vec<usize> = (0..heads.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([heads[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let last = heads.len() - 1;
    let head: Vec<String> = heads
        .iter()
        .enumerate()
        .map(|(c, h)| {
            if c == last {
                paint(colour, BOLD, h)
            } else {
                padded(colour, BOLD, h, widths[c])
            }
        })
        .collect();
    out.push_str(&head.join("  "));
    out.push('\n');
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == last {
                    v.clone()
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(&cells.join("  "));
        out.push('\n');
    }
    out
}

pub fn status(client: &Client, output: Output, watch: bool, colour: Colour) -> Result<u8> {
    loop {
        let s: Status = client.get("/v1/status")?;
        match output {
            Output::Json => outln!("{}", serde_json::to_string_pretty(&s)?),
            Output::Text => {
                if watch && colour == Colour::Always {
                    out!("\x1b[2J\x1b[H");
                }
                out!("{}", render(&s, colour));
            }
        }
        if !watch {
            // Converged on the generation running now: right after an apply, the last
            // reconcile converged on the one before.
            let healthy =
                s.converged && s.observed_generation == s.generation && s.config_invalid.is_none();
            return Ok(if healthy { 0 } else { 1 });
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

pub fn generations(client: &Client, output: Output) -> Result<u8> {
    let g: Generations = client.get("/v1/generations")?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&g)?),
        Output::Text => {
            outln!("GEN  TIME                  SOURCE    NAME");
            for x in &g.generations {
                let mark = if x.number == g.current { "*" } else { " " };
                let name = match x.restores {
                    Some(n) => format!("{} (restores {n})", x.name),
                    None => x.name.clone(),
                };
                outln!(
                    "{mark}{:<4} {:<21} {:<9} {name}",
                    x.number,
                    x.time,
                    x.source.to_string()
                );
            }
        }
    }
    Ok(0)
}

fn event_line(e: &Event, colour: Colour) -> String {
    use cobox_schema::api::EventKind::*;
    let code = match e.kind {
        ActionFailed | ConfigInvalid | Blocked | FeedFault => RED,
        Drift | Pruned | Admins => YELLOW,
        _ => GREEN,
    };
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{}  gen {:<3} {} {}{}",
        e.time,
        e.generation,
        padded(colour, code, &kind, 17),
        e.resource
            .as_deref()
            .map(|r| format!("{r}: "))
            .unwrap_or_default(),
        e.message
    )
}

pub fn events(client: &Client, follow: bool, output: Output, colour: Colour) -> Result<u8> {
    let mut out = std::io::stdout();
    client.events(0, follow, |e| {
        use std::io::Write;
        let line = match output {
            Output::Json => serde_json::to_string(&e).unwrap_or_default(),
            Output::Text => event_line(&e, colour),
        };
        writeln!(out, "{line}").is_ok() && out.flush().is_ok()
    })?;
    Ok(0)
}
