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
