//! `twofactor generate`: the man pages and shell completions, from the clap definitions.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Generate, GenerateArgs, Shell};
use crate::error::CliError;
use crate::io::Io;

pub fn generate(args: &GenerateArgs, io: &mut Io<'_>) -> Result<(), CliError> {
    match &args.what {
        Generate::Man { out: None } => {
            let mut page = Vec::new();
            man(man_command()).render(&mut page).map_err(|error| {
                CliError::System(format!("cannot render the man page: {error}"))
            })?;
            io.raw(&page)
        }
        Generate::Man { out: Some(dir) } => {
            ensure_dir(dir)?;
            write_man_pages(man_command(), dir)
        }
        Generate::Completions { shell, out } => {
            let mut command = Cli::command();
            let name = command.get_name().to_owned();
            match out {
                None => {
                    let mut script = Vec::new();
                    match shell {
                        Shell::Bash => clap_complete::generate(
                            clap_complete::Shell::Bash,
                            &mut command,
                            name,
                            &mut script,
                        ),
                        Shell::Zsh => clap_complete::generate(
                            clap_complete::Shell::Zsh,
                            &mut command,
                            name,
                            &mut script,
                        ),
                        Shell::Fish => clap_complete::generate(
                            clap_complete::Shell::Fish,
                            &mut command,
                            name,
                            &mut script,
                        ),
                    }
                    io.raw(&script)
                }
                Some(dir) => {
                    ensure_dir(dir)?;
                    let shell = match shell {
                        Shell::Bash => clap_complete::Shell::Bash,
                        Shell::Zsh => clap_complete::Shell::Zsh,
                        Shell::Fish => clap_complete::Shell::Fish,
                    };
                    let path = clap_complete::generate_to(shell, &mut command, name, dir)
                        .map_err(|error| write_error(dir, &error))?;
                    say!(io, "{}", path.display())
                }
            }
        }
    }
}

/// The command line as the man pages show it: no `help` command (`man` is the help).
fn man_command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

fn man(command: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command).manual("twofactor manual")
}

/// `twofactor.1`, `twofactor-COMMAND.1` for every visible command, and
/// `twofactor-COMMAND-SUBCOMMAND.1` for commands that have their own (`import`).
fn write_man_pages(command: clap::Command, dir: &Path) -> Result<(), CliError> {
    fn visible(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
        command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    }
    let mut pages = vec![command.clone()];
    for sub in visible(&command) {
        pages.push(sub.clone());
        pages.extend(visible(sub).cloned());
    }
    for page in pages {
        let man = man(page);
        let path = dir.join(man.get_filename());
        let mut text = Vec::new();
        man.render(&mut text)
            .and_then(|()| std::fs::write(&path, &text))
            .map_err(|error| write_error(&path, &error))?;
    }
    Ok(())
}

fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|error| write_error(dir, &error))
}

fn write_error(path: &Path, error: &std::io::Error) -> CliError {
    CliError::System(format!("cannot write {}: {error}", path.display()))
}
