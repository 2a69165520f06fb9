//! The raw shape of `cobox.toml`, as serde reads it and as the JSON Schema describes it.
//!
//! These types accept any well-typed file; meaning (units, keys, paths, schedules) is
//! checked by [`crate::validate`], which is the only way to get a [`crate::Config`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cobox device configuration (`cobox.toml`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cobox.toml")]
pub struct RawConfig {
    /// Format version of this file. Only `1` exists.
    pub version: u32,
    /// This device: its name and where it keeps data and mounts.
    #[serde(default)]
    pub device: RawDevice,
    /// How this device reaches its peers, and device-wide bandwidth caps.
    #[serde(default)]
    pub network: RawNetwork,
    /// Limits on the disk space used for data seeded for others.
    #[serde(default)]
    pub storage: RawStorage,
    /// Spaces this device is a member of (one `[[space]]` table each).
    #[serde(default, rename = "space")]
    pub spaces: Vec<RawSpace>,
    /// Spaces this device seeds blindly, without being able to read them (one `[[seed]]` table each).
    #[serde(default, rename = "seed")]
    pub seeds: Vec<RawSeed>,
    /// Identities allowed to change this device's configuration remotely.
    #[serde(default)]
    pub admins: RawAdmins,
    /// The local control API.
    #[serde(default)]
    pub api: RawApi,
}

/// This device.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// A name other members see for this device. Defaults to the host name.
    pub name: Option<String>,
    /// Where keys, feeds and agent state live (absolute, or starting with `~/`).
    /// Defaults to `$XDG_DATA_HOME/cobox`.
    pub data_dir: Option<String>,
    /// The directory under which spaces without an explicit `mount` are mounted.
    /// Defaults to `~/cobox`.
    pub mount_root: Option<String>,
    /// How soon a file closed in a mounted space is durable, like `"1s"`: changes closed
    /// within it share one sync, as a local file system's journal does (`fsync` is durable
    /// at once). `"0s"`: every close is durable before it returns. Default `"1s"`, at most
    /// `"60s"`.
    pub commit_interval: Option<String>,
}

/// Connectivity and device-wide bandwidth.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// Addresses (`ip:port`) on which to accept direct TCP connections from `peers` of others.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Peers to dial directly over TCP: `"host:port"`, or `"KEY@host:port"` to require that
    /// the peer proves the identity KEY (64 hex characters).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Find peers on the local network by mDNS. Default `true`.
    pub lan_discovery: Option<bool>,
    /// Find peers across the internet through the mainline DHT. Default `true`.
    pub internet_discovery: Option<bool>,
    /// Relay servers (URLs) that help peers behind NATs meet. Absent: the default public
    /// relays; `[]`: no relays.
    pub relays: Option<Vec<String>>,
    /// Ask the router to open a port (UPnP, NAT-PMP, PCP). Default `true`.
    pub portmapper: Option<bool>,
    /// Device-wide upload cap, like `"2 MiB/s"`. Absent: unlimited.
    pub upload: Option<String>,
    /// Device-wide download cap, like `"10 MiB/s"`. Absent: unlimited.
    pub download: Option<String>,
    /// Caps that apply during scheduled periods, replacing `upload`/`download` while active.
    #[serde(default)]
    pub limit: Vec<RawLimit>,
}

/// A bandwidth cap that applies for a while after each firing of a cron schedule.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// When the period starts: a cron expression (`min hour day month weekday`, optionally
    /// with a leading seconds field and a trailing year field).
    pub when: String,
    /// How long the period lasts, like `"8h"` or `"90m"`.
    #[serde(rename = "for")]
    pub duration: String,
    /// IANA time zone of `when`, like `"Europe/London"`. Default `UTC`.
    pub zone: Option<String>,
    /// Upload cap during the period, like `"512 KiB/s"`.
    pub upload: Option<String>,
    /// Download cap during the period.
    pub download: Option<String>,
}

/// Disk space used for seeded data.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Total size of all seeded data, like `"50 GiB"`. Absent: unlimited.
    pub quota: Option<String>,
    /// What to do when a quota is reached. Default `stop`.
    pub when_full: Option<WhenFull>,
    /// Stop downloading when the data disk has less free space than this. Default `"1 GiB"`.
    pub min_free: Option<String>,
}

/// What to do when seeded data reaches its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Download nothing more until space is freed.
    #[default]
    Stop,
    /// Clear the oldest seeded blocks to make room (never data of this device's own spaces).
    EvictOldest,
}

