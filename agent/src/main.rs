//! `coboxd`: the cobox agent.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use cobox_schema::render::{self, Colour};
use cobox_schema::{Source, describe};
use coboxd::config_file::{self, DEFAULT_CONFIG, DEFAULT_CONFIG_NAME};
use coboxd::host::SystemHost;

/// The cobox agent: keeps this device converged onto its cobox.toml.
#[derive(Debug, Parser)]
#[command(name = "coboxd", version)]
struct Args {
    /// The config file. Default: $XDG_CONFIG_HOME/cobox/cobox.toml, or the embedded
    /// default config (one space `home`) when that file does not exist.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// How to print the desired state.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coboxd: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let source = match &args.config {
        Some(path) => config_file::read(path)?,
        None => match config_file::default_path().filter(|p| p.exists()) {
            Some(path) => config_file::read(&path)?,
            None => {
                let hint = config_file::default_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "a file given with --config".into());
                eprintln!(
                    "coboxd: no config file; running the embedded default (write one at {hint})"
                );
                Source::new(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG)
            }
        },
    };
    let host = SystemHost::from_env();
    let validation = config_file::check(&source, &host);
    let colour = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        Colour::Always
    } else {
        Colour::Never
    };
    if !validation.diagnostics.is_empty() {
        eprint!(
            "{}",
            render::report(&validation.diagnostics, &source, colour)
        );
    }
    let Some(config) = validation.config else {
        return Ok(ExitCode::from(1));
    };
    match args.output {
        Output::Text => {
            println!("desired state from {}:", source.name());
            print!("{}", describe::desired_state(&config));
        }
        Output::Json => println!("{}", serde_json::to_string_pretty(&config)?),
    }
    Ok(ExitCode::SUCCESS)
}
