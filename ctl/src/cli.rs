//! The command line of `coboxctl`, one definition for parsing, completions and man pages.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Validate, diff and apply cobox configs; status, invites and keys.
#[derive(Debug, Parser)]
#[command(name = "coboxctl", version, propagate_version = true)]
pub struct Cli {
    /// When to colour output: auto colours only on a terminal (and not with NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColourChoice::Auto)]
    pub color: ColourChoice,
    /// The device's config file: its `[device] data_dir` says where the keys are.
    /// Default: $XDG_CONFIG_HOME/cobox/cobox.toml when it exists.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory, overriding the config's.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The agent's control socket (when no --config names one through `[api] socket`).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check config files and report every problem with file:line:col.
    ///
    /// Exit status: 0 valid, 1 invalid (or warnings with --deny-warnings), 2 unreadable.
    Validate {
        /// Config files to check; `-` reads standard input.
        #[arg(value_name = "FILE", default_value = "-")]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        /// Check only what does not depend on this machine (skip disk sizes): for configs
        /// meant for other devices.
        #[arg(long)]
        portable: bool,
    },
    /// Print the JSON Schema of cobox.toml (for editors: taplo, Even Better TOML).
    Schema,
    /// Print this device's public key (its identity), creating the identity if there is none.
    Identity {
        /// Also print the key as a QR code drawn with text blocks (light on dark, for a
        /// terminal or a serial console).
        #[arg(long)]
        qr: bool,
    },
    /// Export or restore paper keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create or inspect invites to a space.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Show what applying a config would change on the running agent (a dry run).
    ///
    /// One line per resource: `+` added, `~` changed, `-` removed (data kept), with the
    /// changed fields. Exit status: 0 no changes, 1 changes, 2 error.
    Diff {
        /// The config to compare; default: the agent's config file.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Validate a config, show its plan, confirm, hand it to the agent and wait until the
    /// device converges. The agent writes it to its config file.
    ///
    /// Exit status: 0 converged, 1 something failed or the wait timed out, 2 error.
    Apply {
        /// The config to apply; default: the agent's config file.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long to wait for convergence, like 2m or 30s.
        #[arg(long, default_value = "2m")]
        timeout: String,
    },
    /// Show the agent's generation and every resource's conditions.
    Status {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Refresh every two seconds until interrupted.
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// List the accepted configs (generations), newest first.
    Generations {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run an earlier generation's config again (as a new generation) and wait until
    /// converged. Default: the generation before the running one.
    Rollback {
        /// The generation to return to.
        #[arg(value_name = "GEN")]
        generation: Option<u64>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long to wait for convergence.
        #[arg(long, default_value = "2m")]
        timeout: String,
    },
    /// Print the agent's recent events; with --follow, keep printing new ones.
    Events {
        /// Keep streaming new events until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Output format (json: one object per line).
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete the data of spaces the config no longer declares, after confirmation.
    Prune {
        /// Only these spaces (default: every undeclared one).
        #[arg(value_name = "SPACE")]
        spaces: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Replicate a space or seed now, outside its windows: until it is in step with its
    /// connected peers, or for `--for` at most.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["space", "seed"]))]
    Sync {
        /// The space to sync.
        #[arg(long, value_name = "NAME")]
        space: Option<String>,
        /// The seed to sync.
        #[arg(long, value_name = "NAME")]
        seed: Option<String>,
        /// The longest the window stays open, like `30m` or `2h`.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        duration: String,
        /// Stay until the sync ends, saying what it waits for; exit 0 once in step, 1 if
        /// the time ran out first.
        #[arg(long)]
        wait: bool,
    },
    /// List every version of a file in a space that this device knows, oldest first; `*`
    /// marks the one the path shows.
    Versions {
        /// The space.
        space: String,
        /// The file's path within the space, like `docs/minutes.md`.
        path: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Put back the version of a file that was the newest written at or before a time (a
    /// deleted file too); the current one stays among the versions.
    Restore {
        /// The space.
        space: String,
        /// The file's path within the space.
        path: String,
        /// A time in RFC 3339, like `2026-12-04T10:00:00Z` (as `versions` prints them).
        #[arg(long, value_name = "TIME")]
        at: String,
    },
    /// Look into a space.
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Who takes part in a space: role, in or removed, who admitted and who removed each,
    /// connected or last seen. `members remove SPACE KEY` removes an identity.
    #[command(args_conflicts_with_subcommands = true)]
    Members {
        #[command(subcommand)]
        action: Option<MembersCommand>,
        /// The space.
        space: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Steer a managed device from this (an admin's) device, through the fleet.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Change the admin set (signed by this device, an admin), or take this device back.
    #[command(subcommand)]
    Admins(AdminsCommand),
    /// Work with a fleet directory (fleet.toml, base.toml, groups/, devices/).
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Show what a space's content takes on this device: bytes the current files refer
    /// to, bytes only kept earlier versions refer to, and bytes nothing refers to any more
    /// (cleared by the next reclaim pass), in total and by top-level entry. A block several
    /// files share counts once.
    Du {
        /// The space.
        space: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Remove KEY from SPACE: added to the space's `removed` in the device's config file
    /// (and taken out of its `seeders`), then applied like `coboxctl apply`. Every member
    /// and seed stops serving the space to KEY; what KEY already holds stays with it.
    ///
    /// Exit status: 0 converged, 1 not applied or not converged in time, 2 error.
    Remove {
        /// The space.
        space: String,
        /// The identity to remove.
        #[arg(value_name = "KEY")]
        key: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long to wait for convergence.
        #[arg(long, default_value = "2m")]
        timeout: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Publish FILE as the desired config of device KEY (validated first, sealed to the
    /// device, signed by this device) and wait for the device to report it converged.
    ///
    /// Exit status: 0 converged, 1 refused by the device or not reported in time, 2 error.
    Apply {
        /// The device's identity (`coboxctl identity` on it).
        #[arg(value_name = "KEY")]
        device: String,
        /// The config for that device.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// How long to wait for the device's report, like 2m or 30s.
        #[arg(long, default_value = "2m")]
        timeout: String,
        /// Publish and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show what FILE would change against the config device KEY last reported running,
    /// as a unified diff. Exit status: 0 no changes, 1 changes, 2 error.
    Diff {
        #[arg(value_name = "KEY")]
        device: String,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print device KEY's recent events about its config and its admins, as its last
    /// report carried them.
    Events {
        #[arg(value_name = "KEY")]
        device: String,
        /// Output format (json: one object per line).
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show device KEY's newest status report read here, with its age. Exit status 0 when
    /// it reported running the newest envelope published for it (applied past probation, or
    /// unchanged) and converged; 1 when it refused it, rolled it back, is still on probation
    /// or has not reported it.
    Status {
        /// The device's identity.
        #[arg(value_name = "KEY")]
        device: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Render the config of DEVICE (its name or key) from the fleet's layers — base <
    /// the groups that match it, in declared order < its own — and validate it; without
    /// DEVICE, every device's verdict. Findings point into the layer that set the value.
    ///
    /// Exit status: 0 valid, 1 a config is invalid, 2 the fleet directory is wrong.
    Render {
        /// The fleet directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// One device, by name or key.
        #[arg(value_name = "DEVICE")]
        device: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Each device's rendered config against the one it last reported running (through
    /// this admin's agent). Exit status: 0 no changes, 1 changes, 2 error.
    Diff {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Publish every changed device's rendered config, wave by wave; a wave passes when at
    /// least --min-healthy of its devices report converged on it within --timeout, else the
    /// rollout stops and later waves are untouched.
    ///
    /// Exit status: 0 every wave passed, 1 the rollout stopped, 2 error.
    Apply {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Cumulative wave sizes: counts or shares of the changed devices, in the order
        /// fleet.toml lists them.
        #[arg(long, default_value = "1,25%,100%")]
        waves: String,
        /// The share of a wave that must converge for the next to start.
        #[arg(long, default_value = "90%")]
        min_healthy: String,
        /// How long a wave may take.
        #[arg(long, default_value = "10m")]
        timeout: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Output format (json: the plan to standard error, the outcome as one document).
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// One line per device: desired vs applied, state, age of its last report. Exit status 0
    /// when every device runs its rendered config, converged, with a fresh report.
    Status {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// A report older than this is stale.
        #[arg(long, default_value = "15m")]
        stale: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Refresh every two seconds until interrupted.
        #[arg(long, short = 'w')]
        watch: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminsCommand {
    /// Show which fleet and admins a config file trusts (offline; default: the device's
    /// config file). Exit status: 0 shown, 1 the config names no admins, 2 unreadable.
    Show {
        /// The config file.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Propose adding KEY to the admin set.
    Add {
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Propose removing KEY from the admin set.
    Remove {
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Propose revoking KEY (a lost or stolen key: it can never be added again).
    Revoke {
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Propose a new threshold: how many admins must sign a change of the set.
    Threshold {
        #[arg(value_name = "N")]
        threshold: u8,
    },
    /// Co-sign a proposed change (the ENTRY another admin's command printed).
    Sign {
        #[arg(value_name = "ENTRY")]
        entry: String,
    },
    /// Take this device back from its admins: the authority is re-rooted on the running
    /// config's `[admins]` (logged and reported to the admins).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColourChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write keys as 24-word paper keys: the device's parent key (default), one space's
    /// encryption key, or all of them. Print the result, store it safely, delete the file.
    Export {
        /// Export this space's encryption key instead of the parent key.
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        space: Option<String>,
        /// Export the parent key and every space's encryption key.
        #[arg(long)]
        all: bool,
        /// Sheet format.
        #[arg(long, value_enum, default_value_t = SheetFormat::Text)]
        format: SheetFormat,
        /// Write to this file (created with mode 0600) instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Restore a key from its 24 words (read from standard input, or asked for on a terminal).
    Restore {
        /// Restore a space's encryption key (needs --address) instead of the parent key.
        #[arg(long, value_name = "NAME", requires = "address")]
        space: Option<String>,
        /// The address of the space whose key is restored.
        #[arg(long, value_name = "HEX")]
        address: Option<String>,
        /// Replace an existing, different identity (the old key file is kept beside it).
        #[arg(long)]
        force: bool,
    },
    /// Start a new key epoch of a space now (a suspected leak): a fresh key sealed to the
    /// members in; blocks written from then on stay closed to anyone removed. Needs the
    /// agent.
    Rotate {
        /// The space.
        #[arg(long, value_name = "NAME")]
        space: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List a space's key epochs: who started each, who holds it, which seals new blocks.
    /// Needs the agent.
    Epochs {
        /// The space.
        #[arg(long, value_name = "NAME")]
        space: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create an invite code that only the device PUBKEY can open.
    Create {
        /// The space to invite to.
        #[arg(long, value_name = "NAME")]
        space: String,
        /// The invitee's identity (`coboxctl identity` on their device).
        #[arg(long = "for", value_name = "PUBKEY")]
        invitee: String,
        /// member: read and write; seeder: keep and serve the encrypted data only.
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
        /// How long the code stays valid, like 7d or 12h; `never` for no expiry.
        #[arg(long, default_value = "7d")]
        expires: String,
    },
    /// Show what an invite code grants, without joining.
    Open {
        /// The invite code (`coboxinvite1…`).
        code: String,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SheetFormat {
    Text,
    Html,
    Pdf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Member,
    Seeder,
}
