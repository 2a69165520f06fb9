//! The control API's wire types (HTTP/JSON under `/v1` on the agent's unix socket), shared
//! by the agent and `coboxctl`; their JSON Schemas make the OpenAPI document's components.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::LocatedDiagnostic;

/// The path prefix of every endpoint.
pub const PREFIX: &str = "/v1";

/// Stable error codes of the API.
pub mod error_code {
    pub const NOT_FOUND: &str = "not-found";
    pub const METHOD_NOT_ALLOWED: &str = "method-not-allowed";
    pub const BAD_REQUEST: &str = "bad-request";
    pub const CONFIG_INVALID: &str = "config-invalid";
    pub const NO_SUCH_GENERATION: &str = "no-such-generation";
    pub const NO_SUCH_SPACE: &str = "no-such-space";
    pub const NO_IDENTITY: &str = "no-identity";
    pub const INVALID_INVITE: &str = "invalid-invite";
    pub const NOT_CONFIRMED: &str = "not-confirmed";
    pub const STILL_DECLARED: &str = "still-declared";
    pub const AGENT_STOPPING: &str = "agent-stopping";
    pub const INTERNAL: &str = "internal";
    pub const TOO_LARGE: &str = "too-large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported-media-type";
    pub const PERMISSION_DENIED: &str = "permission-denied";
}

/// The largest request body the API reads: a config of [`crate::source::MAX_CONFIG_BYTES`]
/// fits with room for JSON's escapes.
pub const MAX_BODY_BYTES: usize = 8 * crate::source::MAX_CONFIG_BYTES;

/// Every error response: a stable code, a lowercase message naming the object, and the
/// diagnostics when a config was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<WireDiagnostic>,
}

/// A config diagnostic with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WireDiagnostic {
    /// `error` or `warning`.
    pub severity: String,
    pub code: String,
    pub message: String,
    pub path: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl From<&LocatedDiagnostic> for WireDiagnostic {
    fn from(d: &LocatedDiagnostic) -> Self {
        WireDiagnostic {
            severity: match d.severity {
                crate::Severity::Error => "error".into(),
                crate::Severity::Warning => "warning".into(),
            },
            code: d.code.to_string(),
            message: d.message.clone(),
            path: d.path.clone(),
            file: d.file.clone(),
            line: d.line,
            column: d.column,
            help: d.help.clone(),
        }
    }
}

impl std::fmt::Display for WireDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.line, self.column, self.severity, self.code, self.message
        )?;
        if let Some(h) = &self.help {
            write!(f, " (help: {h})")?;
        }
        Ok(())
    }
}

/// The kinds of resources the agent reports on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Config,
    Identity,
    /// The traffic and storage policy in force: caps, schedules, windows, quotas.
    Policy,
    Space,
    Mount,
    Seed,
    /// A TCP address the device listens on for peers.
    Listener,
    /// A `peers` entry the device keeps dialling.
    Dialer,
    /// The iroh endpoint (LAN and internet discovery, relays).
    Endpoint,
    /// Following the device's admins in a fleet space.
    Fleet,
    Peer,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Config => "config",
            ResourceKind::Identity => "identity",
            ResourceKind::Policy => "policy",
            ResourceKind::Space => "space",
            ResourceKind::Mount => "mount",
            ResourceKind::Seed => "seed",
            ResourceKind::Listener => "listener",
            ResourceKind::Dialer => "dialer",
            ResourceKind::Endpoint => "endpoint",
            ResourceKind::Fleet => "fleet",
            ResourceKind::Peer => "peer",
        })
    }
}

/// Condition types, as in Kubernetes: `Ready` is always present.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ConditionType {
    Ready,
    Progressing,
    Degraded,
    Stalled,
}

/// One condition of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: ConditionType,
    pub status: bool,
    /// A CamelCase word, like `Mounted`, `ActionFailed`, `ConfigInvalid`.
    pub reason: String,
    pub message: String,
    /// When `status` last changed (RFC 3339, UTC).
    pub since: String,
}

