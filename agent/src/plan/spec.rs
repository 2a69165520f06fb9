//! What the device's network-wide resources should be, derived from the config (pure): the
//! traffic and storage policy in force, and the iroh endpoint's settings.

use cobox_schema::Config;
use cobox_schema::config::{self, Limit, WhenFull};
use cobox_schema::units::{Rate, Size};
use cobox_schema::window::Window;
use serde::Serialize;

/// The caps, windows and quota of one space or seed.
#[derive(Debug, Clone, Serialize)]
pub struct ShareRules {
    pub name: String,
    pub windows: Vec<Window>,
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
    /// Seeds only.
    pub quota: Option<Size>,
    /// Spaces only: how long earlier versions are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<config::Versions>,
    /// The fleet: control traffic, never capped, windowed or held by quotas.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
}

/// The traffic and storage policy: device caps and their schedule, the storage limits and
/// every space's and seed's rules.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySpec {
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
    pub limits: Vec<Limit>,
    pub quota: Option<Size>,
    pub min_free: Size,
    pub when_full: WhenFull,
    pub spaces: Vec<ShareRules>,
    pub seeds: Vec<ShareRules>,
    /// How soon a file closed in a mount is durable, in milliseconds.
    pub commit_interval_ms: u64,
}

impl PolicySpec {
    pub fn of(c: &Config) -> PolicySpec {
        PolicySpec {
            upload: c.network.upload,
            download: c.network.download,
            limits: c.network.limits.clone(),
            quota: c.storage.quota,
            min_free: c.storage.min_free,
            when_full: c.storage.when_full,
            commit_interval_ms: c.device.commit_interval.as_millis() as u64,
            spaces: c
                .spaces
                .iter()
                .map(|s| ShareRules {
                    name: s.name.clone(),
                    windows: s.windows.clone(),
                    upload: s.upload,
                    download: s.download,
                    quota: None,
                    versions: Some(s.versions),
                    control: c.admins.fleet.as_deref() == Some(s.name.as_str()),
                })
                .collect(),
            seeds: c
                .seeds
                .iter()
                .map(|s| ShareRules {
                    name: s.name.clone(),
                    windows: s.windows.clone(),
                    upload: s.upload,
                    download: s.download,
                    quota: s.quota,
                    versions: None,
                    control: s.fleet,
                })
                .collect(),
        }
    }

    /// The policy as JSON, field by field (what `diff` compares).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a policy serializes")
    }
}

/// Two policies are the same when every rule reads the same (schedules compare by what
/// they were written as).
impl PartialEq for PolicySpec {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

impl Eq for PolicySpec {}

/// The `[network]` settings the iroh endpoint runs with; a change restarts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointSpec {
    pub relays: config::Relays,
    pub portmapper: bool,
    pub mdns: bool,
    pub mainline: bool,
}

impl EndpointSpec {
    /// The endpoint the config wants, if any: only when it could reach someone (some way
    /// to find peers or meet them).
    pub fn of(n: &config::Network) -> Option<EndpointSpec> {
        let spec = EndpointSpec {
            relays: n.relays.clone(),
            portmapper: n.portmapper,
            mdns: n.lan_discovery,
            mainline: n.internet_discovery,
        };
        (spec.mdns || spec.mainline || spec.relays != config::Relays::Disabled).then_some(spec)
    }

    /// In one line, for plans and conditions.
    pub fn describe(&self) -> String {
        let relays = match &self.relays {
            config::Relays::Default => "default relays".to_string(),
            config::Relays::Disabled => "no relays".to_string(),
            config::Relays::Custom(urls) => format!("relays {}", urls.join(", ")),
        };
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "mDNS {}, DHT {}, {relays}, port mapping {}",
            on(self.mdns),
            on(self.mainline),
            on(self.portmapper)
        )
    }
}
