//! The status board: what the loop last found, read by the API without waiting for the
//! loop; condition since-times; the event log (a ring of recent events and a broadcast of
//! new ones).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use cobox_schema::api::{
    AgentInfo, Condition, ConditionType, ConfigInvalid, Event, EventKind, NetworkStatus,
    PeerStatus, ResourceKind, ResourceStatus, Status,
};

use super::conditions::Res;
use super::lag::{LagHistory, Sample};

/// How many past events are kept for new subscribers.
pub const EVENT_BACKLOG: usize = 1000;

/// RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Debug)]
struct Inner {
    status: Status,
    /// (kind, name, condition) → (status, since).
    since: BTreeMap<(ResourceKind, String, ConditionType), (bool, String)>,
    events: VecDeque<Event>,
    next_event: u64,
    /// The device's network and its listening addresses, read live for the status.
    network: Option<(crate::net::Network, Vec<String>)>,
    /// The traffic policy, whose counters the status reads live.
    policy: Option<Arc<crate::net::policy::Policy>>,
    /// Each space's and seed's replica lag over the last hour.
    lag: LagHistory,
}

/// Shared between the loop (writer) and the API (readers).
#[derive(Debug, Clone)]
pub struct Board {
    inner: Arc<Mutex<Inner>>,
    events: tokio::sync::broadcast::Sender<Event>,
}

