//! `coboxctl`: the command line of cobox.

mod cli;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cobox_schema::Host;
use cobox_schema::render::Colour;
use coboxd::host::{Portable, SystemHost};

use cli::{Cli, ColourChoice, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match cli.command {
        Command::Validate {
            files,
            output,
            deny_warnings,
            portable,
        } => {
            let host = SystemHost::from_env();
            let host: &dyn Host = if portable { &Portable(host) } else { &host };
            ExitCode::from(validate::run(&files, output, deny_warnings, colour, host))
        }
        Command::Schema => {
            print!("{}", cobox_schema::json_schema::schema_text());
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "coboxctl",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("coboxctl: cannot write the man page: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
