//! The opt-in Prometheus endpoint (`[api] metrics`): the status board in the text
//! exposition format (version 0.0.4) at `GET /metrics`, over plain HTTP on the configured
//! address. The rendering is pure; the server only serves it.

use std::fmt::Write;
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use cobox_schema::api::{ConditionType, PeerStatus, ResourceStatus, Status};

use super::board::Board;

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Metric families in the order they are written, each once with its help and type.
struct Out {
    text: String,
    declared: Vec<&'static str>,
}

impl Out {
    fn sample(
        &mut self,
        name: &'static str,
        kind: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !self.declared.contains(&name) {
            self.declared.push(name);
            let _ = writeln!(self.text, "# HELP {name} {help}");
            let _ = writeln!(self.text, "# TYPE {name} {kind}");
        }
        self.text.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Everything the status says, as metrics. Families are grouped (a family's samples are
/// contiguous, as the format requires) and ordered as the status orders resources.
pub fn render(s: &Status) -> String {
    let mut o = Out {
        text: String::new(),
        declared: Vec::new(),
    };
    o.sample(
        "cobox_generation",
        "gauge",
        "the running config generation",
        &[],
        s.generation as f64,
    );
    o.sample(
        "cobox_converged",
        "gauge",
        "1 when nothing is left to do for the running generation",
        &[],
        flag(s.converged),
    );
    o.sample(
        "cobox_config_invalid",
        "gauge",
        "1 while the config file holds an edit that was refused",
        &[],
        flag(s.config_invalid.is_some()),
    );
    o.sample(
        "cobox_reconciles_total",
        "counter",
        "reconciles since the agent started",
        &[],
        s.reconciles as f64,
    );
    o.sample(
        "cobox_reconcile_failures_total",
        "counter",
        "reconciles in which an action failed",
        &[],
        s.reconcile_failures as f64,
    );
    o.sample(
        "cobox_reconcile_seconds_total",
        "counter",
        "time spent reconciling since the agent started",
        &[],
        s.reconcile_us_total as f64 / 1e6,
    );
    o.sample(
        "cobox_last_reconcile_seconds",
        "gauge",
        "how long the last reconcile took",
        &[],
        s.last_reconcile_us as f64 / 1e6,
    );
    o.sample(
        "cobox_peers",
        "gauge",
        "peers with a replication session now",
        &[],
        s.network.peers.len() as f64,
    );
    type PerPeer = (&'static str, &'static str, fn(&PeerStatus) -> f64);
    let per_peer: [PerPeer; 2] = [
        (
            "cobox_peer_sent_bytes_total",
            "bytes sent to a peer on its session now, on the wire (from 0 at each new session)",
            |p| p.sent_bytes as f64,
        ),
        (
            "cobox_peer_received_bytes_total",
            "bytes received from a peer on its session now, on the wire (from 0 at each new session)",
            |p| p.received_bytes as f64,
        ),
    ];
    for (metric, help, pick) in per_peer {
        for p in &s.network.peers {
            let transport = p.transport.as_deref().unwrap_or("unknown");
            let labels = [("peer", p.identity.as_str()), ("transport", transport)];
            o.sample(metric, "counter", help, &labels, pick(p));
        }
    }
    let flows: Vec<&ResourceStatus> = s.resources.iter().collect();
    for r in &flows {
        let (kind, name) = (r.kind.to_string(), r.name.clone());
        let labels = [("kind", kind.as_str()), ("name", name.as_str())];
        o.sample(
            "cobox_resource_ready",
            "gauge",
            "1 when the resource is Ready",
            &labels,
            flag(r.is_ready()),
        );
    }
    for r in &flows {
        let (kind, name) = (r.kind.to_string(), r.name.clone());
        let labels = [("kind", kind.as_str()), ("name", name.as_str())];
        let degraded = r
            .condition(ConditionType::Degraded)
            .is_some_and(|c| c.status);
        o.sample(
            "cobox_resource_degraded",
            "gauge",
            "1 when the resource is Degraded (too few replicas, quota reached)",
            &labels,
            flag(degraded),
        );
    }
    type Pick = fn(&ResourceStatus) -> Option<f64>;
    let per_flow: [(&'static str, &str, &str, Pick); 16] = [
        (
            "cobox_sent_bytes_total",
            "counter",
            "block bytes sent",
            |r| r.traffic.as_ref().map(|t| t.sent_bytes as f64),
        ),
        (
            "cobox_received_bytes_total",
            "counter",
            "block bytes received",
            |r| r.traffic.as_ref().map(|t| t.received_bytes as f64),
        ),
        ("cobox_sent_blocks_total", "counter", "blocks sent", |r| {
            r.traffic.as_ref().map(|t| t.sent_blocks as f64)
        }),
        (
            "cobox_received_blocks_total",
            "counter",
            "blocks received",
            |r| r.traffic.as_ref().map(|t| t.received_blocks as f64),
        ),
        (
            "cobox_upload_cap_bytes_per_second",
            "gauge",
            "the upload cap in force (absent: none)",
            |r| {
                r.traffic
                    .as_ref()
                    .and_then(|t| t.upload_cap)
                    .map(|c| c as f64)
            },
        ),
        (
            "cobox_download_cap_bytes_per_second",
            "gauge",
            "the download cap in force (absent: none)",
            |r| {
                r.traffic
                    .as_ref()
                    .and_then(|t| t.download_cap)
                    .map(|c| c as f64)
            },
        ),
        (
            "cobox_window_open",
            "gauge",
            "1 while the space or seed may replicate",
            |r| r.window.as_ref().map(|w| flag(w.open)),
        ),
        (
            "cobox_quota_used_bytes",
            "gauge",
            "bytes a seed stores on disk",
            |r| r.quota.as_ref().map(|q| q.used as f64),
        ),
        ("cobox_quota_limit_bytes", "gauge", "a seed's quota", |r| {
            r.quota.as_ref().and_then(|q| q.limit).map(|l| l as f64)
        }),
        (
            "cobox_quota_full",
            "gauge",
            "1 while a seed's downloads are refused for room",
            |r| r.quota.as_ref().map(|q| flag(q.full)),
        ),
        (
            "cobox_space_tree_bytes",
            "gauge",
            "bytes a space's current files refer to (shared blocks once)",
            |r| r.usage.as_ref().map(|u| u.tree_bytes as f64),
        ),
        (
            "cobox_space_versions_bytes",
            "gauge",
            "bytes only a space's kept earlier versions refer to",
            |r| r.usage.as_ref().map(|u| u.versions_bytes as f64),
        ),
        (
            "cobox_space_reclaimable_bytes",
            "gauge",
            "bytes of a space stored here that nothing refers to",
            |r| r.usage.as_ref().map(|u| u.reclaimable_bytes as f64),
        ),
        (
            "cobox_space_disk_bytes",
            "gauge",
            "bytes a space's feeds take on this device's disk",
            |r| r.usage.as_ref().map(|u| u.on_disk_bytes as f64),
        ),
        (
            "cobox_replicas",
            "gauge",
            "other devices known to hold the space or seed",
            |r| (!r.replicas.is_empty() || r.traffic.is_some()).then_some(r.replicas.len() as f64),
        ),
        (
            "cobox_replicas_up_to_date",
            "gauge",
            "connected replicas holding everything this device holds",
            |r| {
                (!r.replicas.is_empty() || r.traffic.is_some()).then_some(
                    r.replicas
                        .iter()
                        .filter(|c| c.connected && c.up_to_date)
                        .count() as f64,
                )
            },
        ),
    ];
    for (metric, kind_word, help, pick) in per_flow {
        for r in &flows {
            if let Some(v) = pick(r) {
                let (kind, name) = (r.kind.to_string(), r.name.clone());
                o.sample(
                    metric,
                    kind_word,
                    help,
                    &[("kind", &kind), ("name", &name)],
                    v,
                );
            }
        }
    }
    type PickReplica = fn(&cobox_schema::api::Replica) -> f64;
    let per_replica: [(&'static str, &str, PickReplica); 3] = [
        (
            "cobox_replica_behind_blocks",
            "blocks a replica lacks of what this device holds",
            |c| c.behind_blocks as f64,
        ),
        (
            "cobox_replica_ahead_blocks",
            "blocks a replica holds that this device lacks",
            |c| c.ahead_blocks as f64,
        ),
        (
            "cobox_replica_connected",
            "1 while a replica is connected",
            |c| flag(c.connected),
        ),
    ];
    for (metric, help, pick) in per_replica {
        for r in &flows {
            let (kind, name) = (r.kind.to_string(), r.name.clone());
            for c in &r.replicas {
                let labels = [
                    ("kind", kind.as_str()),
                    ("name", name.as_str()),
                    ("peer", c.peer.as_str()),
                    ("role", c.role.as_str()),
                ];
                o.sample(metric, "gauge", help, &labels, pick(c));
            }
        }
    }
    o.text
}

/// The endpoint, serving until dropped.
#[derive(Debug)]
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Listen on `addr` and serve the board's status as metrics.
    pub fn start(
        rt: &tokio::runtime::Handle,
        addr: SocketAddr,
        board: Board,
    ) -> std::io::Result<MetricsServer> {
        let listener = {
            let _guard = rt.enter();
            let std = std::net::TcpListener::bind(addr)?;
            std.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(std)?
        };
        let bound = listener.local_addr()?;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let board = board.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        render(&board.status()),
                    )
                        .into_response()
                }
            }),
        );
        let task = rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
        tracing::info!(address = %bound, "serving metrics");
        Ok(MetricsServer { addr: bound, task })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobox_schema::api::{
        AgentInfo, Condition, QuotaStatus, Replica, ResourceKind, TrafficStatus, WindowStatus,
    };

