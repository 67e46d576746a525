//! The commands driven with scripted input against the fake daemon, one module per command.

use clap::Parser;

use super::fake::{Fake, GOOD, SECRET, TEMPORARY, TEMPORARY_EXPIRES_AT};
use super::{Invoker, dispatch};
use crate::cli::Cli;
use crate::error::CliError;
use crate::io::testing::scripted;

fn alice() -> Invoker {
    Invoker {
        uid: 1000,
        name: Some("alice".into()),
    }
}

fn root() -> Invoker {
    Invoker {
        uid: 0,
        name: Some("root".into()),
    }
}

/// Run `args` as `me` with `input`; returns the result, standard output and standard error.
fn run(
    fake: &Fake,
    me: &Invoker,
    args: &[&str],
    input: &str,
) -> (Result<(), CliError>, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("twofactor").chain(args.iter().copied()))
        .unwrap_or_else(|error| panic!("{args:?}: {error}"));
    let (mut io, out, err) = scripted(input);
    let result = dispatch(cli.command, fake, me, &mut io);
    drop(io);
    (result, out.text(), err.text())
}

mod account;
mod enroll;
mod import;
mod lifecycle;
mod status;
