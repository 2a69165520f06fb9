//! `coboxctl`: the command line of cobox.

mod cli;
mod device;
mod invite_cmd;
mod keys_cmd;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use cobox_schema::Host;
use cobox_schema::render::Colour;
use coboxd::host::{Portable, SystemHost};

use cli::{Cli, ColourChoice, Command, InviteCommand, KeysCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let colour = match cli.color {
        ColourChoice::Always => Colour::Always,
        ColourChoice::Never => Colour::Never,
        ColourChoice::Auto
            if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() =>
        {
            Colour::Always
        }
        ColourChoice::Auto => Colour::Never,
    };
    let host = SystemHost::from_env();
    if let Command::Validate {
        files,
        output,
        deny_warnings,
        portable,
    } = &cli.command
    {
        let host: &dyn Host = if *portable { &Portable(host) } else { &host };
        return ExitCode::from(validate::run(files, *output, *deny_warnings, colour, host));
    }
    match run(cli, &host) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coboxctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, host: &SystemHost) -> Result<()> {
    let store = || -> Result<cobox_keys::KeyStore> {
        Ok(device::store(device::data_dir(
            cli.data_dir.clone(),
            cli.config.clone(),
            host,
        )?))
    };
    match &cli.command {
        Command::Validate { .. } => unreachable!("handled before"),
        Command::Schema => print!("{}", cobox_schema::json_schema::schema_text()),
        Command::Completions { shell } => clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "coboxctl",
            &mut std::io::stdout(),
        ),
        Command::Man => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Command::Identity => println!("{}", device::identity_creating(&store()?)?.public),
        Command::Keys(KeysCommand::Export {
            space,
            all,
            format,
            output,
            force,
        }) => keys_cmd::export(
            &store()?,
            keys_cmd::ExportArgs {
                space: space.as_deref(),
                all: *all,
                format: *format,
                output: output.as_deref(),
                force: *force,
            },
        )?,
        Command::Keys(KeysCommand::Restore {
            space,
            address,
            force,
        }) => keys_cmd::restore(&store()?, space.as_deref(), address.as_deref(), *force)?,
        Command::Invite(InviteCommand::Create {
            space,
            invitee,
            role,
            expires,
        }) => invite_cmd::create(&store()?, space, invitee, *role, expires)?,
        Command::Invite(InviteCommand::Open { code, output }) => {
            invite_cmd::open(&store()?, code, *output)?
        }
    }
    Ok(())
}
