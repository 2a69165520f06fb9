//! The traffic and storage policy in force: the device's caps (fixed, or scheduled by
//! `[[network.limit]]`), each space's and seed's own caps, windows and one-off syncs, and
//! the quotas of seeded data, applied to the [`Traffic`] of every space and seed now and
//! again at every boundary of a schedule.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::plan::spec::{PolicySpec, ShareRules};
use chrono::{DateTime, Utc};
use cobox_schema::api::{QuotaStatus, TrafficStatus, WindowStatus};
use cobox_schema::config::WhenFull;
use cobox_schema::window::{self, Recurring, Window};
use tokio::sync::Notify;

use crate::replicate::{Bucket, Caps, Quota, Traffic};

/// How far ahead the next opening or closing of a window is looked for.
const HORIZON: Duration = Duration::from_secs(366 * 86_400);
/// Most bytes one eviction frees.
const EVICT_STEP: u64 = 256 << 20;
/// The clock re-applies the policy at least this often, whatever the schedules say.
const RECHECK: Duration = Duration::from_secs(60);

/// A space or seed, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Space(String),
    Seed(String),
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Class::Space(n) => write!(f, "space {n}"),
            Class::Seed(n) => write!(f, "seed {n}"),
        }
    }
}

/// What the config says of one space or seed.
#[derive(Debug, Clone, Default)]
struct Rules {
    windows: Vec<Window>,
    upload: Option<u64>,
    download: Option<u64>,
    quota: Option<u64>,
    /// A fleet's control traffic: none of the above, and not the device's caps.
    control: bool,
}

#[derive(Debug)]
struct Entry {
    traffic: Arc<Traffic>,
    rules: Rules,
    /// A one-off sync holds the window open until then.
    sync_until: Option<DateTime<Utc>>,
    /// Whether the window is open and why, as last applied.
    window: WindowStatus,
}

#[derive(Debug, Default)]
struct State {
    upload: Option<u64>,
    download: Option<u64>,
    limits: Vec<cobox_schema::config::Limit>,
    total: Option<u64>,
    min_free: u64,
    when_full: WhenFull,
    rules: BTreeMap<Class, Rules>,
    entries: BTreeMap<Class, Entry>,
    /// How long each space keeps earlier versions, by name.
    versions: BTreeMap<String, cobox_schema::config::Versions>,
}

/// The device's policy, shared by the agent's loop, the network and a clock task.
#[derive(Debug)]
pub struct Policy {
    device_up: Arc<Bucket>,
    device_down: Arc<Bucket>,
    /// All seeded data together.
    total: Arc<Quota>,
    state: Mutex<State>,
    wake: Notify,
    /// Told when a seed's quota or the total becomes full.
    full: Arc<Notify>,
    /// How soon changes made through mounts are durable, for every space.
    commit: crate::space::flush::CommitInterval,
}

impl Policy {
    pub fn new() -> Arc<Policy> {
        let full = Arc::new(Notify::new());
        let total = Quota::new(None, None);
        total.on_full(full.clone());
        Arc::new(Policy {
            device_up: Bucket::new(None),
            device_down: Bucket::new(None),
            total,
            state: Mutex::default(),
            wake: Notify::new(),
            full,
            commit: crate::space::flush::CommitInterval::new(cobox_schema::config::COMMIT_INTERVAL),
        })
    }