/// What the agent reports of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceStatus {
    pub kind: ResourceKind,
    pub name: String,
    /// The generation of the config this status was computed for.
    pub observed_generation: u64,
    pub conditions: Vec<Condition>,
    /// Facts such as the address or mount path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// For a space or seed: the other devices that replicated it with this one, sorted by
    /// peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
    /// For a space or seed: whether it may replicate now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowStatus>,
    /// For a space or seed: what it moved and its caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficStatus>,
    /// For a seed: the storage its data takes against its quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
    /// For a space: what its content takes, as of the last reclaim pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageStatus>,
}

/// What a space's content takes on this device, in bytes; a block several files share
/// (copies, repeated content) counts once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UsageStatus {
    /// Referred to by the current files.
    pub tree_bytes: u64,
    /// Referred to only by earlier versions kept by the space's retention.
    pub versions_bytes: u64,
    /// Stored here with nothing referring to them: cleared by the next reclaim pass (or
    /// kept while an open file still refers to them).
    pub reclaimable_bytes: u64,
    /// What the space's feeds take on this device's disk.
    pub on_disk_bytes: u64,
    pub files: u64,
    /// Earlier versions kept.
    pub versions: u64,
    /// The retention in force, like `keep 30d, min 0`.
    pub retention: String,
}

/// Whether a space or seed may replicate now, and until when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WindowStatus {
    pub open: bool,
    /// `always` (no windows), `open` (inside its windows), `closed` (outside them), or
    /// `sync` (a one-off sync outside them).
    pub state: String,
    /// When it next closes (open) or opens (closed), if ever (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_change: Option<String>,
}

/// Block data a space or seed moved since the agent started, and the caps in force (the
/// tighter of its own and the device's; bytes per second).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficStatus {
    pub sent_bytes: u64,
    pub received_bytes: u64,
    pub sent_blocks: u64,
    pub received_blocks: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_cap: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_cap: Option<u64>,
}

/// Bytes a seed stores on disk against its quota and the total for seeded data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QuotaStatus {
    pub used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    pub total_used: u64,
    /// The total quota, lowered so the disk keeps `min_free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_limit: Option<u64>,
    /// A download was refused for want of room.
    pub full: bool,
    /// `stop` or `evict-oldest`.
    pub when_full: String,
}

/// Another device's copy of a space, as this device knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Replica {
    /// The device's identity public key.
    pub peer: String,
    /// `member`, `seeder`, or `unknown` (not in this device's roster).
    pub role: String,
    /// Whether it is connected now.
    pub connected: bool,
    /// It holds every block this device holds of every feed of the space.
    pub up_to_date: bool,
    /// Blocks it lacks of what this device holds.
    pub behind_blocks: u64,
    /// About the bytes of those blocks.
    #[serde(default)]
    pub behind_bytes: u64,
    /// Since when it has been behind, as this device saw it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind_since: Option<String>,
    /// When it last told this device what it holds (RFC 3339).
    pub last_seen: String,
    /// Not seen by this device: the member (identity) whose health report in the space log
    /// this comes from, as of `last_seen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
    /// Blocks it holds (from the start of each feed) that this device lacks: what this
    /// device has still to fetch, from it or from others. Seen first hand only.
    #[serde(default)]
    pub ahead_blocks: u64,
    /// Blocks asked of it that have not arrived yet.
    #[serde(default)]
    pub fetching: u64,
}

impl ResourceStatus {
    pub fn condition(&self, kind: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    pub fn is_ready(&self) -> bool {
        self.condition(ConditionType::Ready)
            .is_some_and(|c| c.status)
    }

    pub fn is_stalled(&self) -> bool {
        self.condition(ConditionType::Stalled)
            .is_some_and(|c| c.status)
    }
}

/// The agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentInfo {
    pub version: String,
    pub pid: u32,
    /// RFC 3339.
    pub started: String,
    /// The device's public key, once it has one.
    pub identity: Option<String>,
    /// The config file it follows, or `<embedded default>`.
    pub config: String,
    pub data_dir: String,
}

