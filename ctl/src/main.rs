//! `coboxctl`: the command line of cobox.

#[macro_use]
mod out;
mod agent;
mod ask;
mod cli;
mod device;
mod epochs_cmd;
mod files_cmd;
mod fleet_cmd;
mod invite_cmd;
mod keys_cmd;
mod members_cmd;
mod paint;
mod plan_cmd;
mod prune_cmd;
mod qr_text;
mod remote_cmd;
mod status_cmd;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use cobox_client::host::{Portable, SystemHost};
use cobox_schema::Host;
use cobox_schema::render::Colour;

use cli::{
    AdminsCommand, Cli, ColourChoice, Command, FleetCommand, InviteCommand, KeysCommand,
    MembersCommand, RemoteCommand, SpaceCommand,
};

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
        // With --data-dir, invites are checked against that device's identity.
        let identity = cli
            .data_dir
            .as_ref()
            .and_then(|d| cobox_keys::KeyStore::new(d).identity().ok().flatten());
        let device;
        let portable_host;
        let host: &dyn Host = match (identity, *portable) {
            (Some(identity), _) => {
                device = cobox_client::host::Device { host, identity };
                &device
            }
            (None, true) => {
                portable_host = Portable(host);
                &portable_host
            }
            (None, false) => &host,
        };
        return ExitCode::from(validate::run(files, *output, *deny_warnings, colour, host));
    }
    if let Command::Fleet(FleetCommand::Render {
        dir,
        device,
        output,
    }) = &cli.command
    {
        return match fleet_cmd::render(dir, device.as_deref(), *output, colour) {
            Ok(code) => ExitCode::from(code),
            Err(e) if out::is_closed_pipe(&e) => ExitCode::from(out::CLOSED_PIPE as u8),
            Err(e) => {
                eprintln!("coboxctl: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Command::Admins(AdminsCommand::Show { file, output }) = &cli.command {
        let path = plan_cmd::config_path(file.as_deref(), cli.config.as_deref());
        return match path.and_then(|p| remote_cmd::show(&p, *output, &host)) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("coboxctl: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(result) = against_agent(&cli, &host, colour) {
        return match result {
            Ok(code) => ExitCode::from(code),
            Err(e) if out::is_closed_pipe(&e) => ExitCode::from(out::CLOSED_PIPE as u8),
            Err(e) => {
                eprintln!("coboxctl: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match run(cli, &host) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if out::is_closed_pipe(&e) => ExitCode::from(out::CLOSED_PIPE as u8),
        Err(e) => {
            eprintln!("coboxctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The commands that need a running agent; `None` for the others.
fn against_agent(cli: &Cli, host: &SystemHost, colour: Colour) -> Option<Result<u8>> {
    let client = || -> Result<cobox_client::api::Client> {
        agent::require(&agent::socket(
            cli.config.as_deref(),
            cli.socket.as_deref(),
            host,
        )?)
    };
    let path = |file: &Option<std::path::PathBuf>| {
        plan_cmd::config_path(file.as_deref(), cli.config.as_deref())
    };
    Some(match &cli.command {
        Command::Diff { file, output } => {
            client().and_then(|c| plan_cmd::diff(&c, &path(file)?, *output, colour))
        }
        Command::Apply { file, yes, timeout } => {
            client().and_then(|c| plan_cmd::apply(&c, &path(file)?, *yes, timeout, colour))
        }
        Command::Status { output, watch } => {
            client().and_then(|c| status_cmd::status(&c, *output, *watch, colour))
        }
        Command::Generations { output } => {
            client().and_then(|c| status_cmd::generations(&c, *output))
        }
        Command::Rollback {
            generation,
            yes,
            timeout,
        } => client().and_then(|c| plan_cmd::rollback(&c, *generation, *yes, timeout, colour)),
        Command::Events { follow, output } => {
            client().and_then(|c| status_cmd::events(&c, *follow, *output, colour))
        }
        Command::Prune { spaces, yes } => client().and_then(|c| prune_cmd::prune(&c, spaces, *yes)),
        Command::Sync {
            space,
            seed,
            duration,
            wait,
        } => client().and_then(|c| prune_cmd::sync(&c, space, seed, duration, *wait)),
        Command::Versions {
            space,
            path,
            output,
        } => client().and_then(|c| files_cmd::versions(&c, space, path, *output)),
        Command::Restore { space, path, at } => {
            client().and_then(|c| files_cmd::restore(&c, space, path, at))
        }
        Command::Members {
            action: None,
            space: Some(space),
            output,
        } => client().and_then(|c| members_cmd::list(&c, space, *output, colour)),
        Command::Members {
            action: None,
            space: None,
            ..
        } => Err(anyhow::anyhow!("name a space: coboxctl members SPACE")),
        Command::Members {
            action:
                Some(MembersCommand::Remove {
                    space,
                    key,
                    yes,
                    timeout,
                }),
            ..
        } => client().and_then(|c| {
            members_cmd::remove(&c, &path(&None)?, space, key, *yes, timeout, colour)
        }),
        Command::Space(SpaceCommand::Du { space, output }) => {
            client().and_then(|c| files_cmd::du(&c, space, *output))
        }
        Command::Remote(RemoteCommand::Apply {
            device,
            file,
            timeout,
            no_wait,
        }) => client().and_then(|c| remote_cmd::apply(&c, device, file, timeout, !no_wait, colour)),
        Command::Remote(RemoteCommand::Diff { device, file }) => {
            client().and_then(|c| remote_cmd::diff(&c, device, file, colour))
        }
        Command::Remote(RemoteCommand::Events { device, output }) => {
            client().and_then(|c| remote_cmd::events(&c, device, *output))
        }
        Command::Remote(RemoteCommand::Status { device, output }) => {
            client().and_then(|c| remote_cmd::status(&c, device, *output, colour))
        }
        Command::Fleet(FleetCommand::Diff { dir, output }) => {
            client().and_then(|c| fleet_cmd::diff(&c, dir, *output, colour))
        }
        Command::Fleet(FleetCommand::Apply {
            dir,
            waves,
            min_healthy,
            timeout,
            yes,
            output,
        }) => client().and_then(|c| {
            fleet_cmd::apply(
                &c,
                dir,
                &fleet_cmd::Rollout {
                    waves,
                    min_healthy,
                    timeout,
                    yes: *yes,
                },
                *output,
                colour,
            )
        }),
        Command::Fleet(FleetCommand::Status {
            dir,
            stale,
            output,
            watch,
        }) => client().and_then(|c| fleet_cmd::status(&c, dir, stale, *output, *watch, colour)),
        Command::Admins(a) => client().and_then(|c| match a {
            AdminsCommand::Add { key } => remote_cmd::change(&c, "add", Some(key), None),
            AdminsCommand::Remove { key } => remote_cmd::change(&c, "remove", Some(key), None),
            AdminsCommand::Revoke { key } => remote_cmd::change(&c, "revoke", Some(key), None),
            AdminsCommand::Threshold { threshold } => {
                remote_cmd::change(&c, "threshold", None, Some(*threshold))
            }
            AdminsCommand::Sign { entry } => remote_cmd::sign(&c, entry),
            AdminsCommand::Reset { yes } => remote_cmd::reset(&c, *yes),
            AdminsCommand::Show { .. } => unreachable!("handled before"),
        }),
        _ => return None,
    })
}

fn run(cli: Cli, host: &SystemHost) -> Result<()> {
    // Key and invite commands go through the agent when one runs; the others never ask.
    let agent = matches!(
        cli.command,
        Command::Identity { .. } | Command::Keys(_) | Command::Invite(_)
    )
    .then(|| agent::socket(cli.config.as_deref(), cli.socket.as_deref(), host).ok())
    .flatten()
    .and_then(|s| agent::running(&s));
    let agent = agent.as_ref();
    let store = || -> Result<cobox_keys::KeyStore> {
        Ok(device::store(device::data_dir(
            cli.data_dir.clone(),
            cli.config.clone(),
            host,
        )?))
    };
    match &cli.command {
        Command::Validate { .. }
        | Command::Diff { .. }
        | Command::Apply { .. }
        | Command::Status { .. }
        | Command::Generations { .. }
        | Command::Rollback { .. }
        | Command::Events { .. }
        | Command::Prune { .. }
        | Command::Sync { .. }
        | Command::Versions { .. }
        | Command::Restore { .. }
        | Command::Space(_)
        | Command::Members { .. }
        | Command::Remote(_)
        | Command::Admins(_)
        | Command::Fleet(_) => unreachable!("handled before"),
        Command::Schema => out!("{}", cobox_schema::json_schema::schema_text()),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "coboxctl", &mut text);
            out!("{}", String::from_utf8_lossy(&text));
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut text)?;
            out!("{}", String::from_utf8_lossy(&text));
        }
        Command::Identity { qr } => {
            let public = match agent {
                Some(client) => {
                    let id: cobox_schema::api::Identity = client.get("/v1/identity")?;
                    id.public_key
                }
                None => device::identity_creating(&store()?)?.public.to_string(),
            };
            outln!("{public}");
            if *qr {
                out!("{}", qr_text::render(&public));
            }
        }
        Command::Keys(KeysCommand::Export {
            space,
            all,
            format,
            output,
            force,
        }) => keys_cmd::export(
            agent,
            store,
            keys_cmd::ExportArgs {
                space: space.as_deref(),
                all: *all,
                format: *format,
                output: output.as_deref(),
                force: *force,
            },
        )?,
        Command::Keys(KeysCommand::Rotate { space, output }) => {
            epochs_cmd::rotate(agent, space, *output)?
        }
        Command::Keys(KeysCommand::Epochs { space, output }) => {
            epochs_cmd::list(agent, space, *output)?
        }
        Command::Keys(KeysCommand::Restore {
            space,
            address,
            force,
        }) => {
            if agent.is_some() && space.is_none() {
                anyhow::bail!(
                    "the agent is running with the current identity: stop it before restoring the device's parent key"
                );
            }
            keys_cmd::restore(&store()?, space.as_deref(), address.as_deref(), *force)?
        }
        Command::Invite(InviteCommand::Create {
            space,
            invitee,
            role,
            expires,
        }) => invite_cmd::create(agent, store, space, invitee, *role, expires)?,
        Command::Invite(InviteCommand::Open { code, output }) => {
            invite_cmd::open(agent, store, code, *output)?
        }
    }
    Ok(())
}
