//! The desired state in words: what an agent would converge to, one line per resource.

use std::fmt::Write;

use crate::config::{Config, Relays};
use crate::units::format_duration;
use crate::window::Window;

/// One line per resource, in a fixed order: device, network, storage, spaces, seeds,
/// admins, api.
pub fn desired_state(config: &Config) -> String {
    let mut out = String::new();
    let d = &config.device;
    let _ = writeln!(
        out,
        "device   name={} data_dir={} mount_root={}",
        d.name.as_deref().unwrap_or("(host name)"),
        d.data_dir.display(),
        d.mount_root.display()
    );
    let n = &config.network;
    let relays = match &n.relays {
        Relays::Default => "default".to_string(),
        Relays::Disabled => "none".to_string(),
        Relays::Custom(urls) => urls.join(","),
    };
    let _ = writeln!(
        out,
        "network  listen=[{}] lan_discovery={} internet_discovery={} relays={relays} portmapper={} upload={} download={}",
        n.listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        n.lan_discovery,
        n.internet_discovery,
        n.portmapper,
        opt(n.upload),
        opt(n.download),
    );
    for p in &n.peers {
        let _ = writeln!(out, "peer     {p}");
    }
    for l in &n.limits {
        let _ = writeln!(
            out,
            "limit    when={:?} for={} zone={} upload={} download={}",
            l.period.when.source(),
            format_duration(l.period.duration),
            l.period.zone.name(),
            opt(l.upload),
            opt(l.download)
        );
    }
    let s = &config.storage;
    let _ = writeln!(
        out,
        "storage  quota={} when_full={} min_free={}",
        opt(s.quota),
        match s.when_full {
            crate::raw::WhenFull::Stop => "stop",
            crate::raw::WhenFull::EvictOldest => "evict-oldest",
        },
        s.min_free
    );
    for sp in &config.spaces {
        let _ = writeln!(
            out,
            "space    {} address={} mount={} seeders={} min_replicas={} windows={} upload={} download={} versions={}{}",
            sp.name,
            sp.address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "(new)".into()),
            sp.mount
                .as_ref()
                .map(|m| m.display().to_string())
                .unwrap_or_else(|| "(not mounted)".into()),
            sp.seeders.len(),
            sp.min_replicas,
            windows(&sp.windows),
            opt(sp.upload),
            opt(sp.download),
            versions(&sp.versions),
            if sp.invite.is_some() {
                " (joins by invite)"
            } else {
                ""
            },
        );
    }
    for sd in &config.seeds {
        let _ = writeln!(
            out,
            "seed     {} address={} quota={} windows={} upload={} download={}",
            sd.name,
            sd.address,
            opt(sd.quota),
            windows(&sd.windows),
            opt(sd.upload),
            opt(sd.download),
        );
    }
    for k in &config.admins.keys {
        let _ = writeln!(out, "admin    {k}");
    }
    if !config.admins.keys.is_empty() || config.admins.fleet.is_some() {
        let _ = writeln!(
            out,
            "admins   threshold={} fleet={}",
            config.admins.threshold,
            config.admins.fleet.as_deref().unwrap_or("none")
        );
    }
    let _ = writeln!(
        out,
        "api      socket={} metrics={} web={}",
        config.api.socket.display(),
        config
            .api
            .metrics
            .map(|m| m.to_string())
            .unwrap_or_else(|| "off".into()),
        config
            .api
            .web
            .map(|m| m.to_string())
            .unwrap_or_else(|| "off".into())
    );
    out
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "unlimited".into())
}

fn windows(ws: &[Window]) -> String {
    if ws.is_empty() {
        return "always".into();
    }
    ws.iter()
        .map(|w| {
            let action = match w.action {
                crate::raw::WindowAction::Allow => "allow",
                crate::raw::WindowAction::Deny => "deny",
            };
            format!(
                "{action}({:?} for {} {})",
                w.period.when.source(),
                format_duration(w.period.duration),
                w.period.zone.name()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A retention policy as written: `keep 30d min 3`.
fn versions(v: &crate::config::Versions) -> String {
    let keep = v
        .keep
        .map_or_else(|| "forever".to_string(), crate::units::format_duration);
    format!("keep:{keep},min:{}", v.min)
}