/// The last edit of the config that was refused; the running generation stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigInvalid {
    pub since: String,
    pub diagnostics: Vec<WireDiagnostic>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    pub agent: AgentInfo,
    /// The running generation.
    pub generation: u64,
    /// The generation the last finished reconcile worked on.
    pub observed_generation: u64,
    /// Nothing left to do for the running generation.
    pub converged: bool,
    /// Reconciles since the agent started.
    pub reconciles: u64,
    /// How long the last reconcile took (observing, planning, acting), in microseconds.
    pub last_reconcile_us: u64,
    /// Reconciles in which an action failed.
    #[serde(default)]
    pub reconcile_failures: u64,
    /// Time spent reconciling since the agent started, in microseconds.
    #[serde(default)]
    pub reconcile_us_total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_invalid: Option<ConfigInvalid>,
    /// Sorted by kind, then name.
    pub resources: Vec<ResourceStatus>,
    /// Where the device listens and which peers it replicates with, now.
    #[serde(default)]
    pub network: NetworkStatus,
    /// The device's admins and what it took from them, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admins: Option<AdminsStatus>,
}

/// The device's admins as it follows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdminsStatus {
    /// The space the admins publish in.
    pub fleet: Option<String>,
    /// The admin set in force, sorted.
    pub keys: Vec<String>,
    pub threshold: u8,
    /// The head of the authority chain (hex).
    pub head: String,
    /// Changes of the admin set applied since the genesis.
    pub changes: usize,
    /// The generation of the last envelope accepted (0: none).
    pub admin_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_envelope: Option<EnvelopeOutcome>,
    /// Envelopes refused, newest last (at most 16).
    #[serde(default)]
    pub refused: Vec<RefusedEnvelope>,
    /// Set when the device's owner took it back locally: when, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_override: Option<String>,
    /// Set while the device runs a config edited locally after one from its admins (the
    /// file, the socket): drift the admins see, never lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
}

/// What became of an envelope the device accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvelopeOutcome {
    pub generation: u64,
    /// The admin who signed it.
    pub signer: String,
    /// `applied`, `unchanged`, `refused`, `probation` (applied, not yet judged: success
    /// once a peer reached before is reached again) or `rolled-back` (probation put the
    /// config before it back).
    pub outcome: String,
    /// The local generation it became, when applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An envelope the device did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedEnvelope {
    pub generation: u64,
    pub signer: String,
    pub digest: String,
    /// `not-an-admin`, `replayed`, `forked`, `ahead`, `bad-signature`, `other-fleet`.
    pub reason: String,
}

/// A managed device's report to its admins, published in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceReport {
    /// The device's identity.
    pub device: String,
    pub name: String,
    /// When it was written (RFC 3339).
    pub at: String,
    /// The running generation and its config's digest.
    pub generation: u64,
    pub digest: String,
    pub source: GenerationSource,
    pub converged: bool,
    /// Resources not ready, as `kind name: reason`.
    #[serde(default)]
    pub not_ready: Vec<String>,
    pub admins: AdminsStatus,
    /// The device's recent events about its config and its admins, oldest first (at most
    /// 16).
    #[serde(default)]
    pub events: Vec<Event>,
    /// The running config's text, when it changed since the device's previous report
    /// (readers keep the last one they saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// `POST /v1/remote/apply`: publish a device's desired config as an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteApplyRequest {
    /// The device's identity.
    pub target: String,
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteApplyResponse {
    pub target: String,
    /// The envelope's generation for that device.
    pub generation: u64,
    pub digest: String,
    pub fleet: String,
}

/// `POST /v1/admins/change`: propose a change of the admin set, signed by this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminChangeRequest {
    /// `add`, `remove`, `revoke` (a compromised key: never added again) or `threshold`.
    pub change: String,
    /// The key added, removed or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The new threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
}

/// `POST /v1/admins/sign`: add this device's signature to a proposed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminSignRequest {
    /// The entry as `admins change` printed it (base64).
    pub entry: String,
}

