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
    Identity,
    /// Export or restore paper keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create or inspect invites to a space.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
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