    /// Wait until a quota becomes full (or `within` passes).
    pub async fn until_full(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.full.notified()).await;
    }

    /// Whether full seeds evict their oldest blocks.
    pub fn evicts(&self) -> bool {
        self.state().when_full == WhenFull::EvictOldest
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The traffic of a space or seed (the same one for as long as the agent runs, so
    /// counters and a quota's usage survive a restart of the seed).
    pub fn traffic(&self, class: &Class) -> Arc<Traffic> {
        let traffic = {
            let mut st = self.state();
            let rules = st.rules.get(class).cloned().unwrap_or_default();
            let entry = st.entries.entry(class.clone()).or_insert_with(|| {
                let quota = matches!(class, Class::Seed(_)).then(|| {
                    let q = Quota::new(rules.quota, Some(self.total.clone()));
                    q.on_full(self.full.clone());
                    q
                });
                // Control traffic has a device cap of its own that is never set.
                let device = |d: &Arc<Bucket>| {
                    if rules.control {
                        Bucket::new(None)
                    } else {
                        d.clone()
                    }
                };
                let quota = quota.filter(|_| !rules.control);
                Entry {
                    traffic: Traffic::new(
                        Caps {
                            own: Bucket::new(None),
                            device: device(&self.device_up),
                        },
                        Caps {
                            own: Bucket::new(None),
                            device: device(&self.device_down),
                        },
                        quota,
                    ),
                    rules: Rules::default(),
                    sync_until: None,
                    window: WindowStatus::default(),
                }
            });
            entry.traffic.clone()
        };
        self.apply(Utc::now());
        traffic
    }

    /// The commit interval every space follows (a new config changes it live).
    pub fn commit_interval(&self) -> crate::space::flush::CommitInterval {
        self.commit.clone()
    }

    /// Take the policy of `config`, and apply it at once.
    pub fn configure(&self, spec: &PolicySpec) {
        self.commit
            .set(std::time::Duration::from_millis(spec.commit_interval_ms));
        {
            let mut st = self.state();
            st.upload = spec.upload.map(|r| r.0);
            st.download = spec.download.map(|r| r.0);
            st.limits = spec.limits.clone();
            st.total = spec.quota.map(|s| s.0);
            st.min_free = spec.min_free.0;
            st.when_full = spec.when_full;
            let rules = |r: &ShareRules| match r.control {
                true => Rules {
                    control: true,
                    ..Rules::default()
                },
                false => Rules {
                    windows: r.windows.clone(),
                    upload: r.upload.map(|r| r.0),
                    download: r.download.map(|r| r.0),
                    quota: r.quota.map(|q| q.0),
                    control: false,
                },
            };
            st.versions = spec
                .spaces
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.versions?)))
                .collect();
            st.rules = spec
                .spaces
                .iter()
                .map(|s| (Class::Space(s.name.clone()), rules(s)))
                .chain(
                    spec.seeds
                        .iter()
                        .map(|s| (Class::Seed(s.name.clone()), rules(s))),
                )
                .collect();
        }
        self.apply(Utc::now());
    }

    /// How long space `space` keeps earlier versions (the default until configured).
    pub fn retention(&self, space: &str) -> cobox_drive::Retention {
        let v = self
            .state()
            .versions
            .get(space)
            .copied()
            .unwrap_or_default();
        cobox_drive::Retention {
            keep_ms: v
                .keep
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            min: v.min as usize,
        }
    }

    /// Open the window of `class` until `until`, whatever its windows say. False when
    /// the device has no such space or seed.
    pub fn sync(&self, class: &Class, until: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let found = match self.state().entries.get_mut(class) {
            Some(e) => {
                e.sync_until = Some(until);
                true
            }
            None => false,
        };
        self.apply(now);
        found
    }

    /// End the one-off sync of `class` (it caught up).
    pub fn end_sync(&self, class: &Class) {
        if let Some(e) = self.state().entries.get_mut(class) {
            e.sync_until = None;
        }
        self.apply(Utc::now());
    }

    /// The classes with a one-off sync running.
    pub fn syncing(&self) -> Vec<Class> {
        self.state()
            .entries
            .iter()
            .filter(|(_, e)| e.sync_until.is_some())
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Seeded data measured on disk: each seed's bytes, and the free space left on the
    /// data directory's file system (the total quota never eats into `min_free`).
    pub fn measured(&self, seeds: &BTreeMap<String, u64>, free: Option<u64>) {
        let st = self.state();
        let mut total = 0;
        for (class, e) in &st.entries {
            if let (Class::Seed(name), Some(q)) = (class, &e.traffic.quota) {
                let used = seeds.get(name).copied().unwrap_or(0);
                q.set_used(used);
                total += used;
            }
        }
        self.total.set_used(total);
        let room = free.map(|f| total + f.saturating_sub(st.min_free));
        let limit = match (st.total, room) {
            (Some(q), Some(r)) => Some(q.min(r)),
            (q, r) => q.or(r),
        };
        self.total.set_limit(limit);
        // Channels that stopped at a quota ask again if there is room now.
        for e in st.entries.values() {
            if e.traffic.quota.as_ref().is_some_and(|q| !q.is_full()) {
                e.traffic.nudge();
            }
        }
    }

    /// With `when_full = "evict-oldest"`: the bytes each full seed should free (down to
    /// 75% of the quota it reached, at most `EVICT_STEP` at a time; for the total, from
    /// the seed storing the most).
    pub fn to_evict(&self) -> Vec<(String, u64)> {
        let st = self.state();
        if st.when_full != WhenFull::EvictOldest {
            return Vec::new();
        }
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        let mut largest: Option<(u64, String)> = None;
        for (class, e) in &st.entries {
            let (Class::Seed(name), Some(q)) = (class, &e.traffic.quota) else {
                continue;
            };
            if let Some(limit) = q.limit().filter(|_| q.is_full()) {
                let need = q.used().saturating_sub(limit / 4 * 3);
                if need > 0 {
                    out.insert(name.clone(), need);
                }
            }
            if largest.as_ref().is_none_or(|(u, _)| q.used() > *u) {
                largest = Some((q.used(), name.clone()));
            }
        }
        if let (Some(limit), true, Some((_, name))) =
            (self.total.limit(), self.total.is_full(), largest)
        {
            let need = self.total.used().saturating_sub(limit / 4 * 3);
            let e = out.entry(name).or_insert(0);
            *e = (*e).max(need);
        }
        out.into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (s, n.min(EVICT_STEP)))
            .collect()
    }

    /// Set every cap, window and quota for time `now`; returns the next boundary of any
    /// schedule or sync.
    pub fn apply(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut st = self.state();
        let active: Vec<_> = window::active(&st.limits, |l| &l.period, now).collect();
        let tightest = |pick: &dyn Fn(&cobox_schema::config::Limit) -> Option<u64>| {
            active.iter().filter_map(|l| pick(l)).min()
        };
        let up = tightest(&|l| l.upload.map(|r| r.0)).or(st.upload);
        let down = tightest(&|l| l.download.map(|r| r.0)).or(st.download);
        self.device_up.set(up);
        self.device_down.set(down);
        let mut next = window::next_boundary(st.limits.iter().map(|l| &l.period), now);
        let State { rules, entries, .. } = &mut *st;
        for (class, e) in entries.iter_mut() {
            e.rules = rules.get(class).cloned().unwrap_or_default();
            e.traffic.upload.own.set(e.rules.upload);
            e.traffic.download.own.set(e.rules.download);
            if let Some(q) = &e.traffic.quota {
                q.set_limit(e.rules.quota);
            }
            if e.sync_until.is_some_and(|t| t <= now) {
                e.sync_until = None;
            }
            e.window = window_status(&e.rules.windows, e.sync_until, now);
            e.traffic.set_open(e.window.open);
            let own = window::next_boundary(e.rules.windows.iter().map(|w| &w.period), now);
            next = [next, own, e.sync_until].into_iter().flatten().min();
        }
        next
    }

    /// What status shows of `class`: its window, its traffic, its quota.
    pub fn status(
        &self,
        class: &Class,
    ) -> Option<(WindowStatus, TrafficStatus, Option<QuotaStatus>)> {
        let st = self.state();
        let e = st.entries.get(class)?;
        let [sent_bytes, received_bytes, sent_blocks, received_blocks] = e.traffic.counters.get();
        let traffic = TrafficStatus {
            sent_bytes,
            received_bytes,
            sent_blocks,
            received_blocks,
            upload_cap: e.traffic.upload.rate(),
            download_cap: e.traffic.download.rate(),
        };
        let quota = e.traffic.quota.as_ref().map(|q| QuotaStatus {
            used: q.used(),
            limit: q.limit(),
            total_used: self.total.used(),
            total_limit: self.total.limit(),
            full: q.is_full(),
            when_full: match st.when_full {
                WhenFull::Stop => "stop".into(),
                WhenFull::EvictOldest => "evict-oldest".into(),
            },
        });
        Some((e.window.clone(), traffic, quota))
    }

    /// Re-apply the policy at every boundary (and at least every minute), until the
    /// runtime stops.
    pub fn spawn_clock(self: &Arc<Self>, rt: &tokio::runtime::Handle) {
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                let Some(policy) = me.upgrade() else { break };
                let now = Utc::now();
                let next = policy.apply(now);
                let wait = next
                    .and_then(|t| (t - now).to_std().ok())
                    .map_or(RECHECK, |d| d.min(RECHECK));
                let wake = async { policy.wake.notified().await };
                let _ = tokio::time::timeout(wait, wake).await;
            }
        });
    }

    /// Re-apply now (the config changed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether replication may run at `now` and why, and when that next changes.