/// A change of the admin set as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdminEntryResponse {
    /// The entry with every signature known here (base64): what co-signers sign.
    pub entry: String,
    pub digest: String,
    pub signatures: usize,
    /// Signatures it needs.
    pub threshold: u8,
    /// Whether the admin set in force here took it.
    pub applied: bool,
}

/// `POST /v1/remote/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteStatusRequest {
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoteStatusResponse {
    /// The newest report of the device read here, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DeviceReport>,
    /// Seconds since it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// The last envelope published for the device, as seen here (0: none).
    pub published: u64,
    /// The device's running config as last reported, when a report carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// The device on the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkStatus {
    /// TCP addresses listened on (ports resolved), sorted.
    pub listening: Vec<String>,
    /// Connected peers with a proven identity, sorted by identity.
    pub peers: Vec<PeerStatus>,
}

/// The files of a space whose content is not all on this device yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToFetch {
    /// The first of them, in path order.
    pub files: Vec<FileToFetch>,
    /// How many there are in all.
    pub total: usize,
}

/// One file whose content is not all here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileToFetch {
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Blocks of its content.
    pub blocks: u64,
    /// Of those, blocks this device does not hold.
    pub missing: u64,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerStatus {
    /// The peer's identity public key.
    pub identity: String,
    /// The device name it gave in a space both share, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The spaces and seeds replicated with it, by name, sorted.
    pub shared: Vec<String>,
    /// How the session reaches it: `tcp` or `iroh` (absent from agents that do not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// `outbound` when this device dialled, `inbound` when the peer did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The address dialled or accepted from (tcp), or the path iroh uses now
    /// (`direct ADDR` or `relay URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Since when the session has run: when the peer proved its identity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Bytes sent to it on this session, on the wire (encrypted, with framing).
    #[serde(default)]
    pub sent_bytes: u64,
    /// Bytes received from it on this session, on the wire.
    #[serde(default)]
    pub received_bytes: u64,
}

impl PeerStatus {
    /// How the peer is connected, in words: `tcp, dialled 10.0.0.2:7000`, `tcp, accepted
    /// from 10.0.0.3:51000`, `iroh, dialled relay https://…`; `not known` from an agent
    /// that does not say.
    pub fn connection(&self) -> String {
        let Some(transport) = &self.transport else {
            return "not known".into();
        };
        let how = match self.direction.as_deref() {
            Some("outbound") => Some("dialled"),
            Some("inbound") => Some("accepted"),
            _ => None,
        };
        let mut out = transport.clone();
        if let Some(how) = how {
            out = format!("{out}, {how}");
        }
        if let Some(route) = self.route.as_deref().filter(|r| !r.is_empty()) {
            let join = match how {
                None => ", ",
                Some("accepted") if transport == "tcp" => " from ",
                Some(_) => " ",
            };
            out = format!("{out}{join}{route}");
        }
        out
    }
}

/// Where a generation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GenerationSource {
    /// The config file (at start, or edited).
    File,
    /// The embedded default config.
    Embedded,
    /// `POST /v1/apply`.
    Api,
    /// `POST /v1/rollback`.
    Rollback,
    /// An admin of a space, through the space log.
    RemoteAdmin,
}

impl std::fmt::Display for GenerationSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GenerationSource::File => "file",
            GenerationSource::Embedded => "embedded",
            GenerationSource::Api => "api",
            GenerationSource::Rollback => "rollback",
            GenerationSource::RemoteAdmin => "remote-admin",
        })
    }
}

/// One accepted config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Generation {
    pub number: u64,
    /// RFC 3339.
    pub time: String,
    pub source: GenerationSource,
    /// The file name or other label the text came under.
    pub name: String,
    /// For a rollback: the generation whose text it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<u64>,
    /// BLAKE3 of the text, hex.
    pub digest: String,
}

/// `GET /v1/generations`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Generations {
    pub current: u64,
    pub generations: Vec<Generation>,
}

