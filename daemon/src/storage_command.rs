//! `twofactord storage …`: commands that run on the host, next to the files and the
//! configuration, with no running daemon. Each command is its own module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

mod new_key;

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Write a new random 256-bit fleet key to PATH (which must not exist): root, mode 0600.
    NewKey {
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
}

/// Exit status of a storage command that failed.
const FAILED: u8 = 1;

/// Print `message` as the command's failure and return its exit status.
fn fail(command: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("twofactord: storage {command}: {message}");
    ExitCode::from(FAILED)
}

/// Storage commands write files and rows root owns; anyone else gets one clear sentence.
fn require_root(command: &str) -> Result<(), ExitCode> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(fail(command, "run it as root"))
    }
}

pub fn run(command: StorageCommand) -> ExitCode {
    match command {
        StorageCommand::NewKey { path } => new_key::run(&path),
    }
}