fn window_status(
    windows: &[Window],
    sync_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> WindowStatus {
    let by_windows = window::allowed(windows, now);
    if let Some(until) = sync_until.filter(|t| *t > now && !by_windows) {
        return WindowStatus {
            open: true,
            state: "sync".into(),
            next_change: Some(rfc3339(until)),
        };
    }
    if windows.is_empty() {
        return WindowStatus {
            open: true,
            state: "always".into(),
            next_change: None,
        };
    }
    if by_windows {
        WindowStatus {
            open: true,
            state: "open".into(),
            next_change: next_closing(windows, now).map(rfc3339),
        }
    } else {
        WindowStatus {
            open: false,
            state: "closed".into(),
            next_change: window::next_allowed(windows, now, HORIZON).map(rfc3339),
        }
    }
}

/// When replication, allowed at `now`, stops being allowed.
fn next_closing(windows: &[Window], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let periods: Vec<&Recurring> = windows.iter().map(|w| &w.period).collect();
    let mut t = now;
    for _ in 0..10_000 {
        t = window::next_boundary(periods.iter().copied(), t)?;
        if !window::allowed(windows, t) {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cobox_schema::{Config, FixedHost, Source, validate};

    fn config(text: &str) -> Config {
        let text = format!("version = 1\n{text}");
        let v = validate(&Source::new("c.toml", &text), &FixedHost::example());
        v.config.unwrap_or_else(|| panic!("{:?}", v.diagnostics))
    }

    fn utc(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, mi, 0).unwrap()
    }

    const ADDR: &str = "6b9f2c0a1d4e8f3b7a5c9e2d1f0b8a7c6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";

    #[test]
    fn caps_windows_and_syncs_follow_the_clock() {
        let c = config(&format!(
            r#"
[network]
upload = "10 MiB/s"
[[network.limit]]
when = "0 9 * * 1-5"
for = "8h"
zone = "Europe/Berlin"
upload = "1 MiB/s"

[[seed]]
name = "river"
address = "{ADDR}"
quota = "1 GiB"
download = "2 MiB/s"
windows = [{{ when = "0 22 * * *", for = "6h", zone = "UTC" }}]
"#
        ));
        let p = Policy::new();
        p.configure(&PolicySpec::of(&c));
        let river = Class::Seed("river".into());
        let t = p.traffic(&river);
        // Monday 9 March 10:00 UTC = 11:00 in Berlin: work hours.
        let next = p.apply(utc(9, 10, 0));
        assert_eq!(
            t.upload.rate(),
            Some(1 << 20),
            "the scheduled cap is tighter"
        );
        assert_eq!(t.download.rate(), Some(2 << 20));
        assert!(!t.is_open());
        assert_eq!(next, Some(utc(9, 16, 0)), "17:00 in Berlin ends the limit");
        let (w, _, q) = p.status(&river).unwrap();
        assert_eq!(w.state, "closed");
        assert_eq!(w.next_change.as_deref(), Some("2026-03-09T22:00:00Z"));
        assert_eq!(q.unwrap().limit, Some(1 << 30));

        p.apply(utc(9, 23, 0));
        assert_eq!(
            t.upload.rate(),
            Some(10 << 20),
            "after hours: the fixed cap"
        );
        assert!(t.is_open());
        let (w, ..) = p.status(&river).unwrap();
        assert_eq!(
            (w.state.as_str(), w.next_change.as_deref()),
            ("open", Some("2026-03-10T04:00:00Z"))
        );

        // A one-off sync opens a closed window until it ends or is ended.
        assert!(p.sync(&river, utc(9, 12, 0), utc(9, 11, 0)));
        p.apply(utc(9, 11, 0));
        assert!(t.is_open());
        assert_eq!(p.status(&river).unwrap().0.state, "sync");
        assert_eq!(p.apply(utc(9, 11, 30)), Some(utc(9, 12, 0)));
        p.apply(utc(9, 12, 0));
        assert!(!t.is_open(), "the sync ended");
        assert!(p.syncing().is_empty());
        assert!(!p.sync(&Class::Seed("nope".into()), utc(9, 12, 0), utc(9, 11, 0)));
    }

    #[test]
    fn the_total_quota_keeps_min_free_on_the_disk() {
        let c = config(&format!(
            r#"
[storage]
quota = "10 GiB"
min_free = "1 GiB"
[[seed]]
name = "river"
address = "{ADDR}"
"#
        ));
        let p = Policy::new();
        p.configure(&PolicySpec::of(&c));
        let t = p.traffic(&Class::Seed("river".into()));
        let q = t.quota.clone().unwrap();
        let used = BTreeMap::from([("river".to_string(), 100 << 20)]);
        p.measured(&used, Some(3 << 30));
        assert_eq!(q.used(), 100 << 20);
        // 100 MiB used + (3 GiB free - 1 GiB kept) is below the 10 GiB quota.
        assert!(q.reserve((2 << 30) - 1));
        assert!(!q.reserve(2), "the disk's reserve is not touched");
        q.stored((2 << 30) - 1, (2 << 30) - 1);
        assert!(!q.reserve(2));
        assert!(q.is_full());
        let (_, _, status) = p.status(&Class::Seed("river".into())).unwrap();
        let status = status.unwrap();
        assert_eq!(status.total_limit, Some((100 << 20) + (2 << 30)));
        assert!(status.full);
    }

    #[test]
    fn a_full_seed_set_to_evict_frees_down_to_three_quarters() {
        let c = config(&format!(
            r#"
[storage]
when_full = "evict-oldest"
[[seed]]
name = "river"
address = "{ADDR}"
quota = "1 GiB"
"#
        ));
        let p = Policy::new();
        p.configure(&PolicySpec::of(&c));
        let q = p
            .traffic(&Class::Seed("river".into()))
            .quota
            .clone()
            .unwrap();
        assert!(p.to_evict().is_empty(), "not full");
        assert!(q.reserve(1 << 30));
        q.stored(1 << 30, 1 << 30);
        assert!(!q.reserve(1));
        assert_eq!(p.to_evict(), vec![("river".to_string(), 256 << 20)]);
        // Measured lower after the eviction: nothing more to do.
        p.measured(&BTreeMap::from([("river".to_string(), 700 << 20)]), None);
        assert!(p.to_evict().is_empty());
    }
}