/// A candidate config, for `POST /v1/plan` and `POST /v1/apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    /// The TOML text.
    pub config: String,
    /// The name diagnostics use for it (a file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// How a resource changes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Add,
    Change,
    Remove,
}

impl ChangeOp {
    /// `+`, `~` or `-`.
    pub fn sign(self) -> char {
        match self {
            ChangeOp::Add => '+',
            ChangeOp::Change => '~',
            ChangeOp::Remove => '-',
        }
    }
}

/// One changed field of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// One resource the plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub op: ChangeOp,
    pub kind: ResourceKind,
    pub name: String,
    pub fields: Vec<FieldChange>,
    /// The plan's steps for this resource, in order.
    pub actions: Vec<String>,
}

/// Counts of changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
}

impl Summary {
    pub fn of(changes: &[Change]) -> Summary {
        let mut s = Summary::default();
        for c in changes {
            match c.op {
                ChangeOp::Add => s.add += 1,
                ChangeOp::Change => s.change += 1,
                ChangeOp::Remove => s.remove += 1,
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.remove == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to remove",
            self.add, self.change, self.remove
        )
    }
}

/// `POST /v1/plan`: what applying the candidate would do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanResponse {
    /// The running generation the plan is against.
    pub generation: u64,
    /// Sorted by kind, then name.
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// Resources that cannot be converged, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<WireDiagnostic>,
}

/// `POST /v1/apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplyResponse {
    /// The generation now running (unchanged when the text equals the running one).
    pub generation: u64,
    /// The text was the running generation's already.
    pub unchanged: bool,
    pub plan: PlanResponse,
}

/// `POST /v1/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Default: the generation before the running one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Only say what the rollback would change (a `PlanResponse`); change nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Invitee roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteRole {
    Member,
    Seeder,
}

/// `POST /v1/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub space: String,
    /// The invitee's identity public key (hex).
    pub invitee: String,
    pub role: InviteRole,
    /// Like `7d`; `never` or absent for no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A created invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteResponse {
    pub code: String,
}

/// `POST /v1/invites/inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInspectRequest {
    pub code: String,
}

/// What an invite grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteInfo {
    pub space: String,
    pub address: String,
    pub role: InviteRole,
    pub inviter: String,
    pub invitee: String,
    /// Unix time, absent for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// Sheet formats for paper keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SheetFormat {
    Text,
    Html,
    Pdf,
}

/// `POST /v1/keys/export`: secret material, so the request must say `confirm: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyExportRequest {
    /// Export this space's encryption key instead of the parent key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The parent key and every space's key.
    #[serde(default)]
    pub all: bool,
    pub format: SheetFormat,
    pub confirm: bool,
}

/// A paper-key sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyExportResponse {
    pub keys: usize,
    /// The sheet, base64 (standard alphabet, padded).
    pub content_base64: String,
}

/// `GET /v1/identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    pub public_key: String,
}

/// A space this device holds data of but no longer declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PruneCandidate {
    pub name: String,
    pub address: String,
    /// Bytes on disk.
    pub bytes: u64,
}

/// `GET /v1/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PruneCandidates {
    pub candidates: Vec<PruneCandidate>,
}

/// `POST /v1/prune`: delete these spaces' data (each must be a candidate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    pub spaces: Vec<String>,
}

/// `POST /v1/sync`: replicate a space or seed now, outside its windows, until it is in step
/// with its connected peers or `for_secs` pass. Exactly one of `space` and `seed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// At most this long (seconds); default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_secs: Option<u64>,
}

/// The one-off sync started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncResponse {
    /// `space NAME` or `seed NAME`.
    pub resource: String,
    /// When it ends at the latest (RFC 3339).
    pub until: String,
}

/// `POST /v1/files/versions`: every version of a file in a space this device knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionsRequest {
    pub space: String,
    /// The file's path within the space, like `docs/minutes.md`.
    pub path: String,
}

