//! The validated configuration: the desired state of a device.
//!
//! A [`Config`] can only be obtained from [`crate::validate`]; every value in it has been
//! checked, every default filled in and every path resolved.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::hexkey::{Address, PublicKey};
pub use crate::raw::{WhenFull, WindowAction};
use crate::units::{Rate, Size, format_duration};
use crate::window::{Recurring, Window};

/// A device's desired state.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive] // only validation builds a `Config`
pub struct Config {
    pub device: Device,
    pub network: Network,
    pub storage: Storage,
    pub spaces: Vec<Space>,
    pub seeds: Vec<Seed>,
    pub admins: Admins,
    pub api: Api,
}

/// Who may steer this device from elsewhere, and where they publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admins {
    pub keys: Vec<PublicKey>,
    /// How many keys must sign a change of the admin set.
    pub threshold: u8,
    /// The name of the space that is the fleet.
    pub fleet: Option<String>,
    /// How long a config from the admins has to reach a peer reached before (zero: no
    /// probation).
    #[serde(serialize_with = "millis")]
    pub probation: std::time::Duration,
}

/// The default [`Admins::probation`].
pub const PROBATION: std::time::Duration = std::time::Duration::from_secs(600);

impl Default for Admins {
    fn default() -> Admins {
        Admins {
            keys: Vec::new(),
            threshold: 1,
            fleet: None,
            probation: PROBATION,
        }
    }
}

impl Admins {
    /// Whether admins steer this device.
    pub fn managed(&self) -> bool {
        !self.keys.is_empty() && self.fleet.is_some()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// Absent: the agent uses the host name.
    pub name: Option<String>,
    pub data_dir: PathBuf,
    pub mount_root: PathBuf,
    /// How soon a closed file is durable (zero: at the close).
    #[serde(serialize_with = "millis")]
    pub commit_interval: std::time::Duration,
}

/// The default [`Device::commit_interval`].
pub const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest [`Device::commit_interval`].
pub const MAX_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

fn millis<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub listen: Vec<SocketAddr>,
    pub peers: Vec<Peer>,
    pub lan_discovery: bool,
    pub internet_discovery: bool,
    pub relays: Relays,
    pub portmapper: bool,
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
    pub limits: Vec<Limit>,
}

/// Which relay servers to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "urls")]
pub enum Relays {
    /// The default public relays.
    Default,
    /// No relays: direct connections only.
    Disabled,
    /// These relays only.
    Custom(Vec<String>),
}

/// A peer dialled directly over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub host: String,
    pub port: u16,
    /// The identity the peer must prove, when given.
    pub key: Option<PublicKey>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "{key}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for Peer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A scheduled bandwidth cap.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub period: Recurring,
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    /// Total size of seeded data; absent: unlimited.
    pub quota: Option<Size>,
    pub when_full: WhenFull,
    pub min_free: Size,
}

#[derive(Debug, Clone, Serialize)]
pub struct Space {
    pub name: String,
    /// Absent: the space is created on first apply.
    pub address: Option<Address>,
    pub invite: Option<String>,
    /// Absent: not mounted.
    pub mount: Option<PathBuf>,
    pub seeders: Vec<PublicKey>,
    /// Identities removed from the space (signed removals that stay).
    pub removed: Vec<PublicKey>,
    pub min_replicas: u32,
    pub windows: Vec<Window>,
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
    pub versions: Versions,
}

/// How long earlier versions of a space's files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Versions {
    /// After a newer version replaced one (or its file was deleted); `None`: forever.
    #[serde(with = "keep_secs")]
    pub keep: Option<std::time::Duration>,
    /// The newest this many of each file are kept whatever their age.
    pub min: u32,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            keep: Some(std::time::Duration::from_secs(30 * 86_400)),
            min: 0,
        }
    }
}

/// `keep` as whole seconds, or `"forever"`.
mod keep_secs {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(
        keep: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match keep {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_str("forever"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    pub name: String,
    pub address: Address,
    pub quota: Option<Size>,
    pub windows: Vec<Window>,
    pub upload: Option<Rate>,
    pub download: Option<Rate>,
    /// A fleet's control traffic: never capped, windowed or held by quotas.
    pub fleet: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub socket: PathBuf,
    pub metrics: Option<SocketAddr>,
    /// Where the web dashboard listens, when it is on.
    pub web: Option<SocketAddr>,
    /// How the dashboard admits a browser that is not on loopback.
    pub web_login: WebLogin,
}

/// What the web dashboard asks of a browser reaching it other than on loopback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebLogin {
    /// An argon2 PHC string of the password.
    pub password_hash: Option<String>,
    /// A file whose first line is the token.
    pub token_file: Option<PathBuf>,
}

impl WebLogin {
    /// Whether any login is configured.
    pub fn is_set(&self) -> bool {
        self.password_hash.is_some() || self.token_file.is_some()
    }
}

impl Serialize for Recurring {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Recurring", 3)?;
        st.serialize_field("when", self.when.source())?;
        st.serialize_field("for", &format_duration(self.duration))?;
        st.serialize_field("zone", self.zone.name())?;
        st.end()
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Window", 4)?;
        st.serialize_field("action", &self.action)?;
        st.serialize_field("when", self.period.when.source())?;
        st.serialize_field("for", &format_duration(self.period.duration))?;
        st.serialize_field("zone", self.period.zone.name())?;
        st.end()
    }
}