/// A space this device is a member of.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpace {
    /// A short name for the space on this device (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The space's address (64 hex characters). Absent: a new space is created on first apply.
    pub address: Option<String>,
    /// A sealed invite code to join the space with. Only this device can open it, so it is
    /// safe to keep in a shared repository.
    pub invite: Option<String>,
    /// Where to mount the space: a path, `true` for `mount_root/NAME` (the default), or
    /// `false` to not mount it.
    pub mount: Option<RawMount>,
    /// Identities (64 hex characters) allowed to seed this space.
    #[serde(default)]
    pub seeders: Vec<String>,
    /// Identities (64 hex characters) removed from this space: members, seeders, a lost
    /// device. A removal is a fact: keep the line (taking it out readmits nobody).
    #[serde(default)]
    pub removed: Vec<String>,
    /// How many up-to-date copies besides this device the space should have; fewer makes
    /// the space Degraded. Default `0`.
    pub min_replicas: Option<u32>,
    /// When the space may replicate. No windows: always.
    #[serde(default)]
    pub windows: Vec<RawWindow>,
    /// Upload cap for this space, like `"1 MiB/s"`.
    pub upload: Option<String>,
    /// Download cap for this space.
    pub download: Option<String>,
    /// How long earlier versions of files (replaced or deleted) are kept before their
    /// blocks are cleared. Default `{ keep = "30d", min = 0 }`.
    pub versions: Option<RawVersions>,
}

/// How long earlier versions of a space's files are kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVersions {
    /// How long a version is kept after a newer one replaced it (or the file was deleted),
    /// like `"30d"` or `"12h"`; `"0s"` keeps none; `"forever"` keeps all. Default `"30d"`.
    pub keep: Option<String>,
    /// How many of the newest earlier versions of each file are kept whatever their age
    /// (a deleted file's last versions too). Default `0`.
    #[schemars(range(max = 10000))]
    pub min: Option<u32>,
}

/// Where a space is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawMount {
    /// `true`: under `mount_root`; `false`: not mounted.
    Enabled(bool),
    /// An absolute path, or one starting with `~/`.
    Path(String),
}

/// A period in which replication is allowed or denied.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// `allow` (the default) or `deny`. Deny beats allow.
    pub action: Option<WindowAction>,
    /// When the window opens: a cron expression (`min hour day month weekday`, optionally
    /// with a leading seconds field and a trailing year field).
    pub when: String,
    /// How long the window stays open, like `"8h"`.
    #[serde(rename = "for")]
    pub duration: String,
    /// IANA time zone of `when`, like `"Europe/Berlin"`. Default `UTC`.
    pub zone: Option<String>,
}

/// Whether a window allows or denies replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowAction {
    /// Replication may run inside the window.
    #[default]
    Allow,
    /// Replication may not run inside the window, whatever the allow windows say.
    Deny,
}

/// A space seeded blindly: stored and served, never readable here.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSeed {
    /// A short name for the seed on this device (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The address of the space to seed (64 hex characters).
    pub address: String,
    /// Most disk space this seed may use, like `"10 GiB"`. Absent: only the total quota applies.
    pub quota: Option<String>,
    /// The seeded space is a fleet (admins' configs, changes of the admin set, devices'
    /// reports): its control traffic is never held back by caps, windows or quotas.
    /// Default `false`.
    pub fleet: Option<bool>,
    /// When the seed may replicate. No windows: always.
    #[serde(default)]
    pub windows: Vec<RawWindow>,
    /// Upload cap for this seed.
    pub upload: Option<String>,
    /// Download cap for this seed.
    pub download: Option<String>,
}

/// Remote administration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmins {
    /// Identities (64 hex characters) allowed to change this device's config and read its
    /// status. Read from the first config the device accepts; later the admins change the
    /// set themselves (`coboxctl admins`), and a local edit of this table takes the device
    /// back (reported to the admins).
    #[serde(default)]
    pub keys: Vec<String>,
    /// How many of the keys must sign a change of the admin set. Default `1`.
    #[schemars(range(min = 1, max = 255))]
    pub threshold: Option<u8>,
    /// The `[[space]]` (its name here) the admins publish configs in and this device
    /// reports its status in: the fleet. An admin's device names it too.
    pub fleet: Option<String>,
    /// After applying a config from the admins, how long the device waits to reach again
    /// a peer it reached before; if it reaches none, it goes back to the config it ran and
    /// reports `rolled-back`. `"0s"`: no probation. Default `"10m"`.
    pub probation: Option<String>,
}

/// The local control API.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Path of the control socket (mode 0600). Default `DATA_DIR/coboxd.sock`.
    pub socket: Option<String>,
    /// Serve Prometheus metrics on this `ip:port`. Absent: off.
    pub metrics: Option<String>,
    /// Serve the web dashboard on this `ip:port`, like `"127.0.0.1:8384"`. Absent: off. An
    /// address other than loopback needs `web_password_hash` or `web_token_file`.
    pub web: Option<String>,
    /// The dashboard's password as an argon2 PHC string (`$argon2id$v=19$...`): asked for
    /// when the dashboard is reached other than on loopback.
    pub web_password_hash: Option<String>,
    /// A file holding the dashboard's token (its first line): asked for when the dashboard
    /// is reached other than on loopback.
    pub web_token_file: Option<String>,
}