/// One version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileVersion {
    /// When its writer wrote it (RFC 3339, milliseconds): what `restore --at` takes.
    pub time: String,
    /// The writing device's name.
    pub device: String,
    pub size: u64,
    /// It is what the path shows now.
    pub current: bool,
}

/// The versions of a file, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionsResponse {
    pub space: String,
    pub path: String,
    pub versions: Vec<FileVersion>,
}

/// `POST /v1/spaces/members`: who takes part in a space, as this device's roster says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersRequest {
    pub space: String,
}

/// One identity a space's roster names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberInfo {
    /// Its identity public key.
    pub identity: String,
    /// The device name it gave in the space's log, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `member` or `seeder`; absent when only removals name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `in`, `removed` (a removal that counts names it), or `out` (admitted only by
    /// identities that are out).
    pub standing: String,
    /// This device.
    pub me: bool,
    /// Who admitted it (identities), sorted.
    pub admitted_by: Vec<String>,
    /// Who removed it (identities), sorted.
    pub removed_by: Vec<String>,
    /// When its first admission reached this device (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<String>,
    /// When its first removal reached this device (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
}

/// Who takes part in a space, sorted by identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MembersResponse {
    pub space: String,
    pub members: Vec<MemberInfo>,
    /// The space's key epochs known here, oldest first (epoch 0: the key invites hand out).
    #[serde(default)]
    pub epochs: Vec<KeyEpoch>,
}

/// One key epoch of a space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyEpoch {
    pub number: u32,
    /// The digest of its epoch message (zeros for epoch 0), hex.
    pub digest: String,
    /// Who started it; absent for epoch 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The members its key was sealed or granted to, sorted (empty for epoch 0).
    pub holders: Vec<String>,
    /// Whether this device holds its key.
    pub held: bool,
    /// Whether new blocks written here are sealed under it.
    pub current: bool,
}

/// `POST /v1/spaces/rotate`: start a new key epoch of a space now, sealed to the members
/// in (a suspected leak).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    pub space: String,
}

/// The key epoch a rotation started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RotateResponse {
    pub space: String,
    pub epoch: KeyEpoch,
    /// The size of the epoch message written to the log, in bytes.
    pub bytes: u64,
}

/// `POST /v1/spaces/usage`: what a space's content takes, measured now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    pub space: String,
}

/// What one top-level entry of a space takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EntryUsage {
    /// The file or directory at the top of the space ("" for nothing: not used).
    pub name: String,
    pub tree_bytes: u64,
    pub versions_bytes: u64,
}

/// A space's usage in total and by top-level entry (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UsageResponse {
    pub space: String,
    pub total: UsageStatus,
    pub entries: Vec<EntryUsage>,
}

/// `POST /v1/files/restore`: put back the version of a file that was the newest written at
/// or before `at` (a deleted file too); no content is stored again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub space: String,
    pub path: String,
    /// RFC 3339, like `2026-12-04T10:00:00Z`.
    pub at: String,
}

/// The version put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreResponse {
    pub space: String,
    pub path: String,
    pub restored: FileVersion,
}

/// What the agent did or saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    ConfigAccepted,
    ConfigInvalid,
    ActionSucceeded,
    ActionFailed,
    Blocked,
    Drift,
    Converged,
    Pruned,
    /// A peer's session ended because the peer misbehaved: data that does not verify, an
    /// answer to no question, no valid identity proof, or a crash of its session.
    PeerMisbehaved,
    /// A feed of a space or seed could not be read or written here (damaged or unreadable
    /// on disk): its replication stopped, every other feed goes on.
    FeedFault,
    /// Something about the device's admins: trust taken on first use, the set changed, a
    /// local edit took the device back, an envelope refused.
    Admins,
}

/// One event; `GET /v1/events` streams them as server-sent events (`id:` is `id`,
/// `data:` this object as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Increasing from 1 for the life of the agent.
    pub id: u64,
    pub time: String,
    pub kind: EventKind,
    pub generation: u64,
    /// Like `space home`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub message: String,
}