impl Board {
    pub fn new(agent: AgentInfo) -> Board {
        let (events, _) = tokio::sync::broadcast::channel(256);
        Board {
            inner: Arc::new(Mutex::new(Inner {
                status: Status {
                    agent,
                    generation: 0,
                    observed_generation: 0,
                    converged: false,
                    reconciles: 0,
                    last_reconcile_us: 0,
                    reconcile_failures: 0,
                    reconcile_us_total: 0,
                    config_invalid: None,
                    resources: vec![],
                    network: NetworkStatus::default(),
                    admins: None,
                },
                since: BTreeMap::new(),
                events: VecDeque::new(),
                next_event: 1,
                network: None,
                policy: None,
                lag: LagHistory::default(),
            })),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current status (the network part and the traffic counters as they are now;
    /// the rest as the last reconcile found it).
    pub fn status(&self) -> Status {
        let (mut status, network, policy) = {
            let g = self.lock();
            (g.status.clone(), g.network.clone(), g.policy.clone())
        };
        if let Some((net, listening)) = network {
            status.network = network_status(&net, listening);
        }
        if let Some(policy) = policy {
            use crate::net::policy::Class;
            for r in &mut status.resources {
                let class = match r.kind {
                    ResourceKind::Space => Class::Space(r.name.clone()),
                    ResourceKind::Seed => Class::Seed(r.name.clone()),
                    _ => continue,
                };
                if let (Some(t), Some((_, live, _))) = (&mut r.traffic, policy.status(&class)) {
                    *t = live;
                }
            }
        }
        status
    }

    /// Read the traffic counters of spaces and seeds live from `policy`.
    pub fn set_policy(&self, policy: Arc<crate::net::policy::Policy>) {
        self.lock().policy = Some(policy);
    }

    /// Report the network of the device (and where it listens) in the status, and its
    /// misbehaving peers as events.
    pub fn set_network(&self, net: Option<crate::net::Network>, listening: Vec<String>) {
        let mut g = self.lock();
        if let Some(n) = &net
            && g.network
                .as_ref()
                .is_none_or(|(old, _)| old.identity() != n.identity())
        {
            let board = self.clone();
            n.on_incident(Arc::new(move |peer, message| {
                let generation = board.lock().status.generation;
                board.emit(EventKind::PeerMisbehaved, generation, Some(peer), message);
            }));
        }
        g.network = net.map(|n| (n, listening));
    }

    /// What the device follows of its admins.
    pub fn set_admins(&self, admins: Option<cobox_schema::api::AdminsStatus>) {
        self.lock().status.admins = admins;
    }

    pub fn set_identity(&self, identity: Option<String>) {
        self.lock().status.agent.identity = identity;
    }

    pub fn set_config_name(&self, name: &str) {
        self.lock().status.agent.config = name.to_string();
    }

    /// A new generation runs; the last invalid edit is forgotten.
    pub fn set_generation(&self, generation: u64) {
        let mut g = self.lock();
        g.status.generation = generation;
        g.status.config_invalid = None;
    }

    pub fn set_config_invalid(&self, invalid: Option<ConfigInvalid>) {
        self.lock().status.config_invalid = invalid;
    }

    /// Count a finished reconcile, how long it took and whether an action failed.
    pub fn reconciled(&self, took: std::time::Duration, failed: bool) {
        let mut g = self.lock();
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        g.status.reconciles += 1;
        g.status.last_reconcile_us = us;
        g.status.reconcile_us_total = g.status.reconcile_us_total.saturating_add(us);
        g.status.reconcile_failures += u64::from(failed);
    }

    /// Record the resources found by the reconcile of `generation`.
    pub fn set_resources(&self, generation: u64, converged: bool, found: Vec<Res>) {
        let now = now_rfc3339();
        let mut g = self.lock();
        let mut since = BTreeMap::new();
        let mut resources = Vec::with_capacity(found.len() + 1);
        let config_res = config_resource(&g.status);
        for r in std::iter::once(config_res).chain(found) {
            let conditions = r
                .conditions
                .into_iter()
                .map(|c| {
                    let key = (r.kind, r.name.clone(), c.kind);
                    let stamp = match g.since.get(&key) {
                        Some((s, t)) if *s == c.status => t.clone(),
                        _ => now.clone(),
                    };
                    since.insert(key, (c.status, stamp.clone()));
                    Condition {
                        kind: c.kind,
                        status: c.status,
                        reason: c.reason,
                        message: c.message,
                        since: stamp,
                    }
                })
                .collect();
            resources.push(ResourceStatus {
                kind: r.kind,
                name: r.name,
                observed_generation: generation,
                conditions,
                details: r.details,
                replicas: r.replicas,
                window: r.flow.as_ref().map(|f| f.window.clone()),
                traffic: r.flow.as_ref().map(|f| f.traffic.clone()),
                quota: r.flow.and_then(|f| f.quota),
                usage: r.usage,
            });
        }
        g.since = since;
        let minute = super::lag::minute_of(std::time::SystemTime::now());
        for r in &resources {
            if matches!(r.kind, ResourceKind::Space | ResourceKind::Seed) {
                let lags = r
                    .replicas
                    .iter()
                    .map(|c| (c.peer.clone(), c.behind_blocks))
                    .collect();
                g.lag
                    .record(&format!("{} {}", r.kind, r.name), Sample { minute, lags });
            }
        }
        g.status.resources = resources;
        g.status.observed_generation = generation;
        g.status.converged = converged;
    }

    /// The replica lag samples of a space or seed over the last hour, oldest first.
    pub fn lag(&self, kind: ResourceKind, name: &str) -> Vec<Sample> {
        self.lock().lag.samples(&format!("{kind} {name}"))
    }

    /// The lag history, to keep while the agent is stopped.
    pub fn lag_history(&self) -> LagHistory {
        self.lock().lag.clone()
    }

    /// Take up the lag history kept from the last run.
    pub fn set_lag_history(&self, history: LagHistory) {
        self.lock().lag = history;
    }

    /// Record and broadcast an event.
    pub fn emit(
        &self,
        kind: EventKind,
        generation: u64,
        resource: Option<String>,
        message: impl Into<String>,
    ) {
        let mut g = self.lock();
        let event = Event {
            id: g.next_event,
            time: now_rfc3339(),
            kind,
            generation,
            resource,
            message: message.into(),
        };
        g.next_event += 1;
        if g.events.len() == EVENT_BACKLOG {
            g.events.pop_front();
        }
        g.events.push_back(event.clone());
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// The newest `n` events of the given kinds, oldest first.
    pub fn recent(&self, n: usize, kinds: &[EventKind]) -> Vec<Event> {
        let g = self.lock();
        let mut out: Vec<Event> = g
            .events
            .iter()
            .rev()
            .filter(|e| kinds.contains(&e.kind))
            .take(n)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The id of the newest event (0 before the first).
    pub fn last_event_id(&self) -> u64 {
        self.lock().next_event - 1
    }

    /// Events after `after`, and (subscribed before they were read, so nothing falls in
    /// between) a receiver of the ones to come.
    pub fn events_after(
        &self,
        after: u64,
    ) -> (Vec<Event>, tokio::sync::broadcast::Receiver<Event>) {
        let g = self.lock();
        let rx = self.events.subscribe();
        let past = g.events.iter().filter(|e| e.id > after).cloned().collect();
        (past, rx)
    }
}

/// The config resource: Ready while a generation runs; Degraded while the last edit is
/// invalid.
/// The peers of `net` now, each with the names of what it shares.
pub fn network_status(net: &crate::net::Network, listening: Vec<String>) -> NetworkStatus {
    let names = net.shared();
    NetworkStatus {
        listening,
        peers: net
            .peers()
            .into_iter()
            .map(|p| {
                let mut shared: Vec<String> = p
                    .spaces
                    .iter()
                    .filter_map(|a| names.get(a).cloned())
                    .collect();
                shared.sort();
                PeerStatus {
                    identity: cobox_keys::secret::hex(&p.identity),
                    name: p.name,
                    shared,
                    transport: Some(p.transport.into()),
                    direction: Some(if p.outbound { "outbound" } else { "inbound" }.into()),
                    route: Some(p.route),
                    since: Some(
                        chrono::DateTime::<chrono::Utc>::from(p.since)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                    sent_bytes: p.sent,
                    received_bytes: p.received,
                }
            })
            .collect(),
    }
}

fn config_resource(status: &Status) -> Res {
    let mut conditions = vec![super::conditions::Cond {
        kind: ConditionType::Ready,
        status: status.generation > 0,
        reason: "Accepted".into(),
        message: format!("generation {} runs", status.generation),
    }];
    let (degraded, reason, message) = match &status.config_invalid {
        Some(ci) => (
            true,
            "ConfigInvalid",
            format!(
                "the last edit has {} error(s); generation {} keeps running",
                ci.diagnostics
                    .iter()
                    .filter(|d| d.severity == "error")
                    .count(),
                status.generation
            ),
        ),
        None => (false, "Valid", String::new()),
    };
    conditions.push(super::conditions::Cond {
        kind: ConditionType::Degraded,
        status: degraded,
        reason: reason.into(),
        message,
    });
    Res {
        kind: ResourceKind::Config,
        name: status.agent.config.clone(),
        conditions,
        details: BTreeMap::new(),
        replicas: Vec::new(),
        flow: None,
        usage: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::conditions::Cond;

    fn info() -> AgentInfo {
        AgentInfo {
            version: "0".into(),
            pid: 1,
            started: now_rfc3339(),
            identity: None,
            config: "c.toml".into(),
            data_dir: "/d".into(),
        }
    }

    fn res(ready: bool) -> Res {
        Res {
            kind: ResourceKind::Space,
            name: "a".into(),
            conditions: vec![Cond {
                kind: ConditionType::Ready,
                status: ready,
                reason: "R".into(),
                message: String::new(),
            }],
            details: BTreeMap::new(),
            replicas: Vec::new(),
            flow: None,
            usage: None,
        }
    }

    #[test]
    fn since_changes_only_when_the_status_changes() {
        let b = Board::new(info());
        b.set_generation(1);
        b.set_resources(1, false, vec![res(false)]);
        let first = b.status().resources[1].conditions[0].since.clone();
        // Make the clock move past a second so a new stamp would differ.
        {
            let mut g = b.lock();
            for v in g.since.values_mut() {
                v.1 = "2000-01-01T00:00:00Z".into();
            }
        }
        b.set_resources(1, false, vec![res(false)]);
        assert_eq!(
            b.status().resources[1].conditions[0].since,
            "2000-01-01T00:00:00Z"
        );
        b.set_resources(1, true, vec![res(true)]);
        let s = b.status();
        assert_ne!(s.resources[1].conditions[0].since, "2000-01-01T00:00:00Z");
        assert!(s.converged);
        assert!(!first.is_empty());
        assert_eq!(s.resources[0].kind, ResourceKind::Config);
    }

    #[test]
    fn events_are_numbered_kept_and_streamed_without_a_gap() {
        let b = Board::new(info());
        for i in 0..EVENT_BACKLOG + 5 {
            b.emit(EventKind::Converged, 1, None, format!("e{i}"));
        }
        let (past, mut rx) = b.events_after(0);
        assert_eq!(past.len(), EVENT_BACKLOG);
        assert_eq!(past[0].id, 6);
        let (tail, _) = b.events_after(past.last().unwrap().id - 2);
        assert_eq!(tail.len(), 2);
        b.emit(EventKind::Drift, 1, Some("mount /m".into()), "gone");
        let next = rx.try_recv().unwrap();
        assert_eq!(next.id, EVENT_BACKLOG as u64 + 6);
        assert_eq!(next.kind, EventKind::Drift);
    }
}
