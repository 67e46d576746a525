//! `twofactor`: enroll, check status and administer two-factor authentication, talking to
//! `twofactord` over the system bus. Never setuid: the daemon decides who the caller is.
//!
//! `main` only parses, runs, and turns the outcome into one line on standard error and an exit
//! code: 0 done, 1 refused or denied, 2 usage or system error.

use std::process::ExitCode;

use clap::Parser;

#[macro_use]
mod io;
mod cli;
mod client;
mod commands;
mod doctor;
mod error;
mod format;
mod migrate;
mod terminal;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let mut io = io::Io::standard();
    match commands::run(cli, &mut io) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(message) = error.message() {
                io.note(format_args!("twofactor: {message}"));
            }
            ExitCode::from(error.exit_code())
        }
    }
}