    #[test]
    fn the_status_renders_as_valid_grouped_families() {
        let cond = |kind, status| Condition {
            kind,
            status,
            reason: "R".into(),
            message: String::new(),
            since: String::new(),
        };
        let seed = ResourceStatus {
            kind: ResourceKind::Seed,
            name: "river \"north\"".into(),
            observed_generation: 3,
            conditions: vec![
                cond(ConditionType::Ready, true),
                cond(ConditionType::Degraded, true),
            ],
            details: Default::default(),
            replicas: vec![Replica {
                peer: "ab".into(),
                role: "member".into(),
                connected: true,
                up_to_date: false,
                behind_blocks: 7,
                behind_bytes: 7 << 16,
                behind_since: None,
                last_seen: String::new(),
                reported_by: None,
                ahead_blocks: 0,
                fetching: 0,
            }],
            window: Some(WindowStatus {
                open: false,
                state: "closed".into(),
                next_change: None,
            }),
            traffic: Some(TrafficStatus {
                sent_bytes: 10,
                received_bytes: 2048,
                sent_blocks: 1,
                received_blocks: 2,
                upload_cap: None,
                download_cap: Some(1 << 20),
            }),
            quota: Some(QuotaStatus {
                used: 900,
                limit: Some(1000),
                total_used: 900,
                total_limit: None,
                full: true,
                when_full: "stop".into(),
            }),
            usage: None,
        };
        let space = ResourceStatus {
            kind: ResourceKind::Space,
            name: "home".into(),
            conditions: vec![cond(ConditionType::Ready, false)],
            replicas: vec![],
            window: None,
            traffic: None,
            quota: None,
            usage: Some(cobox_schema::api::UsageStatus {
                tree_bytes: 4096,
                versions_bytes: 1024,
                ..Default::default()
            }),
            ..seed.clone()
        };
        let status = Status {
            agent: AgentInfo {
                version: "0".into(),
                pid: 1,
                started: String::new(),
                identity: None,
                config: "c".into(),
                data_dir: "/d".into(),
            },
            generation: 3,
            observed_generation: 3,
            converged: true,
            reconciles: 5,
            last_reconcile_us: 1500,
            reconcile_failures: 1,
            reconcile_us_total: 2_500_000,
            config_invalid: None,
            resources: vec![space, seed],
            network: cobox_schema::api::NetworkStatus {
                listening: vec![],
                peers: vec![PeerStatus {
                    identity: "cd".into(),
                    name: None,
                    shared: vec![],
                    transport: Some("tcp".into()),
                    direction: Some("inbound".into()),
                    route: Some("10.0.0.2:5000".into()),
                    since: None,
                    sent_bytes: 4096,
                    received_bytes: 12,
                }],
            },
            admins: None,
        };
        let text = render(&status);
        for line in [
            "cobox_converged 1",
            "cobox_reconcile_seconds_total 2.5",
            "cobox_reconcile_failures_total 1",
            "cobox_resource_ready{kind=\"space\",name=\"home\"} 0",
            "cobox_resource_degraded{kind=\"seed\",name=\"river \\\"north\\\"\"} 1",
            "cobox_received_bytes_total{kind=\"seed\",name=\"river \\\"north\\\"\"} 2048",
            "cobox_download_cap_bytes_per_second{kind=\"seed\",name=\"river \\\"north\\\"\"} 1048576",
            "cobox_window_open{kind=\"seed\",name=\"river \\\"north\\\"\"} 0",
            "cobox_quota_full{kind=\"seed\",name=\"river \\\"north\\\"\"} 1",
            "cobox_space_versions_bytes{kind=\"space\",name=\"home\"} 1024",
            "cobox_replica_behind_blocks{kind=\"seed\",name=\"river \\\"north\\\"\",peer=\"ab\",role=\"member\"} 7",
            "cobox_peers 1",
            "cobox_peer_sent_bytes_total{peer=\"cd\",transport=\"tcp\"} 4096",
            "cobox_peer_received_bytes_total{peer=\"cd\",transport=\"tcp\"} 12",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("cobox_upload_cap"), "no cap, no sample");
        // Every family is declared once, before its samples, which are contiguous.
        let mut seen: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&name), "{name} declared twice");
                seen.push(name.clone());
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{line} outside its family");
            }
        }
    }
}
