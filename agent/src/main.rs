//! `coboxd`: the cobox agent.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
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
    /// Validate the config, print the desired state it declares, and exit (0 valid,
    /// 1 invalid) instead of running.
    #[arg(long)]
    check: bool,
    /// Log format: text for people, json (one object per line) for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// How `--check` prints the desired state.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mount one space in the foreground until interrupted (SIGINT or SIGTERM unmount it).
    Mount {
        /// The data directory holding the device's keys and the space.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The space's name on this device.
        #[arg(long, value_name = "NAME")]
        space: String,
        /// Create the space (new address and key) when this device has none of that name.
        #[arg(long)]
        create: bool,
        /// The name other members see for this device.
        #[arg(long, default_value = "coboxd")]
        device_name: String,
        /// How soon a closed file is durable, like `1s`; `0s`: at every close.
        #[arg(long, value_name = "DURATION", default_value = "1s")]
        commit_interval: String,
        /// Where to mount it.
        mountpoint: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// What is logged when `RUST_LOG` is not set: the agent's own events from `info` up, and
/// only warnings and errors of the libraries it uses (whose `info` spans would flood a
/// journal with every replication message). The replication protocol's own error lines
/// are off: every error it logs also ends the session, which the agent logs (a peer that
/// disconnects is an ordinary `session ended`), so they only repeated it as an ERROR.
const DEFAULT_LOG_FILTER: &str = "warn,coboxd=info,hypercore_protocol=off";

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    // Colours only on a terminal: never in journals, files or pipes. A library's warning
    // repeated on every retry is said once.
    use tracing_subscriber::prelude::*;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let base = tracing_subscriber::registry()
        .with(filter)
        .with(coboxd::quiet_repeats::QuietRepeats::default());
    match args.log_format {
        LogFormat::Text => base.with(logs).init(),
        LogFormat::Json => base.with(logs.json().flatten_event(true)).init(),
    }
    // The agent itself logs its end like everything else (its log may be JSON); the
    // one-shot commands speak to a person on standard error.
    let agent = args.command.is_none() && !args.check;
    let result = match args.command {
        Some(Command::Mount {
            data_dir,
            space,
            create,
            device_name,
            commit_interval,
            mountpoint,
        }) => cobox_schema::units::parse_duration(&commit_interval)
            .map_err(|e| anyhow::anyhow!("--commit-interval: {e}"))
            .and_then(|every| {
                coboxd::run_mount::run(&data_dir, &space, create, &device_name, every, &mountpoint)
            })
            .map(|()| ExitCode::SUCCESS),
        None if args.check => show_desired(&args.config, args.output),
        None => run_agent(args.config).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) if agent => {
            tracing::error!(error = %format!("{e:#}"), "coboxd cannot run");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("coboxd: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_agent(config: Option<PathBuf>) -> Result<()> {
    use coboxd::run::ConfigSource;
    let source = match config {
        Some(path) => ConfigSource::File(path),
        None => match config_file::default_path() {
            Some(path) if path.exists() => ConfigSource::File(path),
            hint => {
                let hint = hint
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "a file given with --config".into());
                tracing::info!(
                    "no config file; running the embedded default (write one at {hint})"
                );
                ConfigSource::Embedded
            }
        },
    };
    coboxd::run::run(source)
}

fn show_desired(config: &Option<PathBuf>, output: Output) -> Result<ExitCode> {
    let source = match config {
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
    match output {
        Output::Text => {
            println!("desired state from {}:", source.name());
            print!("{}", describe::desired_state(&config));
        }
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&config).context("cannot print the desired state")?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
